package salesforce

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/vault/sdk/framework"
	"github.com/hashicorp/vault/sdk/logical"

	"github.com/vault-salesforce/vault-plugin-secrets-salesforce/emulator"
	"github.com/vault-salesforce/vault-plugin-secrets-salesforce/sfapi"
)

// Interrupted and unusual client-secret rotations: a failed verification,
// crashes between the steps (settled from the WAL at start-up), and a
// staged slot holding what the engine did not put there.

func TestClientSecretRotation_FailedVerificationChangesNothing(t *testing.T) {
	e := newECAEnv(t, adminGrantClientCredentials, nil)
	// The login with the new key fails: Salesforce answers the token
	// request with a credential error once.
	e.b.rot.testStep = func(step string) error {
		if step == stepClientSecretStaged {
			e.srv.InjectFault("oauth.token", emulator.Fault{Status: 400, Body: `{"error":"invalid_client","error_description":"invalid client credentials"}`, Times: 1})
		}
		return nil
	}
	resp, err := e.rotate()
	if statusOf(resp, err) != 400 || !strings.Contains(respErr(resp, err).Error(), "deleted again and nothing was changed") {
		t.Fatalf("rotate with a failing verification: %d %v", statusOf(resp, err), respErr(resp, err))
	}
	if c := e.consumer(); c.ClientID != emulator.DemoECAClientID || c.Staged != nil {
		t.Fatalf("the org kept the staged key: %v", c)
	}
	cfg := e.config()
	if cfg["client_id"] != emulator.DemoECAClientID || !strings.Contains(cfg["client_secret_rotation_error"].(string), "invalid_client") {
		t.Errorf("config %v", cfg)
	}
	if ids, _ := framework.ListWAL(context.Background(), e.s); len(ids) != 0 {
		t.Errorf("WAL entries left: %v", ids)
	}
	e.b.rot.testStep = nil
	e.mustRotate()
}

func TestClientSecretRotation_CrashAtEveryStep(t *testing.T) {
	for _, tc := range []struct {
		step        string
		wantRotated bool
	}{
		{stepClientSecretStaged, false},
		{stepClientSecretVerified, false},
		{stepClientSecretPromoted, true},
		{stepClientSecretSwitched, true},
	} {
		t.Run(tc.step, func(t *testing.T) {
			e := newECAEnv(t, adminGrantClientCredentials, nil)
			e.b.rot.testStep = func(s string) error {
				if s == tc.step {
					return errSimulatedCrash
				}
				return nil
			}
			if resp, err := e.rotate(); err == nil && !resp.IsError() {
				t.Fatal("a crashed rotation reported success")
			}
			e.b.rot.testStep = nil
			staged := e.consumer().Staged

			// Vault restarts: the start-up pass settles the WAL.
			b, _, logs := getTestBackendWithLogs(t)
			b.clock = e.clock.Now
			e.b, e.logs = b, logs
			if err := b.Initialize(context.Background(), &logical.InitializationRequest{Storage: e.s}); err != nil {
				t.Fatal(err)
			}
			// Start-up settles in the background; wait for that pass.
			b.rot.mu.Lock()
			settled := b.rot.settled
			b.rot.mu.Unlock()
			if settled != nil {
				<-settled
			}
			if ids, _ := framework.ListWAL(context.Background(), e.s); len(ids) != 0 {
				t.Fatalf("WAL entries left after start-up: %v", ids)
			}
			c := e.consumer()
			cfg := e.config()
			switch {
			case tc.wantRotated:
				if cfg["client_id"] != c.ClientID || c.ClientID == emulator.DemoECAClientID || cfg["previous_client_id"] != emulator.DemoECAClientID {
					t.Fatalf("config %v, org %v: the promoted key must be config's", cfg, c)
				}
			case tc.step == stepClientSecretStaged:
				// No WAL yet: the staged key waits in the slot, and the next
				// rotation uses it.
				if cfg["client_id"] != emulator.DemoECAClientID || c.Staged == nil || c.Staged.State != "Active" {
					t.Fatalf("config %v, org %v", cfg, c)
				}
				resp, err := e.rotate()
				if err := respErr(resp, err); err != nil || !strings.Contains(strings.Join(resp.Warnings, " "), "already staged") ||
					resp.Data["client_id"] != staged.ClientID {
					t.Fatalf("the next rotation should use the staged key: %v %v", resp, err)
				}
			default:
				if cfg["client_id"] != emulator.DemoECAClientID || c.Staged != nil {
					t.Fatalf("an unpromoted key must be deleted: config %v, org %v", cfg, c)
				}
			}
			// Whatever happened, the engine still logs in.
			mustWrite(t, e.b, e.s, "roles/cc", map[string]interface{}{"grant_type": "client_credentials"})
			mustRead(t, e.b, e.s, "token/cc")
			e.assertNoSecrets("")
		})
	}
}

func TestClientSecretRotation_UntrackedCredentialInTheSlot(t *testing.T) {
	for _, over := range []bool{false, true} {
		e := newECAEnv(t, adminGrantClientCredentials, func(o *emulator.Org) { o.StageOverRotated = over })
		ctx := context.Background()
		// Someone rotates in Setup (outside Vault) and writes the new key
		// to config: the old one sits in the slot, Rotated, untracked.
		sc, err := sfapi.New(sfapi.Config{LoginURL: e.srv.MyDomainURL(), AllowNonSalesforceURL: true, APIVersion: "66.0", ClientID: emulator.DemoClientID,
			ClientSecret: emulator.DemoClientSecret, RequestTimeout: 10 * time.Second})
		if err != nil {
			t.Fatal(err)
		}
		admin, err := sc.ClientCredentialsGrant(ctx, nil)
		if err != nil {
			t.Fatal(err)
		}
		cred, err := sc.StageCredential(ctx, admin, emulator.DemoECAID, e.consumerID(t))
		if err != nil {
			t.Fatal(err)
		}
		if err := sc.PromoteStagedCredential(ctx, admin, emulator.DemoECAID, e.consumerID(t), cred.ID); err != nil {
			t.Fatal(err)
		}
		e.secrets = append(e.secrets, cred.Secret)
		// Before config follows, a rotation refuses: config's key is the
		// Rotated one.
		resp, err := e.rotate()
		if statusOf(resp, err) != 400 || !strings.Contains(respErr(resp, err).Error(), "rotated outside Vault") {
			t.Fatalf("over=%v: %d %v", over, statusOf(resp, err), respErr(resp, err))
		}
		mustWrite(t, e.b, e.s, "config", map[string]interface{}{"client_id": cred.Key, "client_secret": cred.Secret})
		resp, err = e.rotate()
		if err := respErr(resp, err); err != nil || !strings.Contains(strings.Join(resp.Warnings, " "), "deleted consumer key "+emulator.DemoECAClientID) {
			t.Fatalf("over=%v: %v %v", over, resp, err)
		}
		if c := e.consumer(); c.Staged == nil || c.Staged.ClientID != cred.Key {
			t.Fatalf("over=%v: org %v", over, c)
		}
		e.assertNoSecrets("")
	}
}

func (e *ecaEnv) consumerID(t *testing.T) string {
	resp, err := http.Get(e.srv.LoginURL() + "/_emulator/apps/Vault_ECA")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var app struct {
		Consumers []struct {
			ConsumerID string `json:"consumerId"`
		} `json:"consumers"`
	}
	_ = json.NewDecoder(resp.Body).Decode(&app)
	return app.Consumers[0].ConsumerID
}
