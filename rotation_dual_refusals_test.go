package salesforce

import (
	"context"
	"net/http"
	"strings"
	"testing"

	"github.com/hashicorp/vault/sdk/logical"

	"github.com/vault-salesforce/vault-plugin-secrets-salesforce/sfapi"
)

// What stops a dual account's switch, and what a write refuses: users that
// differ in access, a failing validation query, bad secondary input. The
// rotations that succeed are in rotation_dual_test.go.

func respWarnings(t *testing.T, e *rotEnv, path string) []string {
	t.Helper()
	resp, err := request(t, e.b, e.s, logical.ReadOperation, path, nil)
	if respErr(resp, err) != nil {
		t.Fatal(respErr(resp, err))
	}
	return resp.Warnings
}

// Users whose access differs are never switched: the rotation is refused
// before anything changes, with a reason naming what differs.
func TestDual_PermissionMismatchRefusesTheRotation(t *testing.T) {
	e := newRotEnv(t)
	e.addIntegrationPair("bg", rotInteg3User, rotInteg3Password, rotInteg3Token, nil)
	resp, err := e.rotate("bg")
	msg := respErr(resp, err)
	if msg == nil {
		t.Fatal("the rotation of mismatched users succeeded")
	}
	for _, want := range []string{"permission set Report_Builder is assigned to integration3@acme.demo but not to integration@acme.demo",
		"permission set group Integration_Suite is assigned to integration@acme.demo but not to integration3@acme.demo",
		"creds/bg keeps serving integration@acme.demo"} {
		if !strings.Contains(msg.Error(), want) {
			t.Errorf("refusal %q does not say %q", msg, want)
		}
	}
	if statusOf(resp, err) != http.StatusBadRequest {
		t.Errorf("status %d, want 400", statusOf(resp, err))
	}
	if e.srv.Password(rotInteg3User) != rotInteg3Password || e.srv.Password(rotIntegUser) != rotIntegPassword {
		t.Fatal("a refused rotation changed a password")
	}
	if a := e.account("bg"); !strings.Contains(a["last_rotation_error"].(string), "Report_Builder") || a["active_username"] != rotIntegUser {
		t.Errorf("account after the refusal: %v", a)
	}
	e.assertServedCredentialLogsIn("bg")

	// Aligned in Salesforce, the same account rotates.
	if err := e.srv.UnassignPermissionSet(rotInteg3User, "Report_Builder"); err != nil {
		t.Fatal(err)
	}
	if err := e.srv.AssignPermissionSet(rotInteg3User, "Integration_Suite"); err != nil {
		t.Fatal(err)
	}
	e.mustRotate("bg")
}

// A difference that appears while the switch waits for the token keeps
// the active user, says why, and the switch happens at the next rotation
// once the users match again.
func TestDual_MismatchAtSwitchKeepsTheActiveUser(t *testing.T) {
	e := newRotEnv(t)
	e.addIntegrationPair("bg", rotInteg2User, rotInteg2Password, rotInteg2Token, nil)
	e.mustRotate("bg")
	if err := e.srv.AssignPermissionSet(rotInteg2User, "Report_Builder"); err != nil {
		t.Fatal(err)
	}
	resp := mustWrite(t, e.b, e.s, "accounts/bg/security-token", map[string]interface{}{
		"security_token": e.srv.LatestSecurityToken(rotInteg2User), "user": rotInteg2User,
	})
	if resp.Data["active_username"] != rotIntegUser || resp.Data["switch_status"] != switchBlocked {
		t.Fatalf("token write with differing profiles answered %v", resp.Data)
	}
	if r := e.account("bg")["switch_reason"].(string); !strings.Contains(r, "permission set Report_Builder is assigned to integration2@acme.demo but not to integration@acme.demo") {
		t.Errorf("switch_reason = %q", r)
	}
	if e.creds("bg")["username"] != rotIntegUser {
		t.Fatal("creds switched to a user whose profile differs")
	}
	if err := e.srv.UnassignPermissionSet(rotInteg2User, "Report_Builder"); err != nil {
		t.Fatal(err)
	}
	resp = e.mustRotate("bg")
	if resp.Data["outcome"] != outcomeSwitched || resp.Data["active_username"] != rotInteg2User {
		t.Fatalf("the next rotation answered %v, want the switch", resp.Data)
	}
	if e.srv.Password(rotIntegUser) != rotIntegPassword {
		t.Error("the rotation that finished the switch also changed the other user's password")
	}
	e.assertServedCredentialLogsIn("bg")
}

