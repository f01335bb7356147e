package main

import (
	"context"
	"time"

	"github.com/hashicorp/vault/sdk/framework"
	"github.com/hashicorp/vault/sdk/logical"
)

const (
	entryStoragePath = "entry"
	secretLeaseType  = "noop_lease"
	// leaseTTL is the lease of every lease read; the benchmark compares it
	// with leases of Salesforce tokens, which last up to the session.
	leaseTTL = time.Hour
)

// Factory builds the no-op backend.
func Factory(ctx context.Context, conf *logical.BackendConfig) (logical.Backend, error) {
	b := newBackend()
	if err := b.Setup(ctx, conf); err != nil {
		return nil, err
	}
	return b, nil
}

// leaseSecret is what lease reads return: renewable, nothing to revoke.
var leaseSecret = &framework.Secret{
	Type:            secretLeaseType,
	DefaultDuration: leaseTTL,
	Fields: map[string]*framework.FieldSchema{
		"value": {Type: framework.TypeString, Description: "A constant."},
	},
	Renew: renewLease,
	Revoke: func(context.Context, *logical.Request, *framework.FieldData) (*logical.Response, error) {
		return nil, nil
	},
}

func newBackend() *framework.Backend {
	b := &framework.Backend{
		Help:        "No-op reference plugin for benchmarks: entry is one stored entry, lease is a leased read without storage.",
		BackendType: logical.TypeLogical,
		Secrets:     []*framework.Secret{leaseSecret},
	}
	b.Paths = []*framework.Path{
		{
			Pattern: "entry",
			// Any field may be written: the entry is the request's data.
			TakesArbitraryInput: true,
			Operations: map[logical.Operation]framework.OperationHandler{
				logical.ReadOperation:   &framework.PathOperation{Callback: readEntry},
				logical.UpdateOperation: &framework.PathOperation{Callback: writeEntry},
				logical.CreateOperation: &framework.PathOperation{Callback: writeEntry},
			},
			ExistenceCheck:  func(context.Context, *logical.Request, *framework.FieldData) (bool, error) { return true, nil },
			HelpSynopsis:    "One stored entry: read returns it decoded, write replaces it.",
			HelpDescription: "The reference for reads that cost one storage Get through the gRPC hop.",
		},
		{
			Pattern: "lease",
			Operations: map[logical.Operation]framework.OperationHandler{
				logical.ReadOperation: &framework.PathOperation{Callback: readLease},
			},
			HelpSynopsis:    "A leased read without storage access.",
			HelpDescription: "The reference for reads that return a lease and touch no plugin storage.",
		},
	}
	return b
}

func readEntry(ctx context.Context, req *logical.Request, _ *framework.FieldData) (*logical.Response, error) {
	entry, err := req.Storage.Get(ctx, entryStoragePath)
	if err != nil || entry == nil {
		return nil, err
	}
	var data map[string]interface{}
	if err := entry.DecodeJSON(&data); err != nil {
		return nil, err
	}
	return &logical.Response{Data: data}, nil
}

func writeEntry(ctx context.Context, req *logical.Request, _ *framework.FieldData) (*logical.Response, error) {
	entry, err := logical.StorageEntryJSON(entryStoragePath, req.Data)
	if err != nil {
		return nil, err
	}
	return nil, req.Storage.Put(ctx, entry)
}

func readLease(_ context.Context, _ *logical.Request, _ *framework.FieldData) (*logical.Response, error) {
	return leaseSecret.Response(map[string]interface{}{"value": "noop"}, nil), nil
}

func renewLease(_ context.Context, req *logical.Request, _ *framework.FieldData) (*logical.Response, error) {
	return &logical.Response{Secret: req.Secret}, nil
}
