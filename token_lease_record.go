package salesforce

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/hashicorp/vault/sdk/helper/locksutil"
	"github.com/hashicorp/vault/sdk/logical"
)

// The stored side of the lease holders (token_leases.go): one record per
// cached token, token-leases/<hash>, with each generation's lease counts by
// lease end; written when a token is minted, at Clean, and by the revocations
// of earlier generations' leases.

// tokenLeaseStoragePrefix holds the record of each token with
// revoke_on_lease_end, under token-leases/<sha256 hex of the token>: the
// token itself is never stored. (Versions before in-memory counting kept
// one entry per lease below token-leases/<hash>/; those are still read.)
// Leases are per cluster (performance secondaries keep their own), so the
// prefix is local storage.
const tokenLeaseStoragePrefix = "token-leases/"

// tokenHash names a token in storage without storing it.
func tokenHash(token string) string {
	sum := sha256.Sum256([]byte(token))
	return hex.EncodeToString(sum[:])
}

func tokenRecordKey(hash string) string { return tokenLeaseStoragePrefix + hash }

// tokenHolderPrefix is where older versions kept one entry per lease.
func tokenHolderPrefix(hash string) string {
	return tokenLeaseStoragePrefix + hash + "/"
}

// holderEnd reads the lease end from an older version's holder entry name
// (<lease end unix>-<nonce>).
func holderEnd(leaf string) (time.Time, bool) {
	unix, _, ok := strings.Cut(leaf, "-")
	if !ok {
		return time.Time{}, false
	}
	n, err := strconv.ParseInt(unix, 10, 64)
	if err != nil {
		return time.Time{}, false
	}
	return time.Unix(n, 0), true
}

// tokenRecord is what token-leases/<hash> stores: enough for an operator
// to tell what it belongs to, nothing secret.
type tokenRecord struct {
	Role string `json:"role"`
	// ClientID is the consumer key that minted the token, so a rotated-out
	// key is kept while a lease holds a token it minted.
	ClientID string `json:"client_id,omitempty"`
	// ExpiresAt is the token's own end: a generation left open by a crash
	// holds it until then.
	ExpiresAt time.Time `json:"expires_at"`
	// Generations are the processes that leased the token, by id.
	Generations map[string]*holderGeneration `json:"generations"`
}

// holderGeneration is one process's leases of a token.
type holderGeneration struct {
	// Open: the process may still hold leases, and nobody knows how many
	// (it is running, or it crashed).
	Open bool `json:"open,omitempty"`
	// Ends counts its leases by lease end (unix seconds), once it closed.
	Ends map[int64]int `json:"ends,omitempty"`
}

// liveAfter reports whether the generation may hold a lease still alive at
// now.
func (g *holderGeneration) liveAfter(now time.Time, expires time.Time) bool {
	if g.Open {
		return now.Before(expires.Add(holderGrace))
	}
	return anyEndAfter(g.Ends, now)
}

func anyEndAfter(ends map[int64]int, now time.Time) bool {
	for end, n := range ends {
		if n > 0 && now.Before(time.Unix(end, 0)) {
			return true
		}
	}
	return false
}

// olderHolders reports whether an older version's per-lease entries of the
// token may still be alive; it removes the ones that ended.
func (b *backend) olderHolders(ctx context.Context, s logical.Storage, hash string, now time.Time) (bool, error) {
	prefix := tokenHolderPrefix(hash)
	leaves, err := s.List(ctx, prefix)
	if err != nil {
		return false, fmt.Errorf("listing the token's holders: %w", err)
	}
	var ended []string
	for _, l := range leaves {
		end, ok := holderEnd(l)
		if ok && now.After(end) {
			// Its lease ended without Vault telling us (a forced revoke).
			ended = append(ended, l)
			continue
		}
		// A holder may still be alive (an unreadable one too, to be safe).
		return true, nil
	}
	for _, l := range ended {
		if err := s.Delete(ctx, prefix+l); err != nil {
			b.logger.Warn("could not remove an ended lease from the token holder index", "error", err)
		}
	}
	return false, nil
}

// persistTokenHolders stores this process's lease counts in the records of
// the tokens it leased, replacing "open"; Clean calls it. What it cannot
// store stays "open", which keeps those tokens until their expiry.
func (b *backend) persistTokenHolders(ctx context.Context) {
	c := b.tokens
	c.holders.storageMu.Lock()
	s := c.holders.storage
	c.holders.storageMu.Unlock()
	if s == nil {
		return
	}
	c.mu.Lock()
	counts := map[string]map[int64]int{}
	for hash, h := range c.holders.byHash {
		if !h.recorded && len(h.ends) == 0 {
			continue
		}
		ends := map[int64]int{}
		for end, n := range h.ends {
			if n > 0 {
				ends[end] = n
			}
		}
		counts[hash] = ends
	}
	c.mu.Unlock()
	now := b.now()
	for hash, ends := range counts {
		lock := locksutil.LockForKey(c.holderLocks, hash)
		lock.Lock()
		err := func() error {
			rec, err := readTokenRecord(ctx, s, hash)
			if err != nil || rec == nil {
				return err
			}
			if anyEndAfter(ends, now) {
				rec.Generations[c.holders.gen] = &holderGeneration{Ends: ends}
			} else {
				delete(rec.Generations, c.holders.gen)
			}
			if len(rec.Generations) == 0 {
				return s.Delete(ctx, tokenRecordKey(hash))
			}
			return writeTokenRecord(ctx, s, hash, rec)
		}()
		lock.Unlock()
		if err != nil {
			b.logger.Warn("could not store the token's lease count; its leases end without revoking it before it expires", "error", err)
		}
	}
}

func readTokenRecord(ctx context.Context, s logical.Storage, hash string) (*tokenRecord, error) {
	entry, err := s.Get(ctx, tokenRecordKey(hash))
	if err != nil {
		return nil, fmt.Errorf("reading the token's lease record: %w", err)
	}
	if entry == nil {
		return nil, nil
	}
	rec := &tokenRecord{}
	if err := entry.DecodeJSON(rec); err != nil {
		return nil, fmt.Errorf("decoding the token's lease record: %w", err)
	}
	if rec.Generations == nil {
		rec.Generations = map[string]*holderGeneration{}
	}
	return rec, nil
}

func writeTokenRecord(ctx context.Context, s logical.Storage, hash string, rec *tokenRecord) error {
	entry, err := logical.StorageEntryJSON(tokenRecordKey(hash), rec)
	if err != nil {
		return err
	}
	return s.Put(ctx, entry)
}
