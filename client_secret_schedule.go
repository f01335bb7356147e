package salesforce

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/hashicorp/vault/sdk/framework"
	"github.com/hashicorp/vault/sdk/helper/automatedrotationutil"
	"github.com/hashicorp/vault/sdk/logical"
	"github.com/hashicorp/vault/sdk/rotation"

	"github.com/vault-salesforce/vault-plugin-secrets-salesforce/sfapi"
)

// The background side of client-secret rotation: the backend's
// PeriodicFunc (Vault's rollback manager calls it about once a minute, on
// the active node) deletes the previous consumer key once its last holder
// is done and runs scheduled rotations from config/rotation.

const (
	// retireMargin: a previous key still held is deleted this long before
	// Salesforce's 30-day validity ends, so the engine, not the expiry,
	// decides when it goes.
	retireMargin = time.Hour
	// minClientSecretRotationPeriod: the periodic check runs about once a
	// minute.
	minClientSecretRotationPeriod = time.Minute
)

// periodicFunc is the backend's PeriodicFunc.
func (b *backend) periodicFunc(ctx context.Context, req *logical.Request) error {
	if !b.runsScheduledRotations() {
		return nil
	}
	b.clientSecretPeriodic(ctx, req.Storage)
	return nil
}

// clientSecretPeriodic deletes a previous key whose last holder is done and
// rotates when the schedule says so.
func (b *backend) clientSecretPeriodic(ctx context.Context, s logical.Storage) {
	b.rootMu.Lock()
	defer b.rootMu.Unlock()
	cfg, err := readConfig(ctx, s)
	if err != nil || cfg == nil || !cfg.isECA() {
		return
	}
	st, err := readClientSecretState(ctx, s)
	if err != nil {
		b.logger.Warn("reading the client-secret rotation state", "error", err)
		return
	}
	if st.Previous.pending() {
		if _, err := b.retirePrevious(ctx, s, st); err != nil {
			b.logger.Warn("could not delete the previous consumer key; trying again later", "error", err)
		}
	}
	b.runScheduledClientSecret(ctx, s)
}

// retirePrevious deletes st's previous key when nothing holds it any more
// (or its validity is about to end). It returns who holds it when it was
// kept, nil when it is gone.
func (b *backend) retirePrevious(ctx context.Context, s logical.Storage, st *clientSecretState) (*keyHolders, error) {
	p := st.Previous
	if !p.pending() {
		return nil, nil
	}
	now := b.now()
	held, err := b.holdersOf(ctx, s, p.Key, now)
	if err != nil {
		return nil, err
	}
	expiring := !now.Before(p.ExpiresAt.Add(-retireMargin))
	if !held.done(now) && !expiring {
		return &held, nil
	}
	err = b.withAdminSession(ctx, s, func(c Client, sess *sfapi.Session) error {
		ec, err := asECAClient(c)
		if err != nil {
			return err
		}
		staged, err := ec.StagedCredentials(ctx, sess, st.AppID, st.ConsumerID)
		if err != nil {
			return err
		}
		for _, cred := range staged {
			if cred.Key == p.Key {
				return ec.DeleteStagedCredential(ctx, sess, st.AppID, st.ConsumerID, cred.ID)
			}
		}
		return nil
	})
	if err != nil {
		if msg := err.Error(); msg != p.RetireError {
			p.RetireError = msg
			_ = writeClientSecretState(ctx, s, st)
		}
		return nil, err
	}
	p.DeletedAt, p.RetireError = now.UTC(), ""
	p.DeleteReason = "no token minted with it is held any more"
	if !held.done(now) {
		p.DeleteReason = fmt.Sprintf("its 30-day validity was about to end; still held by %s", held)
	}
	if err := writeClientSecretState(ctx, s, st); err != nil {
		return nil, err
	}
	if err := s.Delete(ctx, tokensUntilPath(p.Key)); err != nil {
		b.logger.Warn("could not remove the token expiry record of the deleted key", "error", err)
	}
	b.logger.Info("deleted the previous consumer key of config's External Client App", "client_id", p.Key, "reason", p.DeleteReason)
	return nil, nil
}

