package salesforce

import (
	"bytes"
	"context"
	"crypto/rsa"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/vault/sdk/helper/errutil"
	"github.com/hashicorp/vault/sdk/logical"
	"github.com/hashicorp/vault/sdk/plugin/pb"

	"github.com/vault-salesforce/vault-plugin-secrets-salesforce/emulator"
	"github.com/vault-salesforce/vault-plugin-secrets-salesforce/sfapi"
)

// Fuzz tests of every path's request handling. Each input is one request
// (operation, path, data) sent the way Vault sends it: the existence check
// first for writes, then HandleRequest, with errors carried across the
// plugin's gRPC boundary and turned into an HTTP status by the SDK's own
// logical.RespondErrorCommon. It runs on a fresh backend whose storage
// holds a full mount (config with every secret, a JWT key, rotation
// config with a webhook secret, plain, nested and self-rotating accounts,
// a role of every grant) and whose Salesforce is a healthy fake org.
// Properties, for every input:
//
//   - no panic;
//   - no 5xx: the fake org never fails, so any 5xx is the engine's fault;
//   - no secret echoed: neither a stored one nor a value sent in a
//     sensitive field appears in the response (data, warnings, error),
//     the error Vault would return or log, or the plugin's log;
//   - storage byte for byte unchanged whenever the answer is 4xx, except
//     for the failed-login count of a request that spent a login;
//   - no write succeeds with a value outside a field's AllowedValues.

// Secrets the template mount stores. Every one is distinctive, so finding
// one in any output is a leak, not a coincidence.
const (
	fuzzAdminPassword  = "Fake-Admin-Pass-1"
	fuzzAdminToken     = "FAKEADMINTOKEN000000"
	fuzzEtlPassword    = "Fake-Etl-Pass-22"
	fuzzEtlToken       = "FAKEETLTOKEN0000000"
	fuzzTrustPassword  = "Fake-Trust-Pass-3"
	fuzzNestedUser     = "nested@fake.test"
	fuzzNestedPassword = "Fake-Nested-Pass-4"
	fuzzNestedToken    = "FAKENESTEDTOKEN00000"
	fuzzRefreshToken   = "5AepFuzzRefreshSecret0000"
	fuzzWebhookSecret  = "Fuzz-Webhook-Secret-0000"
	// Slack-style webhook URLs carry their secret in the path.
	fuzzMountHookPath   = "FuzzMountHookPathSecret1"
	fuzzAccountHookPath = "FuzzAcctHookPathSecret01"
	// Session ids of the fake org start so; none may reach the log.
	fuzzSessionPrefix = "00Dfake!SESSION"
)

// fuzzOrg is the fake org with every Client call answered as a healthy
// org would, so that no 5xx can be blamed on Salesforce.
type fuzzOrg struct {
	*fakeClient
	// logins counts the logins the org saw, rejected those it refused.
	logins, rejected *atomic.Int32
}

var _ Client = fuzzOrg{}

func newFuzzOrg() fuzzOrg {
	f := newFakeClient()
	f.users[fuzzNestedUser] = &fakeUser{id: "005000000000004AAA", password: fuzzNestedPassword, token: fuzzNestedToken}
	return fuzzOrg{fakeClient: f, logins: new(atomic.Int32), rejected: new(atomic.Int32)}
}

func (o fuzzOrg) count(s *sfapi.Session, err error) (*sfapi.Session, error) {
	o.logins.Add(1)
	if sfapi.IsCredentialError(err) {
		o.rejected.Add(1)
	}
	return s, err
}

func (o fuzzOrg) SOAPLogin(ctx context.Context, username, passwordWithToken string) (*sfapi.Session, error) {
	return o.count(o.fakeClient.SOAPLogin(ctx, username, passwordWithToken))
}

func (o fuzzOrg) PasswordGrant(ctx context.Context, username, passwordWithToken string) (*sfapi.Session, error) {
	return o.count(o.fakeClient.PasswordGrant(ctx, username, passwordWithToken))
}

func (o fuzzOrg) ClientCredentialsGrant(ctx context.Context, scopes []string) (*sfapi.Session, error) {
	return o.count(o.fakeClient.ClientCredentialsGrant(ctx, scopes))
}

