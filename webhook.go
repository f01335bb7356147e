package salesforce

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"sort"
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
}

const (
	webhookSignatureHeader = "X-Signature"
	webhookAttempts        = 4
)

func (b *backend) newEvent(event, name string, acct *account, outcome string) *rotationEvent {
	return &rotationEvent{
		Event:    event,
		Account:  name,
		Username: acct.Username,
		Version:  acct.Version,
		Time:     b.now().UTC().Truncate(time.Second),
		Outcome:  outcome,
	}
}

// signBody returns the hex HMAC-SHA256 of body keyed with secret.
func signBody(secret string, body []byte) string {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write(body)
	return hex.EncodeToString(m.Sum(nil))
}

// postEvent sends ev once and returns the HTTP status. The URL is checked
// again, so one stored before allow_insecure_webhooks was turned off is
// not used over http.
func (b *backend) postEvent(ctx context.Context, url, secret string, allowInsecure bool, ev *rotationEvent) (int, error) {
	if err := validateWebhookURL(url, allowInsecure); err != nil {
		return 0, fmt.Errorf("webhook URL %s", err)
	}
	body, err := json.Marshal(ev)
	if err != nil {
		return 0, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return 0, fmt.Errorf("building webhook request: %w", err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "vault-plugin-secrets-salesforce/"+Version)
	if secret != "" {
		req.Header.Set(webhookSignatureHeader, signBody(secret, body))
	}
	resp, err := b.rot.httpClient.Do(req)
	if err != nil {
		return 0, fmt.Errorf("webhook request failed: %w", redactURLError(err))
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
		err := logical.SendEvent(ctx, b, eventType,
			logical.EventMetadataPath, "rotate/"+name,
			logical.EventMetadataDataPath, "creds/"+name,
			logical.EventMetadataModified, strconv.FormatBool(failure == nil),
			"account", name,
			"version", strconv.Itoa(acct.Version),
			"outcome", outcome,
		)
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
	if failure != nil {
		ev.Event = "rotate-fail"
		ev.Error = failure.Error()
	}
	b.rot.wg.Add(1)
	go func() {
		defer b.rot.wg.Done()
		b.deliverWebhook(b.rot.bgCtx, url, rcfg.WebhookSecret, rcfg.AllowInsecureWebhooks, ev)
	}()
}

// deliverWebhook posts ev until a 2xx answer, with exponential backoff.
func (b *backend) deliverWebhook(ctx context.Context, url, secret string, allowInsecure bool, ev *rotationEvent) {
	if err := validateWebhookURL(url, allowInsecure); err != nil {
		b.logger.Warn("webhook not sent: the URL is no longer allowed", "account", ev.Account, "error", err)
		return
	}
	delay := b.rot.webhookRetryDelay
	for attempt := 1; attempt <= webhookAttempts; attempt++ {
		reqCtx, cancel := context.WithTimeout(ctx, 15*time.Second)
		status, err := b.postEvent(reqCtx, url, secret, allowInsecure, ev)
		cancel()
		if err == nil && status >= 200 && status < 300 {
			return
		}
		b.logger.Warn("webhook delivery failed", "account", ev.Account, "attempt", attempt, "status", status, "error", err)
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

// validateWebhookURL accepts absolute https URLs (http too when
// allowInsecure) without user:password, which would be sent with every
// event and shown in reads.
func validateWebhookURL(raw string, allowInsecure bool) error {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" || (u.Scheme != "https" && u.Scheme != "http") {
		return fmt.Errorf("must be an absolute https URL")
	}
	if u.User != nil {
		return fmt.Errorf("must not contain a user name or password; receivers can check events with the webhook_secret signature")
	}
	if u.Scheme == "http" && !allowInsecure {
		return fmt.Errorf("must use https (events would travel unencrypted); set allow_insecure_webhooks=true in config/rotation to allow http")
	}
	return nil
}

// redactWebhookURL shows a webhook URL in reads without the values of its
// query string, which often carry an access token.
func redactWebhookURL(raw string) string {
	if raw == "" {
		return ""
	}
	u, err := url.Parse(raw)
	if err != nil {
		return "(unreadable URL)"
	}
	u.User = nil
	u.Fragment, u.RawFragment = "", ""
	if u.RawQuery != "" {
		q := u.Query()
		keys := make([]string, 0, len(q))
		for k := range q {
			keys = append(keys, url.QueryEscape(k)+"=redacted")
		}
		sort.Strings(keys)
		u.RawQuery = strings.Join(keys, "&")
	}
	return u.String()
}

// newWebhookHTTPClient is the client of webhooks. It does not follow
// redirects: the event (and the signature) goes only to the URL the
// operator configured, and a 3xx answer counts as not accepted.
func newWebhookHTTPClient() *http.Client {
	return &http.Client{
		Timeout: 15 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse
		},
	}
}
