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
