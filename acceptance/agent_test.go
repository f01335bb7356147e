package acceptance

import (
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/vault-salesforce/vault-plugin-secrets-salesforce/emulator"
)

// Vault Agent and the example application (docs/applications.md): the test
// types the guide's commands, in the guide's order, into a directory laid
// out like the repository root (examples/ and go.mod linked in), against
// the suite's Vault with the plugin mounted at salesforce/, the path the
// example templates and policy name.

const (
	appUser     = emulator.DemoAppUsername
	appPassword = "App-Pass-1234"
	appGuide    = "docs/applications.md"
)

func init() { noteSecret(appPassword) }

// mountAtSalesforce enables the plugin at salesforce/ (what the example
// files name) with a config on the org's My Domain host, so that the
// client_credentials role of the guide works as under `make dev`.
func mountAtSalesforce(t *testing.T) {
	t.Helper()
	registerPlugin(t, versionNew)
	vaultCLI(t, "secrets", "enable", "-path=salesforce", "-plugin-version="+versionNew, pluginName)
	t.Cleanup(func() {
		if r := runVault(t, nil, "", "secrets", "disable", "salesforce/"); r.Err != nil {
			t.Errorf("cleanup: vault secrets disable salesforce/: %v\n%s", r.Err, r.Stderr)
		}
	})
	vaultWriteJSON(t, "salesforce/config", map[string]any{
		"login_url":                emulatorServer(t).MyDomainURL(),
		"allow_non_salesforce_url": true,
		"client_id":                demoClientID,
		"client_secret":            demoClientSecret,
		"grant_type":               "password",
		"username":                 demoAdminUser,
		"password":                 demoAdminPassword,
		"security_token":           demoAdminToken,
	})
}

// restoreAppUser puts the demo app user's password back when the test
// ends: the emulator is shared by the whole suite and the test rotates it.
func restoreAppUser(t *testing.T) {
	t.Helper()
	emu := emulatorServer(t)
	t.Cleanup(func() {
		emu.SetUserState(appUser, func(u *emulator.User) {
			u.Password = appPassword
			u.PasswordExpired = false
			u.IsPasswordLocked = false
			u.FailedLoginAttempts = 0
		})
	})
}

// The guide's commands, in order, exactly as docs/applications.md shows
// them. TestAgentRendersCredsAndTokenAcrossRotation types each of them.
const (
	cmdMkdir        = "mkdir -p .dev/agent"
	cmdPolicy       = "vault policy write salesforce-app examples/agent/app-policy.hcl"
	cmdAuthEnable   = "vault auth enable approle"
	cmdAppRole      = "vault write auth/approle/role/salesforce-app token_policies=salesforce-app token_ttl=1h token_max_ttl=24h"
	cmdRoleID       = "vault read -field=role_id auth/approle/role/salesforce-app/role-id > .dev/agent/role-id"
	cmdSecretID     = "vault write -f -field=secret_id auth/approle/role/salesforce-app/secret-id > .dev/agent/secret-id"
	cmdAccount      = "vault write salesforce/accounts/app username=app@acme.demo password=App-Pass-1234 security_token_mode=not_required"
	cmdRole         = "vault write salesforce/roles/app grant_type=client_credentials ttl=10s max_ttl=10m"
	cmdAgent        = "vault agent -config=examples/agent/agent.hcl > .dev/agent/agent.log 2>&1 &"
	cmdWaitRender   = "until [ -s .dev/agent/creds.json ] && [ -s .dev/agent/token.json ]; do sleep 1; done"
	cmdCatCreds     = "cat .dev/agent/creds.json"
	cmdBuildApp     = "go build -o .dev/bin/agent-app ./examples/agent-app"
	cmdOnceCreds    = "SF_CLIENT_ID=3MVG9demoClientId SF_CLIENT_SECRET=demo-client-secret .dev/bin/agent-app -once -creds .dev/agent/creds.json"
	cmdOnceToken    = ".dev/bin/agent-app -once -token .dev/agent/token.json"
	cmdAppCreds     = "SF_CLIENT_ID=3MVG9demoClientId SF_CLIENT_SECRET=demo-client-secret .dev/bin/agent-app -creds .dev/agent/creds.json > .dev/agent/app-creds.log 2>&1 & echo $! > .dev/agent/app-creds.pid"
	cmdAppToken     = ".dev/bin/agent-app -token .dev/agent/token.json > .dev/agent/app-token.log 2>&1 & echo $! > .dev/agent/app-token.pid"
	cmdLeaseLookup  = "vault lease lookup salesforce/token/app/$(vault list sys/leases/lookup/salesforce/token/app | tail -n 1)"
	cmdRotate       = "vault write -f salesforce/rotate/app"
	cmdWaitRotation = `until grep -q '"version": 1' .dev/agent/creds.json; do sleep 1; done`
	cmdWaitAppLog   = "until grep -q 'credential version 1' .dev/agent/app-creds.log; do sleep 1; done"
	cmdAppLog       = "cat .dev/agent/app-creds.log"
	cmdDenyCreds    = "VAULT_TOKEN=$(vault token create -policy=salesforce-app -ttl=10m -field=token) vault read salesforce/creds/demo"
	cmdDenyList     = "VAULT_TOKEN=$(vault token create -policy=salesforce-app -ttl=10m -field=token) vault list salesforce/accounts"
	cmdAllowCreds   = "VAULT_TOKEN=$(vault token create -policy=salesforce-app -ttl=10m -field=token) vault read -field=username salesforce/creds/app"
	cmdStop         = "kill $(cat .dev/agent/agent.pid) $(cat .dev/agent/app-creds.pid) $(cat .dev/agent/app-token.pid)"
)

