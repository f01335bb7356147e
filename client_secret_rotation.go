package salesforce

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/hashicorp/vault/sdk/framework"
	"github.com/hashicorp/vault/sdk/logical"

	"github.com/vault-salesforce/vault-plugin-secrets-salesforce/sfapi"
)

// rotate-client-secret: a new consumer key and secret for config's
// External Client App, through the OAuth Staged Credentials API (v65.0).
// The engine logs in with the app it rotates, so the order keeps its own
// access at every step:
//
//  1. stage a new key and secret (the current ones keep working);
//  2. write the WAL entry (rotation_wal.go), then verify the new pair
//     with the config's own grant (client credentials or JWT bearer),
//     within the login budget;
//  3. promote it (PATCH {"command":"rotate"}): Salesforce keeps the
//     previous key in the staged slot as Rotated, still valid;
//  4. switch config's client_id and client_secret, record the previous
//     key, and delete the WAL entry;
//  5. later (client_secret_schedule.go) delete the previous key once no
//     token minted with it is held, and never after its 30-day validity.
//
// A crash between the steps leaves a WAL entry that settleClientSecretWAL
// resolves by looking at what Salesforce and config hold.

// Steps of a client-secret rotation, named for the crash tests.
const (
	stepClientSecretStaged   = "client-secret-staged"
	stepClientSecretVerified = "client-secret-verified"
	stepClientSecretPromoted = "client-secret-promoted"
	stepClientSecretSwitched = "client-secret-switched"
)

// stagedValidity: Salesforce keeps a rotated-out credential 30 days.
const stagedValidity = 30 * 24 * time.Hour

// clientSecretRefused is a rotation refused with nothing changed (400).
type clientSecretRefused struct {
	msg   string
	cause error
}

func (e *clientSecretRefused) Error() string { return e.msg }
func (e *clientSecretRefused) Unwrap() error { return e.cause }

func refuseClientSecret(format string, args ...interface{}) error {
	return &clientSecretRefused{msg: fmt.Sprintf(format, args...)}
}

// clientSecretOutcome is what a rotation did.
type clientSecretOutcome struct {
	newKey, oldKey string
	previous       *previousCredential
	warnings       []string
}

// checkClientSecretConfig says why config's app cannot be rotated, or nil.
func checkClientSecretConfig(cfg *salesforceConfig) error {
	switch {
	case cfg == nil:
		return refuseClientSecret("%s", errConfigMissing)
	case !cfg.isECA():
		return refuseClientSecret("config's app is a connected app (app_type=%s): Salesforce has no API to rotate a connected app's "+
			"consumer secret. Rotate it in Setup and write the new client_secret to config, or move to an External Client App "+
			"(app_type=external_client_app)", cfg.appType())
	case cfg.AppDeveloperName == "":
		return refuseClientSecret("config has no app_developer_name: write the External Client App's API name to config " +
			"(vault write <mount>/config app_developer_name=...) so the engine can find it")
	case cfg.ClientID == "":
		return refuseClientSecret("config has no client_id")
	}
	v, err := strconv.ParseFloat(cfg.APIVersion, 64)
	if err != nil || v < sfapi.MinStagedCredentialsVersion {
		return refuseClientSecret("rotating consumer credentials needs api_version %.1f or later (the OAuth Staged Credentials "+
			"API); config has %s", sfapi.MinStagedCredentialsVersion, cfg.APIVersion)
	}
	return nil
}

// rotateClientSecret rotates config's consumer key and secret; a failure
// is recorded for config reads.
func (b *backend) rotateClientSecret(ctx context.Context, s logical.Storage) (*clientSecretOutcome, error) {
	b.rootMu.Lock()
	defer b.rootMu.Unlock()
	// A config that cannot be rotated is refused without a trace: nothing
	// was tried, so there is no failure to record.
	cfg, err := readConfig(ctx, s)
	if err != nil {
		return nil, err
	}
	if err := checkClientSecretConfig(cfg); err != nil {
		return nil, err
	}
	out, err := b.rotateClientSecretLocked(ctx, s)
	if err != nil {
		b.recordClientSecretFailure(ctx, s, err)
	}
	return out, err
}

