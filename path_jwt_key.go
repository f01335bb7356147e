package salesforce

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/hashicorp/vault/sdk/framework"
	"github.com/hashicorp/vault/sdk/logical"
)

func jwtKeyFields() map[string]*framework.FieldSchema {
	return map[string]*framework.FieldSchema{
		"common_name": {
			Type:        framework.TypeString,
			Description: "Common name of the self-signed certificate.",
			Default:     defaultJWTKeyCommonName,
		},
		"private_key": {
			Type:        framework.TypeString,
			Description: "PEM RSA private key (at least 2048 bits) to import instead of generating one. Write-only: never returned.",
			DisplayAttrs: &framework.DisplayAttributes{
				Sensitive: true,
			},
		},
		"certificate_ttl": {
			Type:        framework.TypeDurationSecond,
			Description: "Validity of the self-signed certificate.",
			Default:     int(defaultCertificateTTL.Seconds()),
		},
	}
}

func pathJWTKey(b *backend) []*framework.Path {
	return []*framework.Path{
		{
			Pattern: "config/jwt-key$",
			DisplayAttrs: &framework.DisplayAttributes{
				OperationPrefix: operationPrefix,
				OperationSuffix: "jwt-key",
			},
			Fields: jwtKeyFields(),
			Operations: map[logical.Operation]framework.OperationHandler{
				logical.ReadOperation:   &framework.PathOperation{Callback: b.pathJWTKeyRead},
				logical.CreateOperation: &framework.PathOperation{Callback: b.pathJWTKeyWrite},
				logical.UpdateOperation: &framework.PathOperation{Callback: b.pathJWTKeyWrite},
				logical.DeleteOperation: &framework.PathOperation{Callback: b.pathJWTKeyDelete},
			},
			ExistenceCheck:  b.jwtKeyExistenceCheck,
			HelpSynopsis:    "Generate or import the RSA key jwt_bearer grants sign with; only its certificate is readable.",
			HelpDescription: strings.TrimSpace(jwtKeyHelp),
		},
		{
			Pattern: "config/jwt-key/rotate$",
			DisplayAttrs: &framework.DisplayAttributes{
				OperationPrefix: operationPrefix,
				OperationSuffix: "jwt-key-rotate",
			},
			Fields: jwtKeyFields(),
			Operations: map[logical.Operation]framework.OperationHandler{
				logical.UpdateOperation: &framework.PathOperation{Callback: b.pathJWTKeyRotate},
				logical.DeleteOperation: &framework.PathOperation{Callback: b.pathJWTKeyCancelRotation},
			},
			HelpSynopsis:    "Start a JWT key rotation: create a pending key and return its certificate.",
			HelpDescription: strings.TrimSpace(jwtKeyHelp),
		},
		{
			Pattern: "config/jwt-key/confirm$",
			DisplayAttrs: &framework.DisplayAttributes{
				OperationPrefix: operationPrefix,
				OperationSuffix: "jwt-key-confirm",
			},
			Operations: map[logical.Operation]framework.OperationHandler{
				logical.UpdateOperation: &framework.PathOperation{Callback: b.pathJWTKeyConfirm},
			},
			HelpSynopsis:    "Finish a JWT key rotation: make the pending key current and drop the old one.",
			HelpDescription: strings.TrimSpace(jwtKeyHelp),
		},
	}
}

const jwtKeyHelp = `
The JWT bearer flow signs an assertion with an RSA key whose certificate is
uploaded to the connected app. Writing config/jwt-key generates a 2048-bit
key inside Vault (or imports "private_key") and returns the self-signed
certificate; the private key can never be read back.

To rotate without downtime:
  1. write config/jwt-key/rotate: creates a pending key and returns its
     certificate; the current key keeps signing.
  2. upload the pending certificate to the connected app. From then on,
     when Salesforce rejects an assertion signed with the current key, the
     engine signs once more with the pending key, so reads keep working.
  3. write config/jwt-key/confirm: the pending key becomes current, the old
     key is destroyed and cached jwt_bearer tokens are dropped.
Delete config/jwt-key/rotate to abandon a pending key.
`

func (b *backend) jwtKeyExistenceCheck(ctx context.Context, req *logical.Request, d *framework.FieldData) (bool, error) {
	state, err := readJWTKeyState(ctx, req.Storage)
	if err != nil {
		return false, err
	}
	return state.Current != nil, nil
}

func (b *backend) pathJWTKeyRead(ctx context.Context, req *logical.Request, d *framework.FieldData) (*logical.Response, error) {
	state, err := readJWTKeyState(ctx, req.Storage)
	if err != nil {
		return nil, err
	}
	if state.Current == nil && state.Pending == nil {
		return nil, nil
	}
	data := map[string]interface{}{"rotation_pending": state.Pending != nil}
	if state.Current != nil {
		for k, v := range state.Current.publicData("") {
			data[k] = v
		}
	}
	if state.Pending != nil {
		for k, v := range state.Pending.publicData("pending_") {
			data[k] = v
		}
	}
	return &logical.Response{Data: data}, nil
}

