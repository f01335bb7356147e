package salesforce

import (
	"context"
	"fmt"
	"testing"

	"github.com/hashicorp/vault/sdk/logical"

	"github.com/vault-salesforce/vault-plugin-secrets-salesforce/sfapi"
)

// The client a backend builds follows config: a config write racing a
// client build never leaves a client of the old config cached (issue 9,
// defect 4).

// pausingStorage stops a caller whose context carries pauseHere right
// after it read key, until the test lets it go on: a deterministic way to
// put another request between a read and what the reader does with it.
type pausingStorage struct {
	logical.Storage
	key     string
	reached chan struct{}
	release chan struct{}
}

type pauseHere struct{}

func (p *pausingStorage) Get(ctx context.Context, key string) (*logical.StorageEntry, error) {
	entry, err := p.Storage.Get(ctx, key)
	if key == p.key && ctx.Value(pauseHere{}) != nil {
		close(p.reached)
		<-p.release
	}
	return entry, err
}

// pausingAdminClient is a fake whose admin login (client credentials)
// stops a caller whose context carries pauseHere, and whose sessions name
// the login_url of the config it was built from.
type pausingAdminClient struct {
	*fakeClient
	reached, release chan struct{}
}

func (c *pausingAdminClient) ClientCredentialsGrant(ctx context.Context, scopes []string) (*sfapi.Session, error) {
	if ctx.Value(pauseHere{}) != nil {
		close(c.reached)
		<-c.release
	}
	s, err := c.fakeClient.ClientCredentialsGrant(ctx, scopes)
	if s != nil {
		s.InstanceURL = c.cfg.LoginURL
	}
	return s, err
}

// Issue 9, defect 4: a config write that lands while a caller builds the
// client (or logs in as the admin) from the config it read before must not
// leave that older client (or session) cached: the next caller gets one
// built from the config now stored.
func TestTrust04ConfigWriteRacingGetClient(t *testing.T) {
	const oldURL, newURL = "https://fake.my.salesforce.com", "https://other.my.salesforce.com"
	newConfig := fakeConfig()
	newConfig["login_url"] = newURL
	ctx := context.Background()

	t.Run("client", func(t *testing.T) {
		b, inmem := getTestBackend(t)
		b.newClient = func(cc sfapi.Config) (Client, error) {
			f := newFakeClient()
			f.cfg = cc
			return f, nil
		}
		s := &pausingStorage{Storage: inmem, key: configStoragePath, reached: make(chan struct{}), release: make(chan struct{})}
		mustWrite(t, b, s, "config", fakeConfig())

		raced := make(chan error, 1)
		go func() {
			c, cfg, err := b.getClient(context.WithValue(ctx, pauseHere{}, true), s)
			if err == nil && fakeOf(c).cfg.LoginURL != cfg.LoginURL {
				err = fmt.Errorf("the racing caller got a client for %s with a config for %s", fakeOf(c).cfg.LoginURL, cfg.LoginURL)
			}
			raced <- err
		}()
		<-s.reached // it read the old config
		mustWrite(t, b, s, "config", newConfig)
		close(s.release)
		if err := <-raced; err != nil {
			t.Fatal(err)
		}
		b.clientMu.RLock()
		cached := b.client
		b.clientMu.RUnlock()
		if cached != nil {
			t.Errorf("a client built from the older config (%s) is cached", fakeOf(cached).cfg.LoginURL)
		}
		c, cfg, err := b.getClient(ctx, s)
		if err != nil {
			t.Fatal(err)
		}
		if got := fakeOf(c).cfg.LoginURL; got != newURL || cfg.LoginURL != newURL {
			t.Errorf("after the config write the cached client is for %s (config %s), want %s", got, cfg.LoginURL, newURL)
		}
	})

	// A node can see the new config in storage before its Invalidate (or
	// the writer's resetClient) runs: the cached client is not served with it.
	t.Run("config stored, not yet reset", func(t *testing.T) {
		b, s := getTestBackend(t)
		b.newClient = func(cc sfapi.Config) (Client, error) {
			f := newFakeClient()
			f.cfg = cc
			return f, nil
		}
		mustWrite(t, b, s, "config", fakeConfig())
		if _, _, err := b.getClient(ctx, s); err != nil {
			t.Fatal(err)
		}
		cfg, err := readConfig(ctx, s)
		if err != nil {
			t.Fatal(err)
		}
		cfg.LoginURL = newURL
		if err := writeConfig(ctx, s, cfg); err != nil {
			t.Fatal(err)
		}
		c, got, err := b.getClient(ctx, s)
		if err != nil {
			t.Fatal(err)
		}
		if fakeOf(c).cfg.LoginURL != newURL || got.LoginURL != newURL {
			t.Errorf("client for %s served with config for %s, want both %s", fakeOf(c).cfg.LoginURL, got.LoginURL, newURL)
		}
	})

	t.Run("admin session", func(t *testing.T) {
		b, s := getTestBackend(t)
		reached, release := make(chan struct{}), make(chan struct{})
		b.newClient = func(cc sfapi.Config) (Client, error) {
			f := newFakeClient()
			f.cfg = cc
			return &pausingAdminClient{fakeClient: f, reached: reached, release: release}, nil
		}
		mustWrite(t, b, s, "config", fakeConfig())

		raced := make(chan error, 1)
		go func() {
			_, err := b.adminSession(context.WithValue(ctx, pauseHere{}, true), s)
			raced <- err
		}()
		<-reached // it logs in with the old config
		mustWrite(t, b, s, "config", newConfig)
		close(release)
		if err := <-raced; err != nil {
			t.Fatal(err)
		}
		sess, err := b.adminSession(ctx, s)
		if err != nil {
			t.Fatal(err)
		}
		if sess.InstanceURL != newURL {
			t.Errorf("after the config write the cached admin session is from %s, want %s", sess.InstanceURL, newURL)
		}
	})
}

