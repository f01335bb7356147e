package salesforce

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/vault/sdk/logical"

	"github.com/vault-salesforce/vault-plugin-secrets-salesforce/emulator"
	"github.com/vault-salesforce/vault-plugin-secrets-salesforce/sfapi"
)

// ecaEnv is a backend whose config logs in through the demo org's
// "Vault ECA", with a clock the test moves.
type ecaEnv struct {
	t     *testing.T
	b     *backend
	s     logical.Storage
	srv   *emulator.Server
	logs  *logBuffer
	clock fakeClock
	// secrets are every consumer secret the test saw, for the leak checks.
	secrets []string
}

func newECAEnv(t *testing.T, grant string, org func(*emulator.Org)) *ecaEnv {
	t.Helper()
	srv := emulator.NewTestServer(t, emulator.DefaultSeed())
	if org != nil {
		srv.SetOrg(org)
	}
	b, s, logs := getTestBackendWithLogs(t)
	e := &ecaEnv{t: t, b: b, s: s, srv: srv, logs: logs, clock: fakeClock{now: time.Now().UTC()},
		secrets: []string{emulator.DemoECAClientSecret}}
	b.clock = e.clock.Now
	mustWrite(t, b, s, "config", ecaConfig(srv, grant))
	return e
}

// controlConsumer is a consumer as the emulator's control API shows it.
type controlConsumer struct {
	ClientID     string         `json:"clientId"`
	ClientSecret string         `json:"clientSecret"`
	Staged       *controlStaged `json:"staged"`
}

type controlStaged struct {
	ID           string `json:"id"`
	ClientID     string `json:"clientId"`
	ClientSecret string `json:"clientSecret"`
	State        string `json:"state"`
}

// String leaves the secrets out of failure messages.
func (c controlConsumer) String() string {
	return "primary " + c.ClientID + ", staged " + c.Staged.String()
}

func (c *controlStaged) String() string {
	if c == nil {
		return "none"
	}
	return c.ClientID + " (" + c.State + ", id " + c.ID + ")"
}

