package salesforce

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/hashicorp/vault/sdk/helper/locksutil"
	"github.com/hashicorp/vault/sdk/logical"
)

// The lease holder index: which leases hold each cached token, kept in
// storage so that the last lease to end revokes the token, also after a
// restart, failover or reload.

// holderGrace pads a lease's recorded end so that clock differences
// between Vault's lease and ours never end a holder early.
const holderGrace = time.Minute

// errTokenRevoked means the token was revoked at a lease end while the
// read that got it was about to record its lease.
var errTokenRevoked = errors.New("the token was revoked while its lease was being recorded")

// tokenLeaseStoragePrefix holds one entry per lease holding a token, under
// token-leases/<sha256 hex of the token>/<lease end unix>-<nonce>: the
// token itself is never stored. Leases are per cluster (performance
// secondaries keep their own), so the prefix is local storage.
const tokenLeaseStoragePrefix = "token-leases/"

// tokenHash names a token in storage without storing it.
func tokenHash(token string) string {
	sum := sha256.Sum256([]byte(token))
	return hex.EncodeToString(sum[:])
}

func tokenHolderPrefix(hash string) string {
	return tokenLeaseStoragePrefix + hash + "/"
}

// holderEnd reads the lease end from a holder entry's name.
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

// tokenHolderEntry is what a holder entry stores: enough for an operator
// to tell what it belongs to, nothing secret.
type tokenHolderEntry struct {
	Role string `json:"role"`
	// ClientID is the consumer key that minted the token, so a rotated-out
	// key is kept while a lease holds a token it minted.
	ClientID string `json:"client_id,omitempty"`
}

// recordTokenHolder records in storage that a lease ending at leaseEnd
// holds tok, so that the lease holding it last revokes it, also after a
// restart, failover or reload. It returns the entry's name for the lease.
func (b *backend) recordTokenHolder(ctx context.Context, s logical.Storage, role string, tok *cachedToken, nonce string, leaseEnd time.Time) (string, error) {
	c := b.tokens
	hash := tokenHash(tok.session.AccessToken)
	lock := locksutil.LockForKey(c.holderLocks, hash)
	lock.RLock()
	defer lock.RUnlock()
	c.mu.Lock()
	_, revoked := c.revoked[hash]
	c.mu.Unlock()
	if revoked {
		return "", errTokenRevoked
	}
	leaf := strconv.FormatInt(leaseEnd.Add(holderGrace).Unix(), 10) + "-" + nonce
	entry, err := logical.StorageEntryJSON(tokenHolderPrefix(hash)+leaf, tokenHolderEntry{Role: role, ClientID: tok.clientID})
	if err != nil {
		return "", err
	}
	if err := s.Put(ctx, entry); err != nil {
		if errors.Is(err, logical.ErrReadOnly) {
			// Vault forwards token reads to the active node; reaching
			// this means it did not (an older Vault or a misrouted call).
			return "", fmt.Errorf("cannot record the token's lease: this node's storage is read-only, read the token on the active node: %w", err)
		}
		return "", fmt.Errorf("recording the token's lease: %w", err)
	}
	return leaf, nil
}

// releaseTokenHolder removes the lease's holder entry and reports whether
// the token should now be revoked in Salesforce: true when no lease that
// may still be alive holds it. A token about to be revoked also leaves the
// cache in the same step, and no read can record a lease on it afterwards.
// leaf is "" for leases issued before the holder index existed.
func (b *backend) releaseTokenHolder(ctx context.Context, s logical.Storage, token, leaf string, sessionEnd time.Time) (bool, error) {
	c := b.tokens
	hash := tokenHash(token)
	prefix := tokenHolderPrefix(hash)
	lock := locksutil.LockForKey(c.holderLocks, hash)
	lock.Lock()
	defer lock.Unlock()

	if leaf != "" && !strings.Contains(leaf, "/") {
		if err := s.Delete(ctx, prefix+leaf); err != nil {
			return false, fmt.Errorf("removing the lease from the token's holders: %w", err)
		}
	}
	leaves, err := s.List(ctx, prefix)
	if err != nil {
		return false, fmt.Errorf("listing the token's holders: %w", err)
	}
	now := b.now()
	var ended []string
	for _, l := range leaves {
		end, ok := holderEnd(l)
		if ok && now.After(end) {
			// Its lease ended without Vault telling us (a forced revoke).
			ended = append(ended, l)
			continue
		}
		// A holder may still be alive (an unreadable one too, to be safe).
		return false, nil
	}
	for _, l := range ended {
		if err := s.Delete(ctx, prefix+l); err != nil {
			b.logger.Warn("could not remove an ended lease from the token holder index", "error", err)
		}
	}

	c.mu.Lock()
	defer c.mu.Unlock()
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

// tokenHolders counts the holder entries of token (tests, diagnostics).
func tokenHolders(ctx context.Context, s logical.Storage, token string) (int, error) {
	leaves, err := s.List(ctx, tokenHolderPrefix(tokenHash(token)))
	return len(leaves), err
}