type renderedCreds struct {
	LoginURL          string `json:"login_url"`
	Username          string `json:"username"`
	PasswordWithToken string `json:"password_with_token"`
	Version           int    `json:"version"`
}

type renderedToken struct {
	InstanceURL string `json:"instance_url"`
	AccessToken string `json:"access_token"`
	ExpiresAt   string `json:"expires_at"`
}

func decodeRendered[T any](t *testing.T, g *guide, name string) T {
	t.Helper()
	var v T
	if err := json.Unmarshal([]byte(g.read(name)), &v); err != nil {
		t.Fatalf("%s is not the JSON the template describes: %v", name, err)
	}
	return v
}

type leaseInfo struct {
	ExpireTime  time.Time `json:"expire_time"`
	IssueTime   time.Time `json:"issue_time"`
	LastRenewal time.Time `json:"last_renewal"`
	TTL         int       `json:"ttl"`
}

func lookupLease(t *testing.T, id string) leaseInfo {
	t.Helper()
	var out struct {
		Data leaseInfo `json:"data"`
	}
	raw := vaultJSON(t, "lease", "lookup", id)
	b, _ := json.Marshal(raw)
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatalf("vault lease lookup %s: %v\n%s", id, err, b)
	}
	return out.Data
}

// TestAgentRendersCredsAndTokenAcrossRotation runs docs/applications.md: a
// real `vault agent` with AppRole auto-auth renders creds/app and token/app
// through the example templates; it renews the token's lease; after a
// rotation it renders the new password on its static_secret_render_interval;
// the example application (go-salesforce) keeps running queries across the
// rotation, logging in again with the new password, without one failed
// login. No secret reaches the agent's or the app's log.
func TestAgentRendersCredsAndTokenAcrossRotation(t *testing.T) {
	need(t)
	emu := emulatorServer(t)
	restoreAppUser(t)
	mountAtSalesforce(t)
	t.Cleanup(func() {
		// The suite's Vault outlives this test: leave no auth method or policy.
		for _, args := range [][]string{{"auth", "disable", "approle"}, {"policy", "delete", "salesforce-app"}} {
			if r := runVault(t, nil, "", args...); r.Err != nil {
				t.Errorf("cleanup: vault %s: %v\n%s", strings.Join(args, " "), r.Err, r.Stderr)
			}
		}
	})
	g := newGuide(t)
	started := time.Now()

	// Set up: policy, AppRole, the account and the token role.
	for _, c := range []string{cmdMkdir, cmdPolicy, cmdAuthEnable, cmdAppRole, cmdRoleID, cmdSecretID, cmdAccount, cmdRole} {
		g.run(c, time.Minute)
	}
	noteSecret(strings.TrimSpace(g.read(".dev/agent/secret-id")))

	// The agent renders both files.
	agent := g.start(cmdAgent)
	g.run(cmdWaitRender, time.Minute)
	catOut := g.run(cmdCatCreds, time.Minute)
	creds := decodeRendered[renderedCreds](t, g, ".dev/agent/creds.json")
	if creds.Username != appUser || creds.PasswordWithToken != appPassword || creds.Version != 0 || creds.LoginURL != emu.MyDomainURL() {
		t.Fatalf("creds.json: username %q, version %d, login_url %q, password_with_token is the user's password: %v",
			creds.Username, creds.Version, creds.LoginURL, creds.PasswordWithToken == appPassword)
	}
	if !strings.Contains(catOut, `"username": "app@acme.demo"`) {
		t.Errorf("$ %s shows:\n%s", cmdCatCreds, strings.ReplaceAll(catOut, appPassword, "<redacted>"))
	}
	token := decodeRendered[renderedToken](t, g, ".dev/agent/token.json")
	noteSecret(token.AccessToken)
	if !emu.IsTokenActive(token.AccessToken) || token.InstanceURL != emu.MyDomainURL() || token.ExpiresAt == "" {
		t.Fatalf("token.json: instance_url %q, expires_at %q, token active %v", token.InstanceURL, token.ExpiresAt, emu.IsTokenActive(token.AccessToken))
	}
	for _, name := range []string{"creds.json", "token.json"} {
		fi, err := os.Stat(filepath.Join(g.dir, ".dev/agent", name))
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != 0o600 {
			t.Errorf(".dev/agent/%s: mode %v, want 0600 as agent.hcl says", name, fi.Mode().Perm())
		}
	}

	// The example app logs in with each file once, then keeps running.
	g.run(cmdBuildApp, 5*time.Minute)
	if out := g.run(cmdOnceCreds, time.Minute); !strings.Contains(out, "logged in as app@acme.demo (credential version 0)") || !strings.Contains(out, "query ok: 1 record(s)") {
		t.Fatalf("$ %s\n%s", cmdOnceCreds, out)
	}
	if out := g.run(cmdOnceToken, time.Minute); !strings.Contains(out, "with an access token") || !strings.Contains(out, "query ok: 1 record(s)") {
		t.Fatalf("$ %s\n%s", cmdOnceToken, out)
	}
	appCreds := g.start(cmdAppCreds)
	appToken := g.start(cmdAppToken)
	credsLogAt := g.waitLog(".dev/agent/app-creds.log", 0, regexp.MustCompile(`query ok`))
	g.waitLog(".dev/agent/app-token.log", 0, regexp.MustCompile(`query ok`))

	// The agent renews the token's lease (ttl 10s) instead of reading a new
	// token: one lease, its expiry moving, the file unchanged.
	leases := vaultJSONAs[[]string](t, "list", "sys/leases/lookup/salesforce/token/app")
	if len(leases) != 1 {
		t.Fatalf("token/app leases: %v, want the agent's one", leases)
	}
	leaseID := "salesforce/token/app/" + leases[0]
	first := lookupLease(t, leaseID)
	var renewed leaseInfo
	for deadline := time.Now().Add(60 * time.Second); ; time.Sleep(500 * time.Millisecond) {
		renewed = lookupLease(t, leaseID)
		if !renewed.LastRenewal.IsZero() && renewed.ExpireTime.After(first.ExpireTime) && renewed.ExpireTime.After(renewed.IssueTime.Add(10*time.Second)) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("lease %s not renewed within 60s: first %+v, now %+v\n%s", leaseID, first, renewed, g.logs())
		}
	}
	if again := vaultJSONAs[[]string](t, "list", "sys/leases/lookup/salesforce/token/app"); len(again) != 1 || again[0] != leases[0] {
		t.Errorf("token/app leases after renewal: %v, want still only %s", again, leases[0])
	}
	if now := decodeRendered[renderedToken](t, g, ".dev/agent/token.json"); now.AccessToken != token.AccessToken {
		t.Error("token.json changed although the lease was only renewed")
	}
	if out := g.run(cmdLeaseLookup, time.Minute); !regexp.MustCompile(`(?m)^last_renewal\s+\d{4}-`).MatchString(out) {
		t.Errorf("$ %s shows no renewal:\n%s", cmdLeaseLookup, out)
	}

	// A rotation: the agent renders the new password within its
	// static_secret_render_interval, and the app logs in with it.
	tokenLogAtRotation := len(g.read(".dev/agent/app-token.log"))
	g.run(cmdRotate, time.Minute)
	newPassword := emu.Password(appUser)
	noteSecret(newPassword)
	if newPassword == appPassword {
		t.Fatal("rotate/app did not change the password in the org")
	}
	g.run(cmdWaitRotation, time.Minute)
	creds = decodeRendered[renderedCreds](t, g, ".dev/agent/creds.json")
	if creds.Version != 1 || creds.PasswordWithToken != newPassword {
		t.Fatalf("creds.json after the rotation: version %d, holds the org's new password: %v", creds.Version, creds.PasswordWithToken == newPassword)
	}
	if out := g.run(cmdOnceCreds, time.Minute); !strings.Contains(out, "logged in as app@acme.demo (credential version 1)") || !strings.Contains(out, "query ok: 1 record(s)") {
		t.Fatalf("$ %s after the rotation\n%s", cmdOnceCreds, out)
	}
	g.run(cmdWaitAppLog, time.Minute)
	// The running app noticed the change, logged in with the new password
	// and its next query worked; the token app went on querying.
	g.waitLog(".dev/agent/app-creds.log", credsLogAt, regexp.MustCompile(
		`creds.json changed: logging in again\n.*logged in as app@acme.demo \(credential version 1\)[^\n]*\n.*query ok`))
	g.waitLog(".dev/agent/app-token.log", tokenLogAtRotation, regexp.MustCompile(`query ok`))
	if out := g.run(cmdAppLog, time.Minute); !strings.Contains(out, "changed: logging in again") {
		t.Errorf("$ %s\n%s", cmdAppLog, out)
	}
	// Every login of the app user during the test worked: neither the app
	// nor the engine ever tried a stale password.
	for _, l := range emu.LoginHistory(appUser) {
		if l.At.After(started) && !strings.HasPrefix(l.Status, "Success") {
			t.Errorf("login of %s at %s: %s (%s)", appUser, l.At.Format(time.RFC3339), l.Status, l.Flow)
		}
	}

	// The agent's policy, tried by hand: its own credential only.
	for _, c := range []string{cmdDenyCreds, cmdDenyList} {
		if out := g.runFails(c, time.Minute); !strings.Contains(out, "permission denied") {
			t.Errorf("$ %s\n%s", c, out)
		}
	}
	if out := g.run(cmdAllowCreds, time.Minute); out != appUser {
		t.Errorf("$ %s\n%s", cmdAllowCreds, out)
	}

	// Stop as the guide says: all three processes end.
	g.run(cmdStop, time.Minute)
	for _, p := range []*guideProcess{agent, appCreds, appToken} {
		select {
		case <-p.exited:
		case <-time.After(30 * time.Second):
			t.Errorf("%s still running 30s after `%s`", p.name, cmdStop)
		}
	}
	for _, name := range []string{"agent.log", "app-creds.log", "app-token.log"} {
		log := g.read(".dev/agent/" + name)
		for i, secret := range []string{appPassword, newPassword, token.AccessToken, demoClientSecret} {
			if strings.Contains(log, secret) {
				// Not the log itself: the report must not leak it further.
				t.Errorf(".dev/agent/%s contains secret #%d (of: old password, new password, access token, client secret)", name, i+1)
			}
		}
	}

	// The test typed exactly the guide's commands, in its order.
	if want := guideCommands(t); strings.Join(g.ran, "\n") != strings.Join(want, "\n") {
		t.Errorf("the commands of %s and the ones this test ran differ:\nguide:\n  %s\ntest:\n  %s",
			appGuide, strings.Join(want, "\n  "), strings.Join(g.ran, "\n  "))
	}
}

