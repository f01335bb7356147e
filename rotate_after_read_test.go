package salesforce

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/vault/sdk/logical"
)

// accountPutCounter counts the writes of accounts/ and can refuse them as a
// performance standby's storage does.
type accountPutCounter struct {
	logical.Storage
	mu       sync.Mutex
	puts     int
	readOnly bool
}

func (c *accountPutCounter) Put(ctx context.Context, e *logical.StorageEntry) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if strings.HasPrefix(e.Key, accountStoragePrefix) {
		if c.readOnly {
			return logical.ErrReadOnly
		}
		c.puts++
	}
	return c.Storage.Put(ctx, e)
}

func (c *accountPutCounter) accountPuts() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.puts
}

// The password is rotated cooldown after the first read since the last
// rotation: not before, not without a read, and later reads neither move
// the rotation nor write anything.
func TestRotateAfterRead_RotatesCooldownAfterTheFirstRead(t *testing.T) {
	e := newRotEnv(t)
	cs := &accountPutCounter{Storage: e.s}
	e.s = cs
	e.initialize()
	e.addTrusted("glass", map[string]interface{}{"rotate_after_read": true, "cooldown": "1h"})
	if a := e.account("glass"); a["rotation_status"] != "after_read" || a["cooldown"] != int64(3600) || a["next_vault_rotation"] != "" {
		t.Fatalf("account before any read: %v", a)
	}
	// Unread, it is never rotated.
	e.advance(48 * time.Hour)
	e.tick()
	if e.version("glass") != 0 {
		t.Fatal("an unread password was rotated")
	}

	readAt := e.now()
	c := e.creds("glass")
	held := heldCredential{c["username"].(string), c["password_with_token"].(string)}
	wantAt := formatTime(readAt.Add(time.Hour))
	if c["read_rotation_at"] != wantAt || c["ttl"] != int64(3600) {
		t.Fatalf("first read: read_rotation_at %v ttl %v, want %s and 3600", c["read_rotation_at"], c["ttl"], wantAt)
	}
	if !e.queued("glass") {
		t.Error("the armed rotation is not queued")
	}
	puts := cs.accountPuts()
	e.advance(30 * time.Minute)
	for i := 0; i < 5; i++ {
		if c := e.creds("glass"); c["read_rotation_at"] != wantAt {
			t.Fatalf("a later read moved the rotation to %v", c["read_rotation_at"])
		}
	}
	if n := cs.accountPuts() - puts; n != 0 {
		t.Errorf("later reads wrote the account %d times", n)
	}

	e.advance(29 * time.Minute)
	e.tick()
	if e.version("glass") != 0 {
		t.Fatal("rotated before the cooldown ended")
	}
	e.assertWorks("the password read, within the cooldown", held)
	e.advance(2 * time.Minute)
	e.tick()
	if e.version("glass") != 1 {
		t.Fatal("not rotated after the cooldown")
	}
	e.assertDead("the password read before the rotation", held)
	a := e.account("glass")
	if a["read_rotation_at"] != nil || a["rotation_status"] != "after_read" || a["next_vault_rotation"] != "" {
		t.Errorf("after the rotation the account reads %v", a)
	}
	// The next read arms the next rotation.
	if c := e.creds("glass"); c["read_rotation_at"] != formatTime(e.now().Add(time.Hour)) {
		t.Errorf("the next read armed %v", c["read_rotation_at"])
	}
	e.assertServedCredentialLogsIn("glass")
}

// A read on a node that cannot write (a performance standby) is sent on to
// the active node, which arms the rotation; nothing is served unarmed.
func TestRotateAfterRead_StandbyForwardsTheFirstRead(t *testing.T) {
	e := newRotEnv(t)
	e.addTrusted("glass", map[string]interface{}{"rotate_after_read": true, "cooldown": "1h"})
	cs := &accountPutCounter{Storage: e.s, readOnly: true}
	resp, err := request(t, e.b, cs, logical.ReadOperation, "creds/glass", nil)
	if !errors.Is(err, logical.ErrPerfStandbyPleaseForward) || resp != nil {
		t.Fatalf("read on a read-only node: %v, %v; want ErrPerfStandbyPleaseForward and no credential", resp, err)
	}
	e.creds("glass")
	cs.readOnly = true
	// Armed: standbys serve later reads themselves.
	if resp, err := request(t, e.b, cs, logical.ReadOperation, "creds/glass", nil); respErr(resp, err) != nil {
		t.Errorf("an armed read on a read-only node: %v", respErr(resp, err))
	}
}

