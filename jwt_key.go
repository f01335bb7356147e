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
