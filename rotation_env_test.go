package salesforce

import (
	"context"
	"crypto/x509"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/vault/sdk/logical"
	"github.com/vault-salesforce/vault-plugin-secrets-salesforce/emulator"

	"github.com/vault-salesforce/vault-plugin-secrets-salesforce/sfapi"
)

// Users of the emulator's demo org.
const (
	rotIntegUser     = "integration@acme.demo"
	rotIntegPassword = "Integ-Pass-1234"
	rotIntegToken    = "INTEGTOKEN00000000000000000"
	rotTrustedUser   = "trusted@acme.demo"
	rotTrustedPass   = "Trusted-Pass-1234"
)

// rotEnv is a backend configured against an in-process emulated org.
type rotEnv struct {
	t    *testing.T
	b    *backend
	s    logical.Storage
	srv  *emulator.Server
	logs *logBuffer
	// webhookCAs holds the certificates of the test's webhook receivers,
	// which the backend trusts (webhooks must use https).
	webhookCAs *x509.CertPool

	clock fakeClock
	// clientWrap, when set, wraps the client of every backend of the env.
	clientWrap func(Client) Client
}

func (e *rotEnv) now() time.Time { return e.clock.Now() }

// advance moves the backend's clock (not the org's).
func (e *rotEnv) advance(d time.Duration) { e.clock.Advance(d) }

func (e *rotEnv) setClock(t time.Time) { e.clock.Set(t) }

// prepare makes a backend deterministic: the test's clock, no ticker and
// no wake at the earliest due time (tests drive the queue with tick), fast
// webhook retries.
func (e *rotEnv) prepare(b *backend) {
	b.clock = e.now
	b.rot.tickInterval = time.Hour
	b.rot.wakeAtDue = false
	b.rot.webhookRetryDelay = 10 * time.Millisecond
	b.rot.webhookRootCAs = e.webhookCAs
	if wrap := e.clientWrap; wrap != nil {
		b.newClient = func(cc sfapi.Config) (Client, error) {
			c, err := newClient(cc)
			if err != nil {
				return nil, err
			}
			return wrap(c), nil
		}
		b.resetClient()
	}
}

// wrapClient makes the env's backends, also after restarts, use the
// client wrap returns around the real one.
func (e *rotEnv) wrapClient(wrap func(Client) Client) {
	e.clientWrap = wrap
	e.prepare(e.b)
}

// initialize runs the backend's InitializeFunc as Vault does on the
// active node.
func (e *rotEnv) initialize() {
	e.t.Helper()
	if err := e.b.Initialize(context.Background(), &logical.InitializationRequest{Storage: e.s}); err != nil {
		e.t.Fatalf("Initialize: %v", err)
	}
	e.waitSettled()
}

// waitSettled waits for the settling pass Initialize started in the
// background.
func (e *rotEnv) waitSettled() {
	e.t.Helper()
	e.b.rot.mu.Lock()
	settled := e.b.rot.settled
	e.b.rot.mu.Unlock()
	if settled == nil {
		return
	}
	select {
	case <-settled:
	case <-time.After(time.Minute):
		e.t.Fatal("the settling of unfinished rotations did not end")
	}
}

// settleAge is how long after a crash an unfinished rotation's candidate
// may be found rejected for good.
func (e *rotEnv) settleAge() time.Duration {
	e.t.Helper()
	cfg, err := readConfig(context.Background(), e.s)
	if err != nil {
		e.t.Fatal(err)
	}
	return settleAge(cfg)
}

// tick runs one pass of the rotation queue at the test clock.
func (e *rotEnv) tick() {
	e.b.processDueRotations(context.Background())
}

func newRotEnv(t *testing.T) *rotEnv {
	t.Helper()
	srv := emulator.NewTestServer(t, emulator.DefaultSeed())
	b, s, logs := getTestBackendWithLogs(t)
	e := &rotEnv{t: t, b: b, s: s, srv: srv, logs: logs, clock: fakeClock{now: time.Now().UTC().Truncate(time.Second)}, webhookCAs: x509.NewCertPool()}
	e.prepare(b)
	mustWrite(t, b, s, "config", map[string]interface{}{
		"login_url":                srv.MyDomainURL(),
		"allow_non_salesforce_url": true,
		"client_id":                "3MVG9demoClientId",
		"client_secret":            "demo-client-secret",
		"grant_type":               "client_credentials",
	})
	// Tests tick many times in a row; the request rate is tested apart.
	mustWrite(t, b, s, "config/rotation", map[string]interface{}{"requests_per_minute": 60000})
	return e
}

// restart builds a new backend on the same storage, as after a crash or a
// plugin reload, and initializes it like Vault does on the active node.
func (e *rotEnv) restart() {
	e.t.Helper()
	e.b.Cleanup(context.Background())
	b, _, logs := getTestBackendWithLogs(e.t)
	e.prepare(b)
	e.b, e.logs = b, logs
	e.initialize()
}

func (e *rotEnv) addIntegration(name string, extra map[string]interface{}) {
	e.t.Helper()
	data := map[string]interface{}{
		"username":       rotIntegUser,
		"password":       rotIntegPassword,
		"security_token": rotIntegToken,
	}
	for k, v := range extra {
		data[k] = v
	}
	mustWrite(e.t, e.b, e.s, "accounts/"+name, data)
}

func (e *rotEnv) addTrusted(name string, extra map[string]interface{}) {
	e.t.Helper()
	data := map[string]interface{}{
		"username": rotTrustedUser,
		"password": rotTrustedPass,
	}
	for k, v := range extra {
		data[k] = v
	}
	mustWrite(e.t, e.b, e.s, "accounts/"+name, data)
}

