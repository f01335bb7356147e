package salesforce

import (
	"context"
	"strings"
	"time"

	"github.com/hashicorp/vault/sdk/framework"
	"github.com/hashicorp/vault/sdk/logical"
)

// An account's status as reads and lists show it: the rotation state, an
// unsettled rotation, a blocked login budget, and the one-line summary that
// vault list -detailed prints per account.

// accountStatus is what reads show beside the stored account: its user's
// failed logins and an unsettled rotation.
type accountStatus struct {
	logins    *budgetState
	maxFailed int
	pending   *pendingStatus
}

func (b *backend) accountStatusOf(ctx context.Context, s logical.Storage, name string, acct *account) (*accountStatus, error) {
	src, err := b.accountStatusSource(ctx, s)
	if err != nil {
		return nil, err
	}
	return src.statusOf(ctx, name, acct)
}

// statusSource reads the status of accounts. What every account shares is
// read once, so a list of many accounts reads only each one's own entries.
type statusSource struct {
	b         *backend
	s         logical.Storage
	maxFailed int
	// noWAL is set when storage was seen to hold no write-ahead log entry:
	// then no account has an unsettled rotation.
	noWAL bool
}

func (b *backend) accountStatusSource(ctx context.Context, s logical.Storage) (*statusSource, error) {
	rcfg, err := b.readRotationConfigCached(ctx, s)
	if err != nil {
		return nil, err
	}
	return &statusSource{b: b, s: s, maxFailed: rcfg.MaxFailedLogins}, nil
}

// listWALOnce lists the write-ahead log once for the many accounts that
// follow, instead of once per account.
func (src *statusSource) listWALOnce(ctx context.Context) error {
	ids, err := framework.ListWAL(ctx, src.s)
	if err != nil {
		return err
	}
	src.noWAL = len(ids) == 0
	return nil
}

func (src *statusSource) statusOf(ctx context.Context, name string, acct *account) (*accountStatus, error) {
	logins, err := src.b.loginStatus(ctx, src.s, accountUser(name, acct))
	if err != nil {
		return nil, err
	}
	var pending *pendingStatus
	if !src.noWAL {
		if pending, err = src.b.pendingRotation(ctx, src.s, name, acct); err != nil {
			return nil, err
		}
	}
	return &accountStatus{logins: logins, maxFailed: src.maxFailed, pending: pending}, nil
}

// loginsBlocked reports whether max_failed_logins stops every login.
func (st *accountStatus) loginsBlocked() bool {
	return st.logins.Failed >= st.maxFailed
}

// addAccountRotationStatus adds rotation settings and status to an
// accounts/<name> read. Durations are integer seconds (the SDK's
// convention); optional fields that are unset are left out, while the
// status fields an operator always checks are always present.
func (b *backend) addAccountRotationStatus(acct *account, st *accountStatus, data map[string]interface{}) {
	// As automatedrotationutil's PopulateSetAutomatedRotationData, without
	// rotation_policy, which this engine does not use.
	data["disable_automated_rotation"] = acct.DisableAutomatedRotation
	if acct.RotationSchedule != "" {
		data["rotation_schedule"] = acct.RotationSchedule
		data["rotation_window"] = int64(acct.RotationWindow.Seconds())
	}
	if acct.RotationPeriod != 0 {
		data["rotation_period"] = int64(acct.RotationPeriod.Seconds())
	}
	data["rotation_method"] = acct.method()
	data["security_token_mode"] = acct.SecurityTokenMode
	data["allow_scheduled_rotation_with_token"] = acct.AllowScheduledRotationWithToken
	data["skip_import_rotation"] = acct.SkipImportRotation
	data["unlock_after_rotation"] = acct.UnlockAfterRotation
	setIfNotEmpty(data, "password_policy", acct.PasswordPolicy)
	setIfNotEmpty(data, "validation_query", acct.ValidationQuery)
	showWebhookURL(data, "validation_webhook", acct.ValidationWebhook)
	showWebhookURL(data, "pre_rotation_webhook", acct.PreRotationWebhook)
	showWebhookURL(data, "webhook_url", acct.WebhookURL)

	sum := b.summarizeAccount(acct, st)
	data["version"] = acct.Version
	data["rotation_status"] = sum.rotationStatus
	data["security_token_status"] = sum.securityTokenStatus
	data["last_vault_rotation"] = formatTime(acct.LastVaultRotation)
	data["next_vault_rotation"] = formatTime(sum.nextVaultRotation)
	data["consecutive_failures"] = acct.ConsecutiveFailures
	setIfNotEmpty(data, "rotation_blocked", sum.rotationBlocked)
	data["failed_logins"] = sum.failedLogins
	if last := st.logins.LastFailure; last != nil {
		data["last_failed_login_at"] = formatTime(last.At)
		setIfNotEmpty(data, "last_failed_login_code", last.Code)
		data["last_failed_login_credential"] = last.Credential
	}
	setIfNotEmpty(data, "admin_login_error", sum.adminLoginError)
	setIfNotEmpty(data, "last_rotation_error", sum.lastRotationError)
	setIfNotEmpty(data, "last_rotation_error_at", formatTime(acct.LastRotationErrorAt))
	setIfNotEmpty(data, "missed_rotation_at", formatTime(acct.MissedRotationAt))
	setIfNotEmpty(data, "unverified_candidate_at", formatTime(acct.UnverifiedCandidateAt))
	if p := sum.pending; p != nil {
		data["pending_since"] = formatTime(p.since)
		data["pending_reason"] = p.reason
	}
}