// TestAppPolicyReadsOnlyItsOwnSecrets: a token with the example application
// policy (examples/agent/app-policy.hcl) reads its own creds/app and
// token/app, and is refused everything else an application could try:
// another account's credential or role's token, listing accounts or roles,
// the config, the account itself, rotating it.
func TestAppPolicyReadsOnlyItsOwnSecrets(t *testing.T) {
	hs := need(t)
	restoreAppUser(t)
	mountAtSalesforce(t)
	vaultWriteJSON(t, "salesforce/accounts/app", map[string]any{
		"username": appUser, "password": appPassword, "security_token_mode": "not_required",
	})
	vaultWriteJSON(t, "salesforce/accounts/other", map[string]any{
		"username": demoIntegUser, "password": demoIntegPassword, "security_token": demoIntegToken,
	})
	vaultCLI(t, "write", "salesforce/roles/app", "grant_type=client_credentials")
	vaultCLI(t, "write", "salesforce/roles/other", "grant_type=client_credentials")
	vaultCLI(t, "policy", "write", "salesforce-app", filepath.Join(hs.repoRoot, "examples", "agent", "app-policy.hcl"))
	t.Cleanup(func() {
		if r := runVault(t, nil, "", "policy", "delete", "salesforce-app"); r.Err != nil {
			t.Errorf("cleanup: vault policy delete salesforce-app: %v", r.Err)
		}
	})
	appToken := strings.TrimSpace(vaultCLI(t, "token", "create", "-policy=salesforce-app", "-ttl=10m", "-field=token"))
	noteSecret(appToken)
	as := []string{"VAULT_TOKEN=" + appToken, "VAULT_FORMAT=json"}

	r := runVault(t, as, "", "read", "salesforce/creds/app")
	if r.Err != nil || !strings.Contains(r.Stdout, `"username": "app@acme.demo"`) {
		t.Fatalf("the app token cannot read its own creds/app: %v\n%s", r.Err, r.Stderr)
	}
	r = runVault(t, as, "", "read", "salesforce/token/app")
	if r.Err != nil || !strings.Contains(r.Stdout, `"access_token"`) {
		t.Fatalf("the app token cannot read its own token/app: %v\n%s", r.Err, r.Stderr)
	}
	var lease struct {
		Data renderedToken `json:"data"`
	}
	if err := json.Unmarshal([]byte(r.Stdout), &lease); err != nil || lease.Data.AccessToken == "" {
		t.Fatalf("token/app as the app: %v", err)
	}
	noteSecret(lease.Data.AccessToken)

	for _, args := range [][]string{
		{"read", "salesforce/creds/other"},
		{"read", "salesforce/token/other"},
		{"list", "salesforce/accounts"},
		{"list", "salesforce/roles"},
		{"read", "salesforce/config"},
		{"read", "salesforce/accounts/app"},
		{"read", "salesforce/accounts/other"},
		{"read", "salesforce/roles/app"},
		{"write", "-f", "salesforce/rotate/app"},
		{"write", "salesforce/accounts/app", "password=Chosen-By-The-App-1"},
	} {
		r := runVault(t, as, "", args...)
		if r.Err == nil || !strings.Contains(r.Stderr, "permission denied") {
			// Not stdout: a read that should have been refused shows secrets.
			t.Errorf("vault %s with the app policy: err %v, want permission denied\n%s", strings.Join(args, " "), r.Err, r.Stderr)
		}
	}
	// Nothing the refused requests asked for happened.
	var acct struct {
		Data struct {
			Version int `json:"version"`
		} `json:"data"`
	}
	r = runVault(t, []string{"VAULT_FORMAT=json"}, "", "read", "salesforce/accounts/app")
	if err := json.Unmarshal([]byte(r.Stdout), &acct); r.Err != nil || err != nil || acct.Data.Version != 0 {
		t.Errorf("accounts/app after the refused requests: version %d (%v %v), want 0", acct.Data.Version, r.Err, err)
	}
	if emulatorServer(t).Password(appUser) != appPassword {
		t.Error("the org's password of app@acme.demo changed although rotate/app was refused")
	}
}