func (e *rotEnv) rotate(name string) (*logical.Response, error) {
	e.t.Helper()
	return request(e.t, e.b, e.s, logical.UpdateOperation, "rotate/"+name, nil)
}

func (e *rotEnv) mustRotate(name string) *logical.Response {
	e.t.Helper()
	resp, err := e.rotate(name)
	if err := respErr(resp, err); err != nil {
		e.t.Fatalf("rotate %s: %v", name, err)
	}
	return resp
}

func (e *rotEnv) creds(name string) map[string]interface{} {
	e.t.Helper()
	return mustRead(e.t, e.b, e.s, "creds/"+name)
}

func (e *rotEnv) account(name string) map[string]interface{} {
	e.t.Helper()
	return mustRead(e.t, e.b, e.s, "accounts/"+name)
}

// assertServedCredentialLogsIn logs in to the org, as an integration
// would, with exactly what creds/<name> serves.
func (e *rotEnv) assertServedCredentialLogsIn(name string) {
	e.t.Helper()
	c := e.creds(name)
	client, err := newClient(sfapi.Config{LoginURL: e.srv.LoginURL(), AllowNonSalesforceURL: true, APIVersion: "66.0", SOAPAPIVersion: "64.0", RequestTimeout: 10 * time.Second})
	if err != nil {
		e.t.Fatal(err)
	}
	if _, err := client.SOAPLogin(context.Background(), c["username"].(string), c["password_with_token"].(string)); err != nil {
		e.t.Fatalf("the credential creds/%s serves does not log in: %v", name, err)
	}
}

// assertNoSecretsLogged checks the backend's log for the given secrets.
func (e *rotEnv) assertNoSecretsLogged(secrets ...string) {
	e.t.Helper()
	assertNoSecrets(e.t, "backend log", e.logs.String(), secrets...)
}

// rotWebhookRecorder is a test HTTP receiver.
type rotWebhookRecorder struct {
	mu     sync.Mutex
	bodies [][]byte
	sigs   []string
	status int
	// location, when set, is sent as the Location header (redirects).
	location string
	// failFirst deliveries are answered 500 whatever status says.
	failFirst int
}

func (w *rotWebhookRecorder) count() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.bodies)
}

func rotContainsAll(s string, parts ...string) bool {
	for _, p := range parts {
		if !strings.Contains(s, p) {
			return false
		}
	}
	return true
}

// hookedClient passes every call to the real client, running the hooks
// that are set around some of them.
type hookedClient struct {
	Client
	beforeSOAPLogin   func(ctx context.Context)
	beforeGrant       func(ctx context.Context)
	beforeSetPassword func(ctx context.Context)
	// afterChangeOwn may replace the answer of ChangeOwnPassword.
	afterChangeOwn func(err error) error
	// afterGrant runs once a PasswordGrant reached Salesforce, before its
	// answer is returned.
	afterGrant func(secret string)
}

func (h *hookedClient) SOAPLogin(ctx context.Context, username, secret string) (*sfapi.Session, error) {
	if h.beforeSOAPLogin != nil {
		h.beforeSOAPLogin(ctx)
	}
	return h.Client.SOAPLogin(ctx, username, secret)
}

func (h *hookedClient) PasswordGrant(ctx context.Context, username, secret string) (*sfapi.Session, error) {
	if h.beforeGrant != nil {
		h.beforeGrant(ctx)
	}
	sess, err := h.Client.PasswordGrant(ctx, username, secret)
	if h.afterGrant != nil {
		h.afterGrant(secret)
	}
	return sess, err
}

func (h *hookedClient) SetPassword(ctx context.Context, admin *sfapi.Session, userID, pw string) error {
	if h.beforeSetPassword != nil {
		h.beforeSetPassword(ctx)
	}
	return h.Client.SetPassword(ctx, admin, userID, pw)
}

func (h *hookedClient) ChangeOwnPassword(ctx context.Context, own *sfapi.Session, oldPw, newPw string) error {
	err := h.Client.ChangeOwnPassword(ctx, own, oldPw, newPw)
	if h.afterChangeOwn != nil {
		err = h.afterChangeOwn(err)
	}
	return err
}

// hookStorage is storage with hooks: onGet runs after a read, before its
// result is returned; failDelete makes deletes of the keys it selects fail.
type hookStorage struct {
	logical.Storage
	mu         sync.Mutex
	onGet      func(key string)
	failDelete func(key string) bool
}

func (h *hookStorage) Get(ctx context.Context, key string) (*logical.StorageEntry, error) {
	entry, err := h.Storage.Get(ctx, key)
	h.mu.Lock()
	hook := h.onGet
	h.mu.Unlock()
	if hook != nil {
		hook(key)
	}
	return entry, err
}

func (h *hookStorage) Delete(ctx context.Context, key string) error {
	h.mu.Lock()
	fail := h.failDelete
	h.mu.Unlock()
	if fail != nil && fail(key) {
		return errors.New("storage unavailable")
	}
	return h.Storage.Delete(ctx, key)
}

// failedLogins counts the logins of username Salesforce refused in a way
// that counts towards lockout (wrong password or token, or refused for the
// lockout itself). Rows without a flow are history an org may be seeded
// with, not logins made.
func (e *rotEnv) failedLogins(username string) int {
	n := 0
	for _, a := range e.srv.LoginHistory(username) {
		if a.Flow != "" && (a.Status == "Invalid Password" || a.Status == "Password Lockout") {
			n++
		}
	}
	return n
}

// userLocked reports whether Salesforce locked username out.
func (e *rotEnv) userLocked(username string) (locked bool) {
	e.srv.SetUserState(username, func(u *emulator.User) { locked = u.IsPasswordLocked })
	return locked
}
