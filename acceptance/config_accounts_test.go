package acceptance

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"
)

// pluginPath is one path of the engine as an operator sees it: in the
// OpenAPI document (sys/internal/specs/openapi) and in `vault path-help`.
type pluginPath struct {
	// OpenAPI is the path below the mount as the OpenAPI document names it,
	// e.g. "accounts/{name}".
	OpenAPI string
	// Example is a concrete path for `vault path-help`, e.g. "accounts/demo".
	Example string
	// Fields are the parameters the document and path-help must describe.
	Fields []string
}

// pluginPaths lists every path the engine serves. A feature that adds a
// path adds a line here; TestOpenAPIDocumentsEveryPath and
// TestPathHelpForEveryPath then check it in a real Vault.
var pluginPaths = []pluginPath{
	{OpenAPI: "config", Example: "config", Fields: []string{
		"login_url", "allow_non_salesforce_url", "api_version", "soap_api_version",
		"client_id", "client_secret", "private_key", "username", "grant_type",
		"password", "security_token", "ca_cert", "request_timeout", "verify",
		"app_type", "app_developer_name",
	}},
	{OpenAPI: "accounts/{name}", Example: "accounts/demo", Fields: []string{
		"name", "username", "password", "security_token", "description", "verify",
	}},
	{OpenAPI: "creds/{name}", Example: "creds/demo", Fields: []string{"name"}},
	{OpenAPI: "roles/{name}", Example: "roles/demo", Fields: []string{
		"name", "grant_type", "account", "username", "scopes", "refresh_token",
		"ttl", "max_ttl", "session_timeout", "revoke_on_lease_end", "cache",
	}},
	{OpenAPI: "token/{name}", Example: "token/demo", Fields: []string{"name"}},
	{OpenAPI: "config/jwt-key", Example: "config/jwt-key", Fields: []string{"common_name", "private_key", "certificate_ttl"}},
	{OpenAPI: "config/jwt-key/rotate", Example: "config/jwt-key/rotate", Fields: []string{"common_name", "private_key", "certificate_ttl"}},
	{OpenAPI: "config/jwt-key/confirm", Example: "config/jwt-key/confirm"},
	{OpenAPI: "rotate/{name}", Example: "rotate/demo", Fields: []string{"name"}},
	{OpenAPI: "rotate-root", Example: "rotate-root"},
	{OpenAPI: "config/rotation", Example: "config/rotation", Fields: []string{
		"password_policy", "skip_import_rotation", "max_concurrent_rotations", "requests_per_minute",
		"failure_backoff_cap", "login_budget_per_hour", "min_password_lifetime", "webhook_url", "webhook_secret",
	}},
	{OpenAPI: "accounts/{name}/security-token", Example: "accounts/demo/security-token", Fields: []string{"name", "security_token"}},
	{OpenAPI: "accounts/{name}/diagnose", Example: "accounts/demo/diagnose", Fields: []string{"name"}},
	{OpenAPI: "accounts/{name}/login-report", Example: "accounts/demo/login-report", Fields: []string{"name", "days"}},
	{OpenAPI: "login-report", Example: "login-report", Fields: []string{"days"}},
	{OpenAPI: "rotate-client-secret", Example: "rotate-client-secret"},
}

// secretValuesIn fails the test if out contains any of the values.
func assertNoSecrets(t *testing.T, what, out string, values ...string) {
	t.Helper()
	for _, v := range values {
		if strings.Contains(out, v) {
			t.Errorf("%s shows a secret (%.4s…):\n%s", what, v, out)
		}
	}
}

func data(t *testing.T, resp map[string]any) map[string]any {
	t.Helper()
	d, ok := resp["data"].(map[string]any)
	if !ok {
		t.Fatalf("response has no data object: %v", resp)
	}
	return d
}