// rotateClientSecretLocked is rotateClientSecret under rootMu.
func (b *backend) rotateClientSecretLocked(ctx context.Context, s logical.Storage) (*clientSecretOutcome, error) {
	cfg, err := readConfig(ctx, s)
	if err != nil {
		return nil, err
	}
	if err := checkClientSecretConfig(cfg); err != nil {
		return nil, err
	}
	if err := b.settleClientSecretWALs(ctx, s); err != nil {
		return nil, fmt.Errorf("an earlier rotation of the consumer key is unfinished and cannot be settled now: %w", err)
	}
	if cfg, err = readConfig(ctx, s); err != nil {
		return nil, err
	}
	st, err := readClientSecretState(ctx, s)
	if err != nil {
		return nil, err
	}
	out := &clientSecretOutcome{oldKey: cfg.ClientID}
	if st.Previous.pending() {
		held, err := b.retirePrevious(ctx, s, st)
		if err != nil {
			return nil, fmt.Errorf("deleting the previous consumer key first: %w", err)
		}
		if held != nil {
			return nil, &clientSecretRefused{cause: errPreviousKeyHeld, msg: fmt.Sprintf("%s: consumer key %s, replaced at %s, is held by %s. "+
				"The engine deletes it when its last holder is done (at the latest at %s, before its validity ends) and a rotation can start then",
				errPreviousKeyHeld, st.Previous.Key, formatTime(st.Previous.SwitchedAt), held, formatTime(st.Previous.ExpiresAt.Add(-retireMargin)))}
		}
	}

	ec, sess, err := b.ecaAdmin(ctx, s)
	if err != nil {
		return nil, refuseClientSecret("the admin login through the app failed, nothing was changed: %v", err)
	}
	appID, consumerID, err := findConsumer(ctx, ec, sess, cfg)
	if err != nil {
		return nil, err
	}
	newCred, warnings, err := b.stageCredential(ctx, ec, sess, cfg, appID, consumerID)
	out.warnings = warnings
	if err != nil {
		return nil, err
	}
	if err := b.step(stepClientSecretStaged); err != nil {
		return nil, err
	}
	w := &clientSecretWAL{AppID: appID, ConsumerID: consumerID, OldKey: cfg.ClientID, NewKey: newCred.Key, StagedID: newCred.ID, CreatedAt: b.now().UTC()}
	walID, err := framework.PutWAL(ctx, s, clientSecretWALKind, w)
	if err != nil {
		b.unstage(ctx, ec, sess, w)
		return nil, fmt.Errorf("writing the client-secret WAL: %w", err)
	}

	if err := b.verifyClientCredential(ctx, s, cfg, newCred.Key, newCred.Secret); err != nil {
		if b.unstage(ctx, ec, sess, w) {
			b.deleteWAL(ctx, s, walID)
		}
		if sfapi.IsTransient(err) {
			return nil, fmt.Errorf("verifying the new consumer key: %w; it was deleted again, nothing was changed", err)
		}
		return nil, refuseClientSecret("Salesforce staged a new consumer key, but logging in with it failed (%v); it was deleted "+
			"again and nothing was changed", err)
	}
	if err := b.step(stepClientSecretVerified); err != nil {
		return nil, err
	}
	if err := ec.PromoteStagedCredential(ctx, sess, appID, consumerID, newCred.ID); err != nil {
		// Whether the promotion happened is decided by what Salesforce
		// holds now, as after a crash.
		if serr := b.settleClientSecretWAL(ctx, s, w); serr != nil {
			return nil, fmt.Errorf("promoting the new consumer key failed (%v), and the outcome cannot be checked now (%v); "+
				"the write-ahead log keeps it and it is settled later", err, serr)
		}
		b.deleteWAL(ctx, s, walID)
		if cur, _ := readConfig(ctx, s); cur != nil && cur.ClientID == newCred.Key {
			return b.outcome(ctx, s, out, newCred.Key)
		}
		return nil, fmt.Errorf("promoting the new consumer key failed, it was deleted again and nothing was changed: %w", err)
	}
	if err := b.step(stepClientSecretPromoted); err != nil {
		return nil, err
	}
	if err := b.switchClientSecret(ctx, s, cfg, ec, sess, w, newCred.Secret); err != nil {
		return nil, err
	}
	if err := b.step(stepClientSecretSwitched); err != nil {
		return nil, err
	}
	b.deleteWAL(ctx, s, walID)
	return b.outcome(ctx, s, out, newCred.Key)
}

