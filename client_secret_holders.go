package salesforce

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/vault/sdk/logical"
)

// Who still holds a consumer key: the state of client-secret rotation and
// what the engine knows of the tokens each consumer key minted. After a
// rotation the previous key stays valid until every token minted with it
// has expired or its leases ended:
//
//   - tokens of revoke_on_lease_end roles: their lease holder entries
//     (token_leases.go) name the key; the last lease's end revokes the
//     token, so the key is free once no live holder names it;
//   - tokens of other roles live until they expire: the latest expiry per
//     key is kept in storage (tokensUntil);
//   - token reads in flight when the config switched keys may still
//     record a holder: the key waits for them too (in memory).

const (
	clientSecretStatePath     = "client-secret/state"
	clientSecretTokensPrefix  = "client-secret/tokens/"
	clientSecretTokensRoundUp = 10 * time.Minute
)

// clientSecretState is the stored state of the consumer key rotation of
// config's External Client App. It holds keys (consumer ids), never a
// secret.
type clientSecretState struct {
	// AppID and ConsumerID identify the app and consumer rotated last.
	AppID      string `json:"app_id,omitempty"`
	ConsumerID string `json:"consumer_id,omitempty"`
	// ActiveKey is the key the engine switched config to, at ActiveSince.
	ActiveKey   string    `json:"active_key,omitempty"`
	ActiveSince time.Time `json:"active_since,omitempty"`

	LastRotation time.Time `json:"last_rotation,omitempty"`
	// NextRotation is the next scheduled rotation (zero: none).
	NextRotation     time.Time `json:"next_rotation,omitempty"`
	MissedRotationAt time.Time `json:"missed_rotation_at,omitempty"`
	LastError        string    `json:"last_error,omitempty"`
	LastErrorAt      time.Time `json:"last_error_at,omitempty"`
	Failures         int       `json:"failures,omitempty"`

	// Previous is the key the last rotation replaced.
	Previous *previousCredential `json:"previous,omitempty"`
}

// previousCredential is the credential a rotation replaced: Salesforce
// keeps it in the consumer's staged slot, Rotated and still valid, until
// the engine deletes it or its 30-day validity ends.
type previousCredential struct {
	Key string `json:"key"`
	// StagedID is its id in the staged slot when last seen; the engine
	// looks it up by key again before deleting, since whether ids follow
	// credentials or slots is undocumented.
	StagedID   string    `json:"staged_id,omitempty"`
	SwitchedAt time.Time `json:"switched_at"`
	ExpiresAt  time.Time `json:"expires_at"`
	DeletedAt  time.Time `json:"deleted_at,omitempty"`
	// DeleteReason says why it was deleted when it was.
	DeleteReason string `json:"delete_reason,omitempty"`
	// RetireError is the last failure to delete it.
	RetireError string `json:"retire_error,omitempty"`
}

// pending reports whether the previous credential still exists.
func (p *previousCredential) pending() bool { return p != nil && p.DeletedAt.IsZero() }

func readClientSecretState(ctx context.Context, s logical.Storage) (*clientSecretState, error) {
	st := &clientSecretState{}
	entry, err := s.Get(ctx, clientSecretStatePath)
	if err != nil {
		return nil, fmt.Errorf("reading the client-secret rotation state: %w", err)
	}
	if entry != nil {
		if err := entry.DecodeJSON(st); err != nil {
			return nil, fmt.Errorf("decoding the client-secret rotation state: %w", err)
		}
	}
	return st, nil
}

func writeClientSecretState(ctx context.Context, s logical.Storage, st *clientSecretState) error {
	entry, err := logical.StorageEntryJSON(clientSecretStatePath, st)
	if err != nil {
		return err
	}
	if err := s.Put(ctx, entry); err != nil {
		return fmt.Errorf("writing the client-secret rotation state: %w", err)
	}
	return nil
}

