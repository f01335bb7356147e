package salesforce

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/vault-salesforce/vault-plugin-secrets-salesforce/sfapi"
)

// Ending what the old credential opened (end_sessions_on_rotation): after a
// rotation changed a user's password, the user's other sessions end
// (AuthSession query and delete, with the admin session) and the OAuth
// grants apps hold for the user are revoked (OauthToken's DeleteToken at
// /services/oauth2/revoke), so a leaked old password cannot keep a session
// alive. Salesforce itself leaves both alive on a password change.
//
// Never ended: the admin session's own family (the query asks for
// IsCurrent = false) and the sessions the rotation opened as the user (its
// login check and new login, whose ids the engine asks for with each of
// them; they are never handed out). The pending
// mark is stored with the new password (adoptPassword) and cleared once
// all is ended, so a crash or an outage retries it (finishPending).

// endedReport is what one ending did; reads and events show it.
type endedReport struct {
	At       time.Time `json:"at"`
	Username string    `json:"username"`
	// Sessions ended and OAuth grants revoked.
	Sessions    int `json:"sessions"`
	OAuthGrants int `json:"oauth_grants"`
}

// endSessionsHook runs after a rotation changed the password.
type endSessionsHook struct{}

func (endSessionsHook) name() string     { return "end_sessions" }
func (endSessionsHook) phase() hookPhase { return afterRotation }

func (endSessionsHook) applies(r *rotationRun) bool {
	return !r.acct.EndSessionsPendingSince.IsZero()
}

func (endSessionsHook) run(ctx context.Context, r *rotationRun) error {
	_, err := r.b.endOldSessions(ctx, r)
	if err != nil {
		r.b.retryEndingSessions(r.name, err)
	}
	return err
}

// retryEndingSessions makes the settling pass try a failed ending again
// in a minute. A refusal for lack of permission is not retried on its
// own (the admin needs Manage Users and Customize Application): the next
// rotation or restart tries again, and turning end_sessions_on_rotation
// off drops it.
func (b *backend) retryEndingSessions(name string, err error) {
	if sfapi.KindOf(err) == sfapi.KindPermission {
		b.logger.Warn("the admin may not end the sessions of the old credential; it is tried again at the next rotation", "account", name, "code", sfapi.ErrorCode(err))
		return
	}
	b.markUnfinished(name, b.now().Add(walRetryInterval))
}

// endOldSessions ends the sessions and revokes the OAuth grants of the
// user in r.acct's flat fields, then clears its pending mark. A partial
// failure keeps the mark (what was ended stays ended).
func (b *backend) endOldSessions(ctx context.Context, r *rotationRun) (*endedReport, error) {
	admin, err := r.admin(ctx)
	if err != nil {
		return nil, err
	}
	userID, err := r.userID(ctx)
	if err != nil {
		return nil, err
	}
	// The engine's own sessions of the user: each tells its id.
	own := map[string]bool{}
	for _, held := range r.held {
		ids, err := r.client.CurrentSessionIDs(ctx, held)
		if err != nil {
			// Ended already, or a session that cannot query (an expired
			// password's): it cannot be told apart, and the engine, done
			// with it, has no use for it either.
			b.logger.Debug("could not read the id of a session of the rotation", "account", r.name, "code", sfapi.ErrorCode(err))
			continue
		}
		for _, id := range ids {
			own[id15(id)] = true
		}
	}
	rep := &endedReport{At: b.now().UTC(), Username: r.acct.Username}
	var errs error
	sessions, err := r.client.UserSessions(ctx, admin, userID)
	if err != nil {
		errs = errors.Join(errs, fmt.Errorf("listing the sessions of %s: %w", r.acct.Username, err))
	}
	for _, s := range sessions {
		if own[id15(s.ID)] {
			continue
		}
		if err := r.client.EndSession(ctx, admin, s.ID); err != nil {
			errs = errors.Join(errs, fmt.Errorf("ending session %s: %w", s.ID, err))
			continue
		}
		rep.Sessions++
	}
	grants, err := r.client.UserOAuthGrants(ctx, admin, userID)
	if err != nil {
		errs = errors.Join(errs, fmt.Errorf("listing the OAuth tokens of %s: %w", r.acct.Username, err))
	}
	for _, g := range grants {
		// invalid_token: already revoked (Salesforce's answer for a token it
		// no longer knows).
		if err := r.client.Revoke(ctx, g.DeleteToken); err != nil && sfapi.ErrorCode(err) != "invalid_token" {
			errs = errors.Join(errs, fmt.Errorf("revoking an OAuth token of app %q: %w", g.AppName, err))
			continue
		}
		rep.OAuthGrants++
	}
	r.acct.LastSessionsEnded = rep
	r.acct.endedNow = rep
	r.ended = rep
	if errs == nil {
		r.acct.EndSessionsPendingSince = time.Time{}
	}
	if err := r.txn.put(ctx, r.acct); err != nil {
		return rep, errors.Join(errs, err)
	}
	b.logger.Info("ended the sessions of the old credential", "account", r.name, "username", r.acct.Username,
		"sessions", rep.Sessions, "oauth_grants", rep.OAuthGrants, "complete", errs == nil)
	return rep, errs
}
