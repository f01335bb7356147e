package salesforce

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/vault/sdk/helper/locksutil"
	"github.com/hashicorp/vault/sdk/logical"
)

// The lease holders of cached tokens: which leases hold each token, so
// that the last lease to end revokes it at Salesforce (roles with
// revoke_on_lease_end), also across a restart, failover or reload, without
// a storage write per token read.
//
// This process counts the leases it issues in memory, by token and lease
// end, under a generation of its own that each lease carries in its
// internal data. Storage gets one record per token (token-leases/<hash>),
// written when the token is minted and when it matters:
//
//	minted  the record names this generation as "open": it may hold the
//	        token, how many times is in memory only
//	Clean   (unload, reload, step-down, seal) the record gets this
//	        generation's counts by lease end, replacing "open"
//	revoke  a lease of an earlier generation decrements that generation's
//	        counts in the record; the last lease of any generation revokes
//	        the token and deletes the record
//
// A generation still "open" after its process is gone (a crash: no Clean)
// holds the token for every lease it may have issued: the token is not
// revoked at a lease end before its own expiry, when it ends by itself. A
// lease counts until its end (plus holderGrace), so a lease Vault revoked
// without telling the engine (a forced revoke) never keeps a token alive
// beyond it.

// holderGrace pads a lease's recorded end so that clock differences
// between Vault's lease and ours never end a holder early.
const holderGrace = time.Minute

// holderEndStep rounds lease ends up, so that a token's leases fall into
// few buckets however many reads it serves.
const holderEndStep = time.Minute

// errTokenRevoked means the token was revoked at a lease end while the
// read that got it was about to record its lease.
var errTokenRevoked = errors.New("the token was revoked while its lease was being recorded")

// tokenLeaseCount is this process's leases of one token.
type tokenLeaseCount struct {
	role    string
	expires time.Time
	// ends counts live leases by lease end (unix seconds, padded and
	// rounded up).
	ends map[int64]int
	// recorded: the token's record in storage names this generation.
	recorded bool
}

// holderState is the token cache's part that tracks lease holders.
type holderState struct {
	// gen identifies this process's leases.
	gen string
	// byHash holds this process's leases per token hash; guarded by the
	// token cache's mu.
	byHash map[string]*tokenLeaseCount
	// storage is where Clean stores the counts (the mount's storage, as
	// the first lease record saw it).
	storageMu sync.Mutex
	storage   logical.Storage
}

func newHolderState() holderState {
	return holderState{gen: rand.Text()[:16], byHash: map[string]*tokenLeaseCount{}}
}

// holderID is what a lease carries in lease_holder: this generation and the
// lease's end bucket.
func holderID(gen string, end int64) string {
	return "g:" + gen + ":" + strconv.FormatInt(end, 10)
}

// parseHolderID reads a lease_holder written by holderID; ok is false for
// the forms of older versions.
func parseHolderID(id string) (gen string, end int64, ok bool) {
	rest, found := strings.CutPrefix(id, "g:")
	if !found {
		return "", 0, false
	}
	gen, endText, found := strings.Cut(rest, ":")
	if !found {
		return "", 0, false
	}
	end, err := strconv.ParseInt(endText, 10, 64)
	return gen, end, err == nil
}

// endBucket is the padded, rounded-up lease end a holder counts under.
func endBucket(leaseEnd time.Time) int64 {
	t := leaseEnd.Add(holderGrace)
	step := int64(holderEndStep / time.Second)
	u := t.Unix()
	if t.Nanosecond() > 0 {
		u++
	}
	return (u + step - 1) / step * step
}

