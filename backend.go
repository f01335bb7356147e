package salesforce

import (
	"context"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/vault/sdk/framework"
	"github.com/hashicorp/vault/sdk/logical"

	"github.com/vault-salesforce/vault-plugin-secrets-salesforce/sfapi"
)

// Version is the plugin's version, set at build time with
// -ldflags "-X github.com/vault-salesforce/vault-plugin-secrets-salesforce.Version=v0.1.0".
var Version = "v0.0.0-dev"

const backendHelp = `
The Salesforce secrets engine keeps the credentials of Salesforce integration
users (username, password and security token) in Vault and serves them to
applications, either as the composed password+token credential or as OAuth
access tokens. It can rotate the passwords on demand and on a schedule.

Start by writing the connected app and admin identity to "config", then store
each integration user under "accounts/<name>" and read it back from
"creds/<name>".
`

// operationPrefix starts the OpenAPI operation id of every path.
const operationPrefix = "salesforce"

// backend is the Salesforce secrets engine.
type backend struct {
	*framework.Backend
	logger hclog.Logger

	// clock is the engine's one clock, read through now(); tests set it.
	clock func() time.Time

	// clientMu guards client, which is built from the stored config on
	// first use and dropped whenever the config changes (here or, through
	// Invalidate, on another node). clientFrom is the config it was built
	// from; clientGen counts the drops, so that a client built from a
	// config read before a drop is never cached (getClient).
	clientMu   sync.RWMutex
	client     Client
	clientFrom salesforceConfig
	clientGen  uint64
	// newClient builds a Client from a config; tests replace it with a fake.
	newClient func(sfapi.Config) (Client, error)

	// admin caches the config's admin session (admin_session.go).
	admin adminSessionCache
	// rootMu serialises the writers of the admin credential in config:
	// config writes, rotate-root and the settling of its WAL (rotate_root.go).
	rootMu sync.Mutex

	// accountLocks serialise the writers of each stored account (account.go).
	accountLocks *accountLocks
	// budget counts the logins made with stored credentials (login_budget.go).
	budget *loginBudget
	// loginFlow is the flow logins with a password use (login.go), learned
	// from the org and forgotten when the config changes.
	loginFlow atomic.Int32

	// jwtKeyMu serialises read-modify-writes of config/jwt-key (jwt_key.go).
	jwtKeyMu sync.Mutex

	// tokens caches role access tokens and tracks their leases
	// (token_cache.go, token_leases.go).
	tokens *tokenCache
	// tokenReads tracks token reads in flight across a consumer key
	// switch (client_secret_holders.go).
	tokenReads tokenReads

	// rot is the rotation queue and its background work (rotation_schedule.go).
	rot *rotationState

	// cache holds decoded accounts, config, config/rotation and roles
	// (entry_cache.go); idx the username and schedule indexes
	// (account_index.go); walIdx the accounts with WAL entries (wal_index.go).
	cache  *entryCaches
	idx    *accountIndexes
	walIdx walIndex
	// leaseTTLs are the mount's lease TTLs as last read (path_token.go).
	leaseTTLs leaseTTLCache
	// reqRate spaces every Salesforce call (request_rate.go).
	reqRate requestRate
}

// Factory is the logical.Factory Vault calls to mount the engine.
func Factory(ctx context.Context, conf *logical.BackendConfig) (logical.Backend, error) {
	b := newBackend(conf)
	if err := b.Setup(ctx, conf); err != nil {
		return nil, err
	}
	return b, nil
}

func newBackend(conf *logical.BackendConfig) *backend {
	b := &backend{
		logger:       conf.Logger,
		clock:        time.Now,
		newClient:    newClient,
		accountLocks: newAccountLocks(),
		budget:       newLoginBudget(),
		tokens:       newTokenCache(),
		rot:          newRotationState(),
		cache:        newEntryCaches(),
		idx:          newAccountIndexes(),
	}
	if b.logger == nil {
		b.logger = hclog.NewNullLogger()
	}
	b.Backend = &framework.Backend{
		Help:        strings.TrimSpace(backendHelp),
		BackendType: logical.TypeLogical,
		PathsSpecial: &logical.Paths{
			SealWrapStorage: []string{
				configStoragePath,
				accountStoragePrefix,
				roleStoragePrefix,
				jwtKeyStoragePath,
				rotationConfigStoragePath,
				framework.WALPrefix,
			},
			LocalStorage: []string{
				framework.WALPrefix,
				tokenLeaseStoragePrefix,
			},
		},
		Paths: framework.PathAppend(
			pathConfig(b),
			// Paths below accounts/<name>/ come before accounts/<name>,
			// whose pattern would match them too.
			pathSecurityToken(b),
			pathDiagnose(b),
			pathLoginReport(b),
			pathAccounts(b),
			pathCreds(b),
			pathRoles(b),
			pathToken(b),
			pathJWTKey(b),
			pathRotate(b),
			pathRotateClientSecret(b),
			pathConfigRotation(b),
		),
		Secrets:           []*framework.Secret{secretAccessToken(b)},
		Invalidate:        b.invalidate,
		Clean:             b.clean,
		InitializeFunc:    b.initializeRotation,
		PeriodicFunc:      b.periodicFunc,
		WALRollback:       b.walRollback,
		WALRollbackMinAge: walRollbackMinAge,
		RotateCredential:  b.rotateRoot,
		RunningVersion:    Version,
	}
	return b
}

