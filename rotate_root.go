package salesforce

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/hashicorp/vault/sdk/logical"

	"github.com/vault-salesforce/vault-plugin-secrets-salesforce/sfapi"
)

// rotate-root: the admin password of a password-grant config, changed by
// the admin itself and kept crash-safe by a WAL entry (rotation_wal.go).

// Steps of a rotate-root, named for the crash-safety tests.
const (
	stepRootWALWritten      = "root-wal-written"
	stepRootPasswordChanged = "root-password-changed"
	stepRootStored          = "root-stored"
)

// rootRotationRefused is a rotate-root refused before or by Salesforce
// with nothing changed; the handler answers it with a 400.
type rootRotationRefused struct{ msg string }

func (e *rootRotationRefused) Error() string { return e.msg }

func refuseRootRotation(format string, args ...interface{}) error {
	return &rootRotationRefused{msg: fmt.Sprintf(format, args...)}
}

// rootChangeError is Salesforce's failure to change the admin password.
type rootChangeError struct{ err error }

func (e *rootChangeError) Error() string { return e.err.Error() }
func (e *rootChangeError) Unwrap() error { return e.err }

// rotateRoot changes the admin password of config to a fresh one. It is
// the body of the rotate-root handler and the backend's RotateCredential.
func (b *backend) rotateRoot(ctx context.Context, req *logical.Request) error {
	b.rootMu.Lock()
	defer b.rootMu.Unlock()

	cfg, err := readConfig(ctx, req.Storage)
	if err != nil {
		return err
	}
	if cfg == nil {
		return refuseRootRotation("%s", errConfigMissing)
	}
	switch cfg.GrantType {
	case adminGrantPassword:
	case adminGrantJWTBearer:
		return refuseRootRotation("rotate-root cannot rotate a jwt_bearer config: the certificate lives in the connected app and Salesforce has no API to replace it. " +
			"Rotate the key kept in Vault instead: write config/jwt-key/rotate, upload the returned certificate to the connected app, then write config/jwt-key/confirm " +
			"(a config without private_key signs with config/jwt-key)")
	case adminGrantClientCredentials:
		if cfg.isECA() {
			return refuseRootRotation("rotate-root does not rotate consumer secrets: write rotate-client-secret to rotate the External Client App's consumer key and secret")
		}
		return refuseRootRotation("rotate-root cannot rotate a client_credentials config: Salesforce has no API to rotate a connected app's consumer secret. " +
			"Rotate it in Salesforce Setup (the connected app's consumer details), then write the new client_secret to config")
	default:
		return refuseRootRotation("rotate-root does not support grant_type %q", cfg.GrantType)
	}
	if cfg.SecurityToken != "" {
		return refuseRootRotation("rotate-root refuses to change the admin password while config holds a security token: Salesforce would email a new token " +
			"that no API returns, and the engine could not log in until someone writes it to config. Add Vault's address to the trusted IP ranges " +
			"(and remove security_token from config) or use the jwt_bearer grant")
	}
	// An unfinished rotate-root is settled first: its change may have
	// reached Salesforce, and then config's password is the old one.
	if err := b.settleRootWALs(ctx, req.Storage); err != nil {
		return &rootRotationUnsettled{err: err}
	}
	if cfg, err = readConfig(ctx, req.Storage); err != nil {
		return err
	}
	rcfg, err := readRotationConfig(ctx, req.Storage)
	if err != nil {
		return err
	}
	client, _, err := b.getClient(ctx, req.Storage)
	if err != nil {
		return err
	}
	sess, err := b.adminSession(ctx, req.Storage)
	if err != nil {
		return refuseRootRotation("rotate-root: the admin login failed, nothing was changed: %v", err)
	}
	mark := b.readRootChangeMark(ctx, client, sess)
	policyAcct := &account{}
	rejected := map[string]bool{}
	var lastErr error
	for attempt := 0; attempt < rcfg.MaxNewPasswordAttempts; attempt++ {
		candidate, _, err := b.newCandidate(ctx, policyAcct, rcfg, rejected)
		if err != nil {
			return err
		}
		walID, err := putRootRotationWAL(ctx, req.Storage, &rootRotationWAL{Username: cfg.Username, Candidate: candidate, CreatedAt: b.now().UTC(), ChangeMark: mark})
		if err != nil {
			return fmt.Errorf("writing the rotate-root WAL: %w", err)
		}
		if err := b.step(stepRootWALWritten); err != nil {
			return err
		}
		err = client.ChangeOwnPassword(ctx, sess, cfg.Password, candidate)
		if err != nil && !sfapi.IsTransient(err) && sfapi.KindOf(err) != sfapi.KindOther {
			// Refused: nothing changed.
			b.deleteWAL(ctx, req.Storage, walID)
		}
		if sfapi.ErrorCode(err) == "INVALID_OLD_PASSWORD" {
			return refuseRootRotation("rotate-root: Salesforce refused the change with INVALID_OLD_PASSWORD: the admin password in config is no longer " +
				"the admin user's current password (changed outside Vault). Nothing was changed; write the current password to config")
		}
		if sfapi.KindOf(err) == sfapi.KindPassword {
			rejected[candidate] = true
			lastErr = err
			continue
		}
		if err != nil {
			if sfapi.IsTransient(err) || sfapi.KindOf(err) == sfapi.KindOther {
				// The WAL stays: settled once the change can no longer be applied.
				b.settleLater(b.now().Add(settleAge(cfg)))
			}
			return &rootChangeError{err: err}
		}
		if err := b.step(stepRootPasswordChanged); err != nil {
			return err
		}
		cfg.Password = candidate
		if err := writeConfig(ctx, req.Storage, cfg); err != nil {
			b.logger.Error("rotate-root: Salesforce has the new admin password but storing it failed; the WAL keeps it", "error", err)
			return fmt.Errorf("rotate-root changed the admin password but could not store it (it is kept in the WAL and stored on recovery): %w", err)
		}
		if err := b.step(stepRootStored); err != nil {
			return err
		}
		b.deleteWAL(ctx, req.Storage, walID)
		b.resetClient()
		b.dropAdminSession()
		b.invalidateAllTokens()
		b.logger.Info("rotated the admin password of config")
		return nil
	}
	return refuseRootRotation("rotate-root: Salesforce rejected %d new passwords in a row (last: %v)", rcfg.MaxNewPasswordAttempts, lastErr)
}

