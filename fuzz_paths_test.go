package salesforce

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/url"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/hashicorp/vault/sdk/helper/errutil"
	"github.com/hashicorp/vault/sdk/logical"
	"github.com/hashicorp/vault/sdk/plugin/pb"

	"github.com/vault-salesforce/vault-plugin-secrets-salesforce/emulator"
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

var _ Client = fuzzOrg{}

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
