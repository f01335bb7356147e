package salesforce

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/hashicorp/vault/sdk/helper/errutil"
	"github.com/hashicorp/vault/sdk/logical"
)

// What every fuzzed request must leave true (FuzzPathRequests): the status
// Vault would answer, no sensitive value echoed in any form, values outside
// a field's allowed set refused, and no login or count change a refused
// request did not earn.

// vaultStatus is the HTTP status Vault answers with for what crossed the
// plugin boundary: a user error is a 400 and a coded error has its code
// (as Vault 1.13 answers), the rest is the SDK's own mapping.
func vaultStatus(req *logical.Request, resp *logical.Response, err error) int {
	var userErr errutil.UserError
	if errors.As(err, &userErr) {
		return 400
	}
	var coded logical.HTTPCodedError
	if errors.As(err, &coded) {
		return coded.Code()
	}
	code, _ := logical.RespondErrorCommon(req, resp, err)
	switch {
	case code != 0:
		return code
	case resp == nil || (resp.Data == nil && len(resp.Warnings) == 0 && resp.Secret == nil):
		return 204
	}
	return 200
}

// sensitiveValues returns the secret parts of the sensitive fields of
// data, for the route path: every string, number literal and object key
// of at least 8 characters.
func sensitiveValues(b *backend, path string, data map[string]interface{}) []string {
	p := b.Route(path)
	if p == nil {
		return nil
	}
	var out []string
	var walk func(v interface{})
	walk = func(v interface{}) {
		switch v := v.(type) {
		case string:
			if len(v) >= 8 {
				out = append(out, v)
			}
		case float64:
			if f := strconv.FormatFloat(v, 'f', -1, 64); len(f) >= 8 {
				out = append(out, f)
			}
		case map[string]interface{}:
			for k, x := range v {
				walk(k)
				walk(x)
			}
		case []interface{}:
			for _, x := range v {
				walk(x)
			}
		}
	}
	for k, v := range data {
		if f := p.Fields[k]; f != nil && f.DisplayAttrs != nil && f.DisplayAttrs.Sensitive {
			walk(v)
		}
	}
	return out
}

// replaceSensitive returns data with old replaced by repl inside the
// sensitive fields, keeping every value's type.
func replaceSensitive(b *backend, path string, data map[string]interface{}, old, repl string) map[string]interface{} {
	p := b.Route(path)
	var rep func(v interface{}) interface{}
	rep = func(v interface{}) interface{} {
		switch v := v.(type) {
		case string:
			return strings.ReplaceAll(v, old, repl)
		case float64:
			if strconv.FormatFloat(v, 'f', -1, 64) == old {
				f, _ := strconv.ParseFloat(repl, 64)
				return f
			}
			return v
		case map[string]interface{}:
			m := make(map[string]interface{}, len(v))
			for k, x := range v {
				m[strings.ReplaceAll(k, old, repl)] = rep(x)
			}
			return m
		case []interface{}:
			a := make([]interface{}, len(v))
			for i, x := range v {
				a[i] = rep(x)
			}
			return a
		}
		return v
	}
	out := make(map[string]interface{}, len(data))
	for k, v := range data {
		if f := p.Fields[k]; f != nil && f.DisplayAttrs != nil && f.DisplayAttrs.Sensitive {
			v = rep(v)
		}
		out[k] = v
	}
	return out
}

// routeBackend is a backend used only to route paths and read schemas.
var routeBackend = sync.OnceValue(func() *backend {
	return newBackend(&logical.BackendConfig{})
})

