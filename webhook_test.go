package salesforce

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/vault/sdk/logical"
	"github.com/vault-salesforce/vault-plugin-secrets-salesforce/emulator"
)

// rotWaitFor polls cond until it holds or a generous deadline passes; the
// webhook is delivered in the background.
func rotWaitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("gave up waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// Every rotation and every failure sends a signed JSON event without
// secrets to the webhook, retried until it is accepted, and a Vault event.
func TestWebhook_SignedEvents(t *testing.T) {
	e := newRotEnv(t)
	events := logical.NewMockEventSender()
	e.b.System().(*testSystemView).VersionString = "1.16.0"
	if err := e.b.Backend.Setup(context.Background(), &logical.BackendConfig{
		Logger: e.b.Logger(), System: e.b.System(), EventsSender: events,
	}); err != nil {
		t.Fatal(err)
	}
	rec, url := e.newWebhook(http.StatusInternalServerError)
	mustWrite(t, e.b, e.s, "config/rotation", map[string]interface{}{"webhook_url": url, "webhook_secret": "s3cret-key"})
	e.addTrusted("trusted", nil)

	e.mustRotate("trusted")
	// Two failed deliveries, then the receiver accepts.
	rotWaitFor(t, "two delivery attempts", func() bool { return rec.count() >= 2 })
	rec.setStatus(http.StatusNoContent)
	rotWaitFor(t, "the accepted delivery", func() bool { return rec.count() >= 3 })
	e.b.rot.wg.Wait()
	if n := rec.count(); n != 3 {
		t.Errorf("deliveries = %d, want 3 (stop after success)", n)
	}
	ev, body, sig := rec.last()
	if sig != signBody("s3cret-key", body) {
		t.Errorf("X-Signature %q does not match HMAC-SHA256 of the body", sig)
	}
	if ev["event"] != "rotate" || ev["account"] != "trusted" || ev["username"] != rotTrustedUser ||
		ev["version"] != float64(1) || ev["outcome"] != outcomeRotated || ev["time"] == "" {
		t.Errorf("event = %s", body)
	}
	newPassword := e.creds("trusted")["password"].(string)
	assertNoSecrets(t, "webhook body", string(body), newPassword, rotTrustedPass, "s3cret-key")

	// A failure is announced too.
	e.srv.SetOrg(func(o *emulator.Org) { o.PasswordPolicy.MinLength = 60 })
	_, _ = e.rotate("trusted")
	rotWaitFor(t, "the failure event", func() bool { return rec.count() >= 4 })
	ev, body, sig = rec.last()
	if ev["event"] != "rotate-fail" || ev["outcome"] != outcomeFailed || ev["error"] == "" || sig != signBody("s3cret-key", body) {
		t.Errorf("failure event = %s", body)
	}

	events.Lock()
	defer events.Unlock()
	var types []string
	for _, ev := range events.Events {
		types = append(types, string(ev.Type))
	}
	if len(types) != 2 || types[0] != "salesforce/rotate" || types[1] != "salesforce/rotate-fail" {
		t.Errorf("vault events = %v", types)
	}
}

// A per-account webhook_url overrides the mount's.
func TestWebhook_AccountURL(t *testing.T) {
	e := newRotEnv(t)
	mount, mountURL := e.newWebhook(http.StatusOK)
	own, ownURL := e.newWebhook(http.StatusOK)
	mustWrite(t, e.b, e.s, "config/rotation", map[string]interface{}{"webhook_url": mountURL})
	e.addTrusted("trusted", map[string]interface{}{"webhook_url": ownURL})
	e.mustRotate("trusted")
	e.b.rot.wg.Wait()
	if own.count() != 1 || mount.count() != 0 {
		t.Errorf("account hook %d, mount hook %d; want 1, 0", own.count(), mount.count())
	}
	_, _, sig := own.last()
	if sig != "" {
		t.Errorf("signed without a secret: %q", sig)
	}
}

// Vault before 1.16 crashes on plugin events; none are sent there.
func TestWebhook_NoVaultEventsOnOldServers(t *testing.T) {
	for v, want := range map[string]bool{"1.13.1": false, "v1.15.6": false, "1.16.0": true, "1.21.3+ent": true, "2.0.0": true, "": false, "dev": false} {
		if got := versionAtLeast(v, minEventsVersion); got != want {
			t.Errorf("versionAtLeast(%q) = %v, want %v", v, got, want)
		}
	}
	e := newRotEnv(t)
	events := logical.NewMockEventSender()
	e.b.System().(*testSystemView).VersionString = "1.13.1"
	if err := e.b.Backend.Setup(context.Background(), &logical.BackendConfig{
		Logger: e.b.Logger(), System: e.b.System(), EventsSender: events,
	}); err != nil {
		t.Fatal(err)
	}
	e.addTrusted("trusted", nil)
	e.mustRotate("trusted")
	events.Lock()
	defer events.Unlock()
	if len(events.Events) != 0 {
		t.Errorf("%d events sent to a 1.13 server", len(events.Events))
	}
}

// Webhook URLs: https only unless allow_insecure_webhooks, never
// user:password; redirects are not followed (the event and its signature
// go only where the operator said); reads hide the query string, which
// often carries a token.
func TestWebhook_URLRules(t *testing.T) {
	e := newRotEnv(t)
	for _, u := range []string{"https://user:pass@hooks.example.com/x", "http://hooks.example.com/x", "ftp://hooks.example.com", "/relative"} {
		resp, err := request(t, e.b, e.s, logical.UpdateOperation, "config/rotation", map[string]interface{}{"webhook_url": u})
		if respErr(resp, err) == nil {
			t.Errorf("config/rotation webhook_url %q accepted", u)
		}
		resp, err = request(t, e.b, e.s, logical.UpdateOperation, "accounts/x", map[string]interface{}{
			"username": rotTrustedUser, "password": rotTrustedPass, "validation_webhook": u,
		})
		if respErr(resp, err) == nil {
			t.Errorf("accounts validation_webhook %q accepted", u)
		}
		assertNoSecrets(t, "error", respErr(resp, err).Error(), "pass@")
	}
	mustWrite(t, e.b, e.s, "config/rotation", map[string]interface{}{"allow_insecure_webhooks": true, "webhook_url": "http://127.0.0.1:9/x"})
	if resp, err := request(t, e.b, e.s, logical.UpdateOperation, "config/rotation", map[string]interface{}{"webhook_url": "http://u:p@127.0.0.1:9/x"}); respErr(resp, err) == nil {
		t.Error("user:password accepted with allow_insecure_webhooks")
	}
	mustWrite(t, e.b, e.s, "config/rotation", map[string]interface{}{"allow_insecure_webhooks": false, "webhook_url": ""})

	// Reads redact the query.
	target, targetURL := e.newWebhook(http.StatusOK)
	mustWrite(t, e.b, e.s, "config/rotation", map[string]interface{}{"webhook_url": targetURL + "/hook?token=sekrit-query-token&x=1"})
	if got := mustRead(t, e.b, e.s, "config/rotation")["webhook_url"]; got != targetURL+"/hook?token=redacted&x=redacted" {
		t.Errorf("config/rotation webhook_url read = %v", got)
	}
	e.addTrusted("trusted", map[string]interface{}{"pre_rotation_webhook": targetURL + "/gate?key=sekrit-query-token"})
	acct := e.account("trusted")
	if acct["pre_rotation_webhook"] != targetURL+"/gate?key=redacted" {
		t.Errorf("accounts pre_rotation_webhook read = %v", acct["pre_rotation_webhook"])
	}
	assertNoSecrets(t, "account read", fmt.Sprint(acct), "sekrit-query-token")

	// A redirecting receiver: not followed, the gate counts as "no".
	redirector, redirectURL := e.newWebhook(http.StatusFound)
	redirector.location = targetURL + "/elsewhere"
	mustWrite(t, e.b, e.s, "accounts/trusted", map[string]interface{}{"pre_rotation_webhook": redirectURL})
	e.b.rot.wg.Wait()
	before := target.count()
	resp, err := e.rotate("trusted")
	if statusOf(resp, err) != http.StatusConflict || !strings.Contains(respErr(resp, err).Error(), "302") {
		t.Errorf("gate redirected: %d %v, want postponed naming the 302", statusOf(resp, err), respErr(resp, err))
	}
	e.b.rot.wg.Wait()
	if redirector.count() != 1 || target.count() != before {
		t.Errorf("redirect followed: redirector %d, target %d (was %d)", redirector.count(), target.count(), before)
	}
	e.assertNoSecretsLogged("sekrit-query-token")
}