func (b *backend) outcome(ctx context.Context, s logical.Storage, out *clientSecretOutcome, newKey string) (*clientSecretOutcome, error) {
	st, err := readClientSecretState(ctx, s)
	if err != nil {
		return nil, err
	}
	out.newKey, out.previous = newKey, st.Previous
	return out, nil
}

// findConsumer resolves config's app and the consumer whose key is
// config's client_id.
func findConsumer(ctx context.Context, ec ecaClient, sess *sfapi.Session, cfg *salesforceConfig) (appID, consumerID string, err error) {
	app, err := ec.FindExternalClientApp(ctx, sess, cfg.AppDeveloperName)
	if sfapi.KindOf(err) == sfapi.KindNotFound {
		return "", "", refuseClientSecret("no local External Client App has the API name %q (app_developer_name): check the name in Setup", cfg.AppDeveloperName)
	}
	if err != nil {
		return "", "", wrapConnectError("looking up the External Client App", err)
	}
	consumers, err := ec.AppConsumers(ctx, sess, app.Identifier)
	if err != nil {
		return "", "", wrapConnectError("listing the app's consumers", err)
	}
	for _, c := range consumers {
		if c.Key == cfg.ClientID {
			return app.Identifier, c.ID, nil
		}
	}
	return "", "", refuseClientSecret("the External Client App %q has no consumer whose key is config's client_id %s: "+
		"app_developer_name must name the app config logs in with (if the key was rotated outside Vault, write the current "+
		"client_id and client_secret to config)", cfg.AppDeveloperName, cfg.ClientID)
}

// wrapConnectError turns a refusal of the Connect REST API into a 400
// with the fix; other errors pass through.
func wrapConnectError(what string, err error) error {
	if sfapi.KindOf(err) == sfapi.KindPermission {
		return refuseClientSecret("%s: Salesforce refused (%v). The app's run-as user (client_credentials) or config's username "+
			"(jwt_bearer) needs the External Client App Developer and View Client Secret permissions, and the org the setting "+
			"\"Allow access to External Client App consumer secrets via REST API\"; packaged apps cannot be rotated this way", what, err)
	}
	return fmt.Errorf("%s: %w", what, err)
}

