package salesforce

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strings"

	"github.com/hashicorp/vault/sdk/framework"
	"github.com/hashicorp/vault/sdk/logical"
)

// External Client Apps (ECAs) replace connected apps: no new connected
// app can be created from Spring '26. An ECA serves the JWT bearer,
// client credentials and refresh token flows, not the OAuth
// username-password flow. config's app_type says which kind the client_id
// belongs to, so the engine refuses what an ECA cannot do before
// Salesforce answers with a bare authentication failure, and
// app_developer_name names the ECA for client-secret rotation.

// App types of config.
const (
	appTypeConnectedApp      = "connected_app"
	appTypeExternalClientApp = "external_client_app"
)

// developerNameRegex is a Salesforce API name: a letter, then letters,
// digits and single underscores, at most 80 characters (checked apart).
var developerNameRegex = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9_]*$`)

// withAppFields adds config's app fields to its schema.
func withAppFields(fields map[string]*framework.FieldSchema) map[string]*framework.FieldSchema {
	fields["app_type"] = &framework.FieldSchema{
		Type: framework.TypeString,
		Description: "Kind of the app client_id belongs to: connected_app (the default) or external_client_app. An External " +
			"Client App serves jwt_bearer and client_credentials but not the username-password flow, so with external_client_app " +
			"the engine refuses grant_type=password here and in roles.",
		AllowedValues: []interface{}{appTypeConnectedApp, appTypeExternalClientApp},
		DisplayAttrs:  &framework.DisplayAttributes{Name: "App type"},
	}
	fields["app_developer_name"] = &framework.FieldSchema{
		Type: framework.TypeString,
		Description: "API (developer) name of the External Client App, e.g. Vault_ECA; needed to rotate its consumer key and " +
			"secret (rotate-client-secret). Only with app_type=external_client_app; \"\" clears it.",
		DisplayAttrs: &framework.DisplayAttributes{Name: "App developer name"},
	}
	return fields
}

// isECA reports whether config's app is an External Client App.
func (c *salesforceConfig) isECA() bool { return c.AppType == appTypeExternalClientApp }

// appType is the app type reads show.
func (c *salesforceConfig) appType() string {
	if c.AppType == "" {
		return appTypeConnectedApp
	}
	return c.AppType
}

// errECAPasswordGrant explains why an ECA cannot use the password grant.
var errECAPasswordGrant = errors.New("an External Client App does not offer the OAuth username-password flow, so " +
	"grant_type=password cannot work with app_type=external_client_app: use jwt_bearer (client_id, username and a key " +
	"whose certificate is uploaded to the app) or client_credentials (client_id, client_secret and the app's run-as user)")

// applyAppFields merges app_type and app_developer_name into cfg and
// checks them against the admin grant (applyConfigFields has run).
func applyAppFields(cfg *salesforceConfig, d *framework.FieldData) error {
	if v, ok := d.GetOk("app_type"); ok {
		cfg.AppType = strings.TrimSpace(v.(string))
	}
	switch cfg.AppType {
	case "", appTypeConnectedApp, appTypeExternalClientApp:
	default:
		return fmt.Errorf("app_type must be %s or %s", appTypeConnectedApp, appTypeExternalClientApp)
	}
	if v, ok := d.GetOk("app_developer_name"); ok {
		cfg.AppDeveloperName = strings.TrimSpace(v.(string))
	}
	if n := cfg.AppDeveloperName; n != "" {
		if !cfg.isECA() {
			return errors.New("app_developer_name names an External Client App: set app_type=external_client_app too (or clear it with \"\")")
		}
		if len(n) > 80 || !developerNameRegex.MatchString(n) || strings.Contains(n, "__") || strings.HasSuffix(n, "_") {
			return errors.New("app_developer_name must be the app's API name: a letter, then letters, digits and single underscores, at most 80 characters")
		}
	}
	if cfg.isECA() && cfg.GrantType == adminGrantPassword {
		return errECAPasswordGrant
	}
	return nil
}

// applyAppConfig applies the app fields of a config write: a 400
// response for a bad value, or for password roles an ECA could not serve.
func applyAppConfig(ctx context.Context, s logical.Storage, cfg *salesforceConfig, d *framework.FieldData) (*logical.Response, error) {
	if err := applyAppFields(cfg, d); err != nil {
		return logical.ErrorResponse(err.Error()), nil
	}
	msg, err := appGrantConflicts(ctx, s, cfg)
	if err != nil || msg == "" {
		return nil, err
	}
	return logical.ErrorResponse(msg), nil
}

// appGrantConflicts names the roles an External Client App config could
// not serve (password roles), or "".
func appGrantConflicts(ctx context.Context, s logical.Storage, cfg *salesforceConfig) (string, error) {
	if !cfg.isECA() {
		return "", nil
	}
	roles, err := rolesWithGrant(ctx, s, grantPassword)
	if err != nil || len(roles) == 0 {
		return "", err
	}
	return fmt.Sprintf("roles %s use grant_type=password, which an External Client App does not offer: delete them, or "+
		"rewrite them as jwt_bearer roles, before setting app_type=external_client_app; nothing was stored", strings.Join(roles, ", ")), nil
}

// refuseGrantForApp says why a role's grant cannot work with config's
// app, or "".
func refuseGrantForApp(ctx context.Context, s logical.Storage, grant string) (string, error) {
	if grant != grantPassword {
		return "", nil
	}
	cfg, err := readConfig(ctx, s)
	if err != nil || cfg == nil || !cfg.isECA() {
		return "", err
	}
	return "grant_type=password uses the OAuth username-password flow, which the External Client App of config " +
		"(app_type=external_client_app) does not offer; use grant_type=jwt_bearer with username=<the account's username> instead", nil
}

// addAppReadData adds the app fields to a config read, and the state of
// the consumer key and secret rotation when there is one.
func (b *backend) addAppReadData(ctx context.Context, s logical.Storage, cfg *salesforceConfig, data map[string]interface{}) error {
	data["app_type"] = cfg.appType()
	if !cfg.isECA() {
		return nil
	}
	data["app_developer_name"] = cfg.AppDeveloperName
	return b.addClientSecretReadData(ctx, s, cfg, data)
}

// addClientSecretReadData adds what config's read shows of consumer key
// rotation: the active key's age, the previous key, its state and dates,
// an unfinished rotation's staged key, the schedule. Never a secret.
func (b *backend) addClientSecretReadData(ctx context.Context, s logical.Storage, cfg *salesforceConfig, data map[string]interface{}) error {
	st, err := readClientSecretState(ctx, s)
	if err != nil {
		return err
	}
	if st.ActiveKey == cfg.ClientID && !st.ActiveSince.IsZero() {
		data["client_id_since"] = formatTime(st.ActiveSince)
	}
	set := func(k, v string) {
		if v != "" {
			data[k] = v
		}
	}
	set("last_client_secret_rotation", formatTime(st.LastRotation))
	set("next_client_secret_rotation", formatTime(st.NextRotation))
	set("client_secret_rotation_error", st.LastError)
	set("missed_client_secret_rotation", formatTime(st.MissedRotationAt))
	if p := st.Previous; p != nil {
		data["previous_client_id"] = p.Key
		set("previous_client_id_replaced", formatTime(p.SwitchedAt))
		set("previous_client_id_expires", formatTime(p.ExpiresAt))
		if p.pending() {
			held, err := b.holdersOf(ctx, s, p.Key, b.now())
			if err != nil {
				return err
			}
			data["previous_client_id_state"] = "Rotated: still valid, deleted when no token minted with it is held (now: " + held.String() + ")"
			set("previous_client_id_retire_error", p.RetireError)
		} else {
			data["previous_client_id_state"] = "deleted: " + p.DeleteReason
			set("previous_client_id_deleted", formatTime(p.DeletedAt))
		}
	}
	ids, err := framework.ListWAL(ctx, s)
	if err != nil {
		return err
	}
	for _, id := range ids {
		entry, err := framework.GetWAL(ctx, s, id)
		if err != nil || entry == nil || entry.Kind != clientSecretWALKind {
			continue
		}
		if w, err := decodeClientSecretWAL(entry.Data); err == nil {
			data["staged_client_id"] = w.NewKey
			data["staged_client_id_state"] = "a rotation that started at " + formatTime(w.CreatedAt) + " is unfinished; the engine settles it"
		}
	}
	return nil
}
