package sfapi

import (
	"context"
	"reflect"
	"testing"

	"github.com/vault-salesforce/vault-plugin-secrets-salesforce/emulator"
)

const emuInteg2PW, emuInteg2Token = "Integ2-Pass-1234", "INTEG2TOKEN000000000000000"

// The access of the demo org's blue/green pair is the same, the
// mismatched user's is not; the profile-owned set is never listed.
func TestClientEmulatorUsersAccess(t *testing.T) {
	emu := emulator.NewTestServer(t, emuSeed())
	c := newEmuClient(t, emu.LoginURL())
	ctx := context.Background()
	admin := mustSOAPLogin(t, c, emulator.DemoAdminUsername, emuAdminPW+emuAdminToken)

	ids := []string{emu.UserID(emulator.DemoIntegUsername), emu.UserID(emulator.DemoInteg2Username), emu.UserID(emulator.DemoMismatchUsername)}
	access, err := c.UsersAccess(ctx, admin, ids...)
	if err != nil {
		t.Fatalf("UsersAccess: %v", err)
	}
	a, b, m := access[ids[0][:15]], access[ids[1][:15]], access[ids[2][:15]]
	if a == nil || b == nil || m == nil {
		t.Fatalf("missing users in %v", access)
	}
	if a.Username != emulator.DemoIntegUsername || !a.IsActive || a.Locked || a.ProfileName != "Integration" {
		t.Errorf("integration: %+v", a)
	}
	if !reflect.DeepEqual(a.PermissionSets, []string{"Integration_Base"}) || !reflect.DeepEqual(a.PermissionSetGroups, []string{"Integration_Suite"}) {
		t.Errorf("integration sets %v groups %v, want [Integration_Base] [Integration_Suite]", a.PermissionSets, a.PermissionSetGroups)
	}
	if a.ProfileID != b.ProfileID || !reflect.DeepEqual(a.PermissionSets, b.PermissionSets) || !reflect.DeepEqual(a.PermissionSetGroups, b.PermissionSetGroups) {
		t.Errorf("the blue/green pair differs: %+v vs %+v", a, b)
	}
	if !reflect.DeepEqual(m.PermissionSets, []string{"Integration_Base", "Report_Builder"}) || len(m.PermissionSetGroups) != 0 {
		t.Errorf("integration3 sets %v groups %v", m.PermissionSets, m.PermissionSetGroups)
	}

	emu.SetUserState(emulator.DemoInteg2Username, func(u *emulator.User) { u.IsPasswordLocked = true; u.IsActive = false })
	access, err = c.UsersAccess(ctx, admin, ids[1])
	if err != nil {
		t.Fatal(err)
	}
	if b := access[ids[1][:15]]; !b.Locked || b.IsActive {
		t.Errorf("locked, inactive integration2 reads %+v", b)
	}
	_, err = c.UsersAccess(ctx, admin, "005000000000000AAA")
	wantKind(t, err, "NOT_FOUND", KindNotFound)
	_, err = c.UsersAccess(ctx, admin, "005' OR Id != '")
	wantKind(t, err, "MALFORMED_ID", KindNotFound)
}

// An admin lists a user's sessions outside its own family, ends one (and a
// second delete of it is no error), and the user's own session learns its
// id with IsCurrent.
func TestClientEmulatorUserSessions(t *testing.T) {
	emu := emulator.NewTestServer(t, emuSeed())
	c := newEmuClient(t, emu.LoginURL())
	ctx := context.Background()
	admin := mustSOAPLogin(t, c, emulator.DemoAdminUsername, emuAdminPW+emuAdminToken)
	first := mustSOAPLogin(t, c, emulator.DemoIntegUsername, emuIntegPW+emuIntegToken)
	second := mustSOAPLogin(t, c, emulator.DemoIntegUsername, emuIntegPW+emuIntegToken)
	userID := emu.UserID(emulator.DemoIntegUsername)

	sessions, err := c.UserSessions(ctx, admin, userID)
	if err != nil {
		t.Fatalf("UserSessions: %v", err)
	}
	if len(sessions) != 2 || sessions[0].SessionType == "" || sessions[0].CreatedDate.IsZero() {
		t.Fatalf("sessions = %+v, want 2 with type and creation time", sessions)
	}
	own, err := c.CurrentSessionIDs(ctx, second)
	if err != nil || len(own) != 1 {
		t.Fatalf("CurrentSessionIDs = %v, %v", own, err)
	}
	var other string
	for _, s := range sessions {
		if s.ID != own[0] {
			other = s.ID
		}
	}
	if other == "" {
		t.Fatal("the own session id is not among the user's sessions")
	}
	if err := c.EndSession(ctx, admin, other); err != nil {
		t.Fatalf("EndSession: %v", err)
	}
	if err := c.EndSession(ctx, admin, other); err != nil {
		t.Errorf("ending an ended session: %v, want nil (404 is success)", err)
	}
	if _, err := c.Query(ctx, first, "SELECT Id FROM User LIMIT 1"); err == nil {
		t.Error("the ended session still works")
	}
	if _, err := c.Query(ctx, second, "SELECT Id FROM User LIMIT 1"); err != nil {
		t.Errorf("the other session was ended too: %v", err)
	}
	// Without Manage Users another user's sessions cannot be ended.
	err = c.EndSession(ctx, second, emu.SessionIDs(emulator.DemoAdminUsername)[0])
	wantKind(t, err, "INSUFFICIENT_ACCESS", KindPermission)
	wantKind(t, c.EndSession(ctx, admin, "0Ak' OR Id != '"), "MALFORMED_ID", KindNotFound)
}

// An app's refresh token for the user shows as a grant whose DeleteToken
// revokes it.
func TestClientEmulatorUserOAuthGrants(t *testing.T) {
	emu := emulator.NewTestServer(t, emuSeed())
	c := newEmuClient(t, emu.LoginURL())
	ctx := context.Background()
	admin := mustSOAPLogin(t, c, emulator.DemoAdminUsername, emuAdminPW+emuAdminToken)
	userID := emu.UserID(emulator.DemoInteg2Username)
	refresh := emu.IssueRefreshToken(emulator.DemoClientID, emulator.DemoInteg2Username)
	addClientTestSecret(refresh)

	grants, err := c.UserOAuthGrants(ctx, admin, userID)
	if err != nil {
		t.Fatalf("UserOAuthGrants: %v", err)
	}
	if len(grants) != 1 || grants[0].AppName != "Vault" || grants[0].DeleteToken == "" {
		t.Fatalf("grants = %d %+v", len(grants), grants)
	}
	addClientTestSecret(grants[0].DeleteToken)
	if _, err := c.RefreshTokenGrant(ctx, refresh, nil); err != nil {
		t.Fatalf("the refresh token does not work before revocation: %v", err)
	}
	if err := c.Revoke(ctx, grants[0].DeleteToken); err != nil {
		t.Fatalf("Revoke(DeleteToken): %v", err)
	}
	if _, err := c.RefreshTokenGrant(ctx, refresh, nil); err == nil {
		t.Error("the refresh token still works after its DeleteToken was revoked")
	}
	if grants, err := c.UserOAuthGrants(ctx, admin, userID); err != nil || len(grants) != 0 {
		t.Errorf("grants after revocation = %+v, %v", grants, err)
	}
}
