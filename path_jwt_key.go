package salesforce

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"strings"
	"time"

	"github.com/hashicorp/vault/sdk/framework"
	"github.com/hashicorp/vault/sdk/logical"
)

// jwtKeyStoragePath holds the JWT signing keys (seal-wrapped). It sits
// under "config/" but is a distinct storage entry from the core's config.
const jwtKeyStoragePath = "config/jwt-key"

const (
	jwtKeyBits               = 2048
	defaultJWTKeyCommonName  = "Vault Salesforce JWT"
	defaultCertificateTTL    = 2 * 365 * 24 * time.Hour
	maxCertificateTTL        = 10 * 365 * 24 * time.Hour
	jwtKeySourceGenerated    = "generated"
	jwtKeySourceImported     = "imported"
	jwtKeyExistsErrorMessage = "a JWT key already exists: use config/jwt-key/rotate to replace it without downtime, or delete config/jwt-key first"
)

// errNoSigningKey means neither config/jwt-key nor the config's
// private_key holds a key.
var errNoSigningKey = errors.New("no JWT signing key: write config/jwt-key (or set private_key in config)")

// jwtKey is one RSA key with the self-signed certificate the operator
// uploads to the connected app. PrivateKeyPEM never leaves the engine.
type jwtKey struct {
	PrivateKeyPEM  string    `json:"private_key_pem"`
	CertificatePEM string    `json:"certificate_pem"`
	CommonName     string    `json:"common_name"`
	Source         string    `json:"source"`
	CreatedAt      time.Time `json:"created_at"`
}

// jwtKeyState is the stored entry: the key in use and, during a rotation,
// the key waiting for the operator to upload its certificate.
type jwtKeyState struct {
	Current *jwtKey `json:"current,omitempty"`
	Pending *jwtKey `json:"pending,omitempty"`
}

func readJWTKeyState(ctx context.Context, s logical.Storage) (*jwtKeyState, error) {
	entry, err := s.Get(ctx, jwtKeyStoragePath)
	if err != nil {
		return nil, fmt.Errorf("reading JWT key: %w", err)
	}
	state := &jwtKeyState{}
	if entry == nil {
		return state, nil
	}
	if err := entry.DecodeJSON(state); err != nil {
		return nil, fmt.Errorf("decoding JWT key: %w", err)
	}
	return state, nil
}

func writeJWTKeyState(ctx context.Context, s logical.Storage, state *jwtKeyState) error {
	if state.Current == nil && state.Pending == nil {
		return s.Delete(ctx, jwtKeyStoragePath)
	}
	entry, err := logical.StorageEntryJSON(jwtKeyStoragePath, state)
	if err != nil {
		return fmt.Errorf("encoding JWT key: %w", err)
	}
	if err := s.Put(ctx, entry); err != nil {
		return fmt.Errorf("writing JWT key: %w", err)
	}
	return nil
}

// jwtSigningKey returns the current key of config/jwt-key, or nil, nil
// when none is stored. The core's admin jwt_bearer grant uses it when the
// config has no private_key of its own.
func (b *backend) jwtSigningKey(ctx context.Context, s logical.Storage) (*rsa.PrivateKey, error) {
	state, err := readJWTKeyState(ctx, s)
	if err != nil {
		return nil, err
	}
	if state.Current == nil {
		return nil, nil
	}
	return parseRSAPrivateKey(state.Current.PrivateKeyPEM)
}

// roleSigningKeys are the keys jwt_bearer roles sign with, in order:
// config/jwt-key's current key (else the config's private_key), then the
// pending key of a rotation in progress. The pending key is tried only when
// Salesforce rejects the current one, which bridges the gap between the
// operator uploading the new certificate and confirming the rotation (JWT
// rejections do not count towards any user's lockout). errNoSigningKey
// when there is no key at all.
func (b *backend) roleSigningKeys(ctx context.Context, s logical.Storage) ([]*rsa.PrivateKey, error) {
	state, err := readJWTKeyState(ctx, s)
	if err != nil {
		return nil, err
	}
	var keys []*rsa.PrivateKey
	if state.Current != nil {
		key, err := parseRSAPrivateKey(state.Current.PrivateKeyPEM)
		if err != nil {
			return nil, err
		}
		keys = append(keys, key)
	} else {
		cfg, err := readConfig(ctx, s)
		if err != nil {
			return nil, err
		}
		if cfg != nil {
			key, err := cfg.privateKey()
			if err != nil {
				return nil, err
			}
			if key != nil {
				keys = append(keys, key)
			}
		}
	}
	if state.Pending != nil {
		key, err := parseRSAPrivateKey(state.Pending.PrivateKeyPEM)
		if err != nil {
			return nil, err
		}
		keys = append(keys, key)
	}
	if len(keys) == 0 {
		return nil, errNoSigningKey
	}
	return keys, nil
}

