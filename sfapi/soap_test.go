package sfapi

import (
	"context"
	"encoding/xml"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// recordedLoginResponse is abridged from recorded partner API fixtures (see
// the wire reference), with userInfo elements in Salesforce's order.
const recordedLoginResponse = `<?xml version="1.0" encoding="UTF-8"?><soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" xmlns="urn:partner.soap.sforce.com" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"><soapenv:Body><loginResponse><result><metadataServerUrl>https://na15.salesforce.com/services/Soap/m/29.0/00Aa0000000Bbbb</metadataServerUrl><passwordExpired>false</passwordExpired><sandbox>false</sandbox><serverUrl>https://na15.salesforce.com/services/Soap/u/29.0/00Aa0000000Bbbb</serverUrl><sessionId>00Dx0000000001!AQ0AQsecretsession</sessionId><userId>005a0000001aAA2AAA</userId><userInfo><accessibilityMode>false</accessibilityMode><currencySymbol>$</currencySymbol><orgAttachmentFileSizeLimit>5242880</orgAttachmentFileSizeLimit><orgDefaultCurrencyIsoCode>USD</orgDefaultCurrencyIsoCode><orgDisallowHtmlAttachments>false</orgDisallowHtmlAttachments><orgHasPersonAccounts>false</orgHasPersonAccounts><organizationId>00Aa0000000AaaaAAA</organizationId><organizationMultiCurrency>false</organizationMultiCurrency><organizationName>Kidozen</organizationName><profileId>00ea0000001mwJvAAI</profileId><roleId xsi:nil="true"/><sessionSecondsValid>7200</sessionSecondsValid><userDefaultCurrencyIsoCode xsi:nil="true"/><userEmail>account@kidozen.com</userEmail><userFullName>Kidozen Account</userFullName><userId>005a0000001aAA2AAA</userId><userLanguage>en_US</userLanguage><userLocale>en_US</userLocale><userName>account@kidozen.com</userName><userTimeZone>America/Los_Angeles</userTimeZone><userType>Standard</userType><userUiSkin>Theme3</userUiSkin></userInfo></result></loginResponse></soapenv:Body></soapenv:Envelope>`

func soapFaultBody(code, detailType, message string) string {
	return `<?xml version="1.0" encoding="UTF-8"?><soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" xmlns:sf="urn:fault.partner.soap.sforce.com" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"><soapenv:Body><soapenv:Fault><faultcode>sf:` +
		code + `</faultcode><faultstring>` + code + `: ` + message + `</faultstring><detail><sf:` + detailType + ` xsi:type="sf:` + detailType + `"><sf:exceptionCode>` +
		code + `</sf:exceptionCode><sf:exceptionMessage>` + message + `</sf:exceptionMessage></sf:` + detailType + `></detail></soapenv:Fault></soapenv:Body></soapenv:Envelope>`
}

// soapRequestSeen is what the test server decodes from a request, by local
// names, the way Salesforce reads it.
type soapRequestSeen struct {
	Header struct {
		SessionID string `xml:"SessionHeader>sessionId"`
	} `xml:"Header"`
	Body struct {
		Login *struct {
			Username string `xml:"username"`
			Password string `xml:"password"`
		} `xml:"login"`
		ChangeOwnPassword *struct {
			OldPassword string `xml:"oldPassword"`
			NewPassword string `xml:"newPassword"`
		} `xml:"changeOwnPassword"`
		Logout *struct{} `xml:"logout"`
	} `xml:"Body"`
}

func TestClientSOAPLoginRequestAndResult(t *testing.T) {
	const password = "S3cret<&>\"'pw" + "TOKEN0123456789abcdefghij"
	var seen soapRequestSeen
	var path, contentType string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		path, contentType = r.URL.Path, r.Header.Get("Content-Type")
		body, _ := io.ReadAll(r.Body)
		if err := xml.Unmarshal(body, &seen); err != nil {
			t.Errorf("request is not well-formed XML: %v", err)
		}
		w.Header().Set("Content-Type", "text/xml; charset=utf-8")
		io.WriteString(w, recordedLoginResponse)
	}))
	defer srv.Close()

	s, err := newTestClient(t, srv.URL).SOAPLogin(context.Background(), "user+x@acme.demo", password)
	if err != nil {
		t.Fatalf("SOAPLogin: %v", err)
	}
	if path != "/services/Soap/u/64.0" {
		t.Errorf("login posted to %q, want the SOAP login version path", path)
	}
	if !strings.HasPrefix(contentType, "text/xml") {
		t.Errorf("Content-Type %q", contentType)
	}
	if seen.Body.Login == nil || seen.Body.Login.Username != "user+x@acme.demo" || seen.Body.Login.Password != password {
		t.Errorf("server decoded login %+v; values must survive XML escaping", seen.Body.Login)
	}
	if seen.Header.SessionID != "" {
		t.Errorf("login must not send a SessionHeader")
	}
	want := Session{
		AccessToken: "00Dx0000000001!AQ0AQsecretsession",
		InstanceURL: "https://na15.salesforce.com",
		UserID:      "005a0000001aAA2AAA",
		OrgID:       "00Aa0000000AaaaAAA",
		// passwordExpired false
		SecondsValid: 7200,
	}
	if *s != want {
		t.Errorf("session\n got %+v\nwant %+v", *s, want)
	}
}

