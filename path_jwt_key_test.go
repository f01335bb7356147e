package salesforce

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"strings"
	"sync"
	"testing"

	"github.com/hashicorp/vault/sdk/logical"
)

var (
	jwtTestKeyOnce sync.Once
	jwtTestKeyPEM  string
)

// testJWTKeyPEM is one RSA key (PKCS#8) shared by the tests of this file.
func testJWTKeyPEM(t testing.TB) string {
	t.Helper()
	jwtTestKeyOnce.Do(func() {
		key, err := rsa.GenerateKey(rand.Reader, 2048)
		if err != nil {
			panic(err)
		}
		der, err := x509.MarshalPKCS8PrivateKey(key)
		if err != nil {
			panic(err)
		}
		jwtTestKeyPEM = string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}))
	})
	return jwtTestKeyPEM
}

func certOf(t testing.TB, data map[string]interface{}, field string) *x509.Certificate {
	t.Helper()
	text, _ := data[field].(string)
	block, _ := pem.Decode([]byte(text))
	if block == nil || block.Type != "CERTIFICATE" {
		t.Fatalf("%s is not a PEM certificate: %q", field, text)
	}
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		t.Fatalf("parsing %s: %v", field, err)
	}
	return cert
}

// assertNoPrivateKey fails when any value of data looks like a private key.
func assertNoPrivateKey(t testing.TB, where string, resp *logical.Response) {
	t.Helper()
	if resp == nil {
		return
	}
	if text := responseText(resp, nil); strings.Contains(text, "PRIVATE KEY") {
		t.Errorf("%s shows a private key", where)
	}
}

func TestJWTKeyGenerateReturnsOnlyCertificate(t *testing.T) {
	b, s := getTestBackend(t)
	resp := mustWrite(t, b, s, "config/jwt-key", map[string]interface{}{"common_name": "acme-vault"})
	assertNoPrivateKey(t, "write", resp)
	cert := certOf(t, resp.Data, "certificate")
	if cert.Subject.CommonName != "acme-vault" {
		t.Errorf("CN = %q, want acme-vault", cert.Subject.CommonName)
	}
	key, err := b.jwtSigningKey(t.Context(), s)
	if err != nil || key == nil {
		t.Fatalf("jwtSigningKey: %v", err)
	}
	if !key.PublicKey.Equal(cert.PublicKey) || key.N.BitLen() != 2048 {
		t.Error("certificate does not match the 2048-bit signing key")
	}
	read, err := request(t, b, s, logical.ReadOperation, "config/jwt-key", nil)
	if err != nil || read == nil {
		t.Fatalf("read: %v", err)
	}
	assertNoPrivateKey(t, "read", read)
	if read.Data["source"] != "generated" || read.Data["rotation_pending"] != false || read.Data["fingerprint_sha256"] == "" {
		t.Errorf("read = %v", read.Data)
	}

	// A second write would strand the uploaded certificate.
	again, err := request(t, b, s, logical.UpdateOperation, "config/jwt-key", nil)
	if statusOf(again, err) != 400 || !strings.Contains(respErr(again, err).Error(), "rotate") {
		t.Errorf("overwrite: %d %v, want 400 pointing at rotate", statusOf(again, err), respErr(again, err))
	}
}

func TestJWTKeyImport(t *testing.T) {
	b, s := getTestBackend(t)
	pemKey := testJWTKeyPEM(t)
	resp := mustWrite(t, b, s, "config/jwt-key", map[string]interface{}{"private_key": pemKey})
	assertNoPrivateKey(t, "import", resp)
	want, _ := parseRSAPrivateKey(pemKey)
	got, _ := b.jwtSigningKey(t.Context(), s)
	if got == nil || !got.Equal(want) {
		t.Fatal("imported key is not the signing key")
	}
	if !want.PublicKey.Equal(certOf(t, resp.Data, "certificate").PublicKey) || resp.Data["source"] != "imported" {
		t.Error("certificate is not for the imported key")
	}

	b2, s2 := getTestBackend(t)
	small, _ := rsa.GenerateKey(rand.Reader, 1024)
	smallPEM := string(pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(small)}))
	for name, in := range map[string]string{"garbage": "not a key", "small": smallPEM, "truncated": pemKey[:200] + "\n-----END PRIVATE KEY-----\n"} {
		resp, err := request(t, b2, s2, logical.UpdateOperation, "config/jwt-key", map[string]interface{}{"private_key": in})
		if statusOf(resp, err) != 400 {
			t.Errorf("%s: status %d, want 400", name, statusOf(resp, err))
		}
		if len(in) > 120 {
			assertNoSecrets(t, name+" error", responseText(resp, err), in[40:120])
		}
	}
}