// keyFromRequest builds a new key from the request's fields; a non-empty
// message is a 400 naming the field.
func keyFromRequest(d *framework.FieldData, now time.Time) (*jwtKey, string, error) {
	commonName := strings.TrimSpace(d.Get("common_name").(string))
	if commonName == "" {
		return nil, "common_name must not be empty", nil
	}
	certTTL := time.Duration(d.Get("certificate_ttl").(int)) * time.Second
	if certTTL < time.Hour || certTTL > maxCertificateTTL {
		return nil, fmt.Sprintf("certificate_ttl must be between 1h and %s", maxCertificateTTL), nil
	}
	importPEM := d.Get("private_key").(string)
	key, err := newJWTKey(importPEM, commonName, certTTL, now)
	if err != nil {
		if strings.TrimSpace(importPEM) != "" {
			// Parse errors name the problem, never the key's content.
			return nil, err.Error(), nil
		}
		return nil, "", err
	}
	return key, "", nil
}

func (b *backend) pathJWTKeyWrite(ctx context.Context, req *logical.Request, d *framework.FieldData) (*logical.Response, error) {
	b.jwtKeyMu.Lock()
	defer b.jwtKeyMu.Unlock()
	state, err := readJWTKeyState(ctx, req.Storage)
	if err != nil {
		return nil, err
	}
	if state.Current != nil {
		return logical.ErrorResponse(jwtKeyExistsErrorMessage), nil
	}
	key, msg, err := keyFromRequest(d, b.now())
	if err != nil {
		return nil, err
	}
	if msg != "" {
		return logical.ErrorResponse(msg), nil
	}
	state.Current = key
	if err := writeJWTKeyState(ctx, req.Storage, state); err != nil {
		return nil, err
	}
	b.invalidateTokensForJWTKey()
	return &logical.Response{Data: key.publicData("")}, nil
}

func (b *backend) pathJWTKeyRotate(ctx context.Context, req *logical.Request, d *framework.FieldData) (*logical.Response, error) {
	b.jwtKeyMu.Lock()
	defer b.jwtKeyMu.Unlock()
	state, err := readJWTKeyState(ctx, req.Storage)
	if err != nil {
		return nil, err
	}
	if state.Current == nil {
		return logical.ErrorResponse("no current JWT key to rotate: write config/jwt-key first"), nil
	}
	key, msg, err := keyFromRequest(d, b.now())
	if err != nil {
		return nil, err
	}
	if msg != "" {
		return logical.ErrorResponse(msg), nil
	}
	resp := &logical.Response{}
	if state.Pending != nil {
		resp.AddWarning("an earlier pending key was replaced; its certificate must not be uploaded")
	}
	state.Pending = key
	if err := writeJWTKeyState(ctx, req.Storage, state); err != nil {
		return nil, err
	}
	// The current key keeps signing, so cached tokens stay valid.
	resp.Data = key.publicData("pending_")
	resp.Data["rotation_pending"] = true
	return resp, nil
}

func (b *backend) pathJWTKeyCancelRotation(ctx context.Context, req *logical.Request, d *framework.FieldData) (*logical.Response, error) {
	b.jwtKeyMu.Lock()
	defer b.jwtKeyMu.Unlock()
	state, err := readJWTKeyState(ctx, req.Storage)
	if err != nil {
		return nil, err
	}
	if state.Pending == nil {
		return nil, nil
	}
	state.Pending = nil
	return nil, writeJWTKeyState(ctx, req.Storage, state)
}

func (b *backend) pathJWTKeyConfirm(ctx context.Context, req *logical.Request, d *framework.FieldData) (*logical.Response, error) {
	b.jwtKeyMu.Lock()
	defer b.jwtKeyMu.Unlock()
	state, err := readJWTKeyState(ctx, req.Storage)
	if err != nil {
		return nil, err
	}
	if state.Pending == nil {
		return logical.ErrorResponse("no pending JWT key: write config/jwt-key/rotate first"), nil
	}
	state.Current, state.Pending = state.Pending, nil
	if err := writeJWTKeyState(ctx, req.Storage, state); err != nil {
		return nil, err
	}
	b.invalidateTokensForJWTKey()
	return &logical.Response{Data: state.Current.publicData("")}, nil
}

func (b *backend) pathJWTKeyDelete(ctx context.Context, req *logical.Request, d *framework.FieldData) (*logical.Response, error) {
	b.jwtKeyMu.Lock()
	defer b.jwtKeyMu.Unlock()
	if err := req.Storage.Delete(ctx, jwtKeyStoragePath); err != nil {
		return nil, fmt.Errorf("deleting JWT key: %w", err)
	}
	b.invalidateTokensForJWTKey()
	var resp *logical.Response
	roles, err := rolesWithGrant(ctx, req.Storage, grantJWTBearer)
	if err != nil {
		return nil, err
	}
	if len(roles) > 0 {
		resp = &logical.Response{}
		resp.AddWarning(fmt.Sprintf("jwt_bearer roles %s now depend on the config's private_key, if any", strings.Join(roles, ", ")))
	}
	return resp, nil
}