func (o fuzzOrg) JWTBearerGrant(ctx context.Context, username string, key *rsa.PrivateKey, scopes []string) (*sfapi.Session, error) {
	return o.count(o.fakeClient.JWTBearerGrant(ctx, username, key, scopes))
}

func (o fuzzOrg) install(b *backend) {
	b.newClient = func(cc sfapi.Config) (Client, error) {
		o.mu.Lock()
		o.cfg = cc
		o.mu.Unlock()
		return o, nil
	}
	b.resetClient()
}

func (o fuzzOrg) userByID(id string) *fakeUser {
	for _, u := range o.users {
		if u.id == id {
			return u
		}
	}
	return nil
}

func (o fuzzOrg) RefreshTokenGrant(ctx context.Context, refreshToken string, scopes []string) (*sfapi.Session, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if refreshToken != fuzzRefreshToken {
		return o.count(nil, &sfapi.Error{Op: "oauth token (refresh_token)", Code: "invalid_grant", Message: "expired access/refresh token", HTTPStatus: 400, Kind: sfapi.KindCredentials})
	}
	return o.count(o.session(o.users["admin@fake.test"]), nil)
}

func (o fuzzOrg) Revoke(ctx context.Context, token string) error { return nil }

func (o fuzzOrg) Introspect(ctx context.Context, token string) (*sfapi.Introspection, error) {
	return &sfapi.Introspection{Active: true}, nil
}

func (o fuzzOrg) UserInfo(ctx context.Context, s *sfapi.Session) (*sfapi.UserInfo, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	for name, u := range o.users {
		if u.id == s.UserID {
			return &sfapi.UserInfo{UserID: u.id, OrganizationID: s.OrgID, Username: name, Active: true}, nil
		}
	}
	return nil, &sfapi.Error{Op: "oauth userinfo", Code: "Bad_OAuth_Token", HTTPStatus: 403, Kind: sfapi.KindSession}
}

func (o fuzzOrg) Logout(ctx context.Context, s *sfapi.Session) error { return nil }

func (o fuzzOrg) SetPassword(ctx context.Context, admin *sfapi.Session, userID, newPassword string) error {
	o.mu.Lock()
	defer o.mu.Unlock()
	u := o.userByID(userID)
	if u == nil {
		return &sfapi.Error{Op: "set password", Code: "NOT_FOUND", HTTPStatus: 404, Kind: sfapi.KindNotFound}
	}
	u.password = newPassword
	return nil
}

func (o fuzzOrg) ChangeOwnPassword(ctx context.Context, own *sfapi.Session, oldPassword, newPassword string) error {
	o.mu.Lock()
	defer o.mu.Unlock()
	u := o.userByID(own.UserID)
	if u == nil || u.password != oldPassword {
		return &sfapi.Error{Op: "soap change own password", Code: "INVALID_OLD_PASSWORD", HTTPStatus: 500, Kind: sfapi.KindCredentials}
	}
	u.password = newPassword
	return nil
}

func (o fuzzOrg) LookupUser(ctx context.Context, admin *sfapi.Session, username string) (*sfapi.User, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if u := o.users[username]; u != nil {
		return &sfapi.User{ID: u.id, Username: username, IsActive: true}, nil
	}
	return nil, &sfapi.Error{Op: "lookup user", Code: "NOT_FOUND", Kind: sfapi.KindNotFound}
}

func (o fuzzOrg) PasswordExpired(ctx context.Context, admin *sfapi.Session, userID string) (bool, error) {
	return false, nil
}

func (o fuzzOrg) PasswordChangedAt(ctx context.Context, admin *sfapi.Session, userID string) (time.Time, error) {
	return time.Time{}, nil
}

func (o fuzzOrg) LoginLocked(ctx context.Context, admin *sfapi.Session, userID string) (bool, string, error) {
	return false, "060" + strings.TrimPrefix(userID, "005"), nil
}

func (o fuzzOrg) UnlockLogin(ctx context.Context, admin *sfapi.Session, userLoginID string) error {
	return nil
}

