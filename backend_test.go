package salesforce

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/vault/sdk/helper/errutil"
	"github.com/hashicorp/vault/sdk/logical"

	"github.com/vault-salesforce/vault-plugin-secrets-salesforce/emulator"
	"github.com/vault-salesforce/vault-plugin-secrets-salesforce/sfapi"
)

// logBuffer collects everything the backend logs, so tests can search it
// for secrets.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

// testSystemView is the system view of test backends; helpers that need
// more of logical.SystemView add methods here.
type testSystemView struct {
	logical.StaticSystemView
}

// getTestBackend returns a backend on fresh in-memory storage.
func getTestBackend(t testing.TB) (*backend, logical.Storage) {
	t.Helper()
	b, s, _ := getTestBackendWithLogs(t)
	return b, s
}

// getTestBackendWithLogs also returns the buffer that receives the
// backend's log output at trace level.
func getTestBackendWithLogs(t testing.TB) (*backend, logical.Storage, *logBuffer) {
	t.Helper()
	logs := &logBuffer{}
	logger := hclog.New(&hclog.LoggerOptions{
		Name:   "salesforce-test",
		Level:  hclog.Trace,
		Output: logs,
	})
	storage := &logical.InmemStorage{}
	conf := &logical.BackendConfig{
		Logger: logger,
		System: &testSystemView{StaticSystemView: logical.StaticSystemView{
			DefaultLeaseTTLVal: time.Hour,
			MaxLeaseTTLVal:     24 * time.Hour,
			// The root help (OpenAPI) asks for the Vault version.
			PluginEnvironment: &logical.PluginEnvironment{VaultVersion: "1.21.0"},
		}},
		StorageView: storage,
	}
	lb, err := Factory(context.Background(), conf)
	if err != nil {
		t.Fatalf("Factory: %v", err)
	}
	b := lb.(*backend)
	t.Cleanup(func() { b.Cleanup(context.Background()) })
	return b, storage, logs
}

// request runs one operation against the backend. It returns the response
// and the error the backend returned; for error responses (400s)
// respErr(resp, err) gives the message.
func request(t testing.TB, b *backend, s logical.Storage, op logical.Operation, path string, data map[string]interface{}) (*logical.Response, error) {
	t.Helper()
	req := &logical.Request{
		Operation: op,
		Path:      path,
		Storage:   s,
		Data:      data,
	}
	if op == logical.CreateOperation || op == logical.UpdateOperation {
		// Vault decides create vs update with the path's existence check.
		req.Operation = logical.UpdateOperation
		if ok, exists, err := b.HandleExistenceCheck(context.Background(), req); err == nil && ok && !exists {
			req.Operation = logical.CreateOperation
		}
	}
	return b.HandleRequest(context.Background(), req)
}

// mustWrite writes and fails the test on any error.
func mustWrite(t testing.TB, b *backend, s logical.Storage, path string, data map[string]interface{}) *logical.Response {
	t.Helper()
	resp, err := request(t, b, s, logical.UpdateOperation, path, data)
	if err != nil || (resp != nil && resp.IsError()) {
		t.Fatalf("write %s: %v", path, respErr(resp, err))
	}
	return resp
}

// mustRead reads and fails the test on any error or a missing entry.
func mustRead(t testing.TB, b *backend, s logical.Storage, path string) map[string]interface{} {
	t.Helper()
	resp, err := request(t, b, s, logical.ReadOperation, path, nil)
	if err != nil || (resp != nil && resp.IsError()) {
		t.Fatalf("read %s: %v", path, respErr(resp, err))
	}
	if resp == nil {
		t.Fatalf("read %s: no data", path)
	}
	return resp.Data
}

// respErr returns the failure of a request: the returned error, or the
// error of an error response; nil on success.
func respErr(resp *logical.Response, err error) error {
	if err != nil {
		return err
	}
	if resp != nil && resp.IsError() {
		return resp.Error()
	}
	return nil
}

// statusOf returns the HTTP status Vault would answer with.
func statusOf(resp *logical.Response, err error) int {
	if err != nil {
		var coded logical.HTTPCodedError
		if errors.As(err, &coded) {
			return coded.Code()
		}
		if errors.Is(err, logical.ErrUnsupportedPath) {
			return 404
		}
		if errors.Is(err, logical.ErrInvalidRequest) || errors.Is(err, logical.ErrUnsupportedOperation) {
			return 400
		}
		// errutil.UserError (a field that does not convert) is a 400 in Vault.
		var userErr errutil.UserError
		if errors.As(err, &userErr) {
			return 400
		}
		return 500
	}
	if resp == nil {
		return 204
	}
	if resp.IsError() {
		return 400
	}
	return 200
}