// TestConfigAccountsCredsCLI drives config, accounts and creds through the
// vault CLI the way the README's tour does, against the emulator's demo org.
func TestConfigAccountsCredsCLI(t *testing.T) {
	mount := mountPlugin(t, versionOld)
	configureEmulatorAdmin(t, mount)
	allSecrets := []string{demoClientSecret, demoAdminPassword, demoAdminToken, demoIntegPassword, demoIntegToken, demoTrustedPasswd}

	// config: shows where the engine logs in, never a secret.
	cfgJSON := vaultJSON(t, "read", mount+"/config")
	cfg := data(t, cfgJSON)
	if cfg["login_url"] != emulatorURL(t) || cfg["username"] != demoAdminUser || cfg["client_id"] != demoClientID || cfg["grant_type"] != "password" {
		t.Errorf("vault read %s/config = %v; want the emulator URL, %s, %s and the password grant", mount, cfg, demoAdminUser, demoClientID)
	}
	if cfg["client_secret_set"] != true || cfg["password_set"] != true || cfg["security_token_set"] != true {
		t.Errorf("vault read %s/config does not say the admin secrets are set: %v", mount, cfg)
	}
	assertNoSecrets(t, "vault read config -format=json", mustJSON(t, cfgJSON), allSecrets...)
	assertNoSecrets(t, "vault read config", vaultCLI(t, "read", mount+"/config"), allSecrets...)

	// accounts/demo: the write logs in with the credential; reads hide it.
	vaultWriteJSON(t, mount+"/accounts/demo", map[string]any{
		"username":       demoIntegUser,
		"password":       demoIntegPassword,
		"security_token": demoIntegToken,
		"description":    "acceptance demo",
	})
	acct := data(t, vaultJSON(t, "read", mount+"/accounts/demo"))
	if acct["username"] != demoIntegUser || acct["security_token_set"] != true || acct["description"] != "acceptance demo" {
		t.Errorf("vault read %s/accounts/demo = %v", mount, acct)
	}
	if id, _ := acct["user_id"].(string); !strings.HasPrefix(id, "005") || len(id) != 18 {
		t.Errorf("accounts/demo user_id = %q, want the 18-character Salesforce user id (005...)", id)
	}
	assertNoSecrets(t, "vault read accounts/demo", vaultCLI(t, "read", mount+"/accounts/demo"), allSecrets...)
	assertNoSecrets(t, "vault read accounts/demo -format=json", mustJSON(t, acct), allSecrets...)

	// creds/demo: the credential an application logs in with.
	creds := data(t, vaultJSON(t, "read", mount+"/creds/demo"))
	if creds["username"] != demoIntegUser || creds["password"] != demoIntegPassword || creds["security_token"] != demoIntegToken {
		t.Errorf("vault read %s/creds/demo: username=%v, password and token match: %v %v", mount, creds["username"],
			creds["password"] == demoIntegPassword, creds["security_token"] == demoIntegToken)
	}
	if creds["password_with_token"] != demoIntegPassword+demoIntegToken {
		t.Errorf("creds/demo password_with_token is not the password followed by the token")
	}
	if creds["login_url"] != emulatorURL(t) {
		t.Errorf("creds/demo login_url = %v, want %s", creds["login_url"], emulatorURL(t))
	}
	pwt, _ := creds["password_with_token"].(string)
	if status, ok, body := soapLogin(t, demoIntegUser, pwt); !ok {
		t.Errorf("SOAP login with the served password_with_token failed: HTTP %d\n%s", status, body)
	}
	// From 127.0.0.1 the org requires the token: the composed string matters.
	if status, ok, _ := soapLogin(t, demoIntegUser, demoIntegPassword); ok || status == http.StatusOK {
		t.Errorf("SOAP login with the password alone succeeded (HTTP %d); the emulator should require the security token", status)
	}

	// A wrong password is refused with Salesforce's code, and nothing is stored.
	// (A user not stored yet: one Salesforce user is stored only once.)
	msg := vaultCLIFails(t, "write", mount+"/accounts/wrong", "username="+demoTrustedUser, "password=Not-The-Password-1")
	if !strings.Contains(msg, "INVALID_LOGIN") {
		t.Errorf("writing a wrong password did not fail with INVALID_LOGIN: %s", msg)
	}
	assertNoSecrets(t, "the error for a wrong password", msg, "Not-The-Password-1")
	noteSecret("Not-The-Password-1")
	vaultCLIFails(t, "read", mount+"/accounts/wrong")
	if got := vaultJSONAs[[]string](t, "list", mount+"/accounts"); slices.Contains(got, "wrong") {
		t.Errorf("a refused account was stored: vault list = %v", got)
	}

	// A nested name, for a user whose profile trusts 127.0.0.0/8 (no token),
	// written with key=value arguments as in the README.
	vaultCLI(t, "write", mount+"/accounts/team-a/etl", "username="+demoTrustedUser, "password="+demoTrustedPasswd)
	if got := vaultJSONAs[[]string](t, "list", mount+"/accounts"); !slices.Equal(got, []string{"demo", "team-a/"}) {
		t.Errorf("vault list %s/accounts = %v, want [demo team-a/]", mount, got)
	}
	if got := vaultJSONAs[[]string](t, "list", mount+"/accounts/team-a"); !slices.Equal(got, []string{"etl"}) {
		t.Errorf("vault list %s/accounts/team-a = %v, want [etl]", mount, got)
	}
	nested := data(t, vaultJSON(t, "read", mount+"/creds/team-a/etl"))
	if nested["username"] != demoTrustedUser || nested["security_token"] != "" || nested["password_with_token"] != demoTrustedPasswd {
		t.Errorf("creds/team-a/etl: username=%v, token empty=%v, password_with_token is the bare password=%v",
			nested["username"], nested["security_token"] == "", nested["password_with_token"] == demoTrustedPasswd)
	}
	if status, ok, body := soapLogin(t, demoTrustedUser, demoTrustedPasswd); !ok {
		t.Errorf("SOAP login as the trusted user failed: HTTP %d\n%s", status, body)
	}

	// Delete.
	vaultCLI(t, "delete", mount+"/accounts/team-a/etl")
	vaultCLIFails(t, "read", mount+"/accounts/team-a/etl")
	msg = vaultCLIFails(t, "read", mount+"/creds/team-a/etl")
	if !strings.Contains(msg, "team-a/etl") {
		t.Errorf("reading creds of a deleted account failed without naming it: %s", msg)
	}
	if got := vaultJSONAs[[]string](t, "list", mount+"/accounts"); !slices.Equal(got, []string{"demo"}) {
		t.Errorf("after delete, vault list %s/accounts = %v, want [demo]", mount, got)
	}
}