// stageCredential puts a new key and secret in the consumer's staged slot
// and returns them. An Active credential already there (staged earlier,
// e.g. by a rotation that crashed before its WAL entry) is used; a Rotated
// or Expired one the engine does not track is deleted first: the slot
// must be empty in some orgs, and staging over it would end it anyway.
func (b *backend) stageCredential(ctx context.Context, ec ecaClient, sess *sfapi.Session, cfg *salesforceConfig, appID, consumerID string) (*sfapi.StagedCredential, []string, error) {
	var warnings []string
	staged, err := ec.StagedCredentials(ctx, sess, appID, consumerID)
	if err != nil {
		return nil, nil, wrapConnectError("reading the staged credentials", err)
	}
	for _, c := range staged {
		switch {
		case strings.EqualFold(c.State, sfapi.CredentialActive) && c.Key != cfg.ClientID:
			cred, err := ec.StagedSecret(ctx, sess, appID, consumerID, c.ID)
			if err != nil {
				return nil, nil, wrapConnectError("reading the credential staged earlier", err)
			}
			warnings = append(warnings, fmt.Sprintf("used the consumer key %s that was already staged (since %s) instead of staging another", c.Key, formatTime(c.CreatedDate)))
			return cred, warnings, nil
		case c.Key == cfg.ClientID:
			return nil, nil, refuseClientSecret("config's client_id %s sits in the staged slot as %s: the app's key was rotated outside Vault. "+
				"Write the current client_id and client_secret to config first", c.Key, c.State)
		default:
			if err := ec.DeleteStagedCredential(ctx, sess, appID, consumerID, c.ID); err != nil {
				return nil, nil, wrapConnectError("deleting the old credential in the staged slot", err)
			}
			warnings = append(warnings, fmt.Sprintf("deleted consumer key %s (%s), left in the staged slot by an earlier rotation the engine did not track", c.Key, c.State))
			b.logger.Warn("deleted an untracked credential from the staged slot", "client_id", c.Key, "state", c.State)
		}
	}
	cred, err := ec.StageCredential(ctx, sess, appID, consumerID)
	if err != nil {
		return nil, warnings, wrapConnectError("staging a new consumer key", err)
	}
	return cred, warnings, nil
}

// unstage deletes the staged credential of w if it is still the Active one
// in the slot (never a promoted or demoted one); true when the slot no
// longer holds it.
func (b *backend) unstage(ctx context.Context, ec ecaClient, sess *sfapi.Session, w *clientSecretWAL) bool {
	staged, err := ec.StagedCredentials(ctx, sess, w.AppID, w.ConsumerID)
	if err != nil {
		b.logger.Warn("could not read the staged credential to delete it; the WAL keeps it", "error", err)
		return false
	}
	for _, c := range staged {
		if c.Key == w.NewKey && strings.EqualFold(c.State, sfapi.CredentialActive) {
			if err := ec.DeleteStagedCredential(ctx, sess, w.AppID, w.ConsumerID, c.ID); err != nil {
				b.logger.Warn("could not delete the staged credential; the WAL keeps it", "error", err)
				return false
			}
		}
	}
	return true
}

// verifyClientCredential logs in with the new key and secret through
// config's grant (client credentials, or JWT bearer with the config's key
// as the new key's issuer), each attempt reserved in the login budget of
// config's admin identity, and checks the response's signature with the
// new secret. The session is revoked.
func (b *backend) verifyClientCredential(ctx context.Context, s logical.Storage, cfg *salesforceConfig, key, secret string) error {
	cand := *cfg
	cand.ClientID, cand.ClientSecret = key, secret
	cc, err := cand.clientConfig()
	if err != nil {
		return err
	}
	client, err := b.newClient(cc)
	if err != nil {
		return err
	}
	vaultKey, err := b.adminVaultKey(ctx, s, cfg)
	if err != nil {
		return err
	}
	var sess *sfapi.Session
	err = sfapi.WithRetry(ctx, func(ctx context.Context) error {
		slot, err := b.reserveLogin(ctx, s, adminUser(cfg), purposeCheck, credCandidate)
		if err != nil {
			return err
		}
		sess, err = adminLogin(ctx, client, &cand, vaultKey)
		slot.done(ctx, err)
		return err
	})
	if err != nil {
		return err
	}
	defer func() {
		if err := client.Revoke(ctx, sess.AccessToken); err != nil {
			b.logger.Debug("could not revoke the verification session", "code", sfapi.ErrorCode(err))
		}
	}()
	return verifySignature(sess, secret)
}

