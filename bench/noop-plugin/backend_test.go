package main

import (
	"context"
	"testing"

	"github.com/hashicorp/vault/sdk/logical"
)

func newTestBackend(t *testing.T) (logical.Backend, logical.Storage) {
	t.Helper()
	s := &logical.InmemStorage{}
	b, err := Factory(context.Background(), &logical.BackendConfig{StorageView: s, System: logical.TestSystemView()})
	if err != nil {
		t.Fatal(err)
	}
	return b, s
}

func handle(t *testing.T, b logical.Backend, s logical.Storage, op logical.Operation, path string, data map[string]interface{}) *logical.Response {
	t.Helper()
	resp, err := b.HandleRequest(context.Background(), &logical.Request{Operation: op, Path: path, Storage: s, Data: data})
	if err != nil || resp.IsError() {
		t.Fatalf("%s %s: %v %v", op, path, err, resp)
	}
	return resp
}

// The entry read returns what was written, decoded from the one stored entry.
func TestEntryReadReturnsStoredEntry(t *testing.T) {
	b, s := newTestBackend(t)
	handle(t, b, s, logical.UpdateOperation, "entry", map[string]interface{}{"username": "u@example.com", "password": "p"})
	if keys, _ := s.List(context.Background(), ""); len(keys) != 1 || keys[0] != entryStoragePath {
		t.Fatalf("storage keys after a write = %v, want [%s]", keys, entryStoragePath)
	}
	resp := handle(t, b, s, logical.ReadOperation, "entry", nil)
	if resp.Data["username"] != "u@example.com" || resp.Data["password"] != "p" {
		t.Fatalf("read entry = %v", resp.Data)
	}
}

// The lease read returns a renewable lease and writes nothing.
func TestLeaseReadIsRenewableAndStoresNothing(t *testing.T) {
	b, s := newTestBackend(t)
	resp := handle(t, b, s, logical.ReadOperation, "lease", nil)
	if resp.Secret == nil || !resp.Secret.Renewable || resp.Secret.TTL != leaseTTL {
		t.Fatalf("lease read secret = %+v, want renewable with TTL %s", resp.Secret, leaseTTL)
	}
	if keys, _ := s.List(context.Background(), ""); len(keys) != 0 {
		t.Fatalf("a lease read stored %v", keys)
	}
	renew, err := b.HandleRequest(context.Background(), &logical.Request{Operation: logical.RenewOperation, Path: "lease", Storage: s, Secret: resp.Secret})
	if err != nil || renew.IsError() || renew.Secret == nil {
		t.Fatalf("renew: %v %v", err, renew)
	}
}
