package salesforce

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"

	"github.com/hashicorp/vault/sdk/logical"

	"github.com/vault-salesforce/vault-plugin-secrets-salesforce/emulator"
)

// listAccounts lists accounts/<prefix> and returns its keys and key_info.
func listAccounts(t *testing.T, b *backend, s logical.Storage, prefix string) ([]string, map[string]map[string]interface{}, *logical.Response) {
	t.Helper()
	resp, err := request(t, b, s, logical.ListOperation, "accounts/"+prefix, nil)
	if err := respErr(resp, err); err != nil {
		t.Fatalf("list accounts/%s: %v", prefix, err)
	}
	keys, _ := resp.Data["keys"].([]string)
	info := map[string]map[string]interface{}{}
	if raw, ok := resp.Data["key_info"].(map[string]interface{}); ok {
		for k, v := range raw {
			info[k] = v.(map[string]interface{})
		}
	}
	return keys, info, resp
}

// The key_info of vault list -detailed salesforce/accounts: one status line
// per account (a blocked one, one with a stale token, one with an unsettled
// rotation, a nested one), equal to what each account's read says, none for
// folders, and never a secret.
func TestAccountsListKeyInfo(t *testing.T) {
	e := newRotEnv(t)

	// blocked: its password was changed outside Vault (drift); scheduled.
	e.addTrusted("trusted", map[string]interface{}{"rotation_period": "24h"})
	e.srv.SetUserState(rotTrustedUser, func(u *emulator.User) { u.Password = "Changed-Outside-99" })
	if resp, err := e.rotate("trusted"); respErr(resp, err) == nil {
		t.Fatal("the rotation of a drifted account succeeded")
	}
	// pending: a rotation crashed after Salesforce took the new password.
	mustWrite(t, e.b, e.s, "accounts/app", map[string]interface{}{"username": emulator.DemoAppUsername, "password": "App-Pass-1234"})
	e.crashedRotation("app", stepPasswordChanged)
	// nested, with a stale token: rotated, the emailed token not written.
	e.addIntegration("team-a/etl", nil)
	e.mustRotate("team-a/etl")

	keys, info, resp := listAccounts(t, e.b, e.s, "")
	if !reflect.DeepEqual(keys, []string{"app", "team-a/", "trusted"}) {
		t.Fatalf("keys = %v", keys)
	}
	if _, ok := info["team-a/"]; ok {
		t.Errorf("the folder team-a/ has key_info: %v", info["team-a/"])
	}

	trusted := info["trusted"]
	if trusted["username"] != rotTrustedUser || trusted["rotation_status"] != "blocked" || trusted["rotation_blocked"] != "drift" {
		t.Errorf("trusted: %v, want blocked on drift", trusted)
	}
	if msg, _ := trusted["last_rotation_error"].(string); msg == "" || len([]rune(msg)) > maxListedErrorLength || strings.ContainsAny(msg, "\n\t") {
		t.Errorf("trusted: last_rotation_error %q is not one short line", msg)
	}
	if trusted["next_vault_rotation"] == nil || trusted["failed_logins"] != 1 {
		t.Errorf("trusted: next_vault_rotation %v, failed_logins %v (want a time, and the rejected check counted)",
			trusted["next_vault_rotation"], trusted["failed_logins"])
	}
	if _, ok := trusted["security_token_status"]; ok {
		t.Errorf("trusted has no token, but key_info shows security_token_status %v", trusted["security_token_status"])
	}

	app := info["app"]
	if app["rotation_status"] != "pending_reconciliation" || app["pending_since"] == nil {
		t.Errorf("app: %v, want pending_reconciliation with pending_since", app)
	}
	if _, ok := app["next_vault_rotation"]; ok {
		t.Errorf("app is not scheduled, but key_info shows next_vault_rotation %v", app["next_vault_rotation"])
	}

	nestedKeys, nested, _ := listAccounts(t, e.b, e.s, "team-a/")
	if !reflect.DeepEqual(nestedKeys, []string{"etl"}) {
		t.Fatalf("team-a/ keys = %v", nestedKeys)
	}
	etl := nested["etl"]
	if etl["username"] != rotIntegUser || etl["security_token_status"] != "stale" || etl["rotation_status"] != "manual" || etl["failed_logins"] != 0 {
		t.Errorf("team-a/etl: %v, want a manual account with a stale token", etl)
	}

	// Each line says what the account's read says.
	for name, fields := range map[string]map[string]interface{}{"trusted": trusted, "app": app, "team-a/etl": etl} {
		read := e.account(name)
		for k, v := range fields {
			want := read[k]
			if k == "last_rotation_error" {
				v = strings.TrimSuffix(v.(string), "...")
				if !strings.HasPrefix(want.(string), v.(string)) {
					t.Errorf("%s: listed last_rotation_error %q does not begin the read's %q", name, v, want)
				}
				continue
			}
			if v != want {
				t.Errorf("%s: key_info %s = %#v, the read says %#v", name, k, v, want)
			}
		}
	}

	out, _ := json.Marshal(resp.Data)
	assertNoSecrets(t, "list of accounts/", string(out), rotTrustedPass, "Changed-Outside-99", "App-Pass-1234",
		rotIntegPassword, rotIntegToken, e.srv.Password(emulator.DemoAppUsername), e.srv.Password(rotIntegUser))
}

// A mount without accounts lists none, and then the one written.
func TestAccountsListEmpty(t *testing.T) {
	b, s, _, _ := fakeBackend(t)
	if keys, info, _ := listAccounts(t, b, s, ""); len(keys) != 0 || len(info) != 0 {
		t.Fatalf("list of no accounts: keys %v, key_info %v", keys, info)
	}
	mustWrite(t, b, s, "accounts/etl", etlAccount())
	if keys, info, _ := listAccounts(t, b, s, ""); len(keys) != 1 || info["etl"]["rotation_status"] != "manual" {
		t.Errorf("keys %v, key_info %v", keys, info)
	}
}

// shortenForList keeps short errors whole and cuts long ones at a word.
func TestShortenForList(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"", ""},
		{"drift", "drift"},
		{"two\nlines\tand  tabs", "two lines and tabs"},
		{"the Salesforce user \"integration3@acme.demo\" is inactive; not rotating",
			"the Salesforce user \"integration3@acme.demo\" is inactive; not rotating"},
		{"the stored credential of account \"trusted\" no longer logs in (changed outside Vault?), and each try counts",
			"the stored credential of account \"trusted\" no longer logs in (changed outside..."},
		{strings.Repeat("x", 90), strings.Repeat("x", 77) + "..."},
	} {
		got := shortenForList(tc.in, maxListedErrorLength)
		if got != tc.want {
			t.Errorf("shortenForList(%q) = %q, want %q", tc.in, got, tc.want)
		}
		if n := len([]rune(got)); n > maxListedErrorLength {
			t.Errorf("shortenForList(%q) has %d runes", tc.in, n)
		}
	}
}