// TestConfigAccountsCredsAPI does the same through the Go API client, as an
// application would.
func TestConfigAccountsCredsAPI(t *testing.T) {
	mount := mountPlugin(t, versionOld)
	client := apiClient(t)
	logical := client.Logical()

	if _, err := logical.Write(mount+"/config", map[string]any{
		"login_url":                emulatorURL(t),
		"allow_non_salesforce_url": true,
		"client_id":                demoClientID,
		"client_secret":            demoClientSecret,
		"grant_type":               "password",
		"username":                 demoAdminUser,
		"password":                 demoAdminPassword,
		"security_token":           demoAdminToken,
	}); err != nil {
		t.Fatalf("write config: %v", err)
	}
	if _, err := logical.Write(mount+"/accounts/ops/app1", map[string]any{
		"username":       demoIntegUser,
		"password":       demoIntegPassword,
		"security_token": demoIntegToken,
	}); err != nil {
		t.Fatalf("write accounts/ops/app1: %v", err)
	}

	list, err := logical.List(mount + "/accounts/ops")
	if err != nil || list == nil {
		t.Fatalf("list accounts/ops: %v %v", list, err)
	}
	if keys := fmt.Sprint(list.Data["keys"]); keys != "[app1]" {
		t.Errorf("list accounts/ops keys = %s, want [app1]", keys)
	}

	secret, err := logical.Read(mount + "/creds/ops/app1")
	if err != nil || secret == nil {
		t.Fatalf("read creds/ops/app1: %v %v", secret, err)
	}
	if secret.LeaseID != "" || secret.Renewable {
		t.Errorf("creds are served as a lease (%q, renewable %v); the stored credential is static", secret.LeaseID, secret.Renewable)
	}
	pwt, _ := secret.Data["password_with_token"].(string)
	if status, ok, body := soapLogin(t, demoIntegUser, pwt); !ok {
		t.Errorf("SOAP login with the API-served password_with_token failed: HTTP %d\n%s", status, body)
	}
	// The emulator's own record agrees with what Vault serves.
	if emu := emulatorServer(t); secret.Data["password"] != emu.Password(demoIntegUser) {
		t.Errorf("creds password differs from the emulator's current password for %s", demoIntegUser)
	}

	if _, err := logical.Delete(mount + "/accounts/ops/app1"); err != nil {
		t.Fatalf("delete: %v", err)
	}
	if got, err := logical.Read(mount + "/accounts/ops/app1"); err != nil || got != nil {
		t.Errorf("read after delete = %v, %v; want nothing", got, err)
	}
}