// runScheduledClientSecret rotates when config/rotation's schedule says
// so; the caller holds rootMu.
func (b *backend) runScheduledClientSecret(ctx context.Context, s logical.Storage) {
	rcfg, err := readRotationConfig(ctx, s)
	if err != nil {
		return
	}
	st, err := readClientSecretState(ctx, s)
	if err != nil {
		return
	}
	p := &rcfg.ClientSecretRotation
	now := b.now()
	scheduled := !p.DisableAutomatedRotation && p.HasNonzeroRotationValues()
	switch {
	case !scheduled:
		if !st.NextRotation.IsZero() {
			st.NextRotation = time.Time{}
			_ = writeClientSecretState(ctx, s, st)
		}
		return
	case st.NextRotation.IsZero():
		from := st.LastRotation
		if from.IsZero() {
			from = now
		}
		st.NextRotation = nextClientSecretRotation(p, from)
		_ = writeClientSecretState(ctx, s, st)
		return
	case now.Before(st.NextRotation):
		return
	}
	if p.RotationSchedule != "" && p.RotationWindow > 0 && !now.Before(st.NextRotation.Add(p.RotationWindow)) {
		st.MissedRotationAt = st.NextRotation
		st.NextRotation = nextClientSecretRotation(p, now)
		_ = writeClientSecretState(ctx, s, st)
		b.logger.Warn("scheduled client-secret rotation missed its window; waiting for the next scheduled time")
		return
	}
	if st.Previous.pending() {
		// Held: wait; the next check tries again (no Salesforce call).
		return
	}
	if _, err := b.rotateClientSecretLocked(ctx, s); err != nil {
		b.logger.Warn("scheduled client-secret rotation failed", "error", err)
		if st := b.recordClientSecretFailure(ctx, s, err); st != nil {
			st.NextRotation = now.Add(rcfg.backoff(max(st.Failures, 1))).UTC()
			_ = writeClientSecretState(ctx, s, st)
		}
		return
	}
	b.logger.Info("scheduled client-secret rotation done")
}

// nextClientSecretRotation is the next scheduled time after from; zero
// when none is scheduled.
func nextClientSecretRotation(p *automatedrotationutil.AutomatedRotationParams, from time.Time) time.Time {
	if p.DisableAutomatedRotation || !p.HasNonzeroRotationValues() {
		return time.Time{}
	}
	if p.RotationSchedule != "" {
		sched, err := rotation.DefaultScheduler.Parse(p.RotationSchedule)
		if err != nil {
			return time.Time{}
		}
		return sched.Next(from).UTC()
	}
	return from.Add(p.RotationPeriod).UTC()
}

// The schedule fields of config/rotation: the SDK's automated rotation
// fields with a client_secret_ prefix.
var clientSecretFieldNames = map[string]string{
	"rotation_period":            "client_secret_rotation_period",
	"rotation_schedule":          "client_secret_rotation_schedule",
	"rotation_window":            "client_secret_rotation_window",
	"disable_automated_rotation": "client_secret_disable_automated_rotation",
}

var clientSecretFieldDescriptions = map[string]string{
	"rotation_period": "Rotate the consumer key and secret of config's External Client App this long after the last rotation " +
		"(e.g. 720h; at least 1m, checked about once a minute). Mutually exclusive with client_secret_rotation_schedule; 0 turns it off.",
	"rotation_schedule": "Cron-style schedule (UTC) of consumer key rotations, e.g. \"0 3 1 * *\". Mutually exclusive with " +
		"client_secret_rotation_period; empty turns it off.",
	"rotation_window": "With client_secret_rotation_schedule: how long after each scheduled time a rotation may still start " +
		"(at least 1h); a rotation that cannot start in it waits for the next scheduled time. 0: no limit.",
	"disable_automated_rotation": "Pause scheduled consumer key rotation while keeping the period or schedule; " +
		"rotate-client-secret still rotates on demand.",
}

// withClientSecretScheduleFields adds the schedule fields to config/rotation's.
func withClientSecretScheduleFields(fields map[string]*framework.FieldSchema) map[string]*framework.FieldSchema {
	sdk := map[string]*framework.FieldSchema{}
	automatedrotationutil.AddAutomatedRotationFields(sdk)
	for name, ours := range clientSecretFieldNames {
		f := *sdk[name]
		f.Description = clientSecretFieldDescriptions[name]
		fields[ours] = &f
	}
	return fields
}

