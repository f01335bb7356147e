package salesforce

import (
	"context"
	"fmt"
	"strings"

	"github.com/hashicorp/vault/sdk/framework"
	"github.com/hashicorp/vault/sdk/logical"
	"golang.org/x/sync/errgroup"
)

const (
	maxDescriptionLength = 1024
)

func pathAccounts(b *backend) []*framework.Path {
	fields := map[string]*framework.FieldSchema{
		"name": {
			Type:        framework.TypeString,
			Description: "Name of the account in Vault; may contain '/' to group accounts, e.g. team-a/etl.",
			Required:    true,
		},
		"username": {
			Type: framework.TypeString,
			Description: "Salesforce username of the integration user (email format). Required when the account is created; " +
				"it cannot be changed afterwards (delete and re-create the account instead).",
			DisplayAttrs: &framework.DisplayAttributes{
				Name: "Username",
			},
		},
		"password": {
			Type: framework.TypeString,
			Description: "Current Salesforce password of the user. Required when the account is created; write it again to " +
				"replace it. Write-only: it is served by creds/<name>, never by reads of this path.",
			DisplayAttrs: &framework.DisplayAttributes{
				Name:      "Password",
				Sensitive: true,
			},
		},
		"security_token": {
			Type: framework.TypeString,
			Description: "The user's security token (letters and digits), which Salesforce requires after the password for " +
				"API logins from outside trusted IP ranges. Optional: leave it out for users whose profile's login IP ranges " +
				"cover Vault's address; write an empty value to remove a stored token. Write-only: reads show security_token_set.",
			DisplayAttrs: &framework.DisplayAttributes{
				Name:      "Security token",
				Sensitive: true,
			},
		},
		"description": {
			Type:        framework.TypeString,
			Description: "Free text for operators, e.g. which integration uses this user (at most 1024 characters).",
		},
		"reset_failed_logins": {
			Type: framework.TypeBool,
			Description: "Set the count of the user's logins Salesforce rejected to zero, after checking in Salesforce that the user is " +
				"not locked out. Once the count reaches max_failed_logins (config/rotation) the engine makes no login as the user, " +
				"this write's own check included, until a login succeeds or this is set. Takes effect before the check of this write.",
		},
		"verify": {
			Type: framework.TypeBool,
			Description: "Check a new or changed password and security token by logging in to Salesforce with them before " +
				"storing them (default true): SOAP login() where the org allows it, else the OAuth username-password flow " +
				"through the configured connected app. A rejected credential returns Salesforce's error code and stores nothing.",
			Default: true,
		},
	}
	for k, v := range accountRotationFields() {
		if _, taken := fields[k]; !taken {
			fields[k] = v
		}
	}
	for k, v := range accountDualFields() {
		if _, taken := fields[k]; !taken {
			fields[k] = v
		}
	}

	return []*framework.Path{
		{
			Pattern: "accounts(?:/(?P<prefix>(?:" + accountSegmentRegex + "/)*))?$",
			DisplayAttrs: &framework.DisplayAttributes{
				OperationPrefix: operationPrefix,
				OperationSuffix: "accounts",
			},
			Fields: map[string]*framework.FieldSchema{
				"prefix": {
					Type:        framework.TypeString,
					Description: "Folder to list, e.g. team-a/ for the accounts named team-a/<something>.",
				},
			},
			Operations: map[logical.Operation]framework.OperationHandler{
				logical.ListOperation: &framework.PathOperation{
					Callback: b.pathAccountsList,
					Summary:  "List stored accounts with their status (key_info); names ending in / are folders of nested accounts.",
				},
			},
			HelpSynopsis:    "List the stored Salesforce accounts.",
			HelpDescription: strings.TrimSpace(accountsListHelp),
		},
		{
			Pattern: "accounts/(?P<name>" + accountNameRegex + ")$",
			DisplayAttrs: &framework.DisplayAttributes{
				OperationPrefix: operationPrefix,
				OperationSuffix: "account",
			},
			Fields:         fields,
			ExistenceCheck: b.pathAccountExists,
			Operations: map[logical.Operation]framework.OperationHandler{
				logical.ReadOperation: &framework.PathOperation{
					Callback: b.pathAccountRead,
					Summary:  "Read an account's settings and status (never its password or security token).",
				},
				logical.CreateOperation: &framework.PathOperation{
					Callback:                    b.pathAccountWrite,
					Summary:                     "Store a Salesforce integration user's credential, checked by logging in.",
					ForwardPerformanceStandby:   true,
					ForwardPerformanceSecondary: true,
				},
				logical.UpdateOperation: &framework.PathOperation{
					Callback:                    b.pathAccountWrite,
					Summary:                     "Update an account; omitted fields keep their values.",
					ForwardPerformanceStandby:   true,
					ForwardPerformanceSecondary: true,
				},
				logical.DeleteOperation: &framework.PathOperation{
					Callback:                    b.pathAccountDelete,
					Summary:                     "Forget an account (Salesforce is not changed).",
					ForwardPerformanceStandby:   true,
					ForwardPerformanceSecondary: true,
				},
			},
			HelpSynopsis:    strings.TrimSpace(accountHelpSynopsis),
			HelpDescription: strings.TrimSpace(accountHelpDescription) + "\n\n" + secretInputHelp,
		},
	}
}