// pathExamples are request paths, one for each path pattern of the
// backend, for tests that go over every path; such tests fail when a
// pattern has none.
var pathExamples = []string{
	"config", "config/rotation", "config/jwt-key", "config/jwt-key/rotate", "config/jwt-key/confirm",
	"accounts/", "accounts/a", "accounts/a/diagnose", "accounts/a/security-token", "creds/a",
	"roles/", "roles/r", "token/r", "rotate/a", "rotate-root",
	"login-report", "accounts/a/login-report", "rotate-client-secret",
}

// Rotations take the config from memory (getClientForRotation): a config
// written through the API on this node, or on another node once Vault
// calls Invalidate, is what the next rotation's client and config are for.
func TestClientForRotationFollowsConfigWrites(t *testing.T) {
	const newURL = "https://other.my.salesforce.com"
	ctx := context.Background()
	active, s := getTestBackend(t)
	standby, _ := getTestBackend(t)
	for _, b := range []*backend{active, standby} {
		b.newClient = func(cc sfapi.Config) (Client, error) {
			f := newFakeClient()
			f.cfg = cc
			return f, nil
		}
	}
	mustWrite(t, active, s, "config", fakeConfig())
	for _, b := range []*backend{active, standby} {
		if _, _, err := b.getClientForRotation(ctx, s); err != nil { // cache the old config and client
			t.Fatal(err)
		}
	}
	newConfig := fakeConfig()
	newConfig["login_url"] = newURL
	mustWrite(t, active, s, "config", newConfig)
	standby.InvalidateKey(ctx, configStoragePath)
	for name, b := range map[string]*backend{"writer": active, "other node": standby} {
		c, cfg, err := b.getClientForRotation(ctx, s)
		if err != nil {
			t.Fatal(err)
		}
		if fakeOf(c).cfg.LoginURL != newURL || cfg.LoginURL != newURL {
			t.Errorf("%s: rotation client for %s with config for %s, want both %s", name, fakeOf(c).cfg.LoginURL, cfg.LoginURL, newURL)
		}
	}
}