// snapshotStorage returns every key and value in storage.
func snapshotStorage(t testing.TB, s logical.Storage) map[string]string {
	t.Helper()
	ctx := context.Background()
	keys, err := logical.CollectKeys(ctx, s)
	if err != nil {
		t.Fatalf("listing storage: %v", err)
	}
	out := make(map[string]string, len(keys))
	for _, k := range keys {
		entry, err := s.Get(ctx, k)
		if err != nil {
			t.Fatalf("reading %s: %v", k, err)
		}
		if entry != nil {
			out[k] = string(entry.Value)
		}
	}
	return out
}

// assertSameStorage fails when storage changed between two snapshots. The
// login budget is left out: it records the logins Salesforce saw, which a
// refused write does not undo (its tests are in login_budget_test.go).
func assertSameStorage(t testing.TB, before, after map[string]string) {
	t.Helper()
	before, after = withoutLoginBudget(before), withoutLoginBudget(after)
	var diffs []string
	for k, v := range before {
		if w, ok := after[k]; !ok {
			diffs = append(diffs, "deleted "+k)
		} else if w != v {
			diffs = append(diffs, "changed "+k)
		}
	}
	for k := range after {
		if _, ok := before[k]; !ok {
			diffs = append(diffs, "added "+k)
		}
	}
	sort.Strings(diffs)
	if len(diffs) > 0 {
		t.Errorf("storage changed: %s", strings.Join(diffs, ", "))
	}
}

// assertNoSecrets fails when text contains any of the secrets. Secrets
// shorter than 6 characters are skipped: they would match by accident.
func assertNoSecrets(t testing.TB, where, text string, secrets ...string) {
	t.Helper()
	for _, secret := range secrets {
		if len(secret) < 6 {
			continue
		}
		if strings.Contains(text, secret) {
			t.Errorf("%s contains a secret (%d characters starting %q)", where, len(secret), secret[:3])
		}
	}
}

// responseText renders everything a caller sees of a response or error.
func responseText(resp *logical.Response, err error) string {
	var sb strings.Builder
	if err != nil {
		sb.WriteString(err.Error())
	}
	if resp != nil {
		fmt.Fprintf(&sb, "%v %v %v", resp.Data, resp.Warnings, resp.Headers)
		if resp.Secret != nil {
			fmt.Fprintf(&sb, " %v", resp.Secret.InternalData)
		}
	}
	return sb.String()
}

// Values of the emulator's demo org (emulator.DefaultSeed).
const (
	demoClientID          = "3MVG9demoClientId"
	demoClientSecret      = "demo-client-secret"
	demoAdminUser         = "admin@acme.demo"
	demoAdminPassword     = "Admin-Pass-1234"
	demoAdminToken        = "ADMINTOKEN0000000000000000"
	demoIntegrationUser   = "integration@acme.demo"
	demoIntegrationPass   = "Integ-Pass-1234"
	demoIntegrationToken  = "INTEGTOKEN00000000000000000"
	demoTrustedUser       = "trusted@acme.demo"
	demoTrustedPassword   = "Trusted-Pass-1234"
	demoTrustedTokenValue = "TRUSTTOKEN000000000000000"
)

// emulatorConfig is a config for the emulator with the given admin grant.
func emulatorConfig(srv *emulator.Server, grant string) map[string]interface{} {
	data := map[string]interface{}{
		"login_url":                srv.LoginURL(),
		"allow_non_salesforce_url": true,
		"client_id":                demoClientID,
		"grant_type":               grant,
	}
	switch grant {
	case adminGrantJWTBearer:
		data["username"] = demoAdminUser
		data["private_key"] = emulator.DemoPrivateKeyPEM
	case adminGrantClientCredentials:
		// Salesforce serves client_credentials only on the My Domain host.
		data["login_url"] = srv.MyDomainURL()
		data["client_secret"] = demoClientSecret
	case adminGrantPassword:
		data["client_secret"] = demoClientSecret
		data["username"] = demoAdminUser
		data["password"] = demoAdminPassword
		data["security_token"] = demoAdminToken
	}
	return data
}

