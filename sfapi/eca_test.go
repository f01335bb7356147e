package sfapi

import (
	"context"
	"testing"

	"github.com/vault-salesforce/vault-plugin-secrets-salesforce/emulator"
)

// ecaAdminSession is a client-credentials session of the demo connected
// app, run as the admin, who holds the External Client App Developer and
// View Client Secret permissions.
func ecaAdminSession(t *testing.T, emu *emulator.Server, mod ...func(*Config)) (*Client, *Session) {
	t.Helper()
	c := newEmuClient(t, emu.MyDomainURL(), mod...)
	s, err := c.ClientCredentialsGrant(context.Background(), nil)
	if err != nil {
		t.Fatalf("admin session: %v", err)
	}
	return c, track(s)
}

// loginsWith reports whether a client-credentials login with the key and
// secret succeeds.
func loginsWith(t *testing.T, emu *emulator.Server, key, secret string) bool {
	t.Helper()
	c := newTestClient(t, emu.MyDomainURL(), func(cfg *Config) { cfg.ClientID, cfg.ClientSecret = key, secret })
	s, err := c.ClientCredentialsGrant(context.Background(), nil)
	if err != nil {
		checkClientErr(t, err, secret)
		return false
	}
	track(s)
	return true
}

func TestClientEmulatorECACredentialLifecycle(t *testing.T) {
	for _, tc := range []struct {
		name                        string
		stageOverRotated, idFollows bool
	}{
		{"slot must be empty, id stays with the slot", false, false},
		{"staging over Rotated allowed, id follows the credential", true, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			emu := emulator.NewTestServer(t, emuSeed())
			emu.SetOrg(func(o *emulator.Org) {
				o.StageOverRotated, o.StagedIDFollowsCredential = tc.stageOverRotated, tc.idFollows
			})
			c, s := ecaAdminSession(t, emu)
			ctx := context.Background()

			app, err := c.FindExternalClientApp(ctx, s, "acme_etl")
			if err != nil {
				t.Fatalf("FindExternalClientApp: %v", err)
			}
			if app.Identifier != emulator.DemoETLAppID || app.DeveloperName != "Acme_ETL" || app.Label != "Acme ETL" {
				t.Fatalf("app %+v", app)
			}
			consumers, err := c.AppConsumers(ctx, s, app.Identifier)
			if err != nil || len(consumers) != 1 || consumers[0].Key != emulator.DemoETLClientID || consumers[0].ID == "" {
				t.Fatalf("consumers %+v, %v", consumers, err)
			}
			consumer := consumers[0].ID
			if staged, err := c.StagedCredentials(ctx, s, app.Identifier, consumer); err != nil || len(staged) != 0 {
				t.Fatalf("staged before staging: %+v, %v", staged, err)
			}

			cred, err := c.StageCredential(ctx, s, app.Identifier, consumer)
			if err != nil {
				t.Fatalf("StageCredential: %v", err)
			}
			addClientTestSecret(cred.Secret)
			if cred.State != CredentialActive || cred.Key == "" || cred.Secret == "" || cred.ExpirationDate.Sub(cred.CreatedDate).Hours() != 30*24 {
				t.Fatalf("staged credential %+v", cred)
			}
			// Both sets authenticate while the new one is staged.
			if !loginsWith(t, emu, cred.Key, cred.Secret) || !loginsWith(t, emu, emulator.DemoETLClientID, emulator.DemoETLClientSecret) {
				t.Fatal("the staged and the primary credential must both log in")
			}
			// A second stage over an Active one is refused in either mode.
			if _, err := c.StageCredential(ctx, s, app.Identifier, consumer); KindOf(err) == KindNotFound || err == nil {
				t.Fatalf("staging over an Active credential: %v", err)
			}

			if err := c.PromoteStagedCredential(ctx, s, app.Identifier, consumer, cred.ID); err != nil {
				t.Fatalf("PromoteStagedCredential: %v", err)
			}
			staged, err := c.StagedCredentials(ctx, s, app.Identifier, consumer)
			if err != nil || len(staged) != 1 {
				t.Fatalf("staged after rotation: %+v, %v", staged, err)
			}
			old := staged[0]
			if old.Key != emulator.DemoETLClientID || old.State != CredentialRotated || old.Secret != "" {
				t.Fatalf("the previous primary should sit in the slot as Rotated, without its secret in a listing: %+v", old)
			}
			if (old.ID == cred.ID) == tc.idFollows {
				t.Errorf("id of the demoted credential %q vs staged id %q: wrong for this mode", old.ID, cred.ID)
			}
			if consumers, _ := c.AppConsumers(ctx, s, app.Identifier); consumers[0].Key != cred.Key {
				t.Errorf("primary key after rotation %q, want the staged one", consumers[0].Key)
			}
			if key, secret, err := c.ConsumerSecret(ctx, s, app.Identifier, consumer); err != nil || key != cred.Key || secret != cred.Secret {
				t.Errorf("ConsumerSecret after rotation: key %q, the staged secret: %v, %v", key, secret == cred.Secret, err)
			}
			if !loginsWith(t, emu, emulator.DemoETLClientID, emulator.DemoETLClientSecret) {
				t.Fatal("the rotated-out credential keeps working until deleted")
			}

			if err := c.DeleteStagedCredential(ctx, s, app.Identifier, consumer, old.ID); err != nil {
				t.Fatalf("DeleteStagedCredential: %v", err)
			}
			if loginsWith(t, emu, emulator.DemoETLClientID, emulator.DemoETLClientSecret) {
				t.Fatal("a deleted credential must not log in")
			}
			if !loginsWith(t, emu, cred.Key, cred.Secret) {
				t.Fatal("the new primary must log in")
			}
			// Already gone: not an error.
			if err := c.DeleteStagedCredential(ctx, s, app.Identifier, consumer, old.ID); err != nil {
				t.Fatalf("deleting twice: %v", err)
			}
		})
	}
}

