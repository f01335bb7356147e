package sfapi

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
)

type restSeen struct {
	method, path, query, auth, contentType string
	body                                   map[string]any
}

// restServer answers each request with handler's status and body, after
// recording it.
func restServer(t *testing.T, handler func(r *http.Request) (int, string)) (*httptest.Server, *[]restSeen) {
	var seen []restSeen
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rs := restSeen{method: r.Method, path: r.URL.Path, query: r.URL.Query().Get("q"),
			auth: r.Header.Get("Authorization"), contentType: r.Header.Get("Content-Type")}
		if b, _ := io.ReadAll(r.Body); len(b) > 0 {
			if err := json.Unmarshal(b, &rs.body); err != nil {
				t.Errorf("request body is not JSON: %v", err)
			}
		}
		seen = append(seen, rs)
		status, body := handler(r)
		w.Header().Set("Content-Type", "application/json;charset=UTF-8")
		if status == 401 {
			w.Header().Set("WWW-Authenticate", "Token")
		}
		w.WriteHeader(status)
		io.WriteString(w, body)
	}))
	t.Cleanup(srv.Close)
	return srv, &seen
}

func TestClientSetPasswordRequest(t *testing.T) {
	srv, seen := restServer(t, func(*http.Request) (int, string) { return 204, "" })
	c := newTestClient(t, "https://login.invalid")
	admin := &Session{AccessToken: "00Dx0000000001!AQcurrentAccess", InstanceURL: srv.URL}
	if err := c.SetPassword(context.Background(), admin, "005000000000001AAA", "S3cret<&>\"'pw"); err != nil {
		t.Fatalf("SetPassword: %v", err)
	}
	wantKind(t, c.SetPassword(context.Background(), admin, "005000000000001AAA", "bad\xffutf8-1"), "", KindPassword)
	if len(*seen) != 1 {
		t.Errorf("a password JSON would alter was sent")
	}
	got := (*seen)[0]
	if got.method != "POST" || got.path != "/services/data/v66.0/sobjects/User/005000000000001AAA/password" ||
		got.auth != "Bearer 00Dx0000000001!AQcurrentAccess" || got.contentType != "application/json" ||
		got.body["NewPassword"] != "S3cret<&>\"'pw" || len(got.body) != 1 {
		t.Errorf("request %+v", got)
	}
}

func TestClientRESTErrors(t *testing.T) {
	tests := []struct {
		name   string
		status int
		body   string
		code   string
		kind   ErrorKind
		msg    string
	}{
		{"policy", 400, `[{"message":"Your password must have a mix of letters and numbers.","errorCode":"INVALID_NEW_PASSWORD"}]`,
			"INVALID_NEW_PASSWORD", KindPassword, "Your password must have a mix of letters and numbers."},
		{"doc object form", 400, `{"message":"Your password must have a mix of letters and numbers.","errorCode":"INVALID_NEW_PASSWORD"}`,
			"INVALID_NEW_PASSWORD", KindPassword, "Your password must have a mix of letters and numbers."},
		{"session", 401, `[{"message":"Session expired or invalid","errorCode":"INVALID_SESSION_ID"}]`,
			"INVALID_SESSION_ID", KindSession, "Session expired or invalid"},
		{"401 without code", 401, `Bad_OAuth_Token`, "", KindSession, "unexpected HTTP status 401 Unauthorized"},
		{"permission", 403, `[{"message":"You do not have permission to view this record.","errorCode":"INSUFFICIENT_ACCESS"}]`,
			"INSUFFICIENT_ACCESS", KindPermission, "You do not have permission to view this record."},
		{"limit", 403, `[{"message":"TotalRequests Limit exceeded.","errorCode":"REQUEST_LIMIT_EXCEEDED"}]`,
			"REQUEST_LIMIT_EXCEEDED", KindTransient, "TotalRequests Limit exceeded."},
		{"not found", 404, `[{"errorCode":"NOT_FOUND","message":"The requested resource does not exist"}]`,
			"NOT_FOUND", KindNotFound, "The requested resource does not exist"},
		{"server", 503, `<html>down</html>`, "", KindTransient, "unexpected HTTP status 503 Service Unavailable"},
		{"expired password", 500, `[{"message":"The users password has expired","errorCode":"INVALID_OPERATION_WITH_EXPIRED_PASSWORD"}]`,
			"INVALID_OPERATION_WITH_EXPIRED_PASSWORD", KindPermission, "The users password has expired"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			srv, _ := restServer(t, func(*http.Request) (int, string) { return tc.status, tc.body })
			c := newTestClient(t, srv.URL)
			admin := &Session{AccessToken: "00Dx0000000001!AQcurrentAccess", InstanceURL: srv.URL}
			e := wantKind(t, c.SetPassword(context.Background(), admin, "005000000000001AAA", "S3cret<&>\"'pw"), tc.code, tc.kind)
			if e.Op != "set password" || e.Message != tc.msg || e.HTTPStatus != tc.status {
				t.Errorf("got op %q status %d message %q", e.Op, e.HTTPStatus, e.Message)
			}
			_, err := c.Query(context.Background(), admin, "SELECT Id FROM Account")
			wantKind(t, err, tc.code, tc.kind)
		})
	}
}