// rootRotationUnsettled is a rotate-root refused because an earlier one is
// not settled yet.
type rootRotationUnsettled struct{ err error }

func (e *rootRotationUnsettled) Error() string {
	return "rotate-root: an earlier rotate-root is unfinished and could not be settled yet, so nothing was changed: " + e.err.Error()
}

func (e *rootRotationUnsettled) Unwrap() error { return e.err }

// settleRootWALs settles the unfinished rotate-roots; the caller holds
// rootMu. nil means none is left.
func (b *backend) settleRootWALs(ctx context.Context, s logical.Storage) error {
	return b.settleWALsOfKind(ctx, s, rootRotationWALKind, func(data interface{}) error {
		w, err := decodeRootRotationWAL(data)
		if err != nil {
			return err
		}
		return b.settleRootWAL(ctx, s, w)
	})
}

// settleRootWAL reconciles an unfinished rotate-root. If the admin
// password has not changed since the entry was written (its change mark,
// read again through the same session), the stored password stays with no
// login at all. Otherwise, if the admin logs in with the candidate, config
// gets it; if Salesforce rejects it (once the entry is old enough for a
// rejection to be conclusive, as for accounts, rotation_settle.go) and the
// stored password logs in, the stored password stays. If neither logs in
// (locked-out admin) the WAL stays. nil means the WAL may be deleted.
func (b *backend) settleRootWAL(ctx context.Context, s logical.Storage, w *rootRotationWAL) error {
	cfg, err := readConfig(ctx, s)
	if err != nil {
		return err
	}
	if cfg == nil || cfg.GrantType != adminGrantPassword || !strings.EqualFold(cfg.Username, w.Username) || cfg.Password == w.Candidate {
		return nil
	}
	if at := w.CreatedAt.Add(settleAge(cfg)); !w.CreatedAt.IsZero() && b.now().Before(at) {
		return &errNotSettledYet{at: at}
	}
	client, _, err := b.getClient(ctx, s)
	if err != nil {
		return err
	}
	changed, known, err := b.rootPasswordChangedSince(ctx, client, w)
	if err != nil {
		return fmt.Errorf("checking an unfinished rotate-root: %w", err)
	}
	if known && !changed {
		b.logger.Info("unfinished rotate-root did not reach Salesforce: the admin password has not changed since its WAL was written; keeping the stored admin password")
		return nil
	}
	if err := b.adminProbe(ctx, s, client, cfg, w.Candidate, credCandidate); err != nil {
		if !sfapi.IsCredentialError(err) {
			return fmt.Errorf("checking the candidate of an unfinished rotate-root: %w", err)
		}
		// INVALID_LOGIN also answers a locked-out admin: the candidate is
		// only proven wrong when the stored password still logs in.
		serr := b.adminRefusedNow()
		if serr == nil {
			serr = b.adminProbe(ctx, s, client, cfg, cfg.Password, credStored)
		}
		if serr != nil {
			if sfapi.IsCredentialError(serr) && b.adminRefusedNow() == nil {
				_ = b.admin.refuse(cfg.GrantType, serr, b.admin.currentGeneration(), b.now())
			}
			return fmt.Errorf("an unfinished rotate-root may have set a new admin password, and it cannot be checked now: neither it nor the stored "+
				"password logs in (the admin user may be locked out: %v); the write-ahead log keeps it and it is checked again later", serr)
		}
		b.logger.Info("unfinished rotate-root did not reach Salesforce; keeping the stored admin password")
		return nil
	}
	cfg.Password = w.Candidate
	if err := writeConfig(ctx, s, cfg); err != nil {
		return err
	}
	b.resetClient()
	b.invalidateAllTokens()
	b.logger.Info("completed an unfinished rotate-root: Salesforce had the new admin password")
	return nil
}

