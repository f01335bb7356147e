package salesforce

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sort"
	"strings"
	"time"

	"github.com/hashicorp/vault/sdk/framework"
	"github.com/hashicorp/vault/sdk/logical"

	"github.com/vault-salesforce/vault-plugin-secrets-salesforce/sfapi"
)

const (
	defaultReportDays = 30
	// maxReportDays: Salesforce keeps six months of Login History.
	maxReportDays = 180
	// maxReportRows bounds the LoginHistory rows one report reads (Setup's
	// Login History page shows 20,000 too).
	maxReportRows = 20000
)

func pathLoginReport(b *backend) []*framework.Path {
	days := &framework.FieldSchema{
		Type:        framework.TypeInt,
		Default:     defaultReportDays,
		Description: fmt.Sprintf("How many days of Login History to read (1 to %d; Salesforce keeps six months).", maxReportDays),
		// A read takes it from the query string (vault read ... days=90).
		Query: true,
	}
	return []*framework.Path{
		{
			Pattern: "login-report$",
			DisplayAttrs: &framework.DisplayAttributes{
				OperationPrefix: operationPrefix,
				OperationVerb:   "read",
				OperationSuffix: "login-report",
			},
			Fields: map[string]*framework.FieldSchema{"days": days},
			Operations: map[logical.Operation]framework.OperationHandler{
				// The admin session may need a login: done on the active node.
				logical.ReadOperation: &framework.PathOperation{Callback: b.pathLoginReportRead,
					ForwardPerformanceStandby: true, ForwardPerformanceSecondary: true},
			},
			HelpSynopsis:    "Which login methods the users this mount manages use, which of them Salesforce retires, and their replacement.",
			HelpDescription: strings.TrimSpace(loginReportHelp),
		},
		{
			Pattern: "accounts/(?P<name>" + accountNameRegex + ")/login-report$",
			DisplayAttrs: &framework.DisplayAttributes{
				OperationPrefix: operationPrefix,
				OperationVerb:   "read",
				OperationSuffix: "account-login-report",
			},
			Fields: map[string]*framework.FieldSchema{
				"name": {Type: framework.TypeString, Description: "Name of the account.", Required: true},
				"days": days,
			},
			Operations: map[logical.Operation]framework.OperationHandler{
				// The admin session may need a login: done on the active node.
				logical.ReadOperation: &framework.PathOperation{Callback: b.pathLoginReportRead,
					ForwardPerformanceStandby: true, ForwardPerformanceSecondary: true},
			},
			HelpSynopsis:    "The login-method migration report of one account's user.",
			HelpDescription: strings.TrimSpace(loginReportHelp),
		},
	}
}

const loginReportHelp = `
Reads Salesforce's Login History (with the admin session) for the users this
mount manages: the users of the stored accounts, the config's admin user (or
the app's run-as user for client_credentials) and the users of jwt_bearer and
password roles. accounts/<name>/login-report covers that account's user only.

For each user it says which login methods (LoginType, LoginSubType, ApiType),
API versions and applications were used in the last "days" days (default 30),
from which addresses, and what becomes of them:

  SOAP login() at API 65.0 or later   not available: these logins fail already
  SOAP login() at API 31.0 to 64.0    retired with Summer '27. Salesforce names
                                      the release, not a date; the report counts
                                      down to an approximate one (2027-06-12)
  OAuth username-password flow        blocked by default in orgs created since
                                      Summer '23, being deprecated, no date

and gives the replacement the engine serves today: the exact
"vault write <mount>/roles/..." command of a jwt_bearer role for the user (or
client_credentials for the app's run-as user), or the existing role.

Failed logins of an account's user after Vault last rotated its password, from
addresses other than those that logged in with credentials only Vault hands
out, are listed apart (failed_logins_after_rotation): someone still uses the
password that was rotated away.

Salesforce only lets UserId and LoginTime (among the fields read) filter a
LoginHistory query; the report groups the rest itself. The admin user needs
Manage Users or Monitor Login History to see other users' logins. Every
finding is also a warning, so "vault read" shows them as sentences; scripts
read the structured "users" and "failed_logins_after_rotation" with
-format=json.
`