// consumer reads the Vault ECA's consumer from the emulator (as Setup
// would show it) and remembers its secrets.
func (e *ecaEnv) consumer() controlConsumer {
	e.t.Helper()
	resp, err := http.Get(e.srv.LoginURL() + "/_emulator/apps/Vault_ECA")
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	var app struct {
		Consumers []controlConsumer `json:"consumers"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&app); err != nil || len(app.Consumers) == 0 {
		e.t.Fatalf("control API: %v", err)
	}
	c := app.Consumers[0]
	e.secrets = append(e.secrets, c.ClientSecret)
	if c.Staged != nil {
		e.secrets = append(e.secrets, c.Staged.ClientSecret)
	}
	return c
}

// logsIn reports whether a client-credentials login with key and secret
// works, as an application holding them would try.
func (e *ecaEnv) logsIn(key, secret string) bool {
	e.t.Helper()
	c, err := newClient(sfapi.Config{LoginURL: e.srv.MyDomainURL(), AllowNonSalesforceURL: true, ClientID: key, ClientSecret: secret, RequestTimeout: 10 * time.Second})
	if err != nil {
		e.t.Fatal(err)
	}
	_, err = c.ClientCredentialsGrant(context.Background(), nil)
	return err == nil
}

func (e *ecaEnv) rotate() (*logical.Response, error) {
	return request(e.t, e.b, e.s, logical.UpdateOperation, "rotate-client-secret", nil)
}

func (e *ecaEnv) mustRotate() map[string]interface{} {
	e.t.Helper()
	resp, err := e.rotate()
	if err := respErr(resp, err); err != nil {
		e.t.Fatalf("rotate-client-secret: %v", err)
	}
	e.assertNoSecrets(responseText(resp, err))
	return resp.Data
}

func (e *ecaEnv) periodic() { e.b.clientSecretPeriodic(context.Background(), e.s) }

func (e *ecaEnv) config() map[string]interface{} {
	e.t.Helper()
	return mustRead(e.t, e.b, e.s, "config")
}

func (e *ecaEnv) assertNoSecrets(text string) {
	e.t.Helper()
	assertNoSecrets(e.t, "response", text, e.secrets...)
	assertNoSecrets(e.t, "backend log", e.logs.String(), e.secrets...)
}

func TestClientSecretRotation_OverlapEndsWithLastLease(t *testing.T) {
	for _, tc := range []struct {
		name                        string
		stageOverRotated, idFollows bool
	}{
		{"slot must be empty, id stays with the slot", false, false},
		{"slot must be empty, id follows the credential", false, true},
		{"staging over Rotated allowed, id stays with the slot", true, false},
		{"staging over Rotated allowed, id follows the credential", true, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newECAEnv(t, adminGrantClientCredentials, func(o *emulator.Org) {
				o.StageOverRotated, o.StagedIDFollowsCredential = tc.stageOverRotated, tc.idFollows
			})
			mustWrite(t, e.b, e.s, "roles/cc", map[string]interface{}{"grant_type": "client_credentials", "ttl": "1h"})
			oldKey, oldSecret := emulator.DemoECAClientID, emulator.DemoECAClientSecret
			lease, err := request(t, e.b, e.s, logical.ReadOperation, "token/cc", nil)
			if err := respErr(lease, err); err != nil {
				t.Fatal(err)
			}

			for round := 1; round <= 2; round++ {
				out := e.mustRotate()
				newKey := out["client_id"].(string)
				if newKey == oldKey || out["previous_client_id"] != oldKey {
					t.Fatalf("round %d: rotate answered %v", round, out)
				}
				c := e.consumer()
				if c.ClientID != newKey || c.Staged == nil || c.Staged.ClientID != oldKey || c.Staged.State != "Rotated" {
					t.Fatalf("round %d: the org holds %v", round, c)
				}
				newSecret := c.ClientSecret
				// The overlap: both keys log in, config holds the new one.
				if !e.logsIn(oldKey, oldSecret) || !e.logsIn(newKey, newSecret) {
					t.Fatalf("round %d: both the old and the new key must log in during the overlap", round)
				}
				cfg := e.config()
				if cfg["client_id"] != newKey || cfg["previous_client_id"] != oldKey ||
					!strings.Contains(cfg["previous_client_id_state"].(string), "1 lease") {
					t.Fatalf("round %d: config read %v", round, cfg)
				}
				e.assertNoSecrets(responseText(&logical.Response{Data: cfg}, nil))

				// New tokens come from the new key; the periodic check keeps
				// the old key while the lease minted with it lives.
				next, err := request(t, e.b, e.s, logical.ReadOperation, "token/cc", nil)
				if err := respErr(next, err); err != nil {
					t.Fatal(err)
				}
				e.periodic()
				if c := e.consumer(); c.Staged == nil || c.Staged.ClientID != oldKey {
					t.Fatalf("round %d: the old key was deleted while a lease holds a token it minted", round)
				}
				resp, err := e.rotate()
				if statusOf(resp, err) != 400 || !strings.Contains(respErr(resp, err).Error(), "still in use") {
					t.Fatalf("round %d: a rotation while the previous key is held: %d %v", round, statusOf(resp, err), respErr(resp, err))
				}

				// The last lease minted with the old key ends: the next check
				// deletes it; it no longer logs in, the new one does.
				if err := revokeLease(t, e.b, e.s, lease.Secret); err != nil {
					t.Fatal(err)
				}
				e.periodic()
				if c := e.consumer(); c.Staged != nil {
					t.Fatalf("round %d: the old key is still in the slot after its last lease ended: %v", round, c.Staged)
				}
				if e.logsIn(oldKey, oldSecret) || !e.logsIn(newKey, newSecret) {
					t.Fatalf("round %d: after the deletion only the new key may log in", round)
				}
				if state := e.config()["previous_client_id_state"].(string); !strings.HasPrefix(state, "deleted: no token") {
					t.Errorf("round %d: previous_client_id_state %q", round, state)
				}
				lease, oldKey, oldSecret = next, newKey, newSecret
			}
			e.assertNoSecrets("")
		})
	}
}

func TestClientSecretRotation_RolesWithoutRevocationWaitForExpiry(t *testing.T) {
	e := newECAEnv(t, adminGrantClientCredentials, nil)
	mustWrite(t, e.b, e.s, "roles/cc", map[string]interface{}{"grant_type": "client_credentials", "revoke_on_lease_end": false})
	tok := mustRead(t, e.b, e.s, "token/cc")
	expires, _ := time.Parse(time.RFC3339, tok["expires_at"].(string))
	e.mustRotate()

	e.clock.Set(expires.Add(-time.Minute))
	e.periodic()
	if c := e.consumer(); c.Staged == nil {
		t.Fatal("the old key was deleted before the token it minted expired")
	}
	if !strings.Contains(e.config()["previous_client_id_state"].(string), "tokens of roles without revoke_on_lease_end until") {
		t.Errorf("state %v", e.config()["previous_client_id_state"])
	}
	// Expiries are rounded up to ten minutes (storage is written rarely).
	e.clock.Set(expires.Add(holderGrace + clientSecretTokensRoundUp + time.Second))
	e.periodic()
	if c := e.consumer(); c.Staged != nil {
		t.Fatalf("the old key outlived the tokens it minted: %v", c.Staged)
	}
}

func TestClientSecretRotation_DeletedBeforeValidityEnds(t *testing.T) {
	e := newECAEnv(t, adminGrantClientCredentials, nil)
	e.mustRotate()
	// A holder whose end the engine cannot read (kept as alive).
	entry, _ := logical.StorageEntryJSON(tokenLeaseStoragePrefix+"abc/unreadable", olderHolderEntry{Role: "x", ClientID: emulator.DemoECAClientID})
	if err := e.s.Put(context.Background(), entry); err != nil {
		t.Fatal(err)
	}
	e.clock.Advance(29*24*time.Hour + 22*time.Hour)
	e.srv.AdvanceClock(29*24*time.Hour + 22*time.Hour)
	e.periodic()
	if e.consumer().Staged == nil {
		t.Fatal("deleted two hours before the validity ends, while held")
	}
	e.clock.Advance(time.Hour + time.Minute)
	e.srv.AdvanceClock(time.Hour + time.Minute)
	e.periodic()
	if c := e.consumer(); c.Staged != nil {
		t.Fatalf("the previous key outlived its validity margin: %v", c.Staged)
	}
	if state := e.config()["previous_client_id_state"].(string); !strings.Contains(state, "validity was about to end; still held by 1 lease") {
		t.Errorf("state %q", state)
	}
}

func TestClientSecretRotation_JWTBearerConfig(t *testing.T) {
	e := newECAEnv(t, adminGrantJWTBearer, nil)
	out := e.mustRotate()
	c := e.consumer()
	if c.ClientID != out["client_id"] || e.config()["client_id"] != c.ClientID {
		t.Fatalf("rotate %v, org %v", out, c)
	}
	// The engine logs in with the new key (the JWT's issuer).
	mustWrite(t, e.b, e.s, "roles/jwt", map[string]interface{}{"grant_type": "jwt_bearer", "username": demoIntegrationUser})
	mustRead(t, e.b, e.s, "token/jwt")
	e.assertNoSecrets("")
}

func TestClientSecretRotation_Refusals(t *testing.T) {
	e := newECAEnv(t, adminGrantClientCredentials, nil)
	cases := []struct {
		name   string
		setup  func()
		undo   func()
		want   string
		status int
	}{
		{"api version below 65.0", func() { mustWrite(t, e.b, e.s, "config", map[string]interface{}{"api_version": "64.0"}) },
			func() { mustWrite(t, e.b, e.s, "config", map[string]interface{}{"api_version": "66.0"}) }, "api_version 65.0", 400},
		{"another app's name", func() { mustWrite(t, e.b, e.s, "config", map[string]interface{}{"app_developer_name": "Acme_ETL"}) },
			func() { mustWrite(t, e.b, e.s, "config", map[string]interface{}{"app_developer_name": "Vault_ECA"}) }, "no consumer whose key is config's client_id", 400},
		{"unknown name", func() { mustWrite(t, e.b, e.s, "config", map[string]interface{}{"app_developer_name": "Nope"}) },
			func() { mustWrite(t, e.b, e.s, "config", map[string]interface{}{"app_developer_name": "Vault_ECA"}) }, "no local External Client App", 400},
		{"no developer name", func() { mustWrite(t, e.b, e.s, "config", map[string]interface{}{"app_developer_name": ""}) },
			func() { mustWrite(t, e.b, e.s, "config", map[string]interface{}{"app_developer_name": "Vault_ECA"}) }, "app_developer_name", 400},
		{"missing permissions", func() {
			if err := e.srv.UnassignPermissionSet(demoAdminUser, "ECA_Credential_Manager"); err != nil {
				t.Fatal(err)
			}
		}, func() { _ = e.srv.AssignPermissionSet(demoAdminUser, "ECA_Credential_Manager") }, "External Client App Developer and View Client Secret", 400},
		{"org setting off", func() { e.srv.SetOrg(func(o *emulator.Org) { o.EnableClientSecretInRESTAPIAccess = false }) },
			func() { e.srv.SetOrg(func(o *emulator.Org) { o.EnableClientSecretInRESTAPIAccess = true }) }, "Allow access to External Client App consumer secrets", 400},
	}
	for _, tc := range cases {
		tc.setup()
		before := snapshotStorage(t, e.s)
		resp, err := e.rotate()
		if statusOf(resp, err) != tc.status || !strings.Contains(respErr(resp, err).Error(), tc.want) {
			t.Errorf("%s: %d %v, want %d with %q", tc.name, statusOf(resp, err), respErr(resp, err), tc.status, tc.want)
		}
		if after := snapshotStorage(t, e.s); !sameExceptState(before, after) {
			assertSameStorage(t, before, after)
		}
		if c := e.consumer(); c.ClientID != emulator.DemoECAClientID || c.Staged != nil {
			t.Errorf("%s: the org changed: %v", tc.name, c)
		}
		tc.undo()
	}

	// A connected app config has no API to rotate its secret.
	b, s, _, _ := emulatorBackend(t, adminGrantClientCredentials)
	resp, err := request(t, b, s, logical.UpdateOperation, "rotate-client-secret", nil)
	if statusOf(resp, err) != 400 || !strings.Contains(respErr(resp, err).Error(), "no API to rotate a connected app's consumer secret") {
		t.Errorf("connected app: %d %v", statusOf(resp, err), respErr(resp, err))
	}
	e.assertNoSecrets("")
}

// sameExceptState: a refused rotation may record its error in the state.
func sameExceptState(before, after map[string]string) bool {
	delete(before, clientSecretStatePath)
	delete(after, clientSecretStatePath)
	if len(before) != len(after) {
		return false
	}
	for k, v := range before {
		if after[k] != v {
			return false
		}
	}
	return true
}

func TestClientSecretRotation_Scheduled(t *testing.T) {
	e := newECAEnv(t, adminGrantClientCredentials, nil)
	for k := range mustRead(t, e.b, e.s, "config/rotation") {
		if strings.HasPrefix(k, "client_secret_") {
			t.Errorf("config/rotation shows %s before any schedule is set", k)
		}
	}
	for _, bad := range []map[string]interface{}{
		{"client_secret_rotation_period": "30s"},
		{"client_secret_rotation_period": "1h", "client_secret_rotation_schedule": "0 3 * * *"},
		{"client_secret_rotation_window": "2h"},
		{"client_secret_rotation_schedule": "not a schedule"},
	} {
		resp, err := request(t, e.b, e.s, logical.UpdateOperation, "config/rotation", bad)
		if statusOf(resp, err) != 400 || !strings.Contains(respErr(resp, err).Error(), "client_secret_rotation_") {
			t.Errorf("%v: %d %v", bad, statusOf(resp, err), respErr(resp, err))
		}
	}
	mustWrite(t, e.b, e.s, "config/rotation", map[string]interface{}{"client_secret_rotation_period": "1h"})
	rc := mustRead(t, e.b, e.s, "config/rotation")
	if rc["client_secret_rotation_period"] != float64(3600) || rc["client_secret_disable_automated_rotation"] != false {
		t.Errorf("config/rotation read %v", rc)
	}
	next := e.config()["next_client_secret_rotation"]
	if next != formatTime(e.clock.Now().Add(time.Hour)) {
		t.Fatalf("next_client_secret_rotation %v", next)
	}
	e.periodic()
	if e.config()["client_id"] != emulator.DemoECAClientID {
		t.Fatal("rotated before its time")
	}
	e.clock.Advance(time.Hour)
	e.periodic()
	cfg := e.config()
	if cfg["client_id"] == emulator.DemoECAClientID || cfg["last_client_secret_rotation"] != formatTime(e.clock.Now()) ||
		cfg["next_client_secret_rotation"] != formatTime(e.clock.Now().Add(time.Hour)) {
		t.Fatalf("after the scheduled time: %v", cfg)
	}
	// Nothing held the old key: the next check deletes it.
	e.periodic()
	if e.consumer().Staged != nil {
		t.Error("the previous key was not deleted")
	}

	// A schedule with a window that passed is skipped, not run late.
	mustWrite(t, e.b, e.s, "config/rotation", map[string]interface{}{"client_secret_rotation_schedule": "0 3 * * *", "client_secret_rotation_window": "1h"})
	key := e.config()["client_id"]
	nextRun, _ := time.Parse(time.RFC3339, e.config()["next_client_secret_rotation"].(string))
	e.clock.Set(nextRun.Add(90 * time.Minute))
	e.periodic()
	cfg = e.config()
	if cfg["client_id"] != key || cfg["missed_client_secret_rotation"] != formatTime(nextRun) {
		t.Errorf("a missed window: %v", cfg)
	}
	e.assertNoSecrets("")
}