// sdkNames turns the SDK's field names in an error back into ours.
var sdkNames = strings.NewReplacer("rotation_schedule", "client_secret_rotation_schedule",
	"rotation_period", "client_secret_rotation_period", "rotation_window", "client_secret_rotation_window")

// applyClientSecretSchedule parses the schedule fields of a config/rotation
// write into rc with the SDK's semantics; errors name our fields.
func applyClientSecretSchedule(d *framework.FieldData, rc *rotationConfig) error {
	schema := map[string]*framework.FieldSchema{}
	automatedrotationutil.AddAutomatedRotationFields(schema)
	raw := map[string]interface{}{}
	for name, ours := range clientSecretFieldNames {
		if v, ok := d.Raw[ours]; ok {
			raw[name] = v
		}
	}
	if len(raw) == 0 {
		return nil
	}
	sd := &framework.FieldData{Raw: raw, Schema: schema}
	p := rc.ClientSecretRotation
	if err := p.ParseAutomatedRotationFields(sd); err != nil {
		return fmt.Errorf("%s", sdkNames.Replace(err.Error()))
	}
	// An update that switches between period and schedule drops the other.
	if v, ok := sd.GetOk("rotation_schedule"); ok && v.(string) != "" {
		if _, set := sd.GetOk("rotation_period"); !set {
			p.RotationPeriod = 0
		}
	}
	if v, ok := sd.GetOk("rotation_period"); ok && v.(int) != 0 {
		if _, set := sd.GetOk("rotation_schedule"); !set {
			p.RotationSchedule, p.RotationWindow = "", 0
		}
	}
	switch {
	case p.RotationSchedule != "" && p.RotationPeriod != 0:
		return fmt.Errorf("%s", sdkNames.Replace(automatedrotationutil.ErrRotationMutuallyExclusiveFields.Error()))
	case p.RotationPeriod < 0 || (p.RotationPeriod > 0 && p.RotationPeriod < minClientSecretRotationPeriod):
		return fmt.Errorf("client_secret_rotation_period must be at least %s", minClientSecretRotationPeriod)
	case p.RotationWindow != 0 && p.RotationSchedule == "":
		return fmt.Errorf("client_secret_rotation_window needs client_secret_rotation_schedule")
	}
	if p.RotationWindow != 0 {
		if err := rotation.DefaultScheduler.ValidateRotationWindow(int(p.RotationWindow.Seconds())); err != nil {
			return fmt.Errorf("client_secret_rotation_window: %w", err)
		}
	}
	p.RotationPolicy = ""
	rc.ClientSecretRotation = p
	return nil
}

// clientSecretScheduleData adds the schedule fields to a config/rotation
// read, as the SDK shows them for accounts; none while nothing is set.
func clientSecretScheduleData(rc *rotationConfig, data map[string]interface{}) {
	p := rc.ClientSecretRotation
	if !p.HasNonzeroRotationValues() && !p.DisableAutomatedRotation {
		return
	}
	m := map[string]interface{}{}
	rc.ClientSecretRotation.PopulateSetAutomatedRotationData(m)
	delete(m, "rotation_policy")
	for name, v := range m {
		data[clientSecretFieldNames[name]] = v
	}
}

// rescheduleClientSecret moves the next scheduled rotation after a
// config/rotation write.
func (b *backend) rescheduleClientSecret(ctx context.Context, s logical.Storage, rc *rotationConfig) error {
	b.rootMu.Lock()
	defer b.rootMu.Unlock()
	st, err := readClientSecretState(ctx, s)
	if err != nil {
		return err
	}
	from := st.LastRotation
	if from.IsZero() || rc.ClientSecretRotation.RotationSchedule != "" {
		from = b.now()
	}
	next := nextClientSecretRotation(&rc.ClientSecretRotation, from)
	if next.Equal(st.NextRotation) {
		return nil
	}
	st.NextRotation = next
	return writeClientSecretState(ctx, s, st)
}