func TestJWTKeyRotation(t *testing.T) {
	b, s, f := tokenTestBackend(t)
	ctx := t.Context()
	mustWrite(t, b, s, "config/jwt-key", nil)
	oldKey, _ := b.jwtSigningKey(ctx, s)
	mustWrite(t, b, s, "roles/jwt", map[string]interface{}{"grant_type": "jwt_bearer", "username": "etl@acme.test"})
	readToken(t, b, s, "jwt")

	if resp, err := request(t, b, s, logical.UpdateOperation, "config/jwt-key/confirm", nil); statusOf(resp, err) != 400 {
		t.Errorf("confirm without a pending key: %d", statusOf(resp, err))
	}
	rot := mustWrite(t, b, s, "config/jwt-key/rotate", map[string]interface{}{"common_name": "next"})
	assertNoPrivateKey(t, "rotate", rot)
	pendingCert := certOf(t, rot.Data, "pending_certificate")

	// Until confirmed, the old key signs and cached tokens stay.
	if k, _ := b.jwtSigningKey(ctx, s); !k.Equal(oldKey) {
		t.Fatal("pending key used before confirmation")
	}
	readToken(t, b, s, "jwt")
	if f.grants() != 1 {
		t.Errorf("grants = %d, rotation start dropped the cache", f.grants())
	}
	read := mustRead(t, b, s, "config/jwt-key")
	if read["rotation_pending"] != true || read["pending_common_name"] != "next" || read["common_name"] == "next" {
		t.Errorf("read during rotation = %v", read)
	}

	confirmed := mustWrite(t, b, s, "config/jwt-key/confirm", nil)
	newKey, _ := b.jwtSigningKey(ctx, s)
	if newKey.Equal(oldKey) || !newKey.PublicKey.Equal(pendingCert.PublicKey) {
		t.Fatal("confirm did not make the pending key current")
	}
	if !newKey.PublicKey.Equal(certOf(t, confirmed.Data, "certificate").PublicKey) {
		t.Error("confirm returned another certificate")
	}
	readToken(t, b, s, "jwt")
	if f.grants() != 2 || !f.lastKey.Equal(newKey) {
		t.Errorf("after confirm: grants = %d, want a new token signed with the new key", f.grants())
	}
	if read := mustRead(t, b, s, "config/jwt-key"); read["rotation_pending"] != false {
		t.Error("pending key left after confirm")
	}

	// Abandoning a rotation keeps the current key.
	mustWrite(t, b, s, "config/jwt-key/rotate", nil)
	if _, err := request(t, b, s, logical.DeleteOperation, "config/jwt-key/rotate", nil); err != nil {
		t.Fatal(err)
	}
	if k, _ := b.jwtSigningKey(ctx, s); !k.Equal(newKey) {
		t.Error("cancelling the rotation changed the current key")
	}

	// Deleting warns about the jwt roles that depended on it.
	del, err := request(t, b, s, logical.DeleteOperation, "config/jwt-key", nil)
	if err != nil || del == nil || len(del.Warnings) == 0 || !strings.Contains(del.Warnings[0], "jwt") {
		t.Errorf("delete: %v %v", del, err)
	}
	if k, _ := b.jwtSigningKey(ctx, s); k != nil {
		t.Error("key left after delete")
	}
}
