package salesforce

import (
	"hash/maphash"
	"sync"

	"github.com/hashicorp/golang-lru/v2/simplelru"
)

// Decoded storage entries kept in memory, so that the hot reads (creds,
// accounts, token) cross the gRPC hop to Vault's storage only on a miss.
//
// Every cache is dropped for a key whenever the key changes: by the local
// writer (the account transaction, config, role and config/rotation writes)
// and, for writes on another node, by Invalidate (backend.go). A read that
// loads a key from storage stores what it read only if no change of the key
// was noted meanwhile (the key's shard generation did not move), so a slow
// read of the old value can never overwrite a newer one in the cache.
//
// The caches hold copies and hand out copies: callers may change what they
// get (a read-modify-write does), never what is cached.

// Capacities. Accounts are many (100,000 in issue 12's scale test), so
// only the recently used ones stay decoded; roles are few.
const (
	accountCacheSize = 8192
	roleCacheSize    = 1024
	// cacheShards spreads the generations that guard loads, so a write of
	// one key rarely keeps the load of another from being cached.
	cacheShards = 64
)

// entryCache is an LRU of decoded entries of one kind.
type entryCache[T any] struct {
	mu   sync.Mutex
	lru  *simplelru.LRU[string, cachedValue[T]]
	gens [cacheShards]uint64
	seed maphash.Seed
	// negative: the absence of an entry is cached too (config, whose
	// absence every creds read would otherwise ask storage about).
	negative bool
	// clone copies a value (a deep copy where T holds slices or maps).
	clone func(*T) *T
}

type cachedValue[T any] struct {
	v *T // nil: no entry stored (negative caches only)
}

func newEntryCache[T any](size int, negative bool, clone func(*T) *T) *entryCache[T] {
	lru, err := simplelru.NewLRU[string, cachedValue[T]](size, nil)
	if err != nil {
		panic(err) // only for a size < 1
	}
	if clone == nil {
		clone = func(v *T) *T { cp := *v; return &cp }
	}
	return &entryCache[T]{lru: lru, seed: maphash.MakeSeed(), negative: negative, clone: clone}
}

func (c *entryCache[T]) shard(key string) int {
	return int(maphash.String(c.seed, key) % cacheShards)
}

// get returns a copy of the cached entry, or loads it with load (from
// storage) and caches it. ok is false when load failed.
func (c *entryCache[T]) get(key string, load func() (*T, error)) (*T, error) {
	sh := c.shard(key)
	c.mu.Lock()
	if cv, ok := c.lru.Get(key); ok {
		c.mu.Unlock()
		if cv.v == nil {
			return nil, nil
		}
		return c.clone(cv.v), nil
	}
	gen := c.gens[sh]
	c.mu.Unlock()

	v, err := load()
	if err != nil {
		return nil, err
	}
	if v == nil && !c.negative {
		return nil, nil
	}
	c.mu.Lock()
	if c.gens[sh] == gen {
		var stored *T
		if v != nil {
			stored = c.clone(v)
		}
		c.lru.Add(key, cachedValue[T]{v: stored})
	}
	c.mu.Unlock()
	return v, nil
}

// peek returns a copy of the cached entry without loading a missing one
// or counting it as used; ok is false when key is not cached.
func (c *entryCache[T]) peek(key string) (v *T, ok bool) {
	c.mu.Lock()
	cv, ok := c.lru.Peek(key)
	c.mu.Unlock()
	if !ok || cv.v == nil {
		return nil, ok
	}
	return c.clone(cv.v), true
}

// set caches v (nil: no entry) as what storage now holds at key; the local
// writer calls it right after a successful write, under its lock.
func (c *entryCache[T]) set(key string, v *T) {
	sh := c.shard(key)
	c.mu.Lock()
	defer c.mu.Unlock()
	c.gens[sh]++
	if v == nil && !c.negative {
		c.lru.Remove(key)
		return
	}
	var stored *T
	if v != nil {
		stored = c.clone(v)
	}
	c.lru.Add(key, cachedValue[T]{v: stored})
}

// drop forgets key: the next read loads it from storage.
func (c *entryCache[T]) drop(key string) {
	sh := c.shard(key)
	c.mu.Lock()
	defer c.mu.Unlock()
	c.gens[sh]++
	c.lru.Remove(key)
}

// dropAll forgets every entry.
func (c *entryCache[T]) dropAll() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for i := range c.gens {
		c.gens[i]++
	}
	c.lru.Purge()
}

// len is the number of cached entries (tests).
func (c *entryCache[T]) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.lru.Len()
}

// entryCaches are the backend's caches of decoded entries.
type entryCaches struct {
	accounts *entryCache[account]
	config   *entryCache[salesforceConfig]
	rotation *entryCache[rotationConfig]
	roles    *entryCache[roleEntry]
}

func newEntryCaches() *entryCaches {
	return &entryCaches{
		accounts: newEntryCache(accountCacheSize, false, (*account).clone),
		config:   newEntryCache[salesforceConfig](1, true, nil),
		rotation: newEntryCache(1, true, func(r *rotationConfig) *rotationConfig {
			cp := *r
			cp.WebhookAllowedNetworks = append([]string(nil), r.WebhookAllowedNetworks...)
			return &cp
		}),
		roles: newEntryCache(roleCacheSize, false, func(r *roleEntry) *roleEntry {
			cp := *r
			cp.Scopes = append([]string(nil), r.Scopes...)
			return &cp
		}),
	}
}