// Where the org's policy makes a rotation after a read impossible, the
// write says why; a minimum password lifetime never lets it come sooner.
func TestRotateAfterRead_RefusedWhereThePolicyForbidsIt(t *testing.T) {
	e := newRotEnv(t)
	refused := map[string]map[string]interface{}{
		"minimum password lifetime": {"rotation_method": "self", "rotate_after_read": true, "cooldown": "1h"},
		"needs cooldown":            {"rotate_after_read": true},
		"needs rotate_after_read":   {"cooldown": "1h"},
		"cooldown at least 5s":      {"rotate_after_read": true, "cooldown": "1s"},
	}
	wants := map[string]string{
		"minimum password lifetime": "rotate_after_read with cooldown 1h0m0s is refused: the org's minimum password lifetime",
		"needs cooldown":            "rotate_after_read needs cooldown",
		"needs rotate_after_read":   "cooldown needs rotate_after_read=true",
		"cooldown at least 5s":      "cooldown must be at least 5s",
	}
	for name, extra := range refused {
		data := map[string]interface{}{"username": rotTrustedUser, "password": rotTrustedPass}
		for k, v := range extra {
			data[k] = v
		}
		resp, err := request(t, e.b, e.s, logical.UpdateOperation, "accounts/glass", data)
		if msg := respErr(resp, err); msg == nil || !strings.Contains(msg.Error(), wants[name]) {
			t.Errorf("%s: %v, want a refusal saying %q", name, msg, wants[name])
		}
	}
	// Also once a read armed the rotation.
	mustWrite(t, e.b, e.s, "accounts/armed", map[string]interface{}{"username": rotAppUser, "password": rotAppPassword,
		"rotate_after_read": true, "cooldown": "1h"})
	e.creds("armed")
	resp, err := request(t, e.b, e.s, logical.UpdateOperation, "accounts/armed", map[string]interface{}{"rotation_method": "self"})
	if msg := respErr(resp, err); msg == nil || !strings.Contains(msg.Error(), wants["minimum password lifetime"]) {
		t.Errorf("self after an armed read: %v", msg)
	}
	// Token-bound users need the same opt-in as scheduled rotation.
	resp, err = request(t, e.b, e.s, logical.UpdateOperation, "accounts/etl", map[string]interface{}{
		"username": rotIntegUser, "password": rotIntegPassword, "security_token": rotIntegToken, "rotate_after_read": true, "cooldown": "1h"})
	if msg := respErr(resp, err); msg == nil || !strings.Contains(msg.Error(), "rotate_after_read") {
		t.Errorf("token-bound rotate_after_read: %v", msg)
	}

	// Self with a day's cooldown: a read right after a rotation still waits
	// for the minimum lifetime.
	mustWrite(t, e.b, e.s, "config/rotation", map[string]interface{}{"min_password_lifetime": false})
	e.addTrusted("glass", map[string]interface{}{"rotation_method": "self", "rotate_after_read": true, "cooldown": "1h"})
	e.mustRotate("glass")
	mustWrite(t, e.b, e.s, "config/rotation", map[string]interface{}{"min_password_lifetime": true})
	mustWrite(t, e.b, e.s, "accounts/glass", map[string]interface{}{"cooldown": "24h"})
	rotatedAt := e.now()
	e.advance(time.Hour)
	if c := e.creds("glass"); c["read_rotation_at"] != formatTime(e.now().Add(24*time.Hour)) {
		t.Errorf("self, 24h cooldown: armed %v", c["read_rotation_at"])
	}
	rcfg := defaultRotationConfig()
	a := &account{}
	a.PasswordChangedAt, a.RotationMethod, a.Cooldown = rotatedAt, rotationMethodSelf, time.Hour
	if at := earliestReadRotation(a, rcfg, rotatedAt.Add(time.Minute)); !at.Equal(rotatedAt.Add(24 * time.Hour).UTC()) {
		t.Errorf("a self rotation after a read is due at %v, want a day after the last change", at)
	}
	a.RotationMethod = rotationMethodAdmin
	if at := earliestReadRotation(a, rcfg, rotatedAt.Add(time.Minute)); !at.Equal(rotatedAt.Add(61 * time.Minute).UTC()) {
		t.Errorf("an admin rotation after a read is due at %v, want cooldown after the read", at)
	}
}