func TestClientEmulatorECAErrors(t *testing.T) {
	emu := emulator.NewTestServer(t, emuSeed())
	c, s := ecaAdminSession(t, emu)
	ctx := context.Background()

	_, err := c.FindExternalClientApp(ctx, s, "No_Such_App")
	wantKind(t, err, "NOT_FOUND", KindNotFound)

	// Ids go into URL paths: anything but letters and digits is refused
	// before a request.
	calls := emu.Calls("connect.stagedCredentials")
	_, err = c.StagedCredentials(ctx, s, "0xI5g000000EtlAEAS/../x", "888")
	wantKind(t, err, "MALFORMED_ID", KindNotFound)
	if emu.Calls("connect.stagedCredentials") != calls {
		t.Error("a malformed id reached Salesforce")
	}

	// The packaged ECA refuses staged credentials.
	pkg, err := c.FindExternalClientApp(ctx, s, "Analytics_Connector")
	if err != nil {
		t.Fatal(err)
	}
	consumers, err := c.AppConsumers(ctx, s, pkg.Identifier)
	if err != nil || len(consumers) == 0 {
		t.Fatalf("consumers of the packaged app: %v", err)
	}
	_, err = c.StageCredential(ctx, s, pkg.Identifier, consumers[0].ID)
	wantKind(t, err, "INSUFFICIENT_ACCESS", KindPermission)

	// Without the org setting, staging is refused with Salesforce's code.
	emu.SetOrg(func(o *emulator.Org) { o.EnableClientSecretInRESTAPIAccess = false })
	etl, _ := c.FindExternalClientApp(ctx, s, "Acme_ETL")
	consumers, _ = c.AppConsumers(ctx, s, etl.Identifier)
	_, err = c.StageCredential(ctx, s, etl.Identifier, consumers[0].ID)
	wantKind(t, err, "FUNCTIONALITY_NOT_ENABLED", KindPermission)
}