func (o fuzzOrg) Query(ctx context.Context, s *sfapi.Session, soql string) (int, error) {
	return 1, nil
}

// pathFuzzMount is the storage of a full mount, built once per process and
// copied into every fuzzed backend.
type pathFuzzMount struct {
	entries map[string][]byte
	// secrets are the stored secrets no output may carry.
	secrets []string
}

var (
	pathFuzzMountOnce sync.Once
	pathFuzzMountVal  *pathFuzzMount
)

func fuzzMount(t testing.TB) *pathFuzzMount {
	pathFuzzMountOnce.Do(func() { pathFuzzMountVal = buildFuzzMount(t) })
	if pathFuzzMountVal == nil {
		t.Fatal("building the fuzz mount failed")
	}
	return pathFuzzMountVal
}

// fuzzHookURL is a webhook URL on a closed loopback port: a delivery the
// engine attempts fails at once without leaving the machine.
func fuzzHookURL(secret string) string {
	return "http://127.0.0.1:9/services/T000/B000/" + secret
}

func buildFuzzMount(t testing.TB) *pathFuzzMount {
	b, s := getTestBackend(t)
	newFuzzOrg().install(b)
	m := &pathFuzzMount{secrets: []string{
		fakeClientSecret, fuzzAdminPassword, fuzzAdminToken, fuzzEtlPassword, fuzzEtlToken, fuzzTrustPassword,
		fuzzNestedPassword, fuzzNestedToken, fuzzRefreshToken, fuzzWebhookSecret,
	}}
	// Lines of the private key's PEM body.
	for _, line := range strings.Split(emulator.DemoPrivateKeyPEM, "\n")[2:5] {
		m.secrets = append(m.secrets, line)
	}
	mustWrite(t, b, s, "config", map[string]interface{}{
		"login_url": "https://fake.my.salesforce.com", "client_id": fakeClientID, "client_secret": fakeClientSecret,
		"grant_type": "password", "username": "admin@fake.test", "password": fuzzAdminPassword, "security_token": fuzzAdminToken,
	})
	mustWrite(t, b, s, "config/jwt-key", map[string]interface{}{"private_key": emulator.DemoPrivateKeyPEM})
	// webhook_allowed_networks lets the loopback receiver through a
	// policy that refuses internal addresses; where there is none, the
	// SDK ignores the field.
	rotation := map[string]interface{}{"webhook_secret": fuzzWebhookSecret, "allow_insecure_webhooks": true,
		"webhook_url": fuzzHookURL(fuzzMountHookPath), "webhook_allowed_networks": "127.0.0.1/32"}
	if resp, err := request(t, b, s, logical.UpdateOperation, "config/rotation", rotation); respErr(resp, err) != nil {
		// A policy that refuses loopback receivers at write time.
		t.Logf("config/rotation refused a loopback webhook (%v); fuzzing without one", respErr(resp, err))
		delete(rotation, "webhook_url")
		mustWrite(t, b, s, "config/rotation", rotation)
	} else {
		// Slack-style URLs carry their secret in the path (issue 9 item 14).
		m.secrets = append(m.secrets, fuzzMountHookPath)
	}
	etl := map[string]interface{}{"username": "etl@fake.test", "password": fuzzEtlPassword, "security_token": fuzzEtlToken,
		"description": "nightly ETL", "webhook_url": fuzzHookURL(fuzzAccountHookPath)}
	if resp, err := request(t, b, s, logical.UpdateOperation, "accounts/etl", etl); respErr(resp, err) != nil {
		t.Logf("accounts/etl refused a loopback webhook (%v); fuzzing without one", respErr(resp, err))
		delete(etl, "webhook_url")
		mustWrite(t, b, s, "accounts/etl", etl)
	} else {
		m.secrets = append(m.secrets, fuzzAccountHookPath)
	}
	mustWrite(t, b, s, "accounts/team-a/etl", map[string]interface{}{
		"username": fuzzNestedUser, "password": fuzzNestedPassword, "security_token": fuzzNestedToken, "rotation_period": "24h",
		"allow_scheduled_rotation_with_token": true})
	mustWrite(t, b, s, "accounts/self", map[string]interface{}{
		"username": "trust@fake.test", "password": fuzzTrustPassword, "rotation_method": "self"})
	mustWrite(t, b, s, "roles/jwt", map[string]interface{}{"grant_type": "jwt_bearer", "username": "etl@fake.test"})
	mustWrite(t, b, s, "roles/cc", map[string]interface{}{"grant_type": "client_credentials"})
	mustWrite(t, b, s, "roles/pw", map[string]interface{}{"grant_type": "password", "account": "etl"})
	mustWrite(t, b, s, "roles/rt", map[string]interface{}{"grant_type": "refresh_token", "refresh_token": fuzzRefreshToken})

	m.entries = map[string][]byte{}
	ctx := context.Background()
	keys, err := logical.CollectKeys(ctx, s)
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range keys {
		e, err := s.Get(ctx, k)
		if err != nil || e == nil {
			t.Fatalf("reading %s: %v", k, err)
		}
		m.entries[k] = e.Value
	}
	return m
}

