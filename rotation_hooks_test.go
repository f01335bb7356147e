package salesforce

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/vault/sdk/logical"

	"github.com/vault-salesforce/vault-plugin-secrets-salesforce/emulator"
)

// newWebhook starts an https receiver, trusted by the env's backend,
// answering status and recording requests.
func (e *rotEnv) newWebhook(status int) (*rotWebhookRecorder, string) {
	t := e.t
	t.Helper()
	rec := &rotWebhookRecorder{status: status}
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		rec.mu.Lock()
		rec.bodies = append(rec.bodies, body)
		rec.sigs = append(rec.sigs, r.Header.Get(webhookSignatureHeader))
		st, loc := rec.status, rec.location
		if len(rec.bodies) <= rec.failFirst {
			st = http.StatusInternalServerError
		}
		rec.mu.Unlock()
		if loc != "" {
			w.Header().Set("Location", loc)
		}
		w.WriteHeader(st)
	}))
	t.Cleanup(srv.Close)
	e.webhookCAs.AddCert(srv.Certificate())
	return rec, srv.URL
}

// allowLoopbackWebhooks lets webhooks reach the test's receivers, which
// listen on loopback, as an operator with an internal receiver would.
func (e *rotEnv) allowLoopbackWebhooks() {
	e.t.Helper()
	mustWrite(e.t, e.b, e.s, "config/rotation", map[string]interface{}{"webhook_allowed_networks": "127.0.0.0/8,::1/128"})
}

// setFailFirst makes the first n deliveries fail with 500, whenever they
// come: a test that flips the status after seeing failures races the
// next retry.
func (w *rotWebhookRecorder) setFailFirst(n int) {
	w.mu.Lock()
	w.failFirst = n
	w.mu.Unlock()
}

func (w *rotWebhookRecorder) setStatus(s int) {
	w.mu.Lock()
	w.status = s
	w.mu.Unlock()
}

func (w *rotWebhookRecorder) last() (map[string]interface{}, []byte, string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.bodies) == 0 {
		return nil, nil, ""
	}
	body := w.bodies[len(w.bodies)-1]
	var m map[string]interface{}
	_ = json.Unmarshal(body, &m)
	return m, body, w.sigs[len(w.sigs)-1]
}

// A rotation makes two logins with the account's credential (check before,
// new password after) and reuses the sessions: the self method changes the
// password and the validation query runs without logging in again.
func TestHooks_SessionReuse(t *testing.T) {
	e := newRotEnv(t)
	mustWrite(t, e.b, e.s, "config/rotation", map[string]interface{}{"min_password_lifetime": false})
	e.addTrusted("trusted", map[string]interface{}{"rotation_method": "self", "validation_query": "SELECT Id FROM User LIMIT 1"})
	e.srv.ResetCalls()
	resp := e.mustRotate("trusted")
	if len(resp.Warnings) != 0 {
		t.Errorf("warnings: %v", resp.Warnings)
	}
	if n := e.srv.Calls("soap.login"); n != 2 {
		t.Errorf("logins = %d, want 2", n)
	}
	// One validation query as the account, and one by the admin before
	// the change (LastPasswordChangeDate, for settling a WAL entry).
	if n := e.srv.Calls("rest.query"); n != 2 {
		t.Errorf("queries = %d, want 2", n)
	}
}

// The hooks share a per-account login budget: when it is spent, checks
// after the change become warnings and the next rotation is postponed
// without touching Salesforce; an hour later it works again.
func TestHooks_LoginBudget(t *testing.T) {
	e := newRotEnv(t)
	mustWrite(t, e.b, e.s, "config/rotation", map[string]interface{}{"login_budget_per_hour": 3})
	e.addTrusted("trusted", nil)
	e.srv.ResetCalls()

	e.mustRotate("trusted") // 2 logins
	resp := e.mustRotate("trusted")
	if n := e.srv.Calls("soap.login"); n != 3 {
		t.Fatalf("logins = %d, want 3 (the budget)", n)
	}
	if !strings.Contains(strings.Join(resp.Warnings, " "), "login budget") {
		t.Errorf("warnings = %v, want the spent budget named", resp.Warnings)
	}
	if e.version("trusted") != 2 {
		t.Fatal("the second rotation did not happen")
	}

	resp2, err := e.rotate("trusted")
	if statusOf(resp2, err) != http.StatusConflict || !strings.Contains(respErr(resp2, err).Error(), "login budget") {
		t.Fatalf("third rotation: %d %v, want 409 naming the budget", statusOf(resp2, err), respErr(resp2, err))
	}
	if n := e.srv.Calls("soap.login"); n != 3 {
		t.Errorf("logins = %d after the budget was spent, want 3", n)
	}
	if e.version("trusted") != 2 || e.account("trusted")["consecutive_failures"] != 0 {
		t.Error("a postponed rotation changed the password or counted as a failure")
	}

	e.advance(time.Hour + time.Second)
	e.mustRotate("trusted")
	e.assertServedCredentialLogsIn("trusted")
}