func TestClientSOAPLoginPasswordExpired(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, strings.Replace(recordedLoginResponse, "<passwordExpired>false", "<passwordExpired>true", 1))
	}))
	defer srv.Close()
	s, err := newTestClient(t, srv.URL).SOAPLogin(context.Background(), "a@b.c", "S3cret<&>\"'pw")
	if err != nil {
		t.Fatal(err)
	}
	if !s.PasswordExpired {
		t.Error("passwordExpired=true not read")
	}
}

func TestClientSOAPFaults(t *testing.T) {
	tests := []struct {
		name    string
		status  int
		body    string
		code    string
		kind    ErrorKind
		message string
	}{
		{"invalid login", 500, soapFaultBody("INVALID_LOGIN", "LoginFault", "Invalid username, password, security token; or user locked out."),
			"INVALID_LOGIN", KindCredentials, "Invalid username, password, security token; or user locked out."},
		{"security token", 500, soapFaultBody("LOGIN_MUST_USE_SECURITY_TOKEN", "LoginFault", "Invalid username, password, security token; or user locked out. Are you at a new location?"),
			"LOGIN_MUST_USE_SECURITY_TOKEN", KindCredentials, "Invalid username, password, security token; or user locked out. Are you at a new location?"},
		{"lockout", 500, soapFaultBody("PASSWORD_LOCKOUT", "LoginFault", "locked"), "PASSWORD_LOCKOUT", KindCredentials, "locked"},
		{"inactive", 500, soapFaultBody("INACTIVE_OWNER_OR_USER", "LoginFault", "inactive"), "INACTIVE_OWNER_OR_USER", KindCredentials, "inactive"},
		{"challenge", 500, soapFaultBody("LOGIN_CHALLENGE_ISSUED", "LoginFault", "verify"), "LOGIN_CHALLENGE_ISSUED", KindCredentials, "verify"},
		{"session", 500, soapFaultBody("INVALID_SESSION_ID", "UnexpectedErrorFault", "Invalid Session ID found in SessionHeader: Illegal Session"),
			"INVALID_SESSION_ID", KindSession, "Invalid Session ID found in SessionHeader: Illegal Session"},
		{"new password", 500, soapFaultBody("INVALID_NEW_PASSWORD", "InvalidNewPasswordFault", "Your password must have a mix of letters and numbers."),
			"INVALID_NEW_PASSWORD", KindPassword, "Your password must have a mix of letters and numbers."},
		{"old password", 500, soapFaultBody("INVALID_OLD_PASSWORD", "InvalidOldPasswordFault", "invalid repeated password"), "INVALID_OLD_PASSWORD", KindCredentials, "invalid repeated password"},
		{"api disabled", 500, soapFaultBody("API_DISABLED_FOR_ORG", "UnexpectedErrorFault", "API is not enabled for this Organization or Partner"),
			"API_DISABLED_FOR_ORG", KindPermission, "API is not enabled for this Organization or Partner"},
		{"unsupported version", 500, soapFaultBody("UNSUPPORTED_API_VERSION", "UnexpectedErrorFault", "Invalid Api version specified on URL"),
			"UNSUPPORTED_API_VERSION", KindPermission, "Invalid Api version specified on URL"},
		{"expired password", 500, soapFaultBody("INVALID_OPERATION_WITH_EXPIRED_PASSWORD", "UnexpectedErrorFault", "The users password has expired, you must call SetPassword before attempting any other API operations"),
			"INVALID_OPERATION_WITH_EXPIRED_PASSWORD", KindPermission, "The users password has expired, you must call SetPassword before attempting any other API operations"},
		{"insufficient access", 500, soapFaultBody("INSUFFICIENT_ACCESS", "UnexpectedErrorFault", "insufficient access rights on cross-reference id"),
			"INSUFFICIENT_ACCESS", KindPermission, "insufficient access rights on cross-reference id"},
		{"request limit", 500, soapFaultBody("REQUEST_LIMIT_EXCEEDED", "UnexpectedErrorFault", "TotalRequests Limit exceeded."),
			"REQUEST_LIMIT_EXCEEDED", KindTransient, "TotalRequests Limit exceeded."},
		{"fault without detail", 500, `<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/"><soapenv:Body><soapenv:Fault><faultcode>sf:INVALID_LOGIN</faultcode><faultstring>INVALID_LOGIN: Invalid username, password, security token; or user locked out.</faultstring></soapenv:Fault></soapenv:Body></soapenv:Envelope>`,
			"INVALID_LOGIN", KindCredentials, "Invalid username, password, security token; or user locked out."},
		{"generic server fault", 500, `<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/"><soapenv:Body><soapenv:Fault><faultcode>soapenv:Server</faultcode><faultstring>Internal error</faultstring></soapenv:Fault></soapenv:Body></soapenv:Envelope>`,
			"Server", KindTransient, "Internal error"},
		{"maintenance page", 503, `<html><body>Down for maintenance</body></html>`, "", KindTransient, "unexpected HTTP status 503 Service Unavailable"},
		{"not found", 404, `<html>no</html>`, "", KindNotFound, "unexpected HTTP status 404 Not Found"},
		{"garbage 200", 200, `not xml`, "", KindOther, "unreadable SOAP response"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "text/xml; charset=utf-8")
				w.WriteHeader(tc.status)
				io.WriteString(w, tc.body)
			}))
			defer srv.Close()
			_, err := newTestClient(t, srv.URL).SOAPLogin(context.Background(), "a@b.c", "S3cret<&>\"'pw")
			e := wantKind(t, err, tc.code, tc.kind)
			if e.Message != tc.message || e.Op != "soap login" || e.HTTPStatus != tc.status {
				t.Errorf("got op %q status %d message %q", e.Op, e.HTTPStatus, e.Message)
			}
		})
	}
}