func (b *backend) pathLoginReportRead(ctx context.Context, req *logical.Request, d *framework.FieldData) (*logical.Response, error) {
	days := d.Get("days").(int)
	if days < 1 || days > maxReportDays {
		return logical.ErrorResponse("days must be between 1 and %d (Salesforce keeps six months of Login History)", maxReportDays), nil
	}
	var only string
	if _, scoped := d.Schema["name"]; scoped {
		only = d.Get("name").(string)
		if err := validateAccountName(only); err != nil {
			return logical.ErrorResponse(err.Error()), nil
		}
	}
	cfg, err := readConfig(ctx, req.Storage)
	if err != nil {
		return nil, err
	}
	if cfg == nil {
		return logical.ErrorResponse(errConfigMissing.Error()), nil
	}
	users, err := b.reportUsers(ctx, req.Storage, cfg, only)
	if err != nil {
		return nil, err
	}
	if users == nil {
		return nil, accountNotFound(only)
	}

	now := b.now()
	in := &reportInput{now: now, since: now.Add(-time.Duration(days) * 24 * time.Hour), days: days,
		mount: req.MountPoint, users: users, rows: map[string][]sfapi.LoginRecord{}, engineIPs: map[string]bool{}}
	if in.mount == "" {
		in.mount = "salesforce/"
	}
	if key, err := b.roleSigningKeys(ctx, req.Storage); err == nil && len(key) > 0 {
		in.haveKey = true
	}
	roleNames, err := req.Storage.List(ctx, roleStoragePrefix)
	if err != nil {
		return nil, err
	}
	in.roleNames = map[string]bool{}
	for _, n := range roleNames {
		in.roleNames[n] = true
	}

	err = b.withAdminSession(ctx, req.Storage, func(client Client, sess *sfapi.Session) error {
		lc, err := asLoginHistoryClient(client)
		if err != nil {
			return err
		}
		if only == "" && cfg.GrantType == adminGrantClientCredentials {
			// The admin identity is the app's run-as user, whose name only
			// the session tells.
			info, err := client.UserInfo(ctx, sess)
			if err != nil {
				return err
			}
			in.addRunAsUser(info.Username, info.UserID)
		}
		return b.readReportLogins(ctx, lc, sess, cfg, in)
	})
	if err != nil {
		return reportError(err)
	}
	data, warnings := buildLoginReport(in)
	return &logical.Response{Data: data, Warnings: warnings}, nil
}

// reportError explains why the report could not read Login History.
func reportError(err error) (*logical.Response, error) {
	switch {
	case sfapi.IsTransient(err):
		return nil, logical.CodedError(http.StatusServiceUnavailable, fmt.Sprintf("reading Login History: Salesforce is unavailable: %v", err))
	case sfapi.KindOf(err) == sfapi.KindPermission:
		return logical.ErrorResponse("reading Login History: Salesforce refused (%v); the admin user needs the API Enabled and Manage Users "+
			"or Monitor Login History permissions", err), nil
	case sfapi.IsCredentialError(err), errors.Is(err, errConfigMissing):
		return logical.ErrorResponse("reading Login History needs the admin session, and the admin login failed: %v", err), nil
	}
	return nil, fmt.Errorf("reading Login History: %w", err)
}

