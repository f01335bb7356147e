package acceptance

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/vault-salesforce/vault-plugin-secrets-salesforce/emulator"
	"github.com/vault-salesforce/vault-plugin-secrets-salesforce/sfapi"
)

// ecaTestApp is an External Client App created for one test in the
// suite's shared org, so rotating its key touches no other test.
type ecaTestApp struct {
	developerName string
	clientID      string
	clientSecret  string
}

// newECATestApp creates an ECA run as the demo admin (who holds the
// External Client App Developer and View Client Secret permissions), as an
// admin would in Setup.
func newECATestApp(t *testing.T, developerName string) ecaTestApp {
	t.Helper()
	app := ecaTestApp{developerName: developerName, clientID: "3MVG9accept" + developerName, clientSecret: "accept-secret-" + developerName}
	noteSecret(app.clientSecret)
	_, err := emulatorServer(t).CreateApp(emulator.AppInput{Kind: emulator.KindExternalClientApp, Name: strings.ReplaceAll(developerName, "_", " "),
		DeveloperName: developerName, ClientID: app.clientID, ClientSecret: app.clientSecret, RunAsUser: demoAdminUser,
		PreAuthorizedProfiles: []string{"System Administrator"}, Scopes: "api"})
	if err != nil {
		t.Fatalf("creating the External Client App: %v", err)
	}
	return app
}

// ecaConsumer is the app's consumer as the emulator's control API (its
// stand-in for Setup) shows it, secrets included.
type ecaConsumer struct {
	ClientID     string `json:"clientId"`
	ClientSecret string `json:"clientSecret"`
	Staged       *struct {
		ClientID string `json:"clientId"`
		State    string `json:"state"`
	} `json:"staged"`
}