func (b *backend) pathAccountExists(ctx context.Context, req *logical.Request, d *framework.FieldData) (bool, error) {
	name, bad := accountNameArg(d)
	if bad != nil {
		// The write handler answers with the reason.
		return false, nil
	}
	acct, err := b.readAccountCached(ctx, req.Storage, name)
	if err != nil {
		return false, err
	}
	return acct != nil, nil
}

func (b *backend) pathAccountsList(ctx context.Context, req *logical.Request, d *framework.FieldData) (*logical.Response, error) {
	prefix := d.Get("prefix").(string)
	if prefix != "" {
		if err := validateAccountName(strings.TrimSuffix(prefix, "/")); err != nil {
			return logical.ErrorResponse("prefix %q is not a valid folder of accounts: %s", prefix, err), nil
		}
		prefix = strings.TrimSuffix(prefix, "/") + "/"
	}
	keys, err := req.Storage.List(ctx, accountStoragePrefix+prefix)
	if err != nil {
		return nil, fmt.Errorf("listing accounts: %w", err)
	}
	info, err := b.accountsKeyInfo(ctx, req.Storage, prefix, keys)
	if err != nil {
		return nil, err
	}
	return logical.ListResponseWithInfo(keys, info), nil
}

// listReadConcurrency is how many accounts a list reads at once for its
// key_info: each read is a round trip to Vault's storage, so a list of
// many accounts waits on round trips, not on the CPU.
const listReadConcurrency = 16

