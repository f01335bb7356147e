package docswalk

import (
	"regexp"
	"sort"
	"strings"
)

// Redactor removes secrets from the output of a walk's commands before
// anything is compared or printed: values of secret fields in the vault
// CLI's tables, in JSON and in SOAP XML, private keys, the whole output of a
// `-field=` read of a secret field, and every value it has redacted before,
// wherever it shows up again. Seen returns those values, so that the walk
// can also search the server logs for them.
type Redactor struct {
	seen map[string]bool
}

// secretFields are the field names whose values are secrets, in the engine's
// reads (snake case) and in Salesforce's and the emulator's JSON.
var secretFields = []string{
	"password", "password_with_token", "security_token", "access_token", "refresh_token",
	"client_secret", "private_key", "webhook_secret", "session_id", "id_token",
	"securityToken", "sessionId", "accessToken", "refreshToken", "clientSecret", "signature",
	"secret", "DeleteToken", // consumer secrets and revocation handles of the emulator's Connect REST and SOQL
}

var (
	fieldAlt = strings.Join(secretFields, "|")
	// "password    value" in the vault CLI's table output.
	tableRE = regexp.MustCompile(`(?m)^(\s*(?:` + fieldAlt + `)[ \t]{2,})(\S.*?)[ \t]*$`)
	// "password": "value" in JSON.
	jsonRE = regexp.MustCompile(`("(?:` + fieldAlt + `)"\s*:\s*")((?:[^"\\]|\\.)+)(")`)
	// <sessionId>value</sessionId> in SOAP.
	xmlRE = regexp.MustCompile(`(<(?:\w+:)?(?:` + fieldAlt + `)>)([^<]+)(</)`)
	// -field=password (last stage of a pipeline) prints the bare value.
	fieldFlagRE = regexp.MustCompile(`-field[= ](?:` + fieldAlt + `)\b`)
	pemKeyRE    = regexp.MustCompile(`(?s)-----BEGIN ([A-Z ]*)PRIVATE KEY-----.*?-----END ([A-Z ]*)PRIVATE KEY-----`)
)

// values that are placeholders, not secrets
var notSecret = map[string]bool{"n/a": true, "<redacted>": true, "true": true, "false": true, "": true}

// Redact returns output with secrets replaced by <redacted>. command is the
// command that printed it.
func (r *Redactor) Redact(command, output string) string {
	if r.seen == nil {
		r.seen = map[string]bool{}
	}
	stages := strings.Split(command, "|")
	if fieldFlagRE.MatchString(stages[len(stages)-1]) && strings.TrimSpace(output) != "" {
		r.note(strings.TrimSpace(output))
		return "<redacted>"
	}
	output = pemKeyRE.ReplaceAllStringFunc(output, func(k string) string {
		r.note(k)
		return "<redacted private key>"
	})
	output = tableRE.ReplaceAllStringFunc(output, func(s string) string {
		m := tableRE.FindStringSubmatch(s)
		if notSecret[m[2]] {
			return s
		}
		r.note(m[2])
		return m[1] + "<redacted>"
	})
	for _, re := range []*regexp.Regexp{jsonRE, xmlRE} {
		output = re.ReplaceAllStringFunc(output, func(s string) string {
			m := re.FindStringSubmatch(s)
			if notSecret[m[2]] {
				return s
			}
			r.note(m[2])
			return m[1] + "<redacted>" + m[3]
		})
	}
	return r.Scrub(output)
}

// Scrub replaces every value redacted so far, wherever it appears in s.
func (r *Redactor) Scrub(s string) string {
	// Longest first, so that a secret containing another is replaced whole.
	for _, v := range r.Seen() {
		s = strings.ReplaceAll(s, v, "<redacted>")
	}
	return s
}

// Seen returns the secret values redacted so far, longest first.
func (r *Redactor) Seen() []string {
	vals := make([]string, 0, len(r.seen))
	for v := range r.seen {
		vals = append(vals, v)
	}
	sort.Slice(vals, func(i, j int) bool { return len(vals[i]) > len(vals[j]) })
	return vals
}

func (r *Redactor) note(v string) {
	// Very short values (a 1-character field) would scrub ordinary text;
	// no real secret is that short.
	if len(v) >= 6 {
		r.seen[v] = true
	}
}
