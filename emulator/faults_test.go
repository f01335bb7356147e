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

// LatencyAfter applies the change, then holds the answer: a password
// set through REST is in force while its caller still waits, and the
// org stays usable meanwhile (the REST handler's org lock is not held).
func TestFaultLatencyAfterAppliesBeforeAnswering(t *testing.T) {
	s := NewTestServer(t, nil)
	tok := mustPasswordGrant(t, s, adminUser, adminPass+adminTok)
	const newPass = "Integ-Pass-After-1"
	s.InjectFault("rest.password", Fault{LatencyAfter: time.Second, Times: 1})
	done := make(chan int, 1)
	start := time.Now()
	req, err := http.NewRequest(http.MethodPost, s.MyDomainURL()+"/services/data/v64.0/sobjects/User/"+s.UserID(integUser)+"/password",
		strings.NewReader(`{"NewPassword":"`+newPass+`"}`))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+tok)
	req.Header.Set("Content-Type", "application/json")
	go func() {
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			done <- 0
			return
		}
		resp.Body.Close()
		done <- resp.StatusCode
	}()
	deadline := time.Now().Add(5 * time.Second)
	for s.HeldAnswers("rest.password") == 0 {
		if time.Now().After(deadline) {
			t.Fatal("the answer was never held")
		}
		time.Sleep(5 * time.Millisecond)
	}
	// Applied, not yet answered; other users can log in meanwhile.
	if got := s.Password(integUser); got != newPass {
		t.Fatal("the change is not applied while its answer is held")
	}
	mustSOAPLogin(t, s, trustUser, trustPass)
	select {
	case status := <-done:
		t.Fatalf("answered (%d) before LatencyAfter was over", status)
	default:
	}
	if status := <-done; status != http.StatusNoContent {
		t.Fatalf("held answer status = %d, want 204", status)
	}
	if waited := time.Since(start); waited < time.Second {
		t.Fatalf("answer came after %s, want at least the 1s LatencyAfter", waited)
	}
}

// A caller that gives up while its answer is held never gets it, and the
// change stays applied; Latency (before) is the opposite: nothing applied,
// unless IgnoreCancel makes the change land late.
func TestFaultLatencyBeforeAndAfterWhenCallerGivesUp(t *testing.T) {
	s := NewTestServer(t, nil)
	sid := mustSOAPLogin(t, s, integUser, integPass+integTok)
	change := func(newPass string) error {
		c := &http.Client{Timeout: 300 * time.Millisecond}
		body := envelope(`<urn:SessionHeader><urn:sessionId>`+sid+`</urn:sessionId></urn:SessionHeader>`,
			`<urn:changeOwnPassword><urn:oldPassword>`+xmlText(s.Password(integUser))+`</urn:oldPassword><urn:newPassword>`+xmlText(newPass)+`</urn:newPassword></urn:changeOwnPassword>`)
		resp, err := c.Post(s.MyDomainURL()+"/services/Soap/u/64.0/"+id15(s.OrgID()), "text/xml; charset=utf-8", strings.NewReader(body))
		if err == nil {
			resp.Body.Close()
		}
		return err
	}

	s.InjectFault("soap.changeOwnPassword", Fault{Latency: time.Hour, Times: 1})
	if err := change("Integ-Pass-Before-1"); err == nil {
		t.Fatal("an hour of latency before the call did not time the client out")
	}
	if s.Password(integUser) != integPass {
		t.Fatal("a call abandoned before it was handled changed the password")
	}

	s.InjectFault("soap.changeOwnPassword", Fault{Latency: 500 * time.Millisecond, IgnoreCancel: true, Times: 1})
	if err := change("Integ-Pass-Late-1"); err == nil {
		t.Fatal("the latency did not time the client out")
	}
	if s.Password(integUser) != integPass {
		t.Fatal("a call held before handling was applied early")
	}
	deadline := time.Now().Add(5 * time.Second)
	for s.Password(integUser) != "Integ-Pass-Late-1" {
		if time.Now().After(deadline) {
			t.Fatal("with IgnoreCancel the abandoned call was never applied")
		}
		time.Sleep(10 * time.Millisecond)
	}

	s.InjectFault("soap.changeOwnPassword", Fault{LatencyAfter: time.Hour, Times: 1})
	if err := change("Integ-Pass-After-1"); err == nil {
		t.Fatal("an hour of latency after the call did not time the client out")
	}
	if s.Password(integUser) != "Integ-Pass-After-1" {
		t.Fatal("a call abandoned while its answer was held did not keep its change")
	}
	if got := s.HeldAnswers("soap.changeOwnPassword"); got != 1 {
		t.Fatalf("HeldAnswers = %d, want 1", got)
	}
	// A fault answer replaces the handler, so nothing is held.
	s.InjectFault("soap.login", Fault{Status: 500, Body: "<oops/>", LatencyAfter: time.Hour, Times: 1})
	if status, _ := soapLogin(t, s, "64.0", integUser, "x"); status != 500 {
		t.Fatalf("status %d, want the injected 500 at once", status)
	}
	if got := s.HeldAnswers("soap.login"); got != 0 {
		t.Fatalf("HeldAnswers(soap.login) = %d for a fault answer", got)
	}
}

// A REST call abandoned during Latency is cancelled like a SOAP one,
// although its body was not read when the caller hung up.
func TestFaultLatencyCancelsAbandonedRESTCall(t *testing.T) {
	s := NewTestServer(t, nil)
	tok := mustPasswordGrant(t, s, adminUser, adminPass+adminTok)
	s.InjectFault("rest.password", Fault{Latency: 300 * time.Millisecond, Times: 1})
	req, err := http.NewRequest(http.MethodPost, s.MyDomainURL()+"/services/data/v64.0/sobjects/User/"+s.UserID(integUser)+"/password",
		strings.NewReader(`{"NewPassword":"Integ-Pass-Never-1"}`))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+tok)
	req.Header.Set("Content-Type", "application/json")
	c := &http.Client{Timeout: 100 * time.Millisecond}
	if resp, err := c.Do(req); err == nil {
		resp.Body.Close()
		t.Fatal("the latency did not time the client out")
	}
	time.Sleep(600 * time.Millisecond)
	if s.Password(integUser) != integPass {
		t.Fatal("a REST call abandoned during Latency was applied")
	}
}