// fuzzOps are the operations an input picks from, as Vault's HTTP API
// sends them: POST and PUT arrive as update and become create after the
// existence check.
var fuzzOps = []logical.Operation{
	logical.ReadOperation, logical.UpdateOperation, logical.DeleteOperation, logical.ListOperation, logical.HelpOperation,
}

// pathRequest is one fuzzed request.
type pathRequest struct {
	op   logical.Operation
	path string
	data map[string]interface{}
}

// pathOutcome is what Vault would make of a request.
type pathOutcome struct {
	status int
	// message is the error a client sees ("" on success).
	message string
	// text is everything a client, the audit log's un-hashed error field
	// or Vault's server log may show of the request.
	text string
	// logs is what the plugin logged.
	logs string
	// legit are values a successful creds/ read returns by design.
	legit  []string
	before map[string]string
	after  map[string]string
	// logins and rejectedLogins count the logins the org saw and refused
	// meanwhile.
	logins, rejectedLogins int
	// skipped is set when the data cannot reach a plugin at all.
	skipped bool
}

// grpcData is data as a plugin receives it: Vault sends it across gRPC as
// JSON and the plugin decodes it without UseNumber, so numbers arrive as
// float64 and invalid UTF-8 as U+FFFD. ok is false for data Vault itself
// fails on (a number such as 1e309), which never reaches the plugin.
func grpcData(data map[string]interface{}) (out map[string]interface{}, ok bool) {
	if data == nil {
		return nil, true
	}
	buf, err := json.Marshal(data)
	if err != nil {
		return nil, false
	}
	out = map[string]interface{}{}
	if err := json.Unmarshal(buf, &out); err != nil {
		return nil, false
	}
	return out, true
}