// TestUpgradeKeepsAccounts: data written by one plugin version is served by
// the next after `secrets tune -plugin-version` and a reload of the mount.
func TestUpgradeKeepsAccounts(t *testing.T) {
	mount := mountPlugin(t, versionOld)
	registerPlugin(t, versionNew)
	configureEmulatorAdmin(t, mount)
	vaultWriteJSON(t, mount+"/accounts/keep", map[string]any{
		"username": demoIntegUser, "password": demoIntegPassword, "security_token": demoIntegToken,
	})

	vaultCLI(t, "secrets", "tune", "-plugin-version="+versionNew, mount+"/")
	vaultCLI(t, "plugin", "reload", "-mounts="+mount+"/")
	m := secretsList(t)[mount+"/"]
	if m.RunningPluginVersion != versionNew || m.RunningSHA256 != plugin(t, versionNew).SHA256 {
		t.Fatalf("after tune and reload, %s/ runs %q (sha256 %s), want %s", mount, m.RunningPluginVersion, m.RunningSHA256, versionNew)
	}
	creds := data(t, vaultJSON(t, "read", mount+"/creds/keep"))
	if creds["username"] != demoIntegUser || creds["password_with_token"] != demoIntegPassword+demoIntegToken {
		t.Errorf("after the upgrade creds/keep serves username=%v and a different credential", creds["username"])
	}
	if cfg := data(t, vaultJSON(t, "read", mount+"/config")); cfg["login_url"] != emulatorURL(t) {
		t.Errorf("after the upgrade config login_url = %v", cfg["login_url"])
	}
}

// TestPathHelpForEveryPath: `vault path-help` explains each path and its
// fields.
func TestPathHelpForEveryPath(t *testing.T) {
	mount := mountPlugin(t, versionOld)
	for _, p := range pluginPaths {
		t.Run(p.Example, func(t *testing.T) {
			out := vaultCLI(t, "path-help", mount+"/"+p.Example)
			if !strings.Contains(out, "## DESCRIPTION") || len(out) < 200 {
				t.Errorf("vault path-help %s/%s is too thin:\n%s", mount, p.Example, out)
			}
			for _, f := range p.Fields {
				// path-help lists each field as an indented "name (type)" line.
				if !regexp.MustCompile(`(?m)^\s+` + regexp.QuoteMeta(f) + ` \(`).MatchString(out) {
					t.Errorf("vault path-help %s/%s does not describe the field %s", mount, p.Example, f)
				}
			}
		})
	}
}

// openAPIDoc is the part of Vault's OpenAPI document the test reads.
type openAPIDoc struct {
	Paths      map[string]openAPIPath `json:"paths"`
	Components struct {
		Schemas map[string]openAPISchema `json:"schemas"`
	} `json:"components"`
}

type openAPIPath struct {
	Description string             `json:"description"`
	Parameters  []openAPIParameter `json:"parameters"`
	Get         *openAPIOperation  `json:"get"`
	Post        *openAPIOperation  `json:"post"`
	Delete      *openAPIOperation  `json:"delete"`
}

type openAPIOperation struct {
	Summary     string             `json:"summary"`
	Parameters  []openAPIParameter `json:"parameters"`
	RequestBody *struct {
		Content map[string]struct {
			Schema openAPISchema `json:"schema"`
		} `json:"content"`
	} `json:"requestBody"`
}

type openAPIParameter struct {
	Name string `json:"name"`
}

type openAPISchema struct {
	Ref        string                     `json:"$ref"`
	Properties map[string]json.RawMessage `json:"properties"`
}