// The write refuses what cannot work, and changes nothing then.
func TestDual_WriteValidation(t *testing.T) {
	e := newRotEnv(t)
	e.addTrusted("single", nil)
	cases := []struct {
		name string
		data map[string]interface{}
		want string
	}{
		{"secondary without strategy", map[string]interface{}{"username": rotAppUser, "password": rotAppPassword, "secondary_username": rotInteg2User},
			"need rotation_strategy=dual_account"},
		{"strategy without secondary", map[string]interface{}{"username": rotAppUser, "password": rotAppPassword, "rotation_strategy": strategyDual},
			"needs secondary_username"},
		{"same user twice", map[string]interface{}{"username": rotAppUser, "password": rotAppPassword, "rotation_strategy": strategyDual,
			"secondary_username": rotAppUser, "secondary_password": rotAppPassword}, "another Salesforce user"},
		{"secondary held by another account", map[string]interface{}{"username": rotAppUser, "password": rotAppPassword, "rotation_strategy": strategyDual,
			"secondary_username": rotTrustedUser, "secondary_password": rotTrustedPass}, `already managed by account "single"`},
		{"wrong secondary password", map[string]interface{}{"username": rotIntegUser, "password": rotIntegPassword, "security_token": rotIntegToken,
			"rotation_strategy": strategyDual, "secondary_username": rotInteg2User, "secondary_password": "Wrong-Pass-1234",
			"secondary_security_token": rotInteg2Token}, "INVALID_LOGIN"},
		{"token mode for both", map[string]interface{}{"username": rotIntegUser, "password": rotIntegPassword, "security_token": rotIntegToken,
			"rotation_strategy": strategyDual, "secondary_username": rotInteg2User, "secondary_password": rotInteg2Password},
			"security_token_mode=required applies to both users: set secondary_security_token"},
		{"rotate_after_read", map[string]interface{}{"username": rotAppUser, "password": rotAppPassword, "rotation_strategy": strategyDual,
			"secondary_username": rotInteg2User, "secondary_password": rotInteg2Password, "secondary_security_token": rotInteg2Token,
			"rotate_after_read": true, "cooldown": "1h"}, "refused with rotation_strategy=dual_account"},
	}
	for _, tc := range cases {
		resp, err := request(t, e.b, e.s, logical.UpdateOperation, "accounts/new", tc.data)
		msg := respErr(resp, err)
		if msg == nil || !strings.Contains(msg.Error(), tc.want) || statusOf(resp, err) != http.StatusBadRequest {
			t.Errorf("%s: %d %v, want 400 with %q", tc.name, statusOf(resp, err), msg, tc.want)
			continue
		}
		assertNoSecrets(t, tc.name, msg.Error(), "Wrong-Pass-1234", rotInteg2Password, rotIntegPassword)
		if acct, _ := readAccount(context.Background(), e.s, "new"); acct != nil {
			t.Fatalf("%s: the refused write stored the account", tc.name)
		}
	}

	// Back to single only while the primary user is active.
	if resp, err := request(t, e.b, e.s, logical.DeleteOperation, "accounts/single", nil); respErr(resp, err) != nil {
		t.Fatal(respErr(resp, err))
	}
	e.addTrustedPair("bg", nil)
	e.mustRotate("bg")
	resp, err := request(t, e.b, e.s, logical.UpdateOperation, "accounts/bg", map[string]interface{}{"rotation_strategy": strategySingle})
	if msg := respErr(resp, err); msg == nil || !strings.Contains(msg.Error(), "serves the secondary user app@acme.demo") {
		t.Errorf("single while the secondary is active: %v", msg)
	}
	e.mustRotate("bg")
	mustWrite(t, e.b, e.s, "accounts/bg", map[string]interface{}{"rotation_strategy": strategySingle})
	if a := e.account("bg"); a["rotation_strategy"] != nil || a["secondary_username"] != nil || a["active_user"] != nil {
		t.Errorf("after going back to single: %v", a)
	}
}

