// Package acceptance runs the plugin inside a real Vault server, driven the way
// users drive it: through the vault CLI and the Go API client.
//
// TestMain builds the plugin twice (v0.1.0 and v0.1.1, so upgrades can be
// tested) into a plugin directory, obtains a Vault binary through
// scripts/build-vault.sh (or $VAULT_BIN), starts the Salesforce emulator
// in-process on a loopback port and a `vault server -dev` whose config names
// the plugin directory, and stops all of it at the end. Registration is left
// to the tests, which do it as an operator would (sha256 and version).
//
// Without a Vault binary (go test -short, or no way to build one) the tests
// skip, except under CI=true, where that is a failure.
//
// Helpers for tests: vaultCLI, vaultCLIFails, vaultCLIStdin, vaultJSON,
// vaultJSONAs, apiClient, registerPlugin, mountPlugin, configureEmulatorAdmin,
// pluginProcesses, emulatorServer, noteSecret. A non-dev Vault on
// integrated storage (one node or a cluster) is in raft_test.go; an org of
// a test's own in emuorg_test.go.
//
// The dev server logs at trace level and has a file audit device; at the
// end every Vault log and audit log of the run is searched for every
// secret the suite used (leakscan_test.go).
package acceptance

import (
	"regexp"
	"strings"
	"testing"

	"github.com/vault-salesforce/vault-plugin-secrets-salesforce/emulator"
)

// Registering and mounting the plugin on the shared server the way an
// operator would (sha256 and version), and the demo org's config and
// secrets, which the leak scan looks for everywhere.

// plugin returns the built plugin binary of a version.
func plugin(t testing.TB, version string) pluginBinary {
	t.Helper()
	p, ok := need(t).plugins[version]
	if !ok {
		t.Fatalf("no plugin binary built for %s", version)
	}
	return p
}

// registerCommand is the operator's registration command for a version, as
// documented in the README.
func registerCommand(p pluginBinary) []string {
	return []string{"plugin", "register",
		"-sha256=" + p.SHA256,
		"-version=" + p.Version,
		"-command=" + p.Command,
		"secret", pluginName}
}

// registerPlugin registers a plugin version in the catalog (idempotent).
func registerPlugin(t testing.TB, version string) pluginBinary {
	t.Helper()
	p := plugin(t, version)
	vaultCLI(t, registerCommand(p)...)
	return p
}

var mountNameCleaner = regexp.MustCompile(`[^a-z0-9]+`)

// mountPlugin registers the plugin version and enables it at a mount of its
// own, named after the test, which is disabled when the test ends. It returns
// the mount path without a trailing slash.
func mountPlugin(t testing.TB, version string) string {
	t.Helper()
	registerPlugin(t, version)
	name := strings.Trim(mountNameCleaner.ReplaceAllString(strings.ToLower(t.Name()), "-"), "-")
	if len(name) > 40 {
		name = name[len(name)-40:]
	}
	mount := "sf-" + name
	vaultCLI(t, "secrets", "enable", "-path="+mount, "-plugin-version="+version, pluginName)
	t.Cleanup(func() {
		r := runVault(t, nil, "", "secrets", "disable", mount+"/")
		if r.Err != nil {
			t.Errorf("cleanup: vault secrets disable %s/: %v\n%s", mount, r.Err, r.Stderr)
		}
	})
	return mount
}

// Demo org values (emulator.DefaultSeed) used by the tests.
const (
	demoClientID       = "3MVG9demoClientId"
	demoClientSecret   = "demo-client-secret"
	demoAdminUser      = "admin@acme.demo"
	demoAdminPassword  = "Admin-Pass-1234"
	demoAdminToken     = "ADMINTOKEN0000000000000000"
	demoIntegUser      = "integration@acme.demo"
	demoIntegPassword  = "Integ-Pass-1234"
	demoIntegToken     = "INTEGTOKEN00000000000000000"
	demoTrustedUser    = "trusted@acme.demo"
	demoTrustedPasswd  = "Trusted-Pass-1234"
	demoSOAPAPIVersion = "64.0"
)

func init() {
	noteSecret(demoClientSecret, demoAdminPassword, demoAdminToken, demoIntegPassword, demoIntegToken, demoTrustedPasswd)
	// Private-key lines: the demo connected app's key is written to
	// config/jwt-key by the tests.
	for line := range strings.SplitSeq(emulator.DemoPrivateKeyPEM, "\n") {
		if line = strings.TrimSpace(line); len(line) >= 16 && !strings.HasPrefix(line, "-----") {
			noteSecret(line)
		}
	}
}

// configureEmulatorAdmin writes the mount's config: the emulator's demo org,
// with the admin user logging in through the password grant.
func configureEmulatorAdmin(t testing.TB, mount string) {
	t.Helper()
	vaultWriteJSON(t, mount+"/config", map[string]any{
		"login_url":                emulatorURL(t),
		"allow_non_salesforce_url": true,
		"client_id":                demoClientID,
		"client_secret":            demoClientSecret,
		"grant_type":               "password",
		"username":                 demoAdminUser,
		"password":                 demoAdminPassword,
		"security_token":           demoAdminToken,
	})
}