// requestSchema returns the request body schema of a path's write
// operation, following a $ref into the components, and the $ref's name.
func (d *openAPIDoc) requestSchema(p openAPIPath) (openAPISchema, string) {
	for _, op := range []*openAPIOperation{p.Post, p.Get, p.Delete} {
		if op == nil || op.RequestBody == nil {
			continue
		}
		for _, c := range op.RequestBody.Content {
			if ref, ok := strings.CutPrefix(c.Schema.Ref, "#/components/schemas/"); ok {
				return d.Components.Schemas[ref], ref
			}
			return c.Schema, ""
		}
	}
	return openAPISchema{}, ""
}

// parameterNames lists a path's path and query parameters.
func (p openAPIPath) parameterNames() []string {
	var names []string
	for _, prm := range p.Parameters {
		names = append(names, prm.Name)
	}
	for _, op := range []*openAPIOperation{p.Get, p.Post, p.Delete} {
		if op != nil {
			for _, prm := range op.Parameters {
				names = append(names, prm.Name)
			}
		}
	}
	return names
}

func fetchOpenAPI(t *testing.T, path string, query map[string]string) []byte {
	t.Helper()
	client := apiClient(t)
	req := client.NewRequest(http.MethodGet, "/v1/"+path)
	for k, v := range query {
		req.Params.Set(k, v)
	}
	resp, err := client.RawRequest(req)
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return body
}

// TestOpenAPIDocumentsEveryPath: Vault's OpenAPI document (used by the UI
// and API clients) lists every engine path with its fields.
//
// Vault 1.13 drops the $ref that links an external plugin's path to its
// request schema when it merges the plugin's document (the schemas
// themselves are kept in components). The link is therefore taken from the
// plugin's own document for the path (GET <path>?help=1), and the fields are
// then checked in Vault's document.
func TestOpenAPIDocumentsEveryPath(t *testing.T) {
	mount := mountPlugin(t, versionOld)
	var doc openAPIDoc
	if err := json.Unmarshal(fetchOpenAPI(t, "sys/internal/specs/openapi", nil), &doc); err != nil {
		t.Fatalf("decoding the OpenAPI document: %v", err)
	}

	var mountPaths []string
	for p := range doc.Paths {
		if strings.HasPrefix(p, "/"+mount+"/") {
			mountPaths = append(mountPaths, strings.TrimPrefix(p, "/"+mount+"/"))
		}
	}
	sort.Strings(mountPaths)
	for _, want := range pluginPaths {
		t.Run(want.OpenAPI, func(t *testing.T) {
			key := "/" + mount + "/" + want.OpenAPI
			p, ok := doc.Paths[key]
			if !ok {
				t.Fatalf("the OpenAPI document has no %s; paths of the mount: %v", key, mountPaths)
			}
			if p.Description == "" {
				t.Errorf("OpenAPI %s has no description", key)
			}
			documented := p.parameterNames()
			schema, _ := doc.requestSchema(p)
			if len(schema.Properties) == 0 {
				var help struct {
					OpenAPI openAPIDoc `json:"openapi"`
				}
				if err := json.Unmarshal(fetchOpenAPI(t, mount+"/"+want.Example, map[string]string{"help": "1"}), &help); err != nil {
					t.Fatalf("decoding %s/%s?help=1: %v", mount, want.Example, err)
				}
				if own, ok := help.OpenAPI.Paths["/"+want.OpenAPI]; ok {
					if _, ref := help.OpenAPI.requestSchema(own); ref != "" {
						var inVault bool
						schema, inVault = doc.Components.Schemas[ref]
						if !inVault {
							t.Errorf("the plugin documents %s with the schema %s, which Vault's document lacks", want.OpenAPI, ref)
						}
					}
				}
			}
			for name := range schema.Properties {
				documented = append(documented, name)
			}
			for _, f := range want.Fields {
				if !slices.Contains(documented, f) {
					sort.Strings(documented)
					t.Errorf("OpenAPI %s does not document the field %s (documents %v)", key, f, documented)
				}
			}
		})
	}
}

func mustJSON(t testing.TB, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