// readRootChangeMark reads the admin's LastPasswordChangeDate through sess
// before a rotate-root asks for the change. nil means it cannot be read
// (no such permission, a failed query): settling then logs in instead.
func (b *backend) readRootChangeMark(ctx context.Context, client Client, sess *sfapi.Session) *rootChangeMark {
	if sess.UserID == "" {
		return nil
	}
	at, err := client.PasswordChangedAt(ctx, sess, sess.UserID)
	if err != nil {
		b.logger.Debug("cannot read when the admin password last changed; an interrupted rotate-root would be settled by a login", "error", err)
		return nil
	}
	return &rootChangeMark{PasswordChangedAt: at, AccessToken: sess.AccessToken, InstanceURL: sess.InstanceURL, UserID: sess.UserID}
}

// rootPasswordChangedSince reads the admin's LastPasswordChangeDate again
// through the session w's mark was read with (see changedSinceMark). known
// is also false without a mark, and when that session has ended (which a
// change that landed may do) or expired.
func (b *backend) rootPasswordChangedSince(ctx context.Context, client Client, w *rootRotationWAL) (changed, known bool, err error) {
	m := w.ChangeMark
	if m == nil {
		return false, false, nil
	}
	return b.changedSinceMark(m.PasswordChangedAt, w.CreatedAt, func() (time.Time, error) {
		return client.PasswordChangedAt(ctx, m.session(), m.UserID)
	}, "user", "the config's admin")
}

// addPendingRootRotation adds to a config read, when a rotate-root is not
// settled yet, that config's admin password may not be the one Salesforce
// has, as reads of an account do for its own rotation.
func (b *backend) addPendingRootRotation(ctx context.Context, s logical.Storage, cfg *salesforceConfig, data map[string]interface{}) ([]string, error) {
	var since time.Time
	pending := false
	err := eachWALOfKind(ctx, s, rootRotationWALKind, func(_ string, raw interface{}) error {
		w, err := decodeRootRotationWAL(raw)
		if err != nil || !strings.EqualFold(w.Username, cfg.Username) || w.Candidate == cfg.Password {
			// Unreadable, or settled by what config holds: nothing in doubt.
			return nil
		}
		// Entries of older versions have no CreatedAt: since stays unknown.
		if !pending || w.CreatedAt.Before(since) {
			since = w.CreatedAt
		}
		pending = true
		return nil
	})
	if err != nil || !pending {
		return nil, err
	}
	data["root_rotation_status"] = "pending_reconciliation"
	if !since.IsZero() {
		data["root_rotation_pending_since"] = since.Format(time.RFC3339)
	}
	reason := "it is checked in the background, and again before the next rotate-root"
	if at := since.Add(settleAge(cfg)); !since.IsZero() && b.now().Before(at) {
		reason = "it is checked after " + at.Format(time.RFC3339) + ", once Salesforce can no longer apply a change it received"
	}
	return []string{"a rotate-root was interrupted and is not settled yet: the admin password in config may not be the one Salesforce has; " + reason +
		" (the server log says why an earlier check could not tell)"}, nil
}

// settleRootWALsByLogin settles the unfinished rotate-roots of config's
// admin once config's password logged in at loggedIn (a config write's
// check), if by then Salesforce could no longer apply their change: a user
// has one password, and it is the one that logged in. Settling them later
// would probe their candidates again, one failed admin login each. The
// caller holds rootMu.
func (b *backend) settleRootWALsByLogin(ctx context.Context, s logical.Storage, cfg *salesforceConfig, loggedIn time.Time) {
	err := eachWALOfKind(ctx, s, rootRotationWALKind, func(id string, raw interface{}) error {
		w, err := decodeRootRotationWAL(raw)
		if err != nil || !strings.EqualFold(w.Username, cfg.Username) {
			return nil
		}
		if !w.CreatedAt.IsZero() && loggedIn.Before(w.CreatedAt.Add(settleAge(cfg))) {
			return nil
		}
		b.deleteWAL(ctx, s, id)
		b.logger.Info("config's admin password logged in, so an unfinished rotate-root did not change it; its entry is settled")
		return nil
	})
	if err != nil {
		b.logger.Warn("reading the unfinished rotate-roots after a config write; they are settled later", "error", err)
	}
}