// What makes two users not interchangeable, in words.
func TestDual_AccessDifferences(t *testing.T) {
	base := func() *sfapi.UserAccess {
		return &sfapi.UserAccess{IsActive: true, ProfileID: "00e5g000000IntAAAA", ProfileName: "Integration",
			PermissionSets: []string{"Integration_Base"}, PermissionSetGroups: []string{"Integration_Suite"}}
	}
	if d := accessDifferences("a", base(), "b", base()); d != "" {
		t.Errorf("equal users differ: %s", d)
	}
	b := base()
	b.ProfileID, b.ProfileName, b.IsActive, b.Locked = "00e5g000000StdAAAA", "Standard User", false, true
	b.PermissionSets = []string{"integration_base", "Report_Builder"}
	b.PermissionSetGroups = nil
	want := "b is inactive; b is locked out; their profiles differ (a has Integration, b has Standard User); " +
		"permission set Report_Builder is assigned to b but not to a; permission set group Integration_Suite is assigned to a but not to b"
	if d := accessDifferences("a", base(), "b", b); d != want {
		t.Errorf("differences:\n got %s\nwant %s", d, want)
	}
	// The 15- and 18-character forms of an id are one profile.
	b = base()
	b.ProfileID = b.ProfileID[:15]
	if d := accessDifferences("a", base(), "b", b); d != "" {
		t.Errorf("15/18-character ids differ: %s", d)
	}
}

// The validation_query runs as the rotated user before it serves: when it
// fails, the active user keeps serving.
func TestDual_FailingValidationQueryKeepsTheActiveUser(t *testing.T) {
	e := newRotEnv(t)
	e.addTrustedPair("bg", map[string]interface{}{"validation_query": "SELECT Id FROM NoSuchObject__c"})
	resp := e.mustRotate("bg")
	if resp.Data["active_username"] != rotTrustedUser || resp.Data["switch_status"] != switchBlocked {
		t.Fatalf("rotate answered %v", resp.Data)
	}
	if r, _ := resp.Data["switch_reason"].(string); !strings.Contains(r, "validation_query fails") {
		t.Errorf("switch_reason = %q", r)
	}
	if e.creds("bg")["username"] != rotTrustedUser {
		t.Fatal("creds switched to a user whose validation query fails")
	}
	e.assertServedCredentialLogsIn("bg")
	// Fixed, the next rotation finishes the switch (checking again).
	mustWrite(t, e.b, e.s, "accounts/bg", map[string]interface{}{"validation_query": "SELECT Id FROM User LIMIT 1"})
	if resp := e.mustRotate("bg"); resp.Data["outcome"] != outcomeSwitched || resp.Data["active_username"] != rotAppUser {
		t.Fatalf("the next rotation answered %v", resp.Data)
	}
}

// The secondary user's secret fields follow the rule of the primary's:
// one trailing newline removed, other control characters refused with a
// reason that names the field and never the value.
func TestDual_SecondarySecretInput(t *testing.T) {
	e := newRotEnv(t)
	// The write logs in as each user: it passes only with the newline gone.
	e.addIntegrationPair("bg", rotInteg2User, rotInteg2Password+"\n", rotInteg2Token+"\n", nil)
	if a := e.account("bg"); a["secondary_security_token_status"] != tokenStatusCurrent || a["secondary_user_id"] == "" {
		t.Fatalf("account: %v", a)
	}
	for field, value := range map[string]string{
		"secondary_password":       "Integ2\tPass-1234",
		"secondary_security_token": "INTEG2TOKEN 000000000000000",
	} {
		resp, err := request(t, e.b, e.s, logical.UpdateOperation, "accounts/bg", map[string]interface{}{field: value})
		got := respErr(resp, err)
		if statusOf(resp, err) != http.StatusBadRequest || got == nil || !strings.Contains(got.Error(), field) || strings.Contains(got.Error(), value) {
			t.Errorf("%s with a control character or space: %d %v", field, statusOf(resp, err), got)
		}
	}
}
