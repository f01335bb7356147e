package salesforce

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/vault/sdk/framework"
	"github.com/hashicorp/vault/sdk/logical"

	"github.com/vault-salesforce/vault-plugin-secrets-salesforce/sfapi"
)

// The write-ahead log of rotations: a candidate password is written here
// before Salesforce is asked to set it, and deleted once storage holds it,
// so a crash in between never loses a password Salesforce may have.

// WAL kinds. walKinds names each with what settles it.
const (
	// rotationWALKind marks the WAL entries of account rotations.
	rotationWALKind = "salesforceRotation"
	// rootRotationWALKind marks the WAL entry of a rotate-root.
	rootRotationWALKind = "salesforceRootRotation"
	// clientSecretWALKind marks the WAL entry of a rotate-client-secret.
	clientSecretWALKind = "salesforceClientSecretRotation"
)

// walRollbackMinAge: a rotation holds its WAL for seconds; older entries
// are from a rotation that crashed or lost its storage.
const walRollbackMinAge = 10 * time.Minute

// rotationWAL is written before Salesforce is asked to change an account's
// password and deleted once storage holds the new one.
type rotationWAL struct {
	Account   string `json:"account"`
	Username  string `json:"username"`
	Candidate string `json:"candidate"`
	// PolicyHash identifies the password rules the candidate was made with.
	PolicyHash string `json:"policy_hash"`
	// Version is the account's version before the rotation.
	Version   int       `json:"version"`
	CreatedAt time.Time `json:"created_at"`
	// RejectedAt is when a conclusive login with the candidate was sent
	// that Salesforce rejected; written (as a new entry replacing this
	// one) before anything else is done about it (rotation_settle.go).
	RejectedAt time.Time `json:"rejected_at,omitempty"`
	// PasswordChangedAt is the user's LastPasswordChangeDate read through
	// the admin session just before the change was asked for (by
	// Salesforce's clock; zero if never changed), when PasswordChangeKnown.
	// The same reading at settling time shows, without a login as the
	// user, that the change never landed (rotation_settle.go).
	PasswordChangedAt   time.Time `json:"password_changed_at,omitempty"`
	PasswordChangeKnown bool      `json:"password_change_known,omitempty"`
}

// rootRotationWAL is written before the admin password is changed.
type rootRotationWAL struct {
	Username  string `json:"username"`
	Candidate string `json:"candidate"`
	// CreatedAt is zero in entries of older versions, which are old.
	CreatedAt time.Time `json:"created_at,omitempty"`
	// ChangeMark is nil when the mark could not be read (or in entries of
	// older versions): settling then needs logins (rotate_root.go).
	ChangeMark *rootChangeMark `json:"change_mark,omitempty"`
}

// rootChangeMark is the admin user's LastPasswordChangeDate (by
// Salesforce's clock; zero if never changed) read just before the change
// was asked for, and the session that read it and asked for the change.
// A change that never landed leaves that session alive and the date as it
// was, so the same reading through it at settling time proves it without
// a login as the admin, whose logins with a candidate Salesforce never
// got would count towards max_failed_logins. The session token is kept,
// seal-wrapped with the candidate, only while the entry lives.
type rootChangeMark struct {
	PasswordChangedAt time.Time `json:"password_changed_at"`
	AccessToken       string    `json:"access_token"`
	InstanceURL       string    `json:"instance_url"`
	UserID            string    `json:"user_id"`
}

// session is the session the mark was read with.
func (m *rootChangeMark) session() *sfapi.Session {
	return &sfapi.Session{AccessToken: m.AccessToken, InstanceURL: m.InstanceURL, UserID: m.UserID}
}

// walSettler settles one WAL entry of its kind; nil means the entry may be
// deleted, an error keeps it for a later try.
type walSettler func(ctx context.Context, s logical.Storage, data interface{}) error