// runPathRequest sends one request to a fresh backend on a copy of the
// template mount, the way Vault does.
func runPathRequest(t testing.TB, m *pathFuzzMount, in pathRequest) pathOutcome {
	data, ok := grpcData(in.data)
	if !ok {
		return pathOutcome{skipped: true}
	}
	b, inmem, logs := getTestBackendWithLogs(t)
	org := newFuzzOrg()
	org.install(b)
	ctx := context.Background()
	for k, v := range m.entries {
		if err := inmem.Put(ctx, &logical.StorageEntry{Key: k, Value: v}); err != nil {
			t.Fatal(err)
		}
	}
	// Vault hands a plugin a storage view that refuses relative keys.
	view := logical.NewStorageView(inmem, "")
	out := pathOutcome{before: snapshotStorage(t, inmem)}
	req := &logical.Request{
		Operation:  in.op,
		Path:       in.path,
		Data:       data,
		Storage:    view,
		MountPoint: "salesforce/",
		MountType:  "vault-plugin-secrets-salesforce",
	}
	var resp *logical.Response
	var err error
	var vaultLog string
	if in.op == logical.UpdateOperation {
		// Vault's request handling, existence check first; its errors
		// cross the gRPC boundary of the plugin.
		found, exists, xerr := b.HandleExistenceCheck(ctx, req)
		xerr = pb.ProtoErrToErr(pb.ErrToProtoErr(xerr))
		var userErr errutil.UserError
		switch {
		case xerr == nil:
			if found && !exists {
				req.Operation = logical.CreateOperation
			}
		case xerr == logical.ErrUnsupportedPath:
			// Fails later as an unsupported path.
		case errors.As(xerr, &userErr):
			// Vault logs it and answers it as a 400.
			vaultLog = "failed to run existence check: " + xerr.Error()
			err = xerr
		default:
			// Vault logs it and answers "internal error", a 500.
			vaultLog = "failed to run existence check: " + xerr.Error()
			err = errors.New("internal error")
			out.status = 500
		}
	}
	if err == nil {
		resp, err = b.HandleRequest(ctx, req)
		err = pb.ProtoErrToErr(pb.ErrToProtoErr(err))
	}
	if out.status == 0 {
		out.status = vaultStatus(req, resp, err)
	}
	if resp != nil && resp.Data != nil {
		// The plugin's reply crosses gRPC as JSON.
		if _, jerr := json.Marshal(resp.Data); jerr != nil {
			t.Errorf("%s %q: response data cannot be encoded (%v); Vault answers 500", in.op, in.path, jerr)
		}
	}
	if e := respErr(resp, err); e != nil {
		out.message = e.Error()
	}
	out.text = responseText(resp, err) + " " + vaultLog
	if resp != nil && out.status < 300 && strings.HasPrefix(in.path, "creds/") {
		for _, k := range []string{"password", "security_token", "password_with_token"} {
			if v, ok := resp.Data[k].(string); ok && v != "" {
				out.legit = append(out.legit, v)
			}
		}
	}
	out.logs = logs.String()
	out.after = snapshotStorage(t, inmem)
	out.logins, out.rejectedLogins = int(org.logins.Load()), int(org.rejected.Load())
	return out
}

// vaultStatus is the HTTP status Vault answers with for what crossed the
// plugin boundary: a user error is a 400 and a coded error has its code
// (as Vault 1.13 answers), the rest is the SDK's own mapping.
func vaultStatus(req *logical.Request, resp *logical.Response, err error) int {
	var userErr errutil.UserError
	if errors.As(err, &userErr) {
		return 400
	}
	var coded logical.HTTPCodedError
	if errors.As(err, &coded) {
		return coded.Code()
	}
	code, _ := logical.RespondErrorCommon(req, resp, err)
	switch {
	case code != 0:
		return code
	case resp == nil || (resp.Data == nil && len(resp.Warnings) == 0 && resp.Secret == nil):
		return 204
	}
	return 200
}

// sensitiveValues returns the secret parts of the sensitive fields of
// data, for the route path: every string, number literal and object key
// of at least 8 characters.
func sensitiveValues(b *backend, path string, data map[string]interface{}) []string {
	p := b.Route(path)
	if p == nil {
		return nil
	}
	var out []string
	var walk func(v interface{})
	walk = func(v interface{}) {
		switch v := v.(type) {
		case string:
			if len(v) >= 8 {
				out = append(out, v)
			}
		case float64:
			if f := strconv.FormatFloat(v, 'f', -1, 64); len(f) >= 8 {
				out = append(out, f)
			}
		case map[string]interface{}:
			for k, x := range v {
				walk(k)
				walk(x)
			}
		case []interface{}:
			for _, x := range v {
				walk(x)
			}
		}
	}
	for k, v := range data {
		if f := p.Fields[k]; f != nil && f.DisplayAttrs != nil && f.DisplayAttrs.Sensitive {
			walk(v)
		}
	}
	return out
}

