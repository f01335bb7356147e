package salesforce

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"strings"
	"testing"

	"github.com/hashicorp/vault/sdk/logical"
	"golang.org/x/net/dns/dnsmessage"
)

// Issue 9, defect 5: webhooks may not reach loopback, private, link-local
// (cloud metadata), CGNAT, unspecified or multicast addresses unless
// config/rotation's webhook_allowed_networks lists them. Literal hosts are
// refused when written; every delivery is checked on the address it dials;
// callers learn only that the delivery failed, never whether a port was
// open or closed.
func TestTrust05WebhookRefusesPrivateAddresses(t *testing.T) {
	e := newRotEnv(t)
	e.addTrusted("trusted", nil)
	bad := []string{
		"https://127.0.0.1:8200/v1/sys/health", "https://127.1.2.3/x", "https://10.0.0.5/x", "https://172.16.3.4/x",
		"https://192.168.1.1/x", "https://169.254.169.254/latest/meta-data/", "https://100.64.0.1/x",
		"https://100.100.100.200/x", "https://0.0.0.0:8200/x", "https://224.0.0.1/x", "https://255.255.255.255/x",
		"https://192.0.0.192/x", "https://[::1]:8200/x", "https://[::]/x", "https://[fe80::1]/x", "https://[fd00:ec2::254]/x",
		"https://[::ffff:127.0.0.1]:8200/x", "https://[::ffff:a9fe:a9fe]/x", "https://[64:ff9b::a9fe:a9fe]/x", "https://[ff02::1]/x",
		"https://localhost:8200/x", "https://LOCALHOST./x", "https://vault.localhost/x",
		"https://metadata.google.internal/computeMetadata/v1/", "https://metadata.google.internal./x",
	}
	for _, u := range bad {
		for _, w := range []struct{ path, field string }{
			{"accounts/trusted", "pre_rotation_webhook"},
			{"accounts/trusted", "validation_webhook"},
			{"accounts/trusted", "webhook_url"},
			{"config/rotation", "webhook_url"},
		} {
			before := snapshotStorage(t, e.s)
			resp, err := request(t, e.b, e.s, logical.UpdateOperation, w.path, map[string]interface{}{w.field: u})
			msg := fmt.Sprint(respErr(resp, err))
			if statusOf(resp, err) != http.StatusBadRequest || !strings.Contains(msg, w.field) || !strings.Contains(msg, "webhook_allowed_networks") {
				t.Errorf("%s %s=%s: %d %s, want a 400 naming the field and webhook_allowed_networks", w.path, w.field, u, statusOf(resp, err), msg)
			}
			assertSameStorage(t, before, snapshotStorage(t, e.s))
		}
	}
	// Public addresses and names are not the policy's business at write time.
	for _, u := range []string{"https://8.8.8.8/x", "https://[2606:4700::1111]/x", "https://hooks.slack.com/services/T/B/x"} {
		mustWrite(t, e.b, e.s, "accounts/trusted", map[string]interface{}{"validation_webhook": u})
	}
	mustWrite(t, e.b, e.s, "accounts/trusted", map[string]interface{}{"validation_webhook": ""})

	// Deliveries: an internal receiver works once allowed...
	gate, gateURL := e.newWebhook(http.StatusOK)
	e.allowLoopbackWebhooks()
	mustWrite(t, e.b, e.s, "accounts/trusted", map[string]interface{}{"pre_rotation_webhook": gateURL + "/gate/sekrit-path-token"})
	e.mustRotate("trusted")
	if gate.count() != 1 {
		t.Fatalf("allowed loopback receiver got %d requests, want 1; the test proves nothing", gate.count())
	}
	// ...and is refused at dial time once the allow-list no longer covers
	// it (the stored URL was accepted while it did).
	mustWrite(t, e.b, e.s, "config/rotation", map[string]interface{}{"webhook_allowed_networks": ""})
	resp, err := e.rotate("trusted")
	refusedOpen := fmt.Sprint(respErr(resp, err))
	if statusOf(resp, err) != http.StatusConflict || gate.count() != 1 {
		t.Errorf("gate on a refused address: %d %s, receiver got %d requests; want 409 and none", statusOf(resp, err), refusedOpen, gate.count()-1)
	}
	if !strings.Contains(e.logs.String(), "127.0.0.1 is a loopback address") {
		t.Error("the server log does not say why the delivery was refused")
	}

	// A closed port and an open one give the same answer, allowed or not.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closedURL := "https://" + l.Addr().String() + "/gate/sekrit-path-token"
	l.Close()
	e.allowLoopbackWebhooks()
	mustWrite(t, e.b, e.s, "accounts/trusted", map[string]interface{}{"pre_rotation_webhook": closedURL})
	resp, err = e.rotate("trusted")
	allowedClosed := fmt.Sprint(respErr(resp, err))
	mustWrite(t, e.b, e.s, "config/rotation", map[string]interface{}{"webhook_allowed_networks": ""})
	resp, err = e.rotate("trusted")
	refusedClosed := fmt.Sprint(respErr(resp, err))
	if refusedOpen != refusedClosed || refusedOpen != allowedClosed {
		t.Errorf("errors tell ports apart:\nrefused, open:   %s\nrefused, closed: %s\nallowed, closed: %s", refusedOpen, refusedClosed, allowedClosed)
	}
	for _, msg := range []string{refusedOpen, allowedClosed} {
		if !strings.Contains(msg, "pre_rotation_webhook") || !strings.Contains(msg, "delivery failed") {
			t.Errorf("error %q does not say that the pre_rotation_webhook delivery failed", msg)
		}
	}

	// The validation webhook and the event webhook are held to it too.
	validate, validateURL := e.newWebhook(http.StatusOK)
	events, eventsURL := e.newWebhook(http.StatusOK)
	e.allowLoopbackWebhooks()
	mustWrite(t, e.b, e.s, "accounts/trusted", map[string]interface{}{"pre_rotation_webhook": "", "validation_webhook": validateURL, "webhook_url": eventsURL})
	mustWrite(t, e.b, e.s, "config/rotation", map[string]interface{}{"webhook_allowed_networks": ""})
	out := e.mustRotate("trusted")
	e.b.rot.wg.Wait()
	if validate.count() != 0 || events.count() != 0 {
		t.Errorf("refused receivers got requests: validation %d, events %d", validate.count(), events.count())
	}
	if w := strings.Join(out.Warnings, " "); !strings.Contains(w, "validation_webhook") || !strings.Contains(w, "delivery failed") {
		t.Errorf("warnings = %v, want the validation webhook's failed delivery", out.Warnings)
	}
	e.assertNoSecretsLogged("sekrit-path-token")
}