// walKinds names every kind of WAL entry the engine writes and what settles
// one entry of it. Vault's WALRollback dispatches through it; an entry of
// any other kind is an error, logged and kept, never deleted unread.
func (b *backend) walKinds() map[string]walSettler {
	return map[string]walSettler{
		rotationWALKind:     b.rollbackRotationWAL,
		rootRotationWALKind: b.rollbackRootWAL,
		clientSecretWALKind: b.rollbackClientSecretWAL,
	}
}

// walRollback is the backend's WALRollback: Vault calls it for WAL entries
// older than WALRollbackMinAge; returning nil deletes the entry.
func (b *backend) walRollback(ctx context.Context, req *logical.Request, kind string, data interface{}) error {
	settle, ok := b.walKinds()[kind]
	if !ok {
		return unknownWALKind(kind)
	}
	err := settle(ctx, req.Storage, data)
	if err == nil && kind == rotationWALKind {
		// Vault deletes the entry itself, past the WAL index.
		b.walIdx.stale()
	}
	return err
}

func unknownWALKind(kind string) error {
	return fmt.Errorf("WAL entry of unknown kind %q: kept, since only the version of the engine that wrote it knows how to settle it", kind)
}

// rollbackRotationWAL settles one account rotation's entry under the
// account's lock, then requeues the account: a rolled-forward rotation
// moved its next scheduled time.
func (b *backend) rollbackRotationWAL(ctx context.Context, s logical.Storage, data interface{}) error {
	w, err := decodeRotationWAL(data)
	if err != nil {
		// Unreadable: nothing can ever be done with it.
		return nil
	}
	// All of the account's entries are settled together (duplicates of one
	// candidate are one), and deleted as they are settled.
	txn := b.lockAccount(s, w.Account)
	err = b.settleAccountWALs(ctx, txn)
	if err == nil {
		_, err = b.finishPending(ctx, txn, triggerScheduled)
	}
	txn.unlock()
	b.requeueStored(ctx, s, w.Account)
	return err
}

// rollbackRootWAL settles a rotate-root's entry under rootMu.
func (b *backend) rollbackRootWAL(ctx context.Context, s logical.Storage, data interface{}) error {
	w, err := decodeRootRotationWAL(data)
	if err != nil {
		// Unreadable: nothing can ever be done with it.
		return nil
	}
	b.rootMu.Lock()
	defer b.rootMu.Unlock()
	return b.settleRootWAL(ctx, s, w)
}

// pendingRotation is one WAL entry of an account rotation.
type pendingRotation struct {
	id string
	w  *rotationWAL
}

// accountWALs lists the rotation WAL entries of account name, in storage
// order.
func accountWALs(ctx context.Context, s logical.Storage, name string) ([]pendingRotation, error) {
	ids, err := framework.ListWAL(ctx, s)
	if err != nil {
		return nil, err
	}
	return readAccountWALs(ctx, s, name, ids)
}

// accountWALsIndexed is accountWALs for the account's own rotation and
// settling: it reads only the entries the WAL index names (none, usually),
// without listing the WAL.
func (b *backend) accountWALsIndexed(ctx context.Context, s logical.Storage, name string) ([]pendingRotation, error) {
	ids, err := b.walIdx.forAccount(ctx, s, name)
	if err != nil {
		return accountWALs(ctx, s, name)
	}
	return readAccountWALs(ctx, s, name, sortedIDs(ids))
}

// readAccountWALs reads the entries ids names that are the account's
// rotations, in the order of ids.
func readAccountWALs(ctx context.Context, s logical.Storage, name string, ids []string) ([]pendingRotation, error) {
	var out []pendingRotation
	for _, id := range ids {
		entry, err := framework.GetWAL(ctx, s, id)
		if err != nil {
			return nil, err
		}
		if entry == nil || entry.Kind != rotationWALKind {
			continue
		}
		w, err := decodeRotationWAL(entry.Data)
		if err != nil || w.Account != name {
			continue
		}
		out = append(out, pendingRotation{id: id, w: w})
	}
	return out, nil
}

