package acceptance

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hashicorp/vault/api"
)

// Issue 9, defect 8, through a real Vault: sensitive fields sent over the
// HTTP API with the wrong JSON type (an object, a list, a number) get a 400
// that names the field and its type, and the value is nowhere: not in the
// answer, not in Vault's server log, not in the audit log (whose error
// field is not hashed). The test enables a file audit device of its own.
func TestTrust08WrongTypeSensitiveFieldNotEchoedInVault(t *testing.T) {
	hs := need(t)
	mount := mountPlugin(t, versionNew)
	configureEmulatorAdmin(t, mount)
	const secret = "acceptance-typed-sekrit-8"
	const digits = "737373737373737373"
	const keySecret = "acceptance-key-sekrit-8"
	// keySecret is left out of the suite's leak scan: Vault's audit
	// devices record the keys of request objects as sent (below), in the
	// dev server's audit log too. This test checks every other place.
	noteSecret(secret, digits)

	auditLog := filepath.Join(t.TempDir(), "audit.log")
	auditPath := "trust08-" + strings.TrimPrefix(mount, "sf-")
	vaultCLI(t, "audit", "enable", "-path="+auditPath, "file", "file_path="+auditLog)
	t.Cleanup(func() { runVault(t, nil, "", "audit", "disable", auditPath) })

	client := apiClient(t)
	wrong := []any{
		map[string]any{"value": secret},
		[]any{secret},
		[]any{secret, secret},
		map[string]any{keySecret: []any{secret}},
		737373737373737373,
	}
	cases := []struct {
		path, field string
		base        map[string]any
	}{
		{mount + "/accounts/typed", "password", map[string]any{"username": demoTrustedUser}},
		{mount + "/accounts/typed", "security_token", map[string]any{"username": demoTrustedUser, "password": demoTrustedPasswd}},
		{mount + "/accounts/typed/security-token", "security_token", nil},
		{mount + "/config", "client_secret", nil},
		{mount + "/config", "password", nil},
		{mount + "/config/rotation", "webhook_secret", nil},
		{mount + "/roles/typed", "refresh_token", map[string]any{"grant_type": "refresh_token"}},
	}
	for _, c := range cases {
		for _, value := range wrong {
			body := map[string]any{c.field: value}
			for k, v := range c.base {
				body[k] = v
			}
			_, err := client.Logical().Write(c.path, body)
			var re *api.ResponseError
			if !errors.As(err, &re) || re.StatusCode != 400 {
				t.Errorf("write %s with %s as %T: %v, want a 400", c.path, c.field, value, err)
				continue
			}
			msg := strings.Join(re.Errors, "; ")
			if !strings.Contains(msg, c.field+" must be") {
				t.Errorf("write %s with %s as %T: %q does not name the field and its type", c.path, c.field, value, msg)
			}
			assertNoSecrets(t, "response to "+c.path, err.Error(), secret, digits, keySecret)
		}
	}

	// The audit device wrote each request and its error.
	audit, err := os.ReadFile(auditLog)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(audit), "roles/typed") {
		t.Fatalf("the audit log holds none of the requests; the test proves nothing:\n%.2000s", audit)
	}
	assertNoSecrets(t, "audit log", string(audit), secret, digits)
	// Vault's audit device hashes the values of request data but not the
	// keys of objects in it: a secret sent as a key is recorded by Vault
	// before the engine sees the request. Its errors and responses must
	// still not hold it.
	for i, line := range strings.Split(strings.TrimSpace(string(audit)), "\n") {
		var entry struct {
			Error    string          `json:"error"`
			Response json.RawMessage `json:"response"`
		}
		if err := json.Unmarshal([]byte(line), &entry); err != nil {
			t.Fatalf("audit log line %d is not JSON: %v", i+1, err)
		}
		assertNoSecrets(t, "audit log error", entry.Error, keySecret)
		assertNoSecrets(t, "audit log response", string(entry.Response), keySecret)
	}
	if !strings.Contains(string(audit), "must be") {
		t.Errorf("the audit log holds none of the errors")
	}
	vaultLog, err := os.ReadFile(hs.vaultLog)
	if err != nil {
		t.Fatal(err)
	}
	assertNoSecrets(t, "vault server log", string(vaultLog), secret, digits, keySecret)
}