func TestClientChangeOwnPasswordAndLogoutRequests(t *testing.T) {
	const (
		oldPW = "S3cret<&>\"'pw"
		newPW = "N3w]]>pass<x/>"
	)
	var seen []soapRequestSeen
	var paths []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		var s soapRequestSeen
		if err := xml.Unmarshal(body, &s); err != nil {
			t.Errorf("request is not well-formed XML: %v", err)
		}
		seen = append(seen, s)
		paths = append(paths, r.URL.Path)
		w.Header().Set("Content-Type", "text/xml; charset=utf-8")
		switch {
		case s.Body.ChangeOwnPassword != nil:
			io.WriteString(w, `<?xml version="1.0" encoding="UTF-8"?><soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" xmlns="urn:partner.soap.sforce.com"><soapenv:Body><changeOwnPasswordResponse><result/></changeOwnPasswordResponse></soapenv:Body></soapenv:Envelope>`)
		case s.Body.Logout != nil:
			io.WriteString(w, `<?xml version="1.0" encoding="UTF-8"?><soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" xmlns="urn:partner.soap.sforce.com"><soapenv:Body><logoutResponse/></soapenv:Body></soapenv:Envelope>`)
		default:
			w.WriteHeader(500)
			io.WriteString(w, soapFaultBody("INVALID_SESSION_ID", "UnexpectedErrorFault", "Invalid Session ID found in SessionHeader: Illegal Session"))
		}
	}))
	defer srv.Close()
	c := newTestClient(t, "https://login.invalid")
	own := &Session{AccessToken: "00Dx0000000001!AQ0AQsecretsession", InstanceURL: srv.URL}

	if err := c.ChangeOwnPassword(context.Background(), own, oldPW, newPW); err != nil {
		t.Fatalf("ChangeOwnPassword: %v", err)
	}
	if err := c.Logout(context.Background(), own); err != nil {
		t.Fatalf("Logout: %v", err)
	}
	if len(seen) != 2 {
		t.Fatalf("server saw %d requests", len(seen))
	}
	for i, p := range paths {
		if p != "/services/Soap/u/66.0" {
			t.Errorf("request %d posted to %q, want the instance's /services/Soap/u/66.0", i, p)
		}
		if seen[i].Header.SessionID != own.AccessToken {
			t.Errorf("request %d carries SessionHeader %q", i, seen[i].Header.SessionID)
		}
	}
	if cp := seen[0].Body.ChangeOwnPassword; cp == nil || cp.OldPassword != oldPW || cp.NewPassword != newPW {
		t.Errorf("changeOwnPassword decoded as %+v", cp)
	}
	if seen[1].Body.Logout == nil {
		t.Error("second request is not logout")
	}
}

func TestClientSOAPRefusesValuesXMLCannotCarry(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		t.Errorf("a value XML would alter was sent")
	}))
	defer srv.Close()
	c := newTestClient(t, srv.URL)
	own := &Session{AccessToken: "00Dx0000000001!AQ0AQsecretsession", InstanceURL: srv.URL}
	for _, bad := range []string{"pass\x01word1", "pass\uFFFEword1", "pass\xffword1"} {
		_, err := c.SOAPLogin(context.Background(), "a@b.c", bad)
		wantKind(t, err, "", KindCredentials)
		wantKind(t, c.ChangeOwnPassword(context.Background(), own, "S3cret<&>\"'pw", bad), "", KindPassword)
	}
}