// checkPathOutcome asserts the properties of one request.
func checkPathOutcome(t *testing.T, m *pathFuzzMount, in pathRequest, out pathOutcome) {
	t.Helper()
	if out.skipped {
		return
	}
	in.data, _ = grpcData(in.data)
	where := fmt.Sprintf("%s %q %s", in.op, in.path, describeData(in.data))
	if out.status >= 500 {
		t.Errorf("%s: status %d (%s); a client's request against a healthy org must never get a 5xx", where, out.status, out.message)
	}
	if out.status >= 400 {
		var diffs []string
		for k, v := range out.before {
			if w, ok := out.after[k]; !ok {
				diffs = append(diffs, "deleted "+k)
			} else if w != v && !loginBookkeeping(out, k, v, w) {
				diffs = append(diffs, "changed "+k)
			}
		}
		for k, w := range out.after {
			if _, ok := out.before[k]; !ok && !loginBookkeeping(out, k, "", w) {
				diffs = append(diffs, "added "+k)
			}
		}
		sort.Strings(diffs)
		if len(diffs) > 0 {
			t.Errorf("%s: refused with %d but storage changed: %s", where, out.status, strings.Join(diffs, ", "))
		}
	}
	if in.op == logical.UpdateOperation && out.status < 300 {
		for _, bad := range disallowedValues(in.path, in.data) {
			t.Errorf("%s: accepted with %d although %s", where, out.status, bad)
		}
	}
	text := out.text
	for _, v := range out.legit {
		text = strings.ReplaceAll(text, v, "[creds]")
	}
	for _, s := range m.secrets {
		if strings.Contains(text, s) {
			t.Errorf("%s: a stored secret (%.4s…) is in what the client or the audit log sees: %.600s", where, s, text)
		}
		if strings.Contains(out.logs, s) {
			t.Errorf("%s: a stored secret (%.4s…) is in the plugin's log: %.600s", where, s, out.logs)
		}
	}
	if strings.Contains(out.logs, fuzzSessionPrefix) {
		t.Errorf("%s: a session id is in the plugin's log: %.600s", where, out.logs)
	}
	rb := routeBackend()
	for _, v := range sensitiveValues(rb, in.path, in.data) {
		if !strings.Contains(out.text, v) && !strings.Contains(out.logs, v) {
			continue
		}
		// Confirm it is an echo, not a coincidence: the same request
		// with another value in its place must show that value.
		marker := "Zq7Marker0echo1"
		if _, err := strconv.ParseFloat(v, 64); err == nil {
			marker = "48151623420"
		}
		again := runPathRequest(t, m, pathRequest{op: in.op, path: in.path, data: replaceSensitive(rb, in.path, in.data, v, marker)})
		if strings.Contains(again.text, marker) {
			t.Errorf("%s: the value of a sensitive field is echoed to the client or the audit log: %.600s", where, again.text)
		}
		if strings.Contains(again.logs, marker) {
			t.Errorf("%s: the value of a sensitive field is in the plugin's log: %.600s", where, again.logs)
		}
	}
}

// disallowedValues lists the fields of data whose value is a string
// outside the field's AllowedValues. The SDK only documents AllowedValues;
// a handler that stores such a value has accepted a client's mistake.
func disallowedValues(path string, data map[string]interface{}) []string {
	p := routeBackend().Route(path)
	if p == nil {
		return nil
	}
	var out []string
	for k, v := range data {
		f := p.Fields[k]
		s, ok := v.(string)
		if f == nil || len(f.AllowedValues) == 0 || !ok || strings.TrimSpace(s) == "" {
			continue
		}
		allowed := false
		for _, a := range f.AllowedValues {
			if as, _ := a.(string); strings.EqualFold(strings.TrimSpace(s), as) {
				allowed = true
			}
		}
		if !allowed {
			out = append(out, fmt.Sprintf("%s=%q is not one of %v", k, s, f.AllowedValues))
		}
	}
	sort.Strings(out)
	return out
}

// loginBudgetPrefix is where the login budget keeps its counts (issue 9:
// they survive restarts); refusals that logged in may write there.
const loginBudgetPrefix = "login-budget/"

// loginBookkeeping reports whether a key changed only as the login budget
// records logins, the one change a refused request that logged in may
// make (issue 9: a refused request changes no count except to add its
// failure): a login-budget entry when the org saw a login, or an
// account's failed_logins going up when the org rejected one.
func loginBookkeeping(out pathOutcome, key, before, after string) bool {
	if strings.HasPrefix(key, loginBudgetPrefix) {
		return out.logins > 0
	}
	if out.rejectedLogins == 0 || !strings.HasPrefix(key, accountStoragePrefix) {
		return false
	}
	var b, a map[string]interface{}
	if json.Unmarshal([]byte(before), &b) != nil || json.Unmarshal([]byte(after), &a) != nil {
		return false
	}
	nb, _ := b["failed_logins"].(float64)
	na, _ := a["failed_logins"].(float64)
	if na <= nb {
		return false
	}
	delete(b, "failed_logins")
	delete(a, "failed_logins")
	bj, _ := json.Marshal(b)
	aj, _ := json.Marshal(a)
	return bytes.Equal(bj, aj)
}

// describeData renders data compactly for messages.
func describeData(data map[string]interface{}) string {
	if data == nil {
		return "{}"
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(data); err != nil {
		return fmt.Sprintf("%v", data)
	}
	s := strings.TrimSpace(buf.String())
	if len(s) > 300 {
		s = s[:300] + "…"
	}
	return s
}