func TestClientSOQLQuote(t *testing.T) {
	tests := map[string]string{
		"admin@acme.demo":   `'admin@acme.demo'`,
		"o'brien@acme.demo": `'o\'brien@acme.demo'`,
		`back\slash`:        `'back\\slash'`,
		`x\' OR Id != '`:    `'x\\\' OR Id != \''`,
		"new\nline\t\"q\"":  `'new\nline\t\"q\"'`,
	}
	for in, want := range tests {
		if got := soqlQuote(in); got != want {
			t.Errorf("soqlQuote(%q) = %s, want %s", in, got, want)
		}
	}
}

func TestClientLookupUserQueryAndResult(t *testing.T) {
	srv, seen := restServer(t, func(r *http.Request) (int, string) {
		if r.URL.Query().Get("q") == `SELECT Id, Username, Email, IsActive FROM User WHERE Username = 'o\'brien@acme.demo'` {
			return 200, `{"totalSize":1,"done":true,"records":[{"attributes":{"type":"User","url":"/services/data/v66.0/sobjects/User/0055g00000IntgAAAA"},"Id":"0055g00000IntgAAAA","Username":"o'brien@acme.demo","Email":"ob@acme.demo","IsActive":false}]}`
		}
		return 200, `{"totalSize":0,"done":true,"records":[]}`
	})
	c := newTestClient(t, srv.URL)
	admin := &Session{AccessToken: "00Dx0000000001!AQcurrentAccess", InstanceURL: srv.URL}
	u, err := c.LookupUser(context.Background(), admin, "o'brien@acme.demo")
	if err != nil {
		t.Fatalf("LookupUser: %v (query sent: %q)", err, (*seen)[0].query)
	}
	want := User{ID: "0055g00000IntgAAAA", Username: "o'brien@acme.demo", Email: "ob@acme.demo", IsActive: false}
	if *u != want {
		t.Errorf("user %+v, want %+v", *u, want)
	}
	if got := (*seen)[0]; got.method != "GET" || got.path != "/services/data/v66.0/query" {
		t.Errorf("request %+v", got)
	}
	_, err = c.LookupUser(context.Background(), admin, "nobody@acme.demo")
	wantKind(t, err, "NOT_FOUND", KindNotFound)
}

func TestClientLoginLockUnlockPasswordExpiredQuery(t *testing.T) {
	srv, seen := restServer(t, func(r *http.Request) (int, string) {
		switch {
		case r.URL.Path == "/services/data/v66.0/query" && r.URL.Query().Get("q") == `SELECT Id, IsPasswordLocked FROM UserLogin WHERE UserId = '0055g00000IntgAAAA'`:
			return 200, `{"totalSize":1,"done":true,"records":[{"attributes":{"type":"UserLogin"},"Id":"0605g00000IntgAAAA","IsPasswordLocked":true}]}`
		case r.URL.Path == "/services/data/v66.0/query" && r.URL.Query().Get("q") == `SELECT Id FROM Account`:
			return 200, `{"totalSize":3,"done":true,"records":[{"Id":"001000000000001AAA"}]}`
		case r.URL.Path == "/services/data/v66.0/query":
			return 200, `{"totalSize":0,"done":true,"records":[]}`
		case r.Method == "PATCH" && r.URL.Path == "/services/data/v66.0/sobjects/UserLogin/0605g00000IntgAAAA":
			return 204, ""
		case r.Method == "GET" && r.URL.Path == "/services/data/v66.0/sobjects/User/0055g00000IntgAAAA/password":
			return 200, `{"isExpired" : true}`
		}
		return 404, `[{"errorCode":"NOT_FOUND","message":"The requested resource does not exist"}]`
	})
	c := newTestClient(t, srv.URL)
	admin := &Session{AccessToken: "00Dx0000000001!AQcurrentAccess", InstanceURL: srv.URL}
	ctx := context.Background()

	locked, loginID, err := c.LoginLocked(ctx, admin, "0055g00000IntgAAAA")
	if err != nil || !locked || loginID != "0605g00000IntgAAAA" {
		t.Fatalf("LoginLocked = %v %q %v", locked, loginID, err)
	}
	if err := c.UnlockLogin(ctx, admin, loginID); err != nil {
		t.Fatalf("UnlockLogin: %v", err)
	}
	patch := (*seen)[1]
	if v, ok := patch.body["IsPasswordLocked"]; !ok || v != false || len(patch.body) != 1 {
		t.Errorf("unlock body %v", patch.body)
	}
	_, _, err = c.LoginLocked(ctx, admin, "0055g00000NoneAAAA")
	wantKind(t, err, "NOT_FOUND", KindNotFound)

	expired, err := c.PasswordExpired(ctx, admin, "0055g00000IntgAAAA")
	if err != nil || !expired {
		t.Errorf("PasswordExpired = %v %v", expired, err)
	}
	n, err := c.Query(ctx, admin, "SELECT Id FROM Account")
	if err != nil || n != 3 {
		t.Errorf("Query = %d %v, want totalSize 3", n, err)
	}
	_, err = c.PasswordExpired(ctx, admin, "0055g00000NoneAAAA")
	wantKind(t, err, "NOT_FOUND", KindNotFound)
}