// switchClientSecret points config at the new key and secret and records
// the previous key, which Salesforce keeps in the staged slot as Rotated.
func (b *backend) switchClientSecret(ctx context.Context, s logical.Storage, cfg *salesforceConfig, ec ecaClient, sess *sfapi.Session, w *clientSecretWAL, newSecret string) error {
	now := b.now().UTC()
	prev := b.previousFromSlot(ctx, ec, sess, w, now)
	updated := *cfg
	updated.ClientID, updated.ClientSecret = w.NewKey, newSecret
	if err := writeConfig(ctx, s, &updated); err != nil {
		return fmt.Errorf("Salesforce has the new consumer key but storing it in config failed (the WAL keeps it and it is stored on recovery): %w", err)
	}
	b.tokenReads.keyReplaced(w.OldKey)
	b.resetClient()
	b.invalidateAllTokens()
	if err := b.recordSwitch(ctx, s, w, prev, now); err != nil {
		return err
	}
	b.logger.Info("rotated the consumer key of config's External Client App", "client_id", w.NewKey, "previous_client_id", w.OldKey,
		"previous_valid_until", formatTime(prev.ExpiresAt))
	return nil
}

// previousFromSlot describes the previous key as the staged slot shows it
// after the promotion; without an answer, 30 days from now.
func (b *backend) previousFromSlot(ctx context.Context, ec ecaClient, sess *sfapi.Session, w *clientSecretWAL, now time.Time) *previousCredential {
	prev := &previousCredential{Key: w.OldKey, SwitchedAt: now, ExpiresAt: now.Add(stagedValidity)}
	staged, err := ec.StagedCredentials(ctx, sess, w.AppID, w.ConsumerID)
	if err != nil {
		b.logger.Warn("could not read the previous consumer key's validity; assuming 30 days", "error", err)
		return prev
	}
	for _, c := range staged {
		if c.Key == w.OldKey {
			prev.StagedID = c.ID
			if !c.ExpirationDate.IsZero() {
				prev.ExpiresAt = c.ExpirationDate
			}
		}
	}
	return prev
}

// recordSwitch stores the rotation's outcome in the state.
func (b *backend) recordSwitch(ctx context.Context, s logical.Storage, w *clientSecretWAL, prev *previousCredential, now time.Time) error {
	st, err := readClientSecretState(ctx, s)
	if err != nil {
		return err
	}
	st.AppID, st.ConsumerID = w.AppID, w.ConsumerID
	st.ActiveKey, st.ActiveSince, st.LastRotation = w.NewKey, now, now
	st.LastError, st.LastErrorAt, st.Failures, st.MissedRotationAt = "", time.Time{}, 0, time.Time{}
	st.Previous = prev
	if rcfg, err := readRotationConfig(ctx, s); err == nil {
		st.NextRotation = nextClientSecretRotation(&rcfg.ClientSecretRotation, now)
	}
	return writeClientSecretState(ctx, s, st)
}

// recordClientSecretFailure notes a failed rotation in the state and
// returns it; a rotation that waits for the previous key's holders or a
// simulated crash is not a failure. Caller holds rootMu.
func (b *backend) recordClientSecretFailure(ctx context.Context, s logical.Storage, cause error) *clientSecretState {
	st, err := readClientSecretState(ctx, s)
	if err != nil || errors.Is(cause, errPreviousKeyHeld) || errors.Is(cause, errSimulatedCrash) {
		return st
	}
	st.LastError, st.LastErrorAt = cause.Error(), b.now().UTC()
	st.Failures++
	if err := writeClientSecretState(ctx, s, st); err != nil {
		b.logger.Warn("could not record the failed client-secret rotation", "error", err)
	}
	return st
}

// ecaAdmin returns the External Client App calls of the admin's client and
// the admin session they run under.
func (b *backend) ecaAdmin(ctx context.Context, s logical.Storage) (ecaClient, *sfapi.Session, error) {
	var ec ecaClient
	var sess *sfapi.Session
	err := b.withAdminSession(ctx, s, func(c Client, se *sfapi.Session) error {
		var err error
		ec, err = asECAClient(c)
		sess = se
		return err
	})
	return ec, sess, err
}