// emulatorBackend is a backend configured against a fresh emulated org.
func emulatorBackend(t testing.TB, grant string) (*backend, logical.Storage, *emulator.Server, *logBuffer) {
	t.Helper()
	srv := emulator.NewTestServer(t, emulator.DefaultSeed())
	b, s, logs := getTestBackendWithLogs(t)
	mustWrite(t, b, s, "config", emulatorConfig(srv, grant))
	return b, s, srv, logs
}

// fakeClock is a clock tests move by hand; the backend reads it (b.clock)
// instead of time.Now.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

func (c *fakeClock) Set(t time.Time) {
	c.mu.Lock()
	c.now = t
	c.mu.Unlock()
}

// putAccount stores acct as name, through the one writer of accounts.
func putAccount(t testing.TB, b *backend, s logical.Storage, name string, acct *account) {
	t.Helper()
	txn := b.lockAccount(s, name)
	defer txn.unlock()
	if err := txn.put(context.Background(), acct); err != nil {
		t.Fatal(err)
	}
}

func withoutLoginBudget(snapshot map[string]string) map[string]string {
	out := make(map[string]string, len(snapshot))
	for k, v := range snapshot {
		if !strings.HasPrefix(k, loginBudgetStoragePrefix) {
			out[k] = v
		}
	}
	return out
}

// pausingStorage stops a caller whose context carries pauseHere right
// after it read key, until the test lets it go on: a deterministic way to
// put another request between a read and what the reader does with it.
type pausingStorage struct {
	logical.Storage
	key     string
	reached chan struct{}
	release chan struct{}
}

type pauseHere struct{}

func (p *pausingStorage) Get(ctx context.Context, key string) (*logical.StorageEntry, error) {
	entry, err := p.Storage.Get(ctx, key)
	if key == p.key && ctx.Value(pauseHere{}) != nil {
		close(p.reached)
		<-p.release
	}
	return entry, err
}

// pausingAdminClient is a fake whose admin login (client credentials)
// stops a caller whose context carries pauseHere, and whose sessions name
// the login_url of the config it was built from.
type pausingAdminClient struct {
	*fakeClient
	reached, release chan struct{}
}

func (c *pausingAdminClient) ClientCredentialsGrant(ctx context.Context, scopes []string) (*sfapi.Session, error) {
	if ctx.Value(pauseHere{}) != nil {
		close(c.reached)
		<-c.release
	}
	s, err := c.fakeClient.ClientCredentialsGrant(ctx, scopes)
	if s != nil {
		s.InstanceURL = c.cfg.LoginURL
	}
	return s, err
}