// accountsKeyInfo is the key_info of a list of the accounts keys below
// prefix: each account's status, from the code reads use. Folders (keys
// ending in /) get none. It reads every account listed (from memory where
// a read decoded it before, without caching what only the list reads, so
// a list of many accounts does not push the ones being read out of memory).
func (b *backend) accountsKeyInfo(ctx context.Context, s logical.Storage, prefix string, keys []string) (map[string]interface{}, error) {
	src, err := b.accountStatusSource(ctx, s)
	if err != nil {
		return nil, err
	}
	if err := src.listWALOnce(ctx); err != nil {
		return nil, err
	}
	rows := make([]map[string]interface{}, len(keys))
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(listReadConcurrency)
	for i, key := range keys {
		if strings.HasSuffix(key, "/") {
			continue
		}
		g.Go(func() error {
			name := prefix + key
			acct, ok := b.cache.accounts.peek(name)
			if !ok {
				var err error
				if acct, err = readAccount(gctx, s, name); err != nil {
					return err
				}
			}
			if acct == nil {
				// Deleted since the list.
				return nil
			}
			st, err := src.statusOf(gctx, name, acct)
			if err != nil {
				return err
			}
			rows[i] = b.summarizeAccount(acct, st).keyInfo(acct)
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	info := make(map[string]interface{}, len(keys))
	for i, row := range rows {
		if row != nil {
			info[keys[i]] = row
		}
	}
	return info, nil
}

func (b *backend) pathAccountRead(ctx context.Context, req *logical.Request, d *framework.FieldData) (*logical.Response, error) {
	name, bad := accountNameArg(d)
	if bad != nil {
		return bad, nil
	}
	acct, err := b.readAccountCached(ctx, req.Storage, name)
	if err != nil {
		return nil, err
	}
	if acct == nil {
		return nil, nil
	}
	data := map[string]interface{}{
		"username":           acct.Username,
		"description":        acct.Description,
		"security_token_set": acct.SecurityToken != "",
		"user_id":            acct.UserID,
		"created_at":         formatTime(acct.CreatedAt),
		"last_updated":       formatTime(acct.LastUpdated),
	}
	st, err := b.accountStatusOf(ctx, req.Storage, name, acct)
	if err != nil {
		return nil, err
	}
	b.addAccountRotationStatus(acct, st, data)
	if err := b.addAccountDualStatus(ctx, req.Storage, name, acct, data); err != nil {
		return nil, err
	}
	// The rotation hook must not put a secret into a read of this path.
	delete(data, "password")
	delete(data, "security_token")
	resp := &logical.Response{Data: data}
	if st.pending != nil {
		resp.AddWarning(pendingWarning(st.pending))
	}
	return resp, nil
}

func (b *backend) pathAccountWrite(ctx context.Context, req *logical.Request, d *framework.FieldData) (*logical.Response, error) {
	name, bad := accountNameArg(d)
	if bad != nil {
		return bad, nil
	}
	txn := b.lockAccount(req.Storage, name)
	defer txn.unlock()
	existing, err := txn.get(ctx)
	if err != nil {
		return nil, err
	}
	isCreate := existing == nil
	acct := &account{}
	if !isCreate {
		copied := *existing
		acct = &copied
	}

	credentialChanged := isCreate
	if v, ok := d.GetOk("username"); ok {
		username := strings.TrimSpace(v.(string))
		if err := validateUsername("username", username); err != nil {
			return logical.ErrorResponse(err.Error()), nil
		}
		if !isCreate && username != existing.Username {
			return logical.ErrorResponse("username cannot be changed (account %q manages %s); delete the account and create a new one for another user", name, existing.Username), nil
		}
		acct.Username = username
	} else if isCreate {
		return logical.ErrorResponse("username is required when creating an account"), nil
	}

	if v, ok := d.GetOk("password"); ok {
		password, err := secretInput("password", v.(string), true)
		if err != nil {
			return logical.ErrorResponse(err.Error()), nil
		}
		if password == "" {
			return logical.ErrorResponse("password must not be empty"), nil
		}
		credentialChanged = credentialChanged || password != acct.Password
		acct.Password = password
	} else if isCreate {
		return logical.ErrorResponse("password is required when creating an account"), nil
	}

	if v, ok := d.GetOk("security_token"); ok {
		token, err := secretInput("security_token", v.(string), false)
		if err == nil {
			err = validateSecurityToken("security_token", token)
		}
		if err != nil {
			return logical.ErrorResponse(err.Error()), nil
		}
		credentialChanged = credentialChanged || token != acct.SecurityToken
		acct.SecurityToken = token
	}

	if v, ok := d.GetOk("description"); ok {
		description := v.(string)
		if len(description) > maxDescriptionLength {
			return logical.ErrorResponse("description must be at most %d characters", maxDescriptionLength), nil
		}
		if strings.ContainsFunc(description, func(r rune) bool { return isControl(r) && r != '\n' && r != '\t' }) {
			return logical.ErrorResponse("description must not contain control characters"), nil
		}
		acct.Description = description
	}

	cfg, err := b.readConfigCached(ctx, req.Storage)
	if err != nil {
		return nil, err
	}
	if cfg != nil && cfg.Username != "" && strings.EqualFold(cfg.Username, acct.Username) {
		return logical.ErrorResponse("username %s is the admin user of config; the engine's admin identity cannot also be managed as an ordinary account", acct.Username), nil
	}
	if isCreate {
		other, err := txn.claimUsername(ctx, acct.Username)
		if err != nil {
			return nil, err
		}
		if other != "" {
			return logical.ErrorResponse("username %s is already managed by account %q; one Salesforce user can be stored only once", acct.Username, other), nil
		}
	}

	if d.Get("reset_failed_logins").(bool) {
		// The operator checked Salesforce: the count restarts, before this
		// write's own login.
		if err := b.resetFailedLogins(ctx, req.Storage, accountUser(name, acct)); err != nil {
			return nil, err
		}
	}

	var warnings []string
	if credentialChanged && d.Get("verify").(bool) {
		if cfg == nil {
			return logical.ErrorResponse("%s; or write the account with verify=false to store it unchecked", errConfigMissing), nil
		}
		sess, resp, err := b.verifyAccountCredential(ctx, req.Storage, name, acct)
		if resp != nil || err != nil {
			return resp, err
		}
		if sess.UserID != "" {
			acct.UserID = sess.UserID
		}
		if sess.PasswordExpired {
			warnings = append(warnings, "Salesforce reports that this password has expired: until it is changed, only setting a new password works. Rotate the account.")
		}
	} else if credentialChanged {
		warnings = append(warnings, "the credential was stored without checking it against Salesforce (verify=false)")
	}

	// The strategy first: the rotation fields' checks depend on it.
	resp, dualWarnings, err := b.applyAccountDual(ctx, req, d, txn, acct, cfg)
	if resp != nil || err != nil {
		return resp, err
	}
	warnings = append(warnings, dualWarnings...)
	rotationWarnings, err := b.applyAccountRotation(ctx, req, d, name, acct, isCreate)
	if err != nil {
		return logical.ErrorResponse(err.Error()), nil
	}
	warnings = append(warnings, rotationWarnings...)
	modeWarnings, err := b.checkAccountModes(ctx, req, d, name, acct)
	if err != nil {
		return logical.ErrorResponse(err.Error()), nil
	}
	warnings = append(warnings, modeWarnings...)

	now := b.now().UTC()
	if isCreate {
		acct.CreatedAt = now
	}
	// last_updated tells consumers when the credential changed, as
	// rotation does; a description or settings change is not one.
	noteCredentialChange(existing, acct, now)
	if err := txn.put(ctx, acct); err != nil {
		return nil, err
	}
	b.scheduleAccount(name, acct)
	b.invalidateTokensForAccount(name)

	if len(warnings) == 0 {
		return nil, nil
	}
	return &logical.Response{Warnings: warnings}, nil
}

func (b *backend) pathAccountDelete(ctx context.Context, req *logical.Request, d *framework.FieldData) (*logical.Response, error) {
	name, bad := accountNameArg(d)
	if bad != nil {
		return bad, nil
	}
	txn := b.lockAccount(req.Storage, name)
	defer txn.unlock()
	if err := txn.delete(ctx); err != nil {
		return nil, err
	}
	// The user's login budget stays: Salesforce's count of its failed
	// logins does not end with the account in Vault.
	b.scheduleAccount(name, nil)
	b.invalidateTokensForAccount(name)
	return nil, nil
}

const accountsListHelp = `
Lists account names at the top level, or below a folder such as accounts/team-a/. A key
ending in '/' is a folder that holds more accounts; list it to see them.

Each account also gets key_info, the status fields of its read, so that one command shows
which accounts are stale or blocked:

  vault list -detailed salesforce/accounts
  vault list -detailed salesforce/accounts/team-a

  username               the Salesforce username (of a dual_account pair, the primary)
  rotation_status        manual, scheduled, failing, blocked, missed_window,
                         awaiting_switch, after_read or pending_reconciliation
                         (as accounts/<name> reads)
  security_token_status  current or stale; n/a for an account without a token
  next_vault_rotation    the next scheduled rotation; n/a when none is scheduled
  rotation_blocked       why rotation waits for an operator (drift, token_stale,
                         user_locked, failed_logins, admin_login_refused, ...)
  last_rotation_error    the last failure, shortened to one line (read the account for all of it)
  failed_logins          logins as the user Salesforce rejected since the last success
  pending_since          when an interrupted rotation that is not settled yet started
  active_username        rotation_strategy=dual_account only: the user creds/<name> serves
  switch_status          dual_account only, while a switch waits (awaiting_security_token,
                         blocked, pending)

Folders get no key_info: their row shows only the name. Never a password or token.

A plain "vault list" prints only the names, but -detailed only changes what the CLI prints:
the request is the same, so every list of this path reads each account listed (its entry
and its user's login-budget entry; the write-ahead log once). A folder of thousands of
accounts costs that many storage reads per list; list a sub-folder to look at fewer.
`

const accountHelpSynopsis = `Store a Salesforce integration user's username, password and security token.`

const accountHelpDescription = `
Each account is one Salesforce user whose credential Vault keeps. Applications read the
composed credential from creds/<name> (or OAuth tokens through roles) instead of keeping
the password themselves.

  username        the Salesforce username; required on create, cannot change
  password        the current password; required on create; write-only
  security_token  optional; needed for API logins from outside trusted IP ranges; write-only
  description     free text

A write that sets or changes the password or token logs in to Salesforce with them first
(SOAP login() where the org still allows it, else the OAuth username-password flow through
the configured connected app). If Salesforce rejects the credential the write fails with
Salesforce's code (INVALID_LOGIN, LOGIN_MUST_USE_SECURITY_TOKEN, ...) and nothing is stored.
Set verify=false to store a credential without that login.

Reads show the username, whether a security token is stored, the Salesforce user id and
timestamps; never the password or the token. created_at is when the account was written
first; last_updated is when the credential creds/<name> serves (password, security_token,
password_with_token) last changed: a write that sets a different password or token, a
write of accounts/<name>/security-token, a rotation, or the completion of a rotation a
crash interrupted. Writes of the description or of settings, failed rotations and status
changes leave it as it is, so consumers can compare it to notice a new credential. The
admin user of config cannot be an account. Names may contain '/' (team-a/etl); list them with "vault list <mount>/accounts/".

Example:

  vault write salesforce/accounts/etl username=etl@acme.com password=... security_token=...
`