func (a ecaTestApp) consumer(t *testing.T) ecaConsumer {
	t.Helper()
	resp, err := http.Get(emulatorURL(t) + "/_emulator/apps/" + a.developerName)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var app struct {
		Consumers []ecaConsumer `json:"consumers"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&app); err != nil || len(app.Consumers) == 0 {
		t.Fatalf("reading the app from the control API: %v", err)
	}
	noteSecret(app.Consumers[0].ClientSecret)
	return app.Consumers[0]
}

// logsIn reports whether the client credentials flow works with the key
// and secret, as an application holding them would try.
func ecaLogsIn(t *testing.T, key, secret string) bool {
	t.Helper()
	c, err := sfapi.New(sfapi.Config{LoginURL: emulatorServer(t).MyDomainURL(), AllowNonSalesforceURL: true, ClientID: key, ClientSecret: secret, RequestTimeout: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	s, err := c.ClientCredentialsGrant(context.Background(), nil)
	if err == nil {
		noteSecret(s.AccessToken)
	}
	return err == nil
}

// configureECA writes the mount's config for the app, with the client
// credentials grant on the org's My Domain URL.
func configureECA(t *testing.T, mount string, app ecaTestApp) {
	t.Helper()
	vaultWriteJSON(t, mount+"/config", map[string]any{
		"login_url":                emulatorServer(t).MyDomainURL(),
		"allow_non_salesforce_url": true,
		"app_type":                 "external_client_app",
		"app_developer_name":       app.developerName,
		"client_id":                app.clientID,
		"client_secret":            app.clientSecret,
		"grant_type":               "client_credentials",
	})
}

// waitUntil polls cond every two seconds until it holds or limit passes
// (Vault calls the plugin's periodic function about once a minute).
func waitUntil(t *testing.T, limit time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("waited %s for %s", limit, what)
		}
		time.Sleep(2 * time.Second)
	}
}

// An ECA's consumer key and secret rotate through a real Vault: both are
// valid during the overlap, config shows the previous key held by the
// lease minted with it, and the periodic check deletes it after that
// lease ends.
func TestClientSecretRotationInVault(t *testing.T) {
	t.Parallel()
	mount := mountPlugin(t, versionNew)
	app := newECATestApp(t, "Vault_Rotation_Accept")
	configureECA(t, mount, app)
	vaultCLI(t, "write", mount+"/roles/cc", "grant_type=client_credentials", "ttl=30m")
	lease := vaultJSON(t, "read", mount+"/token/cc")
	noteSecret(data(t, lease)["access_token"].(string))
	leaseID := lease["lease_id"].(string)

	out := vaultCLIWithWarnings(t, "write", "-f", mount+"/rotate-client-secret")
	t.Logf("$ vault write -f %s/rotate-client-secret\n%s", mount, out)
	c := app.consumer(t)
	if c.ClientID == app.clientID || c.Staged == nil || c.Staged.ClientID != app.clientID || c.Staged.State != "Rotated" {
		t.Fatalf("the org after the rotation: primary %s, staged %v", c.ClientID, c.Staged)
	}
	if !strings.Contains(out, c.ClientID) || !strings.Contains(out, "previous_client_id") || strings.Contains(out, c.ClientSecret) {
		t.Errorf("rotate-client-secret output lacks the keys (or shows a secret)")
	}
	if !ecaLogsIn(t, app.clientID, app.clientSecret) || !ecaLogsIn(t, c.ClientID, c.ClientSecret) {
		t.Fatal("both the old and the new consumer secret must log in during the overlap")
	}
	cfg := data(t, vaultJSON(t, "read", mount+"/config"))
	if cfg["client_id"] != c.ClientID || cfg["previous_client_id"] != app.clientID || !strings.Contains(fmt.Sprint(cfg["previous_client_id_state"]), "1 lease") {
		t.Fatalf("config after the rotation: %v", cfg)
	}
	out = vaultCLI(t, "read", mount+"/config")
	t.Logf("$ vault read %s/config\n%s", mount, out)
	// Tokens now come from the new key.
	noteSecret(data(t, vaultJSON(t, "read", mount+"/token/cc"))["access_token"].(string))

	// Vault's periodic check runs about once a minute: it keeps the old
	// key while the lease minted with it lives...
	time.Sleep(70 * time.Second)
	if c := app.consumer(t); c.Staged == nil || c.Staged.ClientID != app.clientID {
		t.Fatal("the old consumer key was deleted while a lease held a token minted with it")
	}
	// ...and deletes it once that lease ends.
	vaultCLI(t, "lease", "revoke", leaseID)
	waitUntil(t, 150*time.Second, "the deletion of the old consumer key", func() bool { return app.consumer(t).Staged == nil })
	if ecaLogsIn(t, app.clientID, app.clientSecret) || !ecaLogsIn(t, c.ClientID, c.ClientSecret) {
		t.Fatal("after the deletion only the new consumer secret may log in")
	}
	cfg = data(t, vaultJSON(t, "read", mount+"/config"))
	if !strings.HasPrefix(fmt.Sprint(cfg["previous_client_id_state"]), "deleted: no token minted with it is held") {
		t.Errorf("previous_client_id_state %v", cfg["previous_client_id_state"])
	}
	t.Logf("$ vault read %s/config\n%s", mount, vaultCLI(t, "read", mount+"/config"))
}

// config/rotation's schedule rotates the consumer key by itself.
func TestScheduledClientSecretRotationInVault(t *testing.T) {
	t.Parallel()
	mount := mountPlugin(t, versionNew)
	app := newECATestApp(t, "Vault_Schedule_Accept")
	configureECA(t, mount, app)
	vaultCLI(t, "write", mount+"/config/rotation", "client_secret_rotation_period=1m")
	rc := data(t, vaultJSON(t, "read", mount+"/config/rotation"))
	if rotAsInt(rc["client_secret_rotation_period"]) != 60 {
		t.Errorf("client_secret_rotation_period %v", rc["client_secret_rotation_period"])
	}
	if next := data(t, vaultJSON(t, "read", mount+"/config"))["next_client_secret_rotation"]; next == nil {
		t.Fatal("config shows no next_client_secret_rotation")
	}
	waitUntil(t, 200*time.Second, "a scheduled rotation", func() bool {
		return data(t, vaultJSON(t, "read", mount+"/config"))["client_id"] != app.clientID
	})
	vaultCLI(t, "write", mount+"/config/rotation", "client_secret_disable_automated_rotation=true")
	c := app.consumer(t)
	cfg := data(t, vaultJSON(t, "read", mount+"/config"))
	if cfg["client_id"] != c.ClientID || cfg["last_client_secret_rotation"] == nil {
		t.Fatalf("config %v, org primary %s", cfg, c.ClientID)
	}
	if !ecaLogsIn(t, c.ClientID, c.ClientSecret) {
		t.Fatal("the key the schedule rotated to does not log in")
	}
	// The engine uses it: a token through the new key.
	vaultCLI(t, "write", mount+"/roles/cc", "grant_type=client_credentials")
	noteSecret(data(t, vaultJSON(t, "read", mount+"/token/cc"))["access_token"].(string))
}