// tokenReads tracks token reads in flight by epoch: a config switch to a
// new key starts an epoch, and the previous key waits for the reads that
// began before it. Its zero value is ready to use.
type tokenReads struct {
	mu       sync.Mutex
	epoch    uint64
	inflight map[uint64]int
	// switched maps a replaced key to the epoch its replacement began.
	switched map[string]uint64
	// untilMu serialises writes of the tokens-until entries; stored caches
	// what they hold.
	untilMu sync.Mutex
	stored  map[string]time.Time
}

// tokenReadStarted records a token read; call the result when it ends.
func (b *backend) tokenReadStarted() func() {
	r := &b.tokenReads
	r.mu.Lock()
	if r.inflight == nil {
		r.inflight = map[uint64]int{}
	}
	e := r.epoch
	r.inflight[e]++
	r.mu.Unlock()
	return func() {
		r.mu.Lock()
		if r.inflight[e]--; r.inflight[e] <= 0 {
			delete(r.inflight, e)
		}
		r.mu.Unlock()
	}
}

// keyReplaced starts a new epoch for the reads after key was replaced.
func (r *tokenReads) keyReplaced(key string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.switched == nil {
		r.switched = map[string]uint64{}
	}
	r.epoch++
	r.switched[key] = r.epoch
}

// readsBefore counts the reads in flight that began before key was
// replaced (in this process).
func (r *tokenReads) readsBefore(key string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	e, ok := r.switched[key]
	if !ok {
		return 0
	}
	n := 0
	for epoch, c := range r.inflight {
		if epoch < e {
			n += c
		}
	}
	return n
}

// tokenClientID is the consumer key the client authenticates with.
func tokenClientID(c Client, cfg *salesforceConfig) string {
	if r, ok := c.(*rateLimitedClient); ok {
		c = r.inner
	}
	if ci, ok := c.(clientIDer); ok {
		return ci.ClientID()
	}
	return cfg.ClientID
}

func tokensUntilPath(key string) string { return clientSecretTokensPrefix + tokenHash(key) }

// noteUnrevokedToken records that a token minted with tok.clientID lives
// until it expires (its role does not revoke it at lease end). Expiries
// are rounded up, so storage is written a few times an hour at most.
func (b *backend) noteUnrevokedToken(ctx context.Context, s logical.Storage, tok *cachedToken) {
	if tok == nil || tok.clientID == "" {
		return
	}
	r := &b.tokenReads
	until := tok.expiresAt.Add(holderGrace)
	r.untilMu.Lock()
	defer r.untilMu.Unlock()
	if r.stored == nil {
		r.stored = map[string]time.Time{}
	}
	if !until.After(r.stored[tok.clientID]) {
		return
	}
	stored, err := readTokensUntil(ctx, s, tok.clientID)
	if err != nil {
		b.logger.Warn("could not read how long tokens of the consumer key live", "error", err)
		return
	}
	if until.After(stored) {
		stored = until.Truncate(clientSecretTokensRoundUp).Add(clientSecretTokensRoundUp)
		entry, err := logical.StorageEntryJSON(tokensUntilPath(tok.clientID), map[string]time.Time{"until": stored})
		if err == nil {
			err = s.Put(ctx, entry)
		}
		if err != nil {
			b.logger.Warn("could not record how long tokens of the consumer key live; a rotation keeps the previous key until its validity ends", "error", err)
			return
		}
	}
	r.stored[tok.clientID] = stored
}

func readTokensUntil(ctx context.Context, s logical.Storage, key string) (time.Time, error) {
	entry, err := s.Get(ctx, tokensUntilPath(key))
	if err != nil || entry == nil {
		return time.Time{}, err
	}
	var v map[string]time.Time
	if err := entry.DecodeJSON(&v); err != nil {
		return time.Time{}, err
	}
	return v["until"], nil
}

// keyHolders is who still holds a consumer key.
type keyHolders struct {
	leases      int
	tokensUntil time.Time
	reads       int
}

func (h keyHolders) done(now time.Time) bool {
	return h.leases == 0 && h.reads == 0 && !h.tokensUntil.After(now)
}

