package salesforce

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/hashicorp/vault/sdk/logical"
)

// rotationEvent is the JSON body sent to webhooks. It never holds a secret.
type rotationEvent struct {
	Event    string    `json:"event"`
	Account  string    `json:"account"`
	Username string    `json:"username"`
	Version  int       `json:"version"`
	Time     time.Time `json:"time"`
	Outcome  string    `json:"outcome,omitempty"`
	Error    string    `json:"error,omitempty"`

	// Dual accounts: the user creds/<name> serves after this event (which
	// became active, on a switch) and why a switch waits.
	ActiveUser     string `json:"active_user,omitempty"`
	ActiveUsername string `json:"active_username,omitempty"`
	SwitchStatus   string `json:"switch_status,omitempty"`
	// What end_sessions_on_rotation ended after this rotation.
	SessionsEnded      *int `json:"sessions_ended,omitempty"`
	OAuthTokensRevoked *int `json:"oauth_tokens_revoked,omitempty"`
}

const (
	webhookSignatureHeader = "X-Signature"
	webhookAttempts        = 4
)

func (b *backend) newEvent(event, name string, acct *account, outcome string) *rotationEvent {
	ev := &rotationEvent{
		Event:    event,
		Account:  name,
		Username: acct.Username,
		Version:  acct.Version,
		Time:     b.now().UTC().Truncate(time.Second),
		Outcome:  outcome,
	}
	if acct.dual() {
		ev.ActiveUsername = acct.ActiveUsername
		ev.ActiveUser = acct.roleOf(acct.ActiveUsername)
		ev.SwitchStatus = acct.switchStatus()
	}
	if e := acct.endedNow; e != nil {
		ev.SessionsEnded, ev.OAuthTokensRevoked = &e.Sessions, &e.OAuthGrants
	}
	return ev
}

// signBody returns the hex HMAC-SHA256 of body keyed with secret.
func signBody(secret string, body []byte) string {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write(body)
	return hex.EncodeToString(m.Sum(nil))
}

// postEvent sends ev once, signed with config/rotation's webhook_secret,
// and returns the HTTP status. The URL's form is checked again, so one
// stored before allow_insecure_webhooks was turned off is not used over
// http; where it may connect is checked on the address dialled
// (webhook_policy.go). Without an HTTP answer the error is
// errWebhookDelivery whatever the cause; the log has the cause.
func (b *backend) postEvent(ctx context.Context, rawURL string, rcfg *rotationConfig, ev *rotationEvent) (int, error) {
	policy := rcfg.webhookPolicy()
	u, err := checkWebhookURLForm(rawURL, policy.allowInsecure)
	if err != nil {
		return 0, fmt.Errorf("webhook URL %s", err)
	}
	body, err := json.Marshal(ev)
	if err != nil {
		return 0, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, rawURL, bytes.NewReader(body))
	if err != nil {
		return 0, fmt.Errorf("building webhook request: %w", err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "vault-plugin-secrets-salesforce/"+Version)
	if rcfg.WebhookSecret != "" {
		req.Header.Set(webhookSignatureHeader, signBody(rcfg.WebhookSecret, body))
	}
	resp, err := b.webhookHTTPClient(policy).Do(req)
	if err != nil {
		// The URL's path and query may hold a secret: only its host is logged.
		cause := redactURLError(err)
		var refused *webhookRefusedError
		if errors.As(err, &refused) {
			b.logger.Warn("webhook refused: the receiver's address is not allowed", "account", ev.Account, "event", ev.Event, "host", u.Host, "reason", refused.Error())
		} else {
			b.logger.Warn("webhook delivery failed", "account", ev.Account, "event", ev.Event, "host", u.Host, "error", cause)
		}
		return 0, errWebhookDelivery
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<16))
	resp.Body.Close()
	return resp.StatusCode, nil
}

// redactURLError drops the URL (which may carry a token in its query) from
// transport errors.
func redactURLError(err error) error {
	type unwrapper interface{ Unwrap() error }
	if u, ok := err.(unwrapper); ok && u.Unwrap() != nil {
		return u.Unwrap()
	}
	return err
}

// notify tells the integrations about a rotation or a failure: a Vault
// event where the server supports events, and the webhook (account's, else
// the mount's) in the background with retries.
func (b *backend) notify(ctx context.Context, name string, acct *account, rcfg *rotationConfig, outcome string, failure error) {
	eventType := "salesforce/rotate"
	if failure != nil {
		eventType = "salesforce/rotate-fail"
	}
	if b.eventsSupported(ctx) {
		metadata := []string{
			logical.EventMetadataPath, "rotate/" + name,
			logical.EventMetadataDataPath, "creds/" + name,
			logical.EventMetadataModified, strconv.FormatBool(failure == nil),
			"account", name,
			"version", strconv.Itoa(acct.Version),
			"outcome", outcome,
		}
		if acct.dual() {
			metadata = append(metadata, "active_username", acct.ActiveUsername)
		}
		err := logical.SendEvent(ctx, b, eventType, metadata...)
		if err != nil {
			b.logger.Debug("vault event not sent", "error", err)
		}
	}

	url := acct.WebhookURL
	if url == "" {
		url = rcfg.WebhookURL
	}
	if url == "" {
		return
	}
	ev := b.newEvent("rotate", name, acct, outcome)
	if outcome == outcomeSwitched {
		ev.Event = "switch"
	}
	if failure != nil {
		ev.Event = "rotate-fail"
		ev.Error = failure.Error()
	}
	b.rot.wg.Add(1)
	go func() {
		defer b.rot.wg.Done()
		b.deliverWebhook(b.rot.bgCtx, url, rcfg, ev)
	}()
}