// Issue 9, defect 4: a config write that lands while a caller builds the
// client (or logs in as the admin) from the config it read before must not
// leave that older client (or session) cached: the next caller gets one
// built from the config now stored.
func TestTrust04ConfigWriteRacingGetClient(t *testing.T) {
	const oldURL, newURL = "https://fake.my.salesforce.com", "https://other.my.salesforce.com"
	newConfig := fakeConfig()
	newConfig["login_url"] = newURL
	ctx := context.Background()

	t.Run("client", func(t *testing.T) {
		b, inmem := getTestBackend(t)
		b.newClient = func(cc sfapi.Config) (Client, error) {
			f := newFakeClient()
			f.cfg = cc
			return f, nil
		}
		s := &pausingStorage{Storage: inmem, key: configStoragePath, reached: make(chan struct{}), release: make(chan struct{})}
		mustWrite(t, b, s, "config", fakeConfig())

		raced := make(chan error, 1)
		go func() {
			c, cfg, err := b.getClient(context.WithValue(ctx, pauseHere{}, true), s)
			if err == nil && fakeOf(c).cfg.LoginURL != cfg.LoginURL {
				err = fmt.Errorf("the racing caller got a client for %s with a config for %s", fakeOf(c).cfg.LoginURL, cfg.LoginURL)
			}
			raced <- err
		}()
		<-s.reached // it read the old config
		mustWrite(t, b, s, "config", newConfig)
		close(s.release)
		if err := <-raced; err != nil {
			t.Fatal(err)
		}
		b.clientMu.RLock()
		cached := b.client
		b.clientMu.RUnlock()
		if cached != nil {
			t.Errorf("a client built from the older config (%s) is cached", fakeOf(cached).cfg.LoginURL)
		}
		c, cfg, err := b.getClient(ctx, s)
		if err != nil {
			t.Fatal(err)
		}
		if got := fakeOf(c).cfg.LoginURL; got != newURL || cfg.LoginURL != newURL {
			t.Errorf("after the config write the cached client is for %s (config %s), want %s", got, cfg.LoginURL, newURL)
		}
	})

	// A node can see the new config in storage before its Invalidate (or
	// the writer's resetClient) runs: the cached client is not served with it.
	t.Run("config stored, not yet reset", func(t *testing.T) {
		b, s := getTestBackend(t)
		b.newClient = func(cc sfapi.Config) (Client, error) {
			f := newFakeClient()
			f.cfg = cc
			return f, nil
		}
		mustWrite(t, b, s, "config", fakeConfig())
		if _, _, err := b.getClient(ctx, s); err != nil {
			t.Fatal(err)
		}
		cfg, err := readConfig(ctx, s)
		if err != nil {
			t.Fatal(err)
		}
		cfg.LoginURL = newURL
		if err := writeConfig(ctx, s, cfg); err != nil {
			t.Fatal(err)
		}
		c, got, err := b.getClient(ctx, s)
		if err != nil {
			t.Fatal(err)
		}
		if fakeOf(c).cfg.LoginURL != newURL || got.LoginURL != newURL {
			t.Errorf("client for %s served with config for %s, want both %s", fakeOf(c).cfg.LoginURL, got.LoginURL, newURL)
		}
	})

	t.Run("admin session", func(t *testing.T) {
		b, s := getTestBackend(t)
		reached, release := make(chan struct{}), make(chan struct{})
		b.newClient = func(cc sfapi.Config) (Client, error) {
			f := newFakeClient()
			f.cfg = cc
			return &pausingAdminClient{fakeClient: f, reached: reached, release: release}, nil
		}
		mustWrite(t, b, s, "config", fakeConfig())

		raced := make(chan error, 1)
		go func() {
			_, err := b.adminSession(context.WithValue(ctx, pauseHere{}, true), s)
			raced <- err
		}()
		<-reached // it logs in with the old config
		mustWrite(t, b, s, "config", newConfig)
		close(release)
		if err := <-raced; err != nil {
			t.Fatal(err)
		}
		sess, err := b.adminSession(ctx, s)
		if err != nil {
			t.Fatal(err)
		}
		if sess.InstanceURL != newURL {
			t.Errorf("after the config write the cached admin session is from %s, want %s", sess.InstanceURL, newURL)
		}
	})
}

// pathExamples are request paths, one for each path pattern of the
// backend, for tests that go over every path; such tests fail when a
// pattern has none.
var pathExamples = []string{
	"config", "config/rotation", "config/jwt-key", "config/jwt-key/rotate", "config/jwt-key/confirm",
	"accounts/", "accounts/a", "accounts/a/diagnose", "accounts/a/security-token", "creds/a",
	"roles/", "roles/r", "token/r", "rotate/a", "rotate-root",
	"login-report", "accounts/a/login-report", "rotate-client-secret",
}

// Rotations take the config from memory (getClientForRotation): a config
// written through the API on this node, or on another node once Vault
// calls Invalidate, is what the next rotation's client and config are for.
func TestClientForRotationFollowsConfigWrites(t *testing.T) {
	const newURL = "https://other.my.salesforce.com"
	ctx := context.Background()
	active, s := getTestBackend(t)
	standby, _ := getTestBackend(t)
	for _, b := range []*backend{active, standby} {
		b.newClient = func(cc sfapi.Config) (Client, error) {
			f := newFakeClient()
			f.cfg = cc
			return f, nil
		}
	}
	mustWrite(t, active, s, "config", fakeConfig())
	for _, b := range []*backend{active, standby} {
		if _, _, err := b.getClientForRotation(ctx, s); err != nil { // cache the old config and client
			t.Fatal(err)
		}
	}
	newConfig := fakeConfig()
	newConfig["login_url"] = newURL
	mustWrite(t, active, s, "config", newConfig)
	standby.InvalidateKey(ctx, configStoragePath)
	for name, b := range map[string]*backend{"writer": active, "other node": standby} {
		c, cfg, err := b.getClientForRotation(ctx, s)
		if err != nil {
			t.Fatal(err)
		}
		if fakeOf(c).cfg.LoginURL != newURL || cfg.LoginURL != newURL {
			t.Errorf("%s: rotation client for %s with config for %s, want both %s", name, fakeOf(c).cfg.LoginURL, cfg.LoginURL, newURL)
		}
	}
}