// noteTokenMinted records in storage, before a token minted for a
// revoke_on_lease_end role is handed out, that this generation may hold
// it, so that another process that gets the same token from Salesforce
// never revokes it under this one's leases (after a crash too).
func (b *backend) noteTokenMinted(ctx context.Context, s logical.Storage, role string, tok *cachedToken) error {
	c := b.tokens
	hash := tokenHash(tok.session.AccessToken)
	lock := locksutil.LockForKey(c.holderLocks, hash)
	lock.Lock()
	defer lock.Unlock()
	c.mu.Lock()
	if _, revoked := c.revoked[hash]; revoked {
		c.mu.Unlock()
		return errTokenRevoked
	}
	h := c.holders.byHash[hash]
	if h != nil && h.recorded {
		c.mu.Unlock()
		return nil
	}
	c.pruneHolders(b.now())
	c.mu.Unlock()

	c.holders.storageMu.Lock()
	if c.holders.storage == nil {
		c.holders.storage = s
	}
	c.holders.storageMu.Unlock()

	rec, err := readTokenRecord(ctx, s, hash)
	if err != nil {
		return err
	}
	if rec == nil {
		rec = &tokenRecord{Generations: map[string]*holderGeneration{}}
	}
	rec.Role = role
	if tok.clientID != "" {
		rec.ClientID = tok.clientID
	}
	if tok.expiresAt.After(rec.ExpiresAt) {
		rec.ExpiresAt = tok.expiresAt.UTC()
	}
	rec.Generations[c.holders.gen] = &holderGeneration{Open: true}
	if err := writeTokenRecord(ctx, s, hash, rec); err != nil {
		if errors.Is(err, logical.ErrReadOnly) {
			// Vault forwards token reads to the active node; reaching
			// this means it did not (an older Vault or a misrouted call).
			return fmt.Errorf("cannot record the token's lease: this node's storage is read-only, read the token on the active node: %w", err)
		}
		return fmt.Errorf("recording the token's lease: %w", err)
	}
	c.mu.Lock()
	if h = c.holders.byHash[hash]; h == nil {
		h = &tokenLeaseCount{role: role, ends: map[int64]int{}}
		c.holders.byHash[hash] = h
	}
	h.recorded = true
	if tok.expiresAt.After(h.expires) {
		h.expires = tok.expiresAt
	}
	c.mu.Unlock()
	return nil
}

// recordTokenHolder counts, in memory, a lease ending at leaseEnd that
// holds tok, and returns what the lease carries as lease_holder. The
// token's record in storage was written when it was minted
// (noteTokenMinted).
func (b *backend) recordTokenHolder(ctx context.Context, s logical.Storage, role string, tok *cachedToken, nonce string, leaseEnd time.Time) (string, error) {
	c := b.tokens
	hash := tokenHash(tok.session.AccessToken)
	lock := locksutil.LockForKey(c.holderLocks, hash)
	end := endBucket(leaseEnd)
	for {
		lock.RLock()
		c.mu.Lock()
		if _, revoked := c.revoked[hash]; revoked {
			c.mu.Unlock()
			lock.RUnlock()
			return "", errTokenRevoked
		}
		if h := c.holders.byHash[hash]; h != nil && h.recorded {
			h.ends[end]++
			c.mu.Unlock()
			lock.RUnlock()
			return holderID(c.holders.gen, end), nil
		}
		c.mu.Unlock()
		lock.RUnlock()
		// Not (or no longer) named in the token's record: name it first.
		if err := b.noteTokenMinted(ctx, s, role, tok); err != nil {
			return "", err
		}
	}
}