// deliverWebhook posts ev until a 2xx answer, with exponential backoff.
func (b *backend) deliverWebhook(ctx context.Context, url string, rcfg *rotationConfig, ev *rotationEvent) {
	if err := validateWebhookURL(url, rcfg.webhookPolicy()); err != nil {
		b.logger.Warn("webhook not sent: the URL is no longer allowed", "account", ev.Account, "error", err)
		return
	}
	delay := b.rot.webhookRetryDelay
	for attempt := 1; attempt <= webhookAttempts; attempt++ {
		reqCtx, cancel := context.WithTimeout(ctx, 15*time.Second)
		status, err := b.postEvent(reqCtx, url, rcfg, ev)
		cancel()
		if err == nil && status >= 200 && status < 300 {
			return
		}
		if err == nil {
			// Failures without an answer were logged by postEvent.
			b.logger.Warn("webhook not accepted", "account", ev.Account, "attempt", attempt, "status", status)
		}
		if attempt == webhookAttempts {
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(rotationJitter(delay)):
		}
		delay *= 2
	}
}

// minEventsVersion is the first Vault release with events generally
// available. Older servers (1.13 to 1.15 without the events experiment)
// crash on a plugin's SendEvent (a nil event sender behind gRPC), so the
// engine sends none there.
var minEventsVersion = [2]int{1, 16}

// eventsSupported reports, once per backend, whether the server is recent
// enough to receive plugin events.
func (b *backend) eventsSupported(ctx context.Context) bool {
	b.rot.eventsOnce.Do(func() {
		sys := b.System()
		if sys == nil {
			return
		}
		v, err := sys.VaultVersion(ctx)
		if err != nil {
			return
		}
		b.rot.eventsOK = versionAtLeast(v, minEventsVersion)
		if !b.rot.eventsOK {
			b.logger.Debug("Vault events are not sent to this server version", "vault_version", v)
		}
	})
	return b.rot.eventsOK
}

// versionAtLeast compares the major.minor of a Vault version string such
// as "1.16.2+ent" or "v1.13.1".
func versionAtLeast(v string, min [2]int) bool {
	v = strings.TrimPrefix(strings.TrimSpace(v), "v")
	parts := strings.SplitN(v, ".", 3)
	if len(parts) < 2 {
		return false
	}
	major, err1 := strconv.Atoi(parts[0])
	minor, err2 := strconv.Atoi(strings.TrimRightFunc(parts[1], func(r rune) bool { return r < '0' || r > '9' }))
	if err1 != nil || err2 != nil {
		return false
	}
	return major > min[0] || major == min[0] && minor >= min[1]
}

// showWebhookURL puts into a read what it may show of a stored webhook
// URL: <field>_set and <field>_host (host and port). The URL itself is
// write-only: receivers such as Slack's carry their secret in the path,
// others in the query. Nothing is added for an unset URL.
func showWebhookURL(data map[string]interface{}, field, raw string) {
	if raw == "" {
		return
	}
	data[field+"_set"] = true
	host := ""
	if u, err := url.Parse(raw); err == nil {
		host = u.Host
	}
	data[field+"_host"] = host
}

// webhookHTTPClient is the client of one webhook delivery, with its own
// dialer and no connection kept for later deliveries (the next one may
// have another policy). The dialer checks every address it connects to
// against the policy. No proxy is used: through one, the engine could not
// see where the request goes. It does not follow redirects: the event (and
// the signature) goes only to the URL the operator configured, and a 3xx
// answer counts as not accepted.
func (b *backend) webhookHTTPClient(policy webhookPolicy) *http.Client {
	dialer := &net.Dialer{
		Timeout:  10 * time.Second,
		Resolver: b.rot.webhookResolver,
		Control:  policy.checkDial,
	}
	return &http.Client{
		Timeout: 15 * time.Second,
		Transport: &http.Transport{
			Proxy:               nil,
			DialContext:         dialer.DialContext,
			TLSClientConfig:     &tls.Config{MinVersion: tls.VersionTLS12, RootCAs: b.rot.webhookRootCAs},
			TLSHandshakeTimeout: 10 * time.Second,
			DisableKeepAlives:   true,
			ForceAttemptHTTP2:   true,
		},
		CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse
		},
	}
}