// reportUsers lists the users the engine manages (only: one account's),
// nil when that account does not exist.
func (b *backend) reportUsers(ctx context.Context, s logical.Storage, cfg *salesforceConfig, only string) ([]*reportUser, error) {
	byName := map[string]*reportUser{}
	var order []*reportUser
	user := func(username string) *reportUser {
		k := strings.ToLower(username)
		if u := byName[k]; u != nil {
			return u
		}
		u := &reportUser{username: username, rotatedAt: map[string]time.Time{}}
		byName[k] = u
		order = append(order, u)
		return u
	}

	keys, err := logical.CollectKeysWithPrefix(ctx, s, accountStoragePrefix)
	if err != nil {
		return nil, fmt.Errorf("listing accounts: %w", err)
	}
	sort.Strings(keys)
	accountUser := map[string]string{}
	for _, key := range keys {
		name := strings.TrimPrefix(key, accountStoragePrefix)
		if only != "" && name != only {
			continue
		}
		acct, err := readAccount(ctx, s, name)
		if err != nil {
			return nil, err
		}
		if acct == nil || acct.Username == "" {
			continue
		}
		u := user(acct.Username)
		if u.userID == "" {
			u.userID = acct.UserID
		}
		u.managedAs = append(u.managedAs, "accounts/"+name)
		u.accounts = append(u.accounts, name)
		u.rotatedAt[name] = acct.LastVaultRotation
		accountUser[name] = acct.Username
	}
	if only != "" && len(order) == 0 {
		return nil, nil
	}
	if only == "" && cfg.Username != "" && cfg.GrantType != adminGrantClientCredentials {
		u := user(cfg.Username)
		u.admin = true
		u.managedAs = append(u.managedAs, "config admin")
	}

	roleNames, err := s.List(ctx, roleStoragePrefix)
	if err != nil {
		return nil, fmt.Errorf("listing roles: %w", err)
	}
	sort.Strings(roleNames)
	for _, name := range roleNames {
		r, err := readRole(ctx, s, name)
		if err != nil {
			return nil, err
		}
		if r == nil {
			continue
		}
		var u *reportUser
		switch r.GrantType {
		case grantJWTBearer:
			if only != "" && !strings.EqualFold(r.Username, accountUser[only]) {
				continue
			}
			u = user(r.Username)
			u.jwtRoles = append(u.jwtRoles, name)
		case grantPassword:
			if accountUser[r.Account] == "" {
				continue
			}
			u = user(accountUser[r.Account])
		default:
			continue
		}
		u.managedAs = append(u.managedAs, "roles/"+name)
	}
	return order, nil
}

// readReportLogins resolves the users' ids, learns the app's run-as user
// (client_credentials) and reads their Login History into in.
func (b *backend) readReportLogins(ctx context.Context, lc loginHistoryClient, sess *sfapi.Session, cfg *salesforceConfig, in *reportInput) error {
	adminID := sess.UserID
	in.adminName = cfg.Username
	if cfg.GrantType == adminGrantClientCredentials {
		in.adminName = "the app's run-as user"
	}
	var missing []string
	for _, u := range in.users {
		if u.userID == "" {
			missing = append(missing, u.username)
		}
	}
	if len(missing) > 0 {
		ids, err := lc.UserIDs(ctx, sess, missing)
		if err != nil {
			return err
		}
		for _, u := range in.users {
			if u.userID == "" {
				u.userID = ids[strings.ToLower(u.username)]
			}
		}
	}
	var ids []string
	seen := map[string]bool{}
	for _, u := range in.users {
		if cfg.GrantType == adminGrantClientCredentials && id15(u.userID) == id15(adminID) {
			u.runAs = true
			u.managedAs = append(u.managedAs, "config run-as user")
		}
		if u.userID != "" && !seen[id15(u.userID)] {
			seen[id15(u.userID)] = true
			ids = append(ids, u.userID)
		}
	}
	// The admin's logins tell the engine's own addresses apart.
	if adminID != "" && !seen[id15(adminID)] {
		ids = append(ids, adminID)
	}
	if len(ids) == 0 {
		return nil
	}
	rows, truncated, err := lc.LoginHistory(ctx, sess, ids, in.since, maxReportRows)
	if err != nil {
		return err
	}
	in.truncated = truncated
	others := 0
	for _, r := range rows {
		k := id15(r.UserID)
		in.rows[k] = append(in.rows[k], r)
		if k == id15(adminID) && loginSucceeded(r) && r.SourceIP != "" {
			in.engineIPs[r.SourceIP] = true
		}
		if k != id15(adminID) {
			others++
		}
	}
	managedOthers := 0
	for _, u := range in.users {
		if u.userID != "" && id15(u.userID) != id15(adminID) {
			managedOthers++
		}
	}
	in.hiddenOthers = managedOthers > 0 && others == 0 && len(rows) > 0
	return nil
}

// addRunAsUser adds the client credentials flow's run-as user to the
// report's users (it is the config's admin identity).
func (in *reportInput) addRunAsUser(username, userID string) {
	for _, u := range in.users {
		if strings.EqualFold(u.username, username) {
			return
		}
	}
	in.users = append(in.users, &reportUser{username: username, userID: userID, rotatedAt: map[string]time.Time{}})
}