func (h keyHolders) String() string {
	var parts []string
	if h.leases > 0 {
		parts = append(parts, plural(h.leases, "lease"))
	}
	if !h.tokensUntil.IsZero() {
		parts = append(parts, "tokens of roles without revoke_on_lease_end until "+formatTime(h.tokensUntil))
	}
	if h.reads > 0 {
		parts = append(parts, plural(h.reads, "token read")+" in flight")
	}
	if len(parts) == 0 {
		return "nothing"
	}
	return strings.Join(parts, ", ")
}

// holdersOf finds who holds key at now: live leases of tokens whose record
// names it (or names no key: recorded before keys were tracked), tokens
// that live until their expiry, and reads in flight. Leases are counted as
// releaseTokenHolder counts them: this process's in memory, other
// processes' from the token's record (one that left its generation open,
// by crashing, holds the token until the token's own expiry), and older
// versions' per-lease entries.
func (b *backend) holdersOf(ctx context.Context, s logical.Storage, key string, now time.Time) (keyHolders, error) {
	h := keyHolders{reads: b.tokenReads.readsBefore(key)}
	until, err := readTokensUntil(ctx, s, key)
	if err != nil {
		return h, err
	}
	if until.After(now) {
		h.tokensUntil = until
	}
	names, err := s.List(ctx, tokenLeaseStoragePrefix)
	if err != nil {
		return h, fmt.Errorf("listing token holders: %w", err)
	}
	for _, name := range names {
		if hash, older := strings.CutSuffix(name, "/"); older {
			n, err := olderHoldersOf(ctx, s, hash, key, now)
			if err != nil {
				return h, err
			}
			h.leases += n
			continue
		}
		rec, err := readTokenRecord(ctx, s, name)
		if err != nil {
			return h, err
		}
		if rec == nil || (rec.ClientID != key && rec.ClientID != "") {
			continue
		}
		h.leases += b.liveLeases(name, rec, now)
	}
	return h, nil
}

// liveLeases counts the leases of the token with hash and record rec that
// may be alive at now; a generation left open counts as one.
func (b *backend) liveLeases(hash string, rec *tokenRecord, now time.Time) int {
	n := 0
	c := b.tokens
	c.mu.Lock()
	if mine := c.holders.byHash[hash]; mine != nil {
		for end, k := range mine.ends {
			if k > 0 && now.Before(time.Unix(end, 0)) {
				n += k
			}
		}
	}
	gen := c.holders.gen
	c.mu.Unlock()
	for id, g := range rec.Generations {
		switch {
		case id == gen:
			// Counted in memory above.
		case g.Open:
			if g.liveAfter(now, rec.ExpiresAt) {
				n++
			}
		default:
			for end, k := range g.Ends {
				if k > 0 && now.Before(time.Unix(end, 0)) {
					n += k
				}
			}
		}
	}
	return n
}

// olderHoldersOf counts an older version's live per-lease entries of the
// token with hash that name key (or no key).
func olderHoldersOf(ctx context.Context, s logical.Storage, hash, key string, now time.Time) (int, error) {
	prefix := tokenHolderPrefix(hash)
	leaves, err := s.List(ctx, prefix)
	if err != nil {
		return 0, fmt.Errorf("listing token holders: %w", err)
	}
	n := 0
	for _, leaf := range leaves {
		if end, ok := holderEnd(leaf); ok && now.After(end) {
			continue
		}
		entry, err := s.Get(ctx, prefix+leaf)
		if err != nil {
			return 0, fmt.Errorf("reading a token holder: %w", err)
		}
		var he olderHolderEntry
		if entry == nil || entry.DecodeJSON(&he) != nil {
			continue
		}
		if he.ClientID == key || he.ClientID == "" {
			n++
		}
	}
	return n, nil
}

// olderHolderEntry is what older versions stored per lease.
type olderHolderEntry struct {
	Role     string `json:"role"`
	ClientID string `json:"client_id,omitempty"`
}

// errPreviousKeyHeld refuses a rotation while the previous key is held.
var errPreviousKeyHeld = errors.New("the previous consumer key is still in use")