// replaceSensitive returns data with old replaced by repl inside the
// sensitive fields, keeping every value's type.
func replaceSensitive(b *backend, path string, data map[string]interface{}, old, repl string) map[string]interface{} {
	p := b.Route(path)
	var rep func(v interface{}) interface{}
	rep = func(v interface{}) interface{} {
		switch v := v.(type) {
		case string:
			return strings.ReplaceAll(v, old, repl)
		case float64:
			if strconv.FormatFloat(v, 'f', -1, 64) == old {
				f, _ := strconv.ParseFloat(repl, 64)
				return f
			}
			return v
		case map[string]interface{}:
			m := make(map[string]interface{}, len(v))
			for k, x := range v {
				m[strings.ReplaceAll(k, old, repl)] = rep(x)
			}
			return m
		case []interface{}:
			a := make([]interface{}, len(v))
			for i, x := range v {
				a[i] = rep(x)
			}
			return a
		}
		return v
	}
	out := make(map[string]interface{}, len(data))
	for k, v := range data {
		if f := p.Fields[k]; f != nil && f.DisplayAttrs != nil && f.DisplayAttrs.Sensitive {
			v = rep(v)
		}
		out[k] = v
	}
	return out
}

// routeBackend is a backend used only to route paths and read schemas.
var routeBackend = sync.OnceValue(func() *backend {
	return newBackend(&logical.BackendConfig{})
})

// checkPathOutcome asserts the properties of one request.
func checkPathOutcome(t *testing.T, m *pathFuzzMount, in pathRequest, out pathOutcome) {
	t.Helper()
	if out.skipped {
		return
	}
	in.data, _ = grpcData(in.data)
	where := fmt.Sprintf("%s %q %s", in.op, in.path, describeData(in.data))
	if out.status >= 500 {
		t.Errorf("%s: status %d (%s); a client's request against a healthy org must never get a 5xx", where, out.status, out.message)
	}
	if out.status >= 400 {
		var diffs []string
		for k, v := range out.before {
			if w, ok := out.after[k]; !ok {
				diffs = append(diffs, "deleted "+k)
			} else if w != v && !loginBookkeeping(out, k, v, w) {
				diffs = append(diffs, "changed "+k)
			}
		}
		for k, w := range out.after {
			if _, ok := out.before[k]; !ok && !loginBookkeeping(out, k, "", w) {
				diffs = append(diffs, "added "+k)
			}
		}
		sort.Strings(diffs)
		if len(diffs) > 0 {
			t.Errorf("%s: refused with %d but storage changed: %s", where, out.status, strings.Join(diffs, ", "))
		}
	}
	if in.op == logical.UpdateOperation && out.status < 300 {
		for _, bad := range disallowedValues(in.path, in.data) {
			t.Errorf("%s: accepted with %d although %s", where, out.status, bad)
		}
	}
	text := out.text
	for _, v := range out.legit {
		text = strings.ReplaceAll(text, v, "[creds]")
	}
	for _, s := range m.secrets {
		if strings.Contains(text, s) {
			t.Errorf("%s: a stored secret (%.4s…) is in what the client or the audit log sees: %.600s", where, s, text)
		}
		if strings.Contains(out.logs, s) {
			t.Errorf("%s: a stored secret (%.4s…) is in the plugin's log: %.600s", where, s, out.logs)
		}
	}
	if strings.Contains(out.logs, fuzzSessionPrefix) {
		t.Errorf("%s: a session id is in the plugin's log: %.600s", where, out.logs)
	}
	rb := routeBackend()
	for _, v := range sensitiveValues(rb, in.path, in.data) {
		if !strings.Contains(out.text, v) && !strings.Contains(out.logs, v) {
			continue
		}
		// Confirm it is an echo, not a coincidence: the same request
		// with another value in its place must show that value.
		marker := "Zq7Marker0echo1"
		if _, err := strconv.ParseFloat(v, 64); err == nil {
			marker = "48151623420"
		}
		again := runPathRequest(t, m, pathRequest{op: in.op, path: in.path, data: replaceSensitive(rb, in.path, in.data, v, marker)})
		if strings.Contains(again.text, marker) {
			t.Errorf("%s: the value of a sensitive field is echoed to the client or the audit log: %.600s", where, again.text)
		}
		if strings.Contains(again.logs, marker) {
			t.Errorf("%s: the value of a sensitive field is in the plugin's log: %.600s", where, again.logs)
		}
	}
}