// validation_query runs with the new credential; a failing query is
// reported without undoing the (already stored) rotation.
func TestHooks_ValidationQuery(t *testing.T) {
	e := newRotEnv(t)
	e.addTrusted("trusted", map[string]interface{}{"validation_query": "SELECT Id FROM Widget__c"})
	resp := e.mustRotate("trusted")
	if !strings.Contains(strings.Join(resp.Warnings, " "), "validation_query failed") {
		t.Errorf("warnings = %v, want the failed validation query", resp.Warnings)
	}
	if e.version("trusted") != 1 {
		t.Error("version not bumped")
	}
	e.assertServedCredentialLogsIn("trusted")

	resp2, err := request(t, e.b, e.s, logical.UpdateOperation, "accounts/trusted", map[string]interface{}{"validation_query": "DELETE FROM User"})
	if respErr(resp2, err) == nil {
		t.Error("a non-SELECT validation_query was accepted")
	}
}

// For a required-token account the query waits for the emailed token and
// runs when it is written.
func TestHooks_ValidationQueryAfterTokenReentry(t *testing.T) {
	e := newRotEnv(t)
	e.addIntegration("etl", map[string]interface{}{"validation_query": "SELECT Id FROM User LIMIT 1"})
	resp := e.mustRotate("etl")
	if !strings.Contains(strings.Join(resp.Warnings, " "), "security-token") {
		t.Errorf("warnings = %v, want the query deferred to token re-entry", resp.Warnings)
	}
	e.srv.ResetCalls()
	out := mustWrite(t, e.b, e.s, "accounts/etl/security-token", map[string]interface{}{"security_token": e.srv.LatestSecurityToken(rotIntegUser)})
	if out.Data["validation_query"] != "ok" || e.srv.Calls("rest.query") != 1 {
		t.Errorf("re-entry: %v, queries %d", out.Data, e.srv.Calls("rest.query"))
	}
}

// A pre_rotation_webhook that says no postpones; one that says yes lets
// the rotation proceed. A validation webhook failure is a warning.
func TestHooks_Webhooks(t *testing.T) {
	e := newRotEnv(t)
	e.allowLoopbackWebhooks()
	mustWrite(t, e.b, e.s, "config/rotation", map[string]interface{}{"webhook_secret": "hook-secret"})
	gate, gateURL := e.newWebhook(http.StatusServiceUnavailable)
	validate, validateURL := e.newWebhook(http.StatusInternalServerError)
	e.addTrusted("trusted", map[string]interface{}{"pre_rotation_webhook": gateURL, "validation_webhook": validateURL})

	resp, err := e.rotate("trusted")
	if statusOf(resp, err) != http.StatusConflict || !strings.Contains(respErr(resp, err).Error(), "postpon") {
		t.Fatalf("gate said no: %d %v", statusOf(resp, err), respErr(resp, err))
	}
	if e.srv.Password(rotTrustedUser) != rotTrustedPass || e.account("trusted")["consecutive_failures"] != 0 {
		t.Fatal("a postponed rotation changed something")
	}
	ev, body, sig := gate.last()
	if ev["event"] != "pre-rotation" || ev["account"] != "trusted" || sig != signBody("hook-secret", body) {
		t.Errorf("gate request: %s sig=%s", body, sig)
	}

	gate.setStatus(http.StatusOK)
	resp2 := e.mustRotate("trusted")
	if !strings.Contains(strings.Join(resp2.Warnings, " "), "validation_webhook") {
		t.Errorf("warnings = %v, want the failed validation webhook", resp2.Warnings)
	}
	if validate.count() != 1 {
		t.Errorf("validation webhook calls = %d", validate.count())
	}
	newPassword := e.creds("trusted")["password"].(string)
	for _, rec := range []*rotWebhookRecorder{gate, validate} {
		rec.mu.Lock()
		for _, b := range rec.bodies {
			assertNoSecrets(t, "webhook body", string(b), newPassword, rotTrustedPass, "hook-secret")
		}
		rec.mu.Unlock()
	}
}

// unlock_after_rotation unlocks a user that integrations holding the old
// password locked out.
func TestHooks_Unlock(t *testing.T) {
	e := newRotEnv(t)
	e.addTrusted("trusted", map[string]interface{}{"unlock_after_rotation": true})
	acct, err := readAccount(context.Background(), e.s, "trusted")
	if err != nil {
		t.Fatal(err)
	}
	e.srv.SetUserState(rotTrustedUser, func(u *emulator.User) { u.IsPasswordLocked = true })
	client, cfg, err := e.b.getClient(context.Background(), e.s)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := client.SOAPLogin(context.Background(), rotTrustedUser, rotTrustedPass); err == nil {
		t.Fatal("the locked user could log in; the test proves nothing")
	}
	rcfg, _ := readRotationConfig(context.Background(), e.s)
	run := &rotationRun{b: e.b, storage: e.s, name: "trusted", acct: acct, cfg: cfg, rcfg: rcfg, client: client}
	if !(unlockHook{}).applies(run) {
		t.Fatal("hook does not apply")
	}
	if err := (unlockHook{}).run(context.Background(), run); err != nil {
		t.Fatal(err)
	}
	e.assertServedCredentialLogsIn("trusted")
}