// newJWTKey builds a key from an imported PEM, or generates one, and
// self-signs a certificate for it.
func newJWTKey(importPEM, commonName string, certTTL time.Duration, now time.Time) (*jwtKey, error) {
	var key *rsa.PrivateKey
	source := jwtKeySourceGenerated
	if strings.TrimSpace(importPEM) != "" {
		k, err := parseRSAPrivateKey(importPEM)
		if err != nil {
			return nil, err
		}
		key, source = k, jwtKeySourceImported
	} else {
		k, err := rsa.GenerateKey(rand.Reader, jwtKeyBits)
		if err != nil {
			return nil, fmt.Errorf("generating RSA key: %w", err)
		}
		key = k
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 126))
	if err != nil {
		return nil, fmt.Errorf("generating serial number: %w", err)
	}
	template := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: commonName},
		NotBefore:             now.Add(-5 * time.Minute),
		NotAfter:              now.Add(certTTL),
		KeyUsage:              x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, template, template, &key.PublicKey, key)
	if err != nil {
		return nil, fmt.Errorf("creating certificate: %w", err)
	}
	return &jwtKey{
		PrivateKeyPEM:  string(pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(key)})),
		CertificatePEM: string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})),
		CommonName:     commonName,
		Source:         source,
		CreatedAt:      now.UTC(),
	}, nil
}

// publicData is what may be shown of a key: never the private key.
func (k *jwtKey) publicData(prefix string) map[string]interface{} {
	data := map[string]interface{}{
		prefix + "certificate": k.CertificatePEM,
		prefix + "common_name": k.CommonName,
		prefix + "source":      k.Source,
		prefix + "created_at":  k.CreatedAt.Format(time.RFC3339),
	}
	if block, _ := pem.Decode([]byte(k.CertificatePEM)); block != nil {
		sum := sha256.Sum256(block.Bytes)
		data[prefix+"fingerprint_sha256"] = hex.EncodeToString(sum[:])
		if cert, err := x509.ParseCertificate(block.Bytes); err == nil {
			data[prefix+"not_after"] = cert.NotAfter.UTC().Format(time.RFC3339)
		}
	}
	return data
}

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
			Pattern: "config/jwt-key",
			DisplayAttrs: &framework.DisplayAttributes{
				OperationPrefix: "salesforce",
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
			Pattern: "config/jwt-key/rotate",
			DisplayAttrs: &framework.DisplayAttributes{
				OperationPrefix: "salesforce",
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
			Pattern: "config/jwt-key/confirm",
			DisplayAttrs: &framework.DisplayAttributes{
				OperationPrefix: "salesforce",
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
func keyFromRequest(d *framework.FieldData) (*jwtKey, string, error) {
	commonName := strings.TrimSpace(d.Get("common_name").(string))
	if commonName == "" {
		return nil, "common_name must not be empty", nil
	}
	certTTL := time.Duration(d.Get("certificate_ttl").(int)) * time.Second
	if certTTL < time.Hour || certTTL > maxCertificateTTL {
		return nil, fmt.Sprintf("certificate_ttl must be between 1h and %s", maxCertificateTTL), nil
	}
	importPEM := d.Get("private_key").(string)
	key, err := newJWTKey(importPEM, commonName, certTTL, time.Now())
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
	b.tokens.jwtKeyMu.Lock()
	defer b.tokens.jwtKeyMu.Unlock()
	state, err := readJWTKeyState(ctx, req.Storage)
	if err != nil {
		return nil, err
	}
	if state.Current != nil {
		return logical.ErrorResponse(jwtKeyExistsErrorMessage), nil
	}
	key, msg, err := keyFromRequest(d)
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
	b.tokens.jwtKeyMu.Lock()
	defer b.tokens.jwtKeyMu.Unlock()
	state, err := readJWTKeyState(ctx, req.Storage)
	if err != nil {
		return nil, err
	}
	if state.Current == nil {
		return logical.ErrorResponse("no current JWT key to rotate: write config/jwt-key first"), nil
	}
	key, msg, err := keyFromRequest(d)
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
	b.tokens.jwtKeyMu.Lock()
	defer b.tokens.jwtKeyMu.Unlock()
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
	b.tokens.jwtKeyMu.Lock()
	defer b.tokens.jwtKeyMu.Unlock()
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
	b.tokens.jwtKeyMu.Lock()
	defer b.tokens.jwtKeyMu.Unlock()
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

// rolesWithGrant lists the roles using grant.
func rolesWithGrant(ctx context.Context, s logical.Storage, grant string) ([]string, error) {
	names, err := s.List(ctx, roleStoragePrefix)
	if err != nil {
		return nil, fmt.Errorf("listing roles: %w", err)
	}
	var out []string
	for _, name := range names {
		r, err := readRole(ctx, s, name)
		if err != nil {
			return nil, err
		}
		if r != nil && r.GrantType == grant {
			out = append(out, name)
		}
	}
	return out, nil
}