func sortedIDs(m map[string]walSummary) []string {
	ids := make([]string, 0, len(m))
	for id := range m {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	return ids
}

// putRotationWAL writes an account rotation's entry, and records it in the
// WAL index.
func (b *backend) putRotationWAL(ctx context.Context, s logical.Storage, w *rotationWAL) (string, error) {
	id, err := framework.PutWAL(ctx, s, rotationWALKind, w)
	if err != nil {
		// It may be stored all the same.
		b.walIdx.stale()
		return "", err
	}
	b.walIdx.added(id, w)
	return id, nil
}

func putRootRotationWAL(ctx context.Context, s logical.Storage, w *rootRotationWAL) (string, error) {
	return framework.PutWAL(ctx, s, rootRotationWALKind, w)
}

// settleWALsOfKind runs settle on every WAL entry of kind and deletes each
// entry it returns nil for; the first error ends the pass, keeping the rest.
func (b *backend) settleWALsOfKind(ctx context.Context, s logical.Storage, kind string, settle func(data interface{}) error) error {
	return eachWALOfKind(ctx, s, kind, func(id string, data interface{}) error {
		if err := settle(data); err != nil {
			return err
		}
		b.deleteWAL(ctx, s, id)
		return nil
	})
}

// eachWALOfKind runs fn on every WAL entry of kind, in storage order; the
// first error ends the walk.
func eachWALOfKind(ctx context.Context, s logical.Storage, kind string, fn func(id string, data interface{}) error) error {
	ids, err := framework.ListWAL(ctx, s)
	if err != nil {
		return err
	}
	for _, id := range ids {
		entry, err := framework.GetWAL(ctx, s, id)
		if err != nil {
			return err
		}
		if entry == nil || entry.Kind != kind {
			continue
		}
		if err := fn(id, entry.Data); err != nil {
			return err
		}
	}
	return nil
}

func (b *backend) deleteWAL(ctx context.Context, s logical.Storage, id string) {
	if err := framework.DeleteWAL(ctx, s, id); err != nil {
		b.logger.Warn("deleting rotation WAL; it is settled on the next start", "error", err)
		b.walIdx.stale()
		return
	}
	b.walIdx.removed(id)
}

func decodeRotationWAL(data interface{}) (*rotationWAL, error) {
	var w rotationWAL
	if err := decodeWALData(data, &w); err != nil {
		return nil, err
	}
	if w.Account == "" || w.Candidate == "" {
		return nil, errors.New("rotation WAL without account or candidate")
	}
	return &w, nil
}

func decodeRootRotationWAL(data interface{}) (*rootRotationWAL, error) {
	var w rootRotationWAL
	if err := decodeWALData(data, &w); err != nil {
		return nil, err
	}
	if w.Candidate == "" {
		return nil, errors.New("rotate-root WAL without candidate")
	}
	return &w, nil
}

// decodeWALData reads an entry's data, which Vault hands WALRollback
// decoded as generic JSON.
func decodeWALData(data interface{}, into interface{}) error {
	raw, err := json.Marshal(data)
	if err != nil {
		return err
	}
	return json.Unmarshal(raw, into)
}

// errSimulatedCrash is returned by test step hooks to stop a rotation the
// way a crash would: nothing more is written.
var errSimulatedCrash = errors.New("simulated crash")

// stepPause, set only in chaos builds (chaos_pause.go), holds a rotation
// at a step so the acceptance suite can kill Vault there.
var stepPause func(logger hclog.Logger, step string)

// step marks a point between the writes of a rotation where tests can
// simulate a crash.
func (b *backend) step(name string) error {
	if stepPause != nil {
		stepPause(b.logger, name)
	}
	if b.rot.testStep == nil {
		return nil
	}
	return b.rot.testStep(name)
}