// releaseTokenHolder ends one lease of token and reports whether the
// token should now be revoked in Salesforce: true when no lease that may
// still be alive holds it, in this process or, by its record, in another.
// A token about to be revoked also leaves the cache in the same step, and
// no read can record a lease on it afterwards. holder is the lease's
// lease_holder: this version's holderID, an older version's storage entry
// name, or "" for leases issued before there was any.
func (b *backend) releaseTokenHolder(ctx context.Context, s logical.Storage, token, holder string, sessionEnd time.Time) (bool, error) {
	c := b.tokens
	hash := tokenHash(token)
	lock := locksutil.LockForKey(c.holderLocks, hash)
	lock.Lock()
	defer lock.Unlock()
	now := b.now()

	var rec *tokenRecord
	recChanged := false
	loadRecord := func() error {
		if rec != nil {
			return nil
		}
		r, err := readTokenRecord(ctx, s, hash)
		if err != nil {
			return err
		}
		if r == nil {
			r = &tokenRecord{Generations: map[string]*holderGeneration{}}
		}
		rec = r
		return nil
	}

	gen, end, ours := parseHolderID(holder)
	switch {
	case ours && gen == c.holders.gen:
		c.mu.Lock()
		h := c.holders.byHash[hash]
		if h != nil && h.ends[end] > 0 {
			h.ends[end]--
			if h.ends[end] == 0 {
				delete(h.ends, end)
			}
		}
		c.mu.Unlock()
	case ours:
		// A lease of an earlier process: its counts are in the record.
		if err := loadRecord(); err != nil {
			return false, err
		}
		g := rec.Generations[gen]
		switch {
		case g == nil:
			// Nothing recorded: the token was revoked already.
		case g.Open:
			if g.liveAfter(now, rec.ExpiresAt) {
				// That process ended without saying how many leases it
				// issued: the token lives until its own expiry.
				return false, nil
			}
		default:
			if g.Ends[end] > 0 {
				g.Ends[end]--
				if g.Ends[end] == 0 {
					delete(g.Ends, end)
				}
				if len(g.Ends) == 0 {
					delete(rec.Generations, gen)
				}
				recChanged = true
			}
		}
	case holder != "" && !strings.Contains(holder, "/"):
		// An older version's entry per lease.
		if err := s.Delete(ctx, tokenHolderPrefix(hash)+holder); err != nil {
			return false, fmt.Errorf("removing the lease from the token's holders: %w", err)
		}
	}

	// Does any lease that may be alive still hold the token?
	c.mu.Lock()
	h := c.holders.byHash[hash]
	mine := h != nil && anyEndAfter(h.ends, now)
	c.mu.Unlock()
	held := mine
	if !held {
		if err := loadRecord(); err != nil {
			return false, err
		}
		for id, g := range rec.Generations {
			if id != c.holders.gen && g.liveAfter(now, rec.ExpiresAt) {
				held = true
				break
			}
		}
	}
	if !held {
		live, err := b.olderHolders(ctx, s, hash, now)
		if err != nil {
			return false, err
		}
		held = live
	}
	if held {
		if rec != nil && !mine && rec.Generations[c.holders.gen] != nil {
			// This process holds no lease of it any more.
			delete(rec.Generations, c.holders.gen)
			b.forgetRecorded(hash)
			recChanged = true
		}
		if recChanged {
			if err := writeTokenRecord(ctx, s, hash, rec); err != nil {
				return false, fmt.Errorf("recording the end of the token's lease: %w", err)
			}
		}
		return false, nil
	}

	if err := s.Delete(ctx, tokenRecordKey(hash)); err != nil {
		return false, fmt.Errorf("removing the token's lease record: %w", err)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.holders.byHash, hash)
	for h, end := range c.revoked {
		if now.After(end) {
			delete(c.revoked, h)
		}
	}
	if sessionEnd.Before(now) {
		sessionEnd = now
	}
	c.revoked[hash] = sessionEnd.Add(holderGrace)
	for k, e := range c.entries {
		if e.session.AccessToken == token {
			delete(c.entries, k)
		}
	}
	return true, nil
}

// pruneHolders forgets tokens past their expiry that no live lease of this
// process holds; the caller holds c.mu.
func (c *tokenCache) pruneHolders(now time.Time) {
	for hash, h := range c.holders.byHash {
		if now.After(h.expires.Add(holderGrace)) && !anyEndAfter(h.ends, now) {
			delete(c.holders.byHash, hash)
		}
	}
}

// forgetRecorded notes that the token's record no longer names this
// generation: a new mint of it records it again.
func (b *backend) forgetRecorded(hash string) {
	c := b.tokens
	c.mu.Lock()
	defer c.mu.Unlock()
	if h := c.holders.byHash[hash]; h != nil {
		h.recorded = false
	}
}

// tokenHolders counts the leases known to hold token: this process's, and
// those other processes recorded (tests, diagnostics).
func (b *backend) tokenHolders(ctx context.Context, s logical.Storage, token string) (int, error) {
	hash := tokenHash(token)
	n := 0
	c := b.tokens
	c.mu.Lock()
	if h := c.holders.byHash[hash]; h != nil {
		for _, k := range h.ends {
			n += k
		}
	}
	c.mu.Unlock()
	rec, err := readTokenRecord(ctx, s, hash)
	if err != nil {
		return 0, err
	}
	if rec != nil {
		for id, g := range rec.Generations {
			if id == c.holders.gen {
				continue
			}
			for _, k := range g.Ends {
				n += k
			}
		}
	}
	leaves, err := s.List(ctx, tokenHolderPrefix(hash))
	return n + len(leaves), err
}
