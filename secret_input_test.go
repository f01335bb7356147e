package salesforce

import (
	"context"
	"strings"
	"testing"

	"github.com/hashicorp/vault/sdk/logical"
)

// The rule of secretInput, on its own.
func TestSecretInputRule(t *testing.T) {
	for _, tc := range []struct {
		in     string
		spaces bool
		want   string
		errHas string // "" when accepted
	}{
		{"Pass-1234", true, "Pass-1234", ""},
		{"Pass-1234\n", true, "Pass-1234", ""},
		{"Pass-1234\r\n", true, "Pass-1234", ""},
		{"pass with spaces ", true, "pass with spaces ", ""},
		{"", true, "", ""},
		{"\n", true, "", ""},
		{"Pass-1234\n\n", true, "", "control characters"},
		{"\nPass-1234", true, "", "control characters"},
		{"Pass-1234\r", true, "", "control characters"},
		{"Pass\t1234", true, "", "control characters"},
		{"Pass-1234\x7f", true, "", "control characters"},
		{"TOKEN0000\n", false, "TOKEN0000", ""},
		{" TOKEN0000", false, "", "spaces"},
		{"TOKEN0000 \n", false, "", "spaces"},
	} {
		got, err := secretInput("field", tc.in, tc.spaces)
		switch {
		case tc.errHas == "" && (err != nil || got != tc.want):
			t.Errorf("secretInput(%q, spaces=%v) = %q, %v; want %q", tc.in, tc.spaces, got, err, tc.want)
		case tc.errHas != "" && (err == nil || !strings.Contains(err.Error(), tc.errHas) || !strings.HasPrefix(err.Error(), "field ")):
			t.Errorf("secretInput(%q, spaces=%v) = %q, %v; want an error naming the field and %q", tc.in, tc.spaces, got, err, tc.errHas)
		case err != nil && strings.Contains(err.Error(), strings.TrimSpace(tc.in)):
			t.Errorf("the error for %q quotes the value: %v", tc.in, err)
		}
	}
}

// Every write-only secret field behaves the same through its path: one
// trailing newline (echo, a file passed with @file) is removed, so the
// value logs in (where the write checks it) and is stored without it; any
// other control character is refused with a 400 naming the field, and
// nothing changes.
func TestSecretFieldsWhitespaceTable(t *testing.T) {
	const adminToken = "FAKEADMINTOKEN000000"
	fields := []struct {
		path, field string
		value       string
		spaces      bool
		extra       map[string]interface{}
		stored      func(ctx context.Context, s logical.Storage) string
	}{
		{"accounts/etl", "password", "Fake-Etl-Pass-22", true, nil,
			func(ctx context.Context, s logical.Storage) string {
				a, _ := readAccount(ctx, s, "etl")
				return a.Password
			}},
		{"accounts/etl", "security_token", "FAKEETLTOKEN0000000", false, nil,
			func(ctx context.Context, s logical.Storage) string {
				a, _ := readAccount(ctx, s, "etl")
				return a.SecurityToken
			}},
		{"accounts/etl/security-token", "security_token", "FAKEETLTOKEN0000000", false, nil,
			func(ctx context.Context, s logical.Storage) string {
				a, _ := readAccount(ctx, s, "etl")
				return a.SecurityToken
			}},
		{"config", "client_secret", fakeClientSecret, false, nil,
			func(ctx context.Context, s logical.Storage) string { c, _ := readConfig(ctx, s); return c.ClientSecret }},
		{"config", "password", "Fake-Admin-Pass-1", true,
			map[string]interface{}{"grant_type": "password", "username": "admin@fake.test", "security_token": adminToken},
			func(ctx context.Context, s logical.Storage) string { c, _ := readConfig(ctx, s); return c.Password }},
		{"config", "security_token", adminToken, false,
			map[string]interface{}{"grant_type": "password", "username": "admin@fake.test", "password": "Fake-Admin-Pass-1"},
			func(ctx context.Context, s logical.Storage) string {
				c, _ := readConfig(ctx, s)
				return c.SecurityToken
			}},
		{"roles/rt", "refresh_token", fakeRefreshToken, false, map[string]interface{}{"grant_type": "refresh_token"},
			func(ctx context.Context, s logical.Storage) string {
				r, _ := readRole(ctx, s, "rt")
				return r.RefreshToken
			}},
		{"config/rotation", "webhook_secret", "hook secret 42", true, nil,
			func(ctx context.Context, s logical.Storage) string {
				rc, _ := readRotationConfig(ctx, s)
				return rc.WebhookSecret
			}},
	}
	for _, f := range fields {
		t.Run(f.path+"/"+f.field, func(t *testing.T) {
			inputs := []struct {
				name, in string
				ok       bool
			}{
				{"as is", f.value, true},
				{"trailing newline", f.value + "\n", true},
				{"trailing CRLF", f.value + "\r\n", true},
				{"two trailing newlines", f.value + "\n\n", false},
				{"leading newline", "\n" + f.value, false},
				{"tab inside", f.value[:4] + "\t" + f.value[4:], false},
				{"carriage return", f.value + "\r", false},
			}
			if !f.spaces {
				inputs = append(inputs, struct {
					name, in string
					ok       bool
				}{"leading space", " " + f.value, false})
			}
			for _, in := range inputs {
				b, s, _, _ := fakeBackend(t)
				mustWrite(t, b, s, "accounts/etl", etlAccount())
				data := map[string]interface{}{f.field: in.in}
				for k, v := range f.extra {
					data[k] = v
				}
				before := snapshotStorage(t, s)
				resp, err := request(t, b, s, logical.UpdateOperation, f.path, data)
				if in.ok {
					if err := respErr(resp, err); err != nil {
						t.Errorf("%s: refused: %v", in.name, err)
						continue
					}
					if got := f.stored(context.Background(), s); got != f.value {
						t.Errorf("%s: stored %d characters, want the %d of the value", in.name, len(got), len(f.value))
					}
					continue
				}
				status := statusOf(resp, err)
				err = respErr(resp, err)
				if status != 400 || err == nil || !strings.Contains(err.Error(), f.field) {
					t.Errorf("%s: %d %v, want a 400 naming %s", in.name, status, err, f.field)
				}
				assertNoSecrets(t, in.name+" error", responseText(resp, err), f.value)
				assertSameStorage(t, before, snapshotStorage(t, s))
			}
		})
	}
}