// now is the time as the engine sees it.
func (b *backend) now() time.Time { return b.clock() }

// invalidate runs on every node when another node changes a key.
func (b *backend) invalidate(ctx context.Context, key string) {
	// Decoded entries, cached clients, sessions and OAuth tokens follow
	// what they were read, built or minted from.
	switch {
	case key == configStoragePath:
		b.resetClient()
		b.invalidateAllTokens()
	case key == rotationConfigStoragePath:
		b.rotationConfigChanged()
	case key == jwtKeyStoragePath:
		b.invalidateTokensForJWTKey()
	case strings.HasPrefix(key, roleStoragePrefix):
		b.invalidateTokensForRole(strings.TrimPrefix(key, roleStoragePrefix))
	case strings.HasPrefix(key, accountStoragePrefix):
		name := strings.TrimPrefix(key, accountStoragePrefix)
		b.cache.accounts.drop(name)
		b.invalidateTokensForAccount(name)
	case strings.HasPrefix(key, framework.WALPrefix):
		b.walIdx.stale()
	case strings.HasPrefix(key, loginBudgetStoragePrefix):
		b.budget.forget(key)
	}
}

// clean runs when the mount is unloaded.
func (b *backend) clean(ctx context.Context) {
	b.persistTokenHolders(ctx)
	b.cleanRotation()
	b.resetClient()
}

// resetClient drops the cached client so the next call rebuilds it from
// the stored config.
func (b *backend) resetClient() {
	// Every writer of config calls this right after its write (config.go),
	// as Invalidate does for another node's: the decoded config goes too.
	b.cache.config.drop(configStoragePath)
	b.clientMu.Lock()
	b.client = nil
	b.clientFrom = salesforceConfig{}
	b.clientGen++
	b.clientMu.Unlock()
	b.admin.drop()
	b.loginFlow.Store(flowUnknown)
}

// getClient returns the stored config and a client built from exactly that
// config, building it once. Config writes store the config first and then
// call resetClient, so a caller that read the config before a write
// finds the generation moved on and does not cache what it built from the
// older config; and a cached client is only returned with the config it
// was built from.
func (b *backend) getClient(ctx context.Context, s logical.Storage) (Client, *salesforceConfig, error) {
	// From storage, not the decoded config in memory: every caller makes a
	// Salesforce call next, so one storage read costs little, and a config
	// another node stored is used at once, before its Invalidate arrives.
	return b.clientFor(ctx, s, readConfig)
}

// getClientForRotation is getClient with the config from memory, for
// rotations: they run only on the active node, where every config write
// drops the decoded config before it returns (resetClient), so memory holds
// what storage holds, and a storage read per rotation would be one more
// round trip to Vault beside its three Salesforce calls.
func (b *backend) getClientForRotation(ctx context.Context, s logical.Storage) (Client, *salesforceConfig, error) {
	return b.clientFor(ctx, s, b.readConfigCached)
}

func (b *backend) clientFor(ctx context.Context, s logical.Storage, read func(context.Context, logical.Storage) (*salesforceConfig, error)) (Client, *salesforceConfig, error) {
	b.clientMu.RLock()
	gen := b.clientGen
	b.clientMu.RUnlock()
	cfg, err := read(ctx, s)
	if err != nil {
		return nil, nil, err
	}
	if cfg == nil {
		return nil, nil, errConfigMissing
	}
	b.clientMu.RLock()
	c, from := b.client, b.clientFrom
	b.clientMu.RUnlock()
	if c != nil && from == *cfg {
		return c, cfg, nil
	}

	b.clientMu.Lock()
	defer b.clientMu.Unlock()
	if b.client != nil && b.clientFrom == *cfg {
		return b.client, cfg, nil
	}
	cc, err := cfg.clientConfig()
	if err != nil {
		return nil, nil, err
	}
	c, err = b.newClient(cc)
	if err != nil {
		return nil, nil, err
	}
	c = b.limitRequests(c, s)
	if b.clientGen == gen {
		b.client, b.clientFrom = c, *cfg
	}
	return c, cfg, nil
}

// readConfigCached is readConfig through the decoded config in memory.
func (b *backend) readConfigCached(ctx context.Context, s logical.Storage) (*salesforceConfig, error) {
	return b.cache.config.get(configStoragePath, func() (*salesforceConfig, error) { return readConfig(ctx, s) })
}

// readRotationConfigCached is readRotationConfig through the decoded
// config/rotation in memory; path_config_rotation.go drops it on writes.
func (b *backend) readRotationConfigCached(ctx context.Context, s logical.Storage) (*rotationConfig, error) {
	return b.cache.rotation.get(rotationConfigStoragePath, func() (*rotationConfig, error) { return readRotationConfig(ctx, s) })
}

// readRoleCached is readRole through the decoded roles in memory; role
// writes and deletes drop them (invalidateTokensForRole).
func (b *backend) readRoleCached(ctx context.Context, s logical.Storage, name string) (*roleEntry, error) {
	return b.cache.roles.get(name, func() (*roleEntry, error) { return readRole(ctx, s, name) })
}