// TestAgentGuideEmbedsExampleFiles: docs/applications.md shows the example
// agent config, templates and policy verbatim, and its Kubernetes
// annotations carry the same templates, so the guide cannot drift from the
// files the acceptance test runs. It needs no Vault.
func TestAgentGuideEmbedsExampleFiles(t *testing.T) {
	root, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	doc := readRepoFile(t, root, appGuide)
	blocks := fencedBlocks(doc)
	for _, name := range []string{"agent.hcl", "creds.ctmpl", "token.ctmpl", "app-policy.hcl"} {
		want := readRepoFile(t, root, "examples/agent/"+name)
		found := false
		for _, b := range blocks {
			found = found || b.body == want
		}
		if !found {
			t.Errorf("%s has no block with the exact content of examples/agent/%s", appGuide, name)
		}
	}

	// The injector annotations: each template, indented under its
	// annotation, is the file's text.
	var k8s *docBlock
	for i := range blocks {
		if strings.Contains(blocks[i].body, "vault.hashicorp.com/agent-inject:") {
			k8s = &blocks[i]
		}
	}
	if k8s == nil {
		t.Fatalf("%s shows no Kubernetes Agent Injector annotations", appGuide)
	}
	if !strings.HasPrefix(k8s.marker, "<!-- docs-walk: skip:") {
		t.Errorf("the Kubernetes block is not marked docs-walk: skip (marker %q)", k8s.marker)
	}
	for file, annotation := range map[string]string{"creds.ctmpl": "creds.json", "token.ctmpl": "token.json"} {
		got, ok := yamlBlockScalar(k8s.body, "vault.hashicorp.com/agent-inject-template-"+annotation+": |")
		if !ok {
			t.Errorf("no agent-inject-template-%s annotation", annotation)
			continue
		}
		if want := readRepoFile(t, root, "examples/agent/"+file); got != want {
			t.Errorf("annotation agent-inject-template-%s differs from examples/agent/%s:\n%s", annotation, file, got)
		}
	}
	if readme := readRepoFile(t, root, "README.md"); !strings.Contains(readme, "(docs/applications.md)") {
		t.Error("README.md does not link docs/applications.md")
	}
}
