package salesforce

import (
	"fmt"
	"strings"

	"github.com/hashicorp/vault/sdk/framework"
)

// Where logins go: an update of config that moves or widens the endpoint
// must bring the stored secrets again, so they are never sent to a new
// endpoint unseen.

// endpointSecretFields are the stored secrets that logins send to
// login_url as they are: the client secret (admin grants and token roles)
// and the admin password and security token.
//
// private_key is deliberately not among them. The key never leaves Vault:
// a jwt_bearer login sends only an assertion signed with it, which expires
// within two minutes and whose "aud" names the new host when login_url
// leaves Salesforce, so it cannot be replayed at the org. (After a ca_cert
// change an interceptor could replay one within those minutes, but it would
// see every session the engine obtains anyway.) Asking for the key again
// would put one more copy of it in transit and protect nothing.
var endpointSecretFields = []string{"client_secret", "password", "security_token"}

// endpointChanges describes how an update moves or widens where logins go:
// a new login_url, the non-Salesforce opt-in turned on, or other trust
// anchors (any ca_cert change alters who can answer as login_url).
// Turning the opt-in off only narrows it and is not listed.
func endpointChanges(old, updated *salesforceConfig) []string {
	var changes []string
	if updated.LoginURL != old.LoginURL {
		changes = append(changes, "login_url changed")
	}
	if updated.AllowNonSalesforceURL && !old.AllowNonSalesforceURL {
		changes = append(changes, "allow_non_salesforce_url was turned on")
	}
	if updated.CACert != old.CACert {
		changes = append(changes, "ca_cert changed")
	}
	return changes
}

// joinWithAnd joins items as "a", "a and b" or "a, b and c".
func joinWithAnd(items []string) string {
	if len(items) <= 1 {
		return strings.Join(items, "")
	}
	return strings.Join(items[:len(items)-1], ", ") + " and " + items[len(items)-1]
}

// requireSecretsForNewEndpoint refuses an update that points logins at a
// new endpoint while secrets stored for the old one would go along unseen:
// whoever redirects the engine must supply (or clear, with "") each stored
// secret in the same write. The error names fields, never values.
func requireSecretsForNewEndpoint(old, updated *salesforceConfig, d *framework.FieldData) error {
	changes := endpointChanges(old, updated)
	if len(changes) == 0 {
		return nil
	}
	stored := map[string]string{
		"client_secret":  old.ClientSecret,
		"password":       old.Password,
		"security_token": old.SecurityToken,
	}
	var reenter []string
	for _, field := range endpointSecretFields {
		if _, given := d.GetOk(field); stored[field] != "" && !given {
			reenter = append(reenter, field)
		}
	}
	if len(reenter) == 0 {
		return nil
	}
	return fmt.Errorf("%s, and stored secrets are never sent to a new endpoint: give %s again in the same write "+
		"(or set a field to \"\" to clear it if grant_type %s does not need it); nothing was stored",
		joinWithAnd(changes), joinWithAnd(reenter), updated.GrantType)
}
