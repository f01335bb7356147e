package salesforce

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/hashicorp/vault/sdk/logical"
)

// The write-ahead log of client-secret rotations (its kind is in
// rotation_wal.go's table) and how an interrupted rotation is settled by
// what config and Salesforce hold.

// clientSecretWAL is written once a new credential is staged and deleted
// once config holds it. It holds keys, not secrets: Salesforce returns the
// secret of a staged or primary credential to a caller who may stage.
type clientSecretWAL struct {
	AppID      string    `json:"app_id"`
	ConsumerID string    `json:"consumer_id"`
	OldKey     string    `json:"old_key"`
	NewKey     string    `json:"new_key"`
	StagedID   string    `json:"staged_id"`
	CreatedAt  time.Time `json:"created_at"`
}

func decodeClientSecretWAL(data interface{}) (*clientSecretWAL, error) {
	var w clientSecretWAL
	if err := decodeWALData(data, &w); err != nil {
		return nil, err
	}
	if w.OldKey == "" || w.NewKey == "" || w.AppID == "" || w.ConsumerID == "" {
		return nil, errors.New("client-secret WAL without app, consumer or keys")
	}
	return &w, nil
}

// rollbackClientSecretWAL is the WAL kind's settler (rotation_wal.go).
func (b *backend) rollbackClientSecretWAL(ctx context.Context, s logical.Storage, data interface{}) error {
	w, err := decodeClientSecretWAL(data)
	if err != nil {
		// Unreadable: nothing can ever be done with it.
		return nil
	}
	b.rootMu.Lock()
	defer b.rootMu.Unlock()
	return b.settleClientSecretWAL(ctx, s, w)
}

// settleClientSecretWALs settles every entry of the kind; the caller
// holds rootMu.
func (b *backend) settleClientSecretWALs(ctx context.Context, s logical.Storage) error {
	return b.settleWALsOfKind(ctx, s, clientSecretWALKind, func(data interface{}) error {
		w, err := decodeClientSecretWAL(data)
		if err != nil {
			// Unreadable: nothing to finish or undo from it.
			return nil
		}
		return b.settleClientSecretWAL(ctx, s, w)
	})
}

// settleClientSecretWAL finishes or undoes an interrupted rotation by
// what config and Salesforce hold: switched (record the previous key),
// promoted (switch config), or only staged (delete the staged one).
// nil means the entry may be deleted.
func (b *backend) settleClientSecretWAL(ctx context.Context, s logical.Storage, w *clientSecretWAL) error {
	cfg, err := readConfig(ctx, s)
	if err != nil {
		return err
	}
	if cfg == nil || !cfg.isECA() || (cfg.ClientID != w.OldKey && cfg.ClientID != w.NewKey) {
		b.logger.Warn("dropping an unfinished client-secret rotation: config no longer holds either of its keys", "client_id", w.NewKey)
		return nil
	}
	ec, sess, err := b.ecaAdmin(ctx, s)
	if err != nil {
		return fmt.Errorf("settling an unfinished client-secret rotation needs the admin session: %w", err)
	}
	now := b.now().UTC()
	if cfg.ClientID == w.NewKey {
		st, err := readClientSecretState(ctx, s)
		if err != nil {
			return err
		}
		if st.ActiveKey == w.NewKey && st.Previous != nil && st.Previous.Key == w.OldKey {
			return nil
		}
		b.tokenReads.keyReplaced(w.OldKey)
		return b.recordSwitch(ctx, s, w, b.previousFromSlot(ctx, ec, sess, w, now), now)
	}
	consumers, err := ec.AppConsumers(ctx, sess, w.AppID)
	if err != nil {
		return err
	}
	primary := ""
	for _, c := range consumers {
		if c.ID == w.ConsumerID {
			primary = c.Key
		}
	}
	switch primary {
	case w.NewKey:
		key, secret, err := ec.ConsumerSecret(ctx, sess, w.AppID, w.ConsumerID)
		if err != nil {
			return err
		}
		if key != w.NewKey {
			return fmt.Errorf("the app's primary consumer key changed while settling")
		}
		b.logger.Info("completing an unfinished client-secret rotation: Salesforce had promoted the new key")
		return b.switchClientSecret(ctx, s, cfg, ec, sess, w, secret)
	case w.OldKey:
		if !b.unstage(ctx, ec, sess, w) {
			return errors.New("the staged consumer key of an unfinished rotation could not be deleted")
		}
		b.logger.Info("undid an unfinished client-secret rotation: the new key was staged, never promoted")
		return nil
	}
	b.logger.Warn("dropping an unfinished client-secret rotation: the app's primary key is neither of its keys")
	return nil
}