// disallowedValues lists the fields of data whose value is a string
// outside the field's AllowedValues. The SDK only documents AllowedValues;
// a handler that stores such a value has accepted a client's mistake.
func disallowedValues(path string, data map[string]interface{}) []string {
	p := routeBackend().Route(path)
	if p == nil {
		return nil
	}
	var out []string
	for k, v := range data {
		f := p.Fields[k]
		s, ok := v.(string)
		if f == nil || len(f.AllowedValues) == 0 || !ok || strings.TrimSpace(s) == "" {
			continue
		}
		allowed := false
		for _, a := range f.AllowedValues {
			if as, _ := a.(string); strings.EqualFold(strings.TrimSpace(s), as) {
				allowed = true
			}
		}
		if !allowed {
			out = append(out, fmt.Sprintf("%s=%q is not one of %v", k, s, f.AllowedValues))
		}
	}
	sort.Strings(out)
	return out
}

// loginBudgetPrefix is where the login budget keeps its counts (issue 9:
// they survive restarts); refusals that logged in may write there.
const loginBudgetPrefix = "login-budget/"

// loginBookkeeping reports whether a key changed only as the login budget
// records logins, the one change a refused request that logged in may
// make (issue 9: a refused request changes no count except to add its
// failure): a login-budget entry when the org saw a login, or an
// account's failed_logins going up when the org rejected one.
func loginBookkeeping(out pathOutcome, key, before, after string) bool {
	if strings.HasPrefix(key, loginBudgetPrefix) {
		return out.logins > 0
	}
	if out.rejectedLogins == 0 || !strings.HasPrefix(key, accountStoragePrefix) {
		return false
	}
	var b, a map[string]interface{}
	if json.Unmarshal([]byte(before), &b) != nil || json.Unmarshal([]byte(after), &a) != nil {
		return false
	}
	nb, _ := b["failed_logins"].(float64)
	na, _ := a["failed_logins"].(float64)
	if na <= nb {
		return false
	}
	delete(b, "failed_logins")
	delete(a, "failed_logins")
	bj, _ := json.Marshal(b)
	aj, _ := json.Marshal(a)
	return bytes.Equal(bj, aj)
}