// Issue 9, defect 5: the address is checked where the connection is made,
// so a name that resolves to an allowed address when written and to an
// internal one when used (DNS rebinding) gets nothing. The test's resolver
// answers every name with 127.0.0.1, where the receiver listens (its
// certificate is for example.com).
func TestTrust05WebhookDialTimeRebinding(t *testing.T) {
	e := newRotEnv(t)
	e.b.rot.webhookResolver = fakeDNS(t, net.IPv4(127, 0, 0, 1))
	gate, gateURL := e.newWebhook(http.StatusOK)
	rebinding := strings.Replace(gateURL, "127.0.0.1", "example.com", 1) + "/gate"
	e.addTrusted("trusted", map[string]interface{}{"pre_rotation_webhook": rebinding})

	resp, err := e.rotate("trusted")
	if statusOf(resp, err) != http.StatusConflict || gate.count() != 0 {
		t.Errorf("a name resolving to 127.0.0.1: rotate %d %v, receiver got %d requests; want 409 and none", statusOf(resp, err), respErr(resp, err), gate.count())
	}
	// Allowed, the same name reaches the receiver: the check, not the
	// resolver, kept it away above.
	e.allowLoopbackWebhooks()
	e.mustRotate("trusted")
	if gate.count() != 1 {
		t.Errorf("allowed: receiver got %d requests, want 1", gate.count())
	}
}

// fakeDNS is a resolver whose DNS server answers every A query with ip.
func fakeDNS(t *testing.T, ip net.IP) *net.Resolver {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pc.Close() })
	go func() {
		buf := make([]byte, 1500)
		for {
			n, from, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			var p dnsmessage.Parser
			h, err := p.Start(buf[:n])
			if err != nil {
				continue
			}
			q, err := p.Question()
			if err != nil {
				continue
			}
			b := dnsmessage.NewBuilder(nil, dnsmessage.Header{ID: h.ID, Response: true, Authoritative: true})
			_ = b.StartQuestions()
			_ = b.Question(q)
			_ = b.StartAnswers()
			if q.Type == dnsmessage.TypeA {
				var a [4]byte
				copy(a[:], ip.To4())
				_ = b.AResource(dnsmessage.ResourceHeader{Name: q.Name, Class: dnsmessage.ClassINET, TTL: 1}, dnsmessage.AResource{A: a})
			}
			msg, err := b.Finish()
			if err == nil {
				_, _ = pc.WriteTo(msg, from)
			}
		}
	}()
	return &net.Resolver{
		PreferGo: true,
		Dial: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "udp", pc.LocalAddr().String())
		},
	}
}
