package salesforce

import (
	"fmt"
	"strings"
)

// One rule for the write-only secret fields: password and security_token
// (accounts/<name>, accounts/<name>/security-token, config; and
// secondary_password, secondary_security_token of a dual account), client_secret
// (config), refresh_token (roles/<name>) and webhook_secret
// (config/rotation). A value is taken as given, except that one trailing
// newline, which echo, a heredoc or an editor adds to a file passed as
// field=@file, is removed. Any other control character (a second newline,
// a carriage return alone, a tab) is refused with a 400 that names the
// field, never the value: it is far likelier a paste or file accident than
// part of a secret. Spaces are kept where a value may contain them
// (password, webhook_secret) and refused where it never does
// (security_token, client_secret, refresh_token).

// secretInputHelp states the rule in path-help.
const secretInputHelp = `Secret fields (password, security_token, secondary_password, secondary_security_token,
client_secret, refresh_token, webhook_secret) are taken as given, except that one trailing
newline (as echo or a file passed with @file adds) is removed. Any other control character
is refused, and so are spaces in the security tokens, client_secret and refresh_token.`

// secretInput applies the rule to the value written to field; spaces says
// whether the field's values may contain spaces.
func secretInput(field, value string, spaces bool) (string, error) {
	if v, ok := strings.CutSuffix(value, "\n"); ok {
		value = strings.TrimSuffix(v, "\r")
	}
	if strings.ContainsFunc(value, isControl) {
		return "", fmt.Errorf("%s must not contain control characters such as newlines or tabs (only one trailing newline is removed)", field)
	}
	if !spaces && strings.Contains(value, " ") {
		return "", fmt.Errorf("%s must not contain spaces", field)
	}
	return value, nil
}
