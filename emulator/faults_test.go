package emulator

import (
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestFaultStatusAndBody(t *testing.T) {
	s := NewTestServer(t, nil)
	s.InjectFault("oauth.token", Fault{Status: 503, Body: `{"error":"unavailable"}`})
	status, body := post(t, s.LoginURL()+"/services/oauth2/token", "application/x-www-form-urlencoded", passwordForm(adminUser, adminPass+adminTok).Encode())
	if status != 503 || body != `{"error":"unavailable"}` {
		t.Fatalf("%d %s", status, body)
	}
	// Other endpoints are untouched.
	mustSOAPLogin(t, s, adminUser, adminPass+adminTok)
	s.ClearFaults()
	mustPasswordGrant(t, s, adminUser, adminPass+adminTok)
}

func TestFaultTimesThenNormal(t *testing.T) {
	s := NewTestServer(t, nil)
	s.InjectFault("soap.login", Fault{Status: 500, Body: "<oops/>", Times: 2})
	for i := 0; i < 2; i++ {
		if status, body := soapLogin(t, s, "64.0", adminUser, adminPass+adminTok); status != 500 || body != "<oops/>" {
			t.Fatalf("call %d: %d %s", i, status, body)
		}
	}
	mustSOAPLogin(t, s, adminUser, adminPass+adminTok)
	if got := s.Calls("soap.login"); got != 3 {
		t.Fatalf("soap.login calls = %d, want 3 (faulted calls count)", got)
	}
}

func TestFaultDropConnection(t *testing.T) {
	s := NewTestServer(t, nil)
	s.InjectFault("rest.versions", Fault{Drop: true, Times: 1})
	c := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
	if resp, err := c.Get(s.LoginURL() + "/services/data/"); err == nil {
		resp.Body.Close()
		t.Fatalf("dropped connection returned status %d", resp.StatusCode)
	}
	resp, err := c.Get(s.LoginURL() + "/services/data/")
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("after the drop: %v", err)
	}
	resp.Body.Close()
}

func TestFaultLatencyRespectsClientCancel(t *testing.T) {
	s := NewTestServer(t, nil)
	s.InjectFault("rest.versions", Fault{Latency: time.Hour})
	c := &http.Client{Timeout: 200 * time.Millisecond}
	if resp, err := c.Get(s.LoginURL() + "/services/data/"); err == nil {
		resp.Body.Close()
		t.Fatal("an hour of latency did not time the client out")
	}
}

func TestCallCountersUnderConcurrency(t *testing.T) {
	s := NewTestServer(t, nil)
	const workers, each = 8, 10
	s.InjectFault("oauth.introspect", Fault{Status: 502, Times: 5})
	var wg sync.WaitGroup
	var mu sync.Mutex
	failures := 0
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < each; i++ {
				resp, err := http.Post(s.LoginURL()+"/services/oauth2/introspect", "application/x-www-form-urlencoded",
					strings.NewReader(url.Values{"token": {"x"}, "client_id": {DemoClientID}, "client_secret": {DemoClientSecret}}.Encode()))
				if err != nil {
					t.Error(err)
					return
				}
				resp.Body.Close()
				if resp.StatusCode == 502 {
					mu.Lock()
					failures++
					mu.Unlock()
				}
				s.SetUserState(adminUser, func(u *User) {}) // touch the org lock concurrently
			}
		}()
	}
	wg.Wait()
	if got := s.Calls("oauth.introspect"); got != workers*each {
		t.Fatalf("calls = %d, want %d", got, workers*each)
	}
	if failures != 5 {
		t.Fatalf("faulted calls = %d, want exactly 5", failures)
	}
	s.ResetCalls()
	if s.Calls("oauth.introspect") != 0 {
		t.Fatal("ResetCalls did not reset")
	}
}

func TestCallHookNeverLogsSecrets(t *testing.T) {
	s := NewTestServer(t, nil)
	var mu sync.Mutex
	var lines []CallInfo
	s.SetCallHook(func(c CallInfo) { mu.Lock(); lines = append(lines, c); mu.Unlock() })
	tok := mustPasswordGrant(t, s, adminUser, adminPass+adminTok)
	sid := mustSOAPLogin(t, s, adminUser, adminPass+adminTok)
	http.Get(s.LoginURL() + "/services/oauth2/revoke?token=" + url.QueryEscape(tok))
	mu.Lock()
	defer mu.Unlock()
	if len(lines) != 3 || lines[0].Endpoint != "oauth.token" || lines[0].Username != adminUser || lines[0].Status != 200 {
		t.Fatalf("call log: %+v", lines)
	}
	for _, l := range lines {
		all := l.Method + l.Path + l.Endpoint + l.Username
		for _, secret := range []string{adminPass, adminTok, tok, sid, DemoClientSecret} {
			if strings.Contains(all, secret) {
				t.Fatalf("secret in call log: %+v", l)
			}
		}
	}
}
