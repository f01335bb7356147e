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
	e.allowLoopbackWebhooks()
	events := logical.NewMockEventSender()
	e.b.System().(*testSystemView).VersionString = "1.16.0"
	if err := e.b.Backend.Setup(context.Background(), &logical.BackendConfig{
		Logger: e.b.Logger(), System: e.b.System(), EventsSender: events,
	}); err != nil {
		t.Fatal(err)
	}
	rec, url := e.newWebhook(http.StatusNoContent)
	// Two failed deliveries, then the receiver accepts.
	rec.setFailFirst(2)
	mustWrite(t, e.b, e.s, "config/rotation", map[string]interface{}{"webhook_url": url, "webhook_secret": "s3cret-key"})
	e.addTrusted("trusted", nil)

	e.mustRotate("trusted")
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
	e.allowLoopbackWebhooks()
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
// go only where the operator said); reads show only the host, never the
// query string, which often carries a token.
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
	e.allowLoopbackWebhooks()
	mustWrite(t, e.b, e.s, "config/rotation", map[string]interface{}{"allow_insecure_webhooks": true, "webhook_url": "http://127.0.0.1:9/x"})
	if resp, err := request(t, e.b, e.s, logical.UpdateOperation, "config/rotation", map[string]interface{}{"webhook_url": "http://u:p@127.0.0.1:9/x"}); respErr(resp, err) == nil {
		t.Error("user:password accepted with allow_insecure_webhooks")
	}
	mustWrite(t, e.b, e.s, "config/rotation", map[string]interface{}{"allow_insecure_webhooks": false, "webhook_url": ""})

	// Reads show only the host (issue 9, defect 14: the URLs are
	// write-only; TestTrust14WebhookURLsWriteOnly has the details).
	target, targetURL := e.newWebhook(http.StatusOK)
	targetHost := strings.TrimPrefix(targetURL, "https://")
	mustWrite(t, e.b, e.s, "config/rotation", map[string]interface{}{"webhook_url": targetURL + "/hook?token=sekrit-query-token&x=1"})
	if got := mustRead(t, e.b, e.s, "config/rotation")["webhook_url_host"]; got != targetHost {
		t.Errorf("config/rotation webhook_url_host read = %v, want %s", got, targetHost)
	}
	e.addTrusted("trusted", map[string]interface{}{"pre_rotation_webhook": targetURL + "/gate?key=sekrit-query-token"})
	acct := e.account("trusted")
	if acct["pre_rotation_webhook_host"] != targetHost {
		t.Errorf("accounts pre_rotation_webhook_host read = %v, want %s", acct["pre_rotation_webhook_host"], targetHost)
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

// Issue 9, defect 14: webhook URLs can carry their secret in the path
// (Slack's https://hooks.slack.com/services/T…/B…/<secret>) or the query,
// so reads never show them: accounts/<name> and config/rotation show the
// host and <field>_set=true, nothing of the path or query.
func TestTrust14WebhookURLsWriteOnly(t *testing.T) {
	e := newRotEnv(t)
	const secret = "sekritPathToken123"
	hooks := map[string]string{
		"pre_rotation_webhook": "https://hooks.slack.com/services/T000/B000/" + secret,
		"validation_webhook":   "https://validate.example.com:8443/v/" + secret + "?key=" + secret,
		"webhook_url":          "https://events.example.com/" + secret,
	}
	extra := map[string]interface{}{}
	for k, v := range hooks {
		extra[k] = v
	}
	e.addTrusted("trusted", extra)
	mustWrite(t, e.b, e.s, "config/rotation", map[string]interface{}{"webhook_url": "https://mount.example.com/services/" + secret})

	acct := e.account("trusted")
	wantHost := map[string]string{"pre_rotation_webhook": "hooks.slack.com", "validation_webhook": "validate.example.com:8443", "webhook_url": "events.example.com"}
	for field, host := range wantHost {
		if acct[field+"_set"] != true || acct[field+"_host"] != host {
			t.Errorf("accounts read: %s_set=%v %s_host=%v, want true and %s", field, acct[field+"_set"], field, acct[field+"_host"], host)
		}
		if v, ok := acct[field]; ok {
			t.Errorf("accounts read shows %s = %v", field, v)
		}
	}
	assertNoSecrets(t, "accounts read", fmt.Sprint(acct), secret, "/services/", "/v/")

	rc := mustRead(t, e.b, e.s, "config/rotation")
	if rc["webhook_url_set"] != true || rc["webhook_url_host"] != "mount.example.com" {
		t.Errorf("config/rotation read: webhook_url_set=%v webhook_url_host=%v", rc["webhook_url_set"], rc["webhook_url_host"])
	}
	if v, ok := rc["webhook_url"]; ok {
		t.Errorf("config/rotation read shows webhook_url = %v", v)
	}
	assertNoSecrets(t, "config/rotation read", fmt.Sprint(rc), secret, "/services/")

	// Removing a URL removes it from reads.
	mustWrite(t, e.b, e.s, "accounts/trusted", map[string]interface{}{"webhook_url": ""})
	mustWrite(t, e.b, e.s, "config/rotation", map[string]interface{}{"webhook_url": ""})
	if acct := e.account("trusted"); acct["webhook_url_set"] != nil || acct["webhook_url_host"] != nil {
		t.Errorf("accounts read after removing webhook_url: %v %v", acct["webhook_url_set"], acct["webhook_url_host"])
	}
	if rc := mustRead(t, e.b, e.s, "config/rotation"); rc["webhook_url_set"] != false || rc["webhook_url_host"] != nil {
		t.Errorf("config/rotation read after removing webhook_url: %v %v", rc["webhook_url_set"], rc["webhook_url_host"])
	}
}