// accountSummary is the status of an account as reads of accounts/<name>
// and the key_info of lists of accounts/ show it: both come from
// summarizeAccount, so a list never says something a read would not.
type accountSummary struct {
	rotationStatus      string
	rotationBlocked     string
	securityTokenStatus string
	nextVaultRotation   time.Time
	lastRotationError   string
	failedLogins        int
	// adminLoginError is Salesforce's answer to the config's admin login
	// while it is refused (rotation_method=admin accounts only).
	adminLoginError string
	pending         *pendingStatus
}

// summarizeAccount sums up an account's status from what is stored (acct)
// and what is kept beside it (st: the user's failed logins, an unsettled
// rotation).
func (b *backend) summarizeAccount(acct *account, st *accountStatus) accountSummary {
	sum := accountSummary{
		rotationStatus:      rotationStatus(acct),
		rotationBlocked:     acct.RotationBlocked,
		securityTokenStatus: tokenStatusOf(acct),
		nextVaultRotation:   acct.NextVaultRotation,
		lastRotationError:   acct.LastRotationError,
		failedLogins:        st.logins.Failed,
		pending:             st.pending,
	}
	if st.loginsBlocked() {
		// No login as the user until an operator checks Salesforce.
		sum.rotationStatus = "blocked"
		if sum.rotationBlocked == "" {
			sum.rotationBlocked = "failed_logins"
		}
	}
	if acct.method() == rotationMethodAdmin {
		if err := b.adminRefusedNow(); err != nil {
			// Mount-wide: no admin login is tried until config is written.
			sum.rotationStatus = "blocked"
			if sum.rotationBlocked == "" {
				sum.rotationBlocked = "admin_login_refused"
			}
			sum.adminLoginError = err.Error()
		}
	}
	if st.pending != nil {
		// Said first: the password served may not be the one Salesforce has.
		sum.rotationStatus = "pending_reconciliation"
	}
	return sum
}

// maxListedErrorLength bounds last_rotation_error in the key_info of
// lists, which show one line per account; reads show it whole.
const maxListedErrorLength = 80

// keyInfo is an account's entry in the key_info of a list of accounts/
// (vault list -detailed): who it is and the status fields that answer
// "which accounts are stale or blocked?". Fields without a value are left
// out (the CLI shows n/a). Never a secret: the same fields as reads.
func (sum accountSummary) keyInfo(acct *account) map[string]interface{} {
	info := map[string]interface{}{
		"username":        acct.Username,
		"rotation_status": sum.rotationStatus,
		"failed_logins":   sum.failedLogins,
	}
	setIfNotEmpty(info, "security_token_status", sum.securityTokenStatus)
	setIfNotEmpty(info, "next_vault_rotation", formatTime(sum.nextVaultRotation))
	setIfNotEmpty(info, "rotation_blocked", sum.rotationBlocked)
	setIfNotEmpty(info, "last_rotation_error", shortenForList(sum.lastRotationError, maxListedErrorLength))
	if sum.pending != nil {
		info["pending_since"] = formatTime(sum.pending.since)
	}
	if acct.dual() {
		// Which of the pair creds/<name> serves, and a switch that waits.
		info["active_username"] = acct.ActiveUsername
		setIfNotEmpty(info, "switch_status", acct.switchStatus())
	}
	return info
}

// shortenForList makes s one line of at most max runes, cut at a word
// boundary where there is one, with "..." when something was cut.
func shortenForList(s string, max int) string {
	s = strings.Join(strings.Fields(s), " ")
	r := []rune(s)
	if len(r) <= max {
		return s
	}
	cut := string(r[:max-3])
	if r[max-3] != ' ' {
		// Mid-word: end at the last whole word.
		if i := strings.LastIndex(cut, " "); i > max/2 {
			cut = cut[:i]
		}
	}
	return strings.TrimRight(cut, " ,;:") + "..."
}

// setIfNotEmpty keeps unset optional fields out of reads.
func setIfNotEmpty(data map[string]interface{}, key, value string) {
	if value != "" {
		data[key] = value
	}
}
