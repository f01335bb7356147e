package salesforce

import (
	"context"
	"testing"

	"github.com/hashicorp/vault/sdk/framework"
	"github.com/hashicorp/vault/sdk/logical"
)

// Reads say "pending reconciliation" from the WAL index in memory: after
// the first, no read lists or reads the WAL, and the status follows the
// entry's write and its settling.
func TestWALIndexPendingWithoutStorageCalls(t *testing.T) {
	e := newRotEnv(t)
	e.addTrusted("svc", nil)
	e.addTrusted("other", map[string]interface{}{"username": rotIntegUser, "password": rotIntegPassword, "security_token": rotIntegToken})
	cs := newCountingStorage(e.s)
	if c := mustRead(t, e.b, cs, "creds/svc"); c["rotation_status"] != nil {
		t.Fatalf("before the crash: rotation_status %v", c["rotation_status"])
	}
	e.crashedRotation("svc", stepPasswordChanged)
	cs.taken()
	for range 3 {
		if c := mustRead(t, e.b, cs, "creds/svc"); c["rotation_status"] != "pending_reconciliation" {
			t.Fatalf("after the crash: creds rotation_status %v", c["rotation_status"])
		}
		if a := mustRead(t, e.b, cs, "accounts/svc"); a["rotation_status"] != "pending_reconciliation" {
			t.Fatalf("after the crash: account rotation_status %v", a["rotation_status"])
		}
		if c := mustRead(t, e.b, cs, "creds/other"); c["rotation_status"] != nil {
			t.Fatalf("another account reads as pending: %v", c["rotation_status"])
		}
	}
	calls := cs.taken()
	if n := calls["list wal/"] + calls["get wal/"]; n != 0 {
		t.Errorf("reads listed or read the WAL %d times: %v", n, calls)
	}

	// Settling deletes the entry, and the reads say so at once.
	e.advance(e.settleAge())
	e.mustRotate("svc")
	if c := e.creds("svc"); c["rotation_status"] != nil {
		t.Errorf("after settling: rotation_status %v", c["rotation_status"])
	}
	if e.walCount() != 0 {
		t.Errorf("%d WAL entries left", e.walCount())
	}
}

// A new node (a restart, a failover) rebuilds the index from storage at
// Initialize, and another node's WAL writes reach it through Invalidate.
func TestWALIndexRebuiltAndInvalidated(t *testing.T) {
	e := newRotEnv(t)
	e.addTrusted("svc", nil)
	e.crashedRotation("svc", stepPasswordChanged)
	e.restart()
	if c := e.creds("svc"); c["rotation_status"] != "pending_reconciliation" {
		t.Fatalf("after a restart: rotation_status %v", c["rotation_status"])
	}

	// A second node over the same storage reads the account while nothing
	// is pending, then the first node writes a WAL entry.
	e.advance(e.settleAge())
	e.mustRotate("svc")
	other, _ := getTestBackend(t)
	e.prepare(other)
	if c := mustRead(t, other, e.s, "creds/svc"); c["rotation_status"] != nil {
		t.Fatalf("other node before: rotation_status %v", c["rotation_status"])
	}
	before, _ := framework.ListWAL(context.Background(), e.s)
	e.crashedRotation("svc", stepPasswordChanged)
	after, _ := framework.ListWAL(context.Background(), e.s)
	if len(after) != len(before)+1 {
		t.Fatalf("setup: WAL entries %d -> %d", len(before), len(after))
	}
	for _, id := range after {
		other.InvalidateKey(context.Background(), framework.WALPrefix+id)
	}
	if c := mustRead(t, other, e.s, "creds/svc"); c["rotation_status"] != "pending_reconciliation" {
		t.Errorf("other node after the WAL write and Invalidate: rotation_status %v", c["rotation_status"])
	}
	e.advance(e.settleAge())
	e.mustRotate("svc")
	for _, id := range after {
		other.InvalidateKey(context.Background(), framework.WALPrefix+id)
	}
	other.InvalidateKey(context.Background(), "accounts/svc")
	if c := mustRead(t, other, e.s, "creds/svc"); c["rotation_status"] != nil {
		t.Errorf("other node after settling: rotation_status %v", c["rotation_status"])
	}
}

// Vault's WALRollback deletes an entry itself when the engine settled it;
// the index follows.
func TestWALIndexFollowsWALRollback(t *testing.T) {
	e := newRotEnv(t)
	e.addTrusted("svc", nil)
	e.crashedRotation("svc", stepPasswordChanged)
	if c := e.creds("svc"); c["rotation_status"] != "pending_reconciliation" {
		t.Fatalf("after the crash: rotation_status %v", c["rotation_status"])
	}
	e.advance(e.settleAge() + walRollbackMinAge)
	ids, _ := framework.ListWAL(context.Background(), e.s)
	for _, id := range ids {
		entry, err := framework.GetWAL(context.Background(), e.s, id)
		if err != nil || entry == nil {
			t.Fatal(err)
		}
		req := &logical.Request{Storage: e.s}
		if err := e.b.walRollback(context.Background(), req, entry.Kind, entry.Data); err != nil {
			t.Fatalf("WALRollback: %v", err)
		}
		// As Vault does after a nil return.
		if err := framework.DeleteWAL(context.Background(), e.s, id); err != nil {
			t.Fatal(err)
		}
	}
	if c := e.creds("svc"); c["rotation_status"] != nil {
		t.Errorf("after WALRollback: rotation_status %v", c["rotation_status"])
	}
}