// describeData renders data compactly for messages.
func describeData(data map[string]interface{}) string {
	if data == nil {
		return "{}"
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(data); err != nil {
		return fmt.Sprintf("%v", data)
	}
	s := strings.TrimSpace(buf.String())
	if len(s) > 300 {
		s = s[:300] + "…"
	}
	return s
}

// decodeFuzzBody turns a fuzz input's body into request data: a JSON
// object as Vault's HTTP layer decodes it (numbers stay json.Number), or,
// for anything else, data built from the bytes by fuzzData.
func decodeFuzzBody(path string, body []byte) map[string]interface{} {
	if len(bytes.TrimSpace(body)) == 0 {
		return nil
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	var data map[string]interface{}
	if err := dec.Decode(&data); err == nil && !dec.More() {
		return data
	}
	return fuzzData(path, body)
}

// fuzzData reads bytes as a small program that builds request data: each
// field is a key byte (a field of the routed path, or a free name that
// follows), a type byte and the value's bytes. It reaches every field of
// every path with every JSON type, size and character.
func fuzzData(path string, b []byte) map[string]interface{} {
	var names []string
	if p := routeBackend().Route(path); p != nil {
		for k := range p.Fields {
			names = append(names, k)
		}
		sort.Strings(names)
	}
	next := func() byte {
		if len(b) == 0 {
			return 0
		}
		c := b[0]
		b = b[1:]
		return c
	}
	str := func() string {
		n := int(next()) % 48
		n = min(n, len(b))
		s := string(b[:n])
		b = b[n:]
		return s
	}
	data := map[string]interface{}{}
	for len(b) > 0 && len(data) < 12 {
		var key string
		if k := next(); k < 224 && len(names) > 0 {
			key = names[int(k)%len(names)]
		} else {
			key = str()
		}
		var v interface{}
		switch next() % 10 {
		case 0:
			v = str()
		case 1:
			v = strings.Repeat(str()+"x", 1+int(next())*40)
		case 2:
			v = json.Number([]string{"0", "-1", "1.5", "1e309", "99999999999999999999", "86400", "-0", "3600"}[next()%8])
		case 3:
			v = next()%2 == 0
		case 4:
			v = nil
		case 5:
			v = map[string]interface{}{str(): str()}
		case 6:
			v = []interface{}{str(), json.Number("7")}
		case 7:
			v = "\x00\u202e" + str() + "\r\n\t\u00e9\u4e2d\U0001F600"
		case 8:
			v = "../" + str() + "%2F.."
		default:
			v = map[string]interface{}{}
		}
		data[key] = sanitizeFuzzValue(key, v)
	}
	return data
}

// sanitizeFuzzValue keeps webhook deliveries on the machine: a webhook
// field's URL is pointed at a closed loopback port.
func sanitizeFuzzValue(key string, v interface{}) interface{} {
	s, ok := v.(string)
	if !ok || !strings.Contains(key, "webhook") {
		return v
	}
	u, err := url.Parse(s)
	if err != nil || u.Host == "" {
		return v
	}
	u.Host = "127.0.0.1:9"
	return u.String()
}

// fuzzPathExamples names one request path for every path pattern of the
// backend; TestFuzzPathsCoverEveryPattern keeps it complete.
var fuzzPathExamples = []string{
	"config", "config/rotation", "config/jwt-key", "config/jwt-key/rotate", "config/jwt-key/confirm",
	"accounts", "accounts/", "accounts/team-a/", "accounts/etl", "accounts/team-a/etl", "accounts/self",
	"accounts/etl/security-token", "accounts/etl/diagnose", "creds/etl", "creds/team-a/etl",
	"roles", "roles/", "roles/jwt", "roles/pw", "token/jwt", "token/cc", "token/pw", "token/rt",
	"rotate/etl", "rotate/self", "rotate-root", "rotate-client-secret",
	"login-report", "accounts/etl/login-report",
}

// fuzzValidBodies are well-formed bodies per path, so mutations start
// from requests the handlers accept.
var fuzzValidBodies = map[string]string{
	"config":                      `{"client_secret":"Rotated-Client-Secret-1","verify":false}`,
	"config/rotation":             `{"password_length":24,"max_failed_logins":2,"webhook_secret":"New-Webhook-Secret-22"}`,
	"config/jwt-key/rotate":       `{"common_name":"vault-fuzz","certificate_ttl":"720h"}`,
	"accounts/etl":                `{"password":"Fresh-Etl-Pass-33","verify":false,"description":"x"}`,
	"accounts/new":                `{"username":"user@fake.test","password":"Brand-New-Pass-44","security_token":"NEWTOKEN000","verify":false}`,
	"accounts/etl/security-token": `{"security_token":"FAKEETLTOKEN0000000"}`,
	"roles/new":                   `{"grant_type":"jwt_bearer","username":"etl@fake.test","scopes":"api,refresh_token","ttl":"1h"}`,
	"roles/rt":                    `{"refresh_token":"5AepAnotherRefresh000"}`,
	"rotate/etl":                  `{"force":true}`,
}

func FuzzPathRequests(f *testing.F) {
	m := fuzzMount(f)
	for _, p := range fuzzPathExamples {
		for i := range fuzzOps {
			f.Add(uint8(i), p, []byte(nil))
		}
	}
	for p, body := range fuzzValidBodies {
		f.Add(uint8(1), p, []byte(body))
	}
	for _, c := range pathFuzzCases {
		f.Add(c.opIndex(), c.path, c.body())
	}
	f.Fuzz(func(t *testing.T, op uint8, path string, body []byte) {
		in := pathRequest{op: fuzzOps[int(op)%len(fuzzOps)], path: path, data: decodeFuzzBody(path, body)}
		checkPathOutcome(t, m, in, runPathRequest(t, m, in))
	})
}

// TestFuzzPathsCoverEveryPattern fails when a path pattern has no example
// in fuzzPathExamples, so a new path is fuzzed from its first day.
func TestFuzzPathsCoverEveryPattern(t *testing.T) {
	b := routeBackend()
	for _, p := range b.Paths {
		covered := false
		for _, ex := range fuzzPathExamples {
			if b.Route(ex) == p {
				covered = true
				break
			}
		}
		if !covered {
			t.Errorf("no example in fuzzPathExamples for pattern %q", p.Pattern)
		}
	}
}
