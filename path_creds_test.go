package salesforce

import (
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/hashicorp/vault/sdk/framework"
	"github.com/hashicorp/vault/sdk/logical"
)

func TestCreds_Read(t *testing.T) {
	b, s, _, _ := fakeBackend(t)
	mustWrite(t, b, s, "accounts/etl", etlAccount())

	data := mustRead(t, b, s, "creds/etl")
	want := map[string]interface{}{
		"username":            "etl@fake.test",
		"password":            "Fake-Etl-Pass-22",
		"security_token":      "FAKEETLTOKEN0000000",
		"password_with_token": "Fake-Etl-Pass-22FAKEETLTOKEN0000000",
		"login_url":           "https://fake.my.salesforce.com",
		"user_id":             "005000000000002AAA",
	}
	for k, v := range want {
		if data[k] != v {
			t.Errorf("creds %s mismatch (got %d characters)", k, len(stringOf(data[k])))
		}
	}
	if data["last_updated"] == "" {
		t.Errorf("last_updated missing")
	}
}

func stringOf(v interface{}) string {
	s, _ := v.(string)
	return s
}

func TestCreds_MissingAccountIs404(t *testing.T) {
	b, s, _, _ := fakeBackend(t)
	resp, err := request(t, b, s, logical.ReadOperation, "creds/nope", nil)
	if statusOf(resp, err) != http.StatusNotFound || !strings.Contains(err.Error(), `"nope" does not exist`) {
		t.Errorf("want 404 naming the account, got %d %v", statusOf(resp, err), respErr(resp, err))
	}
}

func TestCreds_SensitiveFieldsMarked(t *testing.T) {
	b, _ := getTestBackend(t)
	var creds *framework.Path
	for _, p := range pathCreds(b) {
		creds = p
	}
	op := creds.Operations[logical.ReadOperation].(*framework.PathOperation)
	fields := op.Responses[http.StatusOK][0].Fields
	for _, name := range []string{"password", "security_token", "password_with_token"} {
		f := fields[name]
		if f == nil || f.DisplayAttrs == nil || !f.DisplayAttrs.Sensitive {
			t.Errorf("creds response field %s is not marked sensitive", name)
		}
	}
	if f := fields["username"]; f == nil || (f.DisplayAttrs != nil && f.DisplayAttrs.Sensitive) {
		t.Errorf("username should be documented and not sensitive")
	}

	// Input fields that take secrets are sensitive too.
	for _, p := range append(pathConfig(b), pathAccounts(b)...) {
		for _, name := range []string{"password", "security_token", "client_secret", "private_key"} {
			f, ok := p.Fields[name]
			if ok && (f.DisplayAttrs == nil || !f.DisplayAttrs.Sensitive) {
				t.Errorf("%s field %s is not marked sensitive", p.Pattern, name)
			}
		}
	}
}

func TestCreds_HelpAnswersNewcomers(t *testing.T) {
	b, _ := getTestBackend(t)
	for _, p := range append(append(pathConfig(b), pathAccounts(b)...), pathCreds(b)...) {
		if len(p.HelpSynopsis) < 20 || len(p.HelpDescription) < 60 {
			t.Errorf("%s lacks help text", p.Pattern)
		}
		for name, f := range p.Fields {
			if len(f.Description) < 15 {
				t.Errorf("%s field %s has no useful description", p.Pattern, name)
			}
		}
	}
}

func TestCreds_PathHelpAndOpenAPI(t *testing.T) {
	b, s := getTestBackend(t)
	for path, want := range map[string]string{
		"config":            "allow_non_salesforce_url",
		"accounts/team/etl": "security_token",
		"creds/etl":         "password_with_token",
		"accounts/":         "folder",
	} {
		resp, err := request(t, b, s, logical.HelpOperation, path, nil)
		if err != nil || resp == nil {
			t.Fatalf("help %s: %v", path, err)
		}
		if help, _ := resp.Data["help"].(string); !strings.Contains(help, want) {
			t.Errorf("path-help %s does not mention %s", path, want)
		}
	}

	// Vault builds the OpenAPI document from the root help.
	resp, err := request(t, b, s, logical.HelpOperation, "", nil)
	if err != nil || resp == nil || resp.Data["openapi"] == nil {
		t.Fatalf("no OpenAPI document: %v", err)
	}
	doc, ok := resp.Data["openapi"].(*framework.OASDocument)
	if !ok {
		t.Fatalf("openapi is %T", resp.Data["openapi"])
	}
	creds := doc.Paths["/creds/{name}"]
	if creds == nil || creds.Get == nil {
		t.Fatalf("OpenAPI lacks GET /creds/{name}: %v", keysOf(doc.Paths))
	}
	// The UI and generated clients learn from the schema which fields to mask.
	var credsSchema *framework.OASSchema
	for _, schema := range doc.Components.Schemas {
		if schema.Properties["password_with_token"] != nil {
			credsSchema = schema
		}
	}
	if credsSchema == nil {
		t.Fatalf("OpenAPI has no response schema for creds")
	}
	for _, name := range []string{"password", "security_token", "password_with_token"} {
		if p := credsSchema.Properties[name]; p == nil || p.DisplayAttrs == nil || !p.DisplayAttrs.Sensitive {
			t.Errorf("OpenAPI creds response field %s is not marked sensitive", name)
		}
	}
	for _, name := range []string{"/config", "/accounts/{name}", "/accounts/"} {
		if doc.Paths[name] == nil {
			t.Errorf("OpenAPI lacks %s: %v", name, keysOf(doc.Paths))
		}
	}
}

func keysOf[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	return out
}

func TestCreds_BadNames(t *testing.T) {
	b, s, _, _ := fakeBackend(t)
	mustWrite(t, b, s, "accounts/etl", etlAccount())
	cases := []struct {
		path   string
		status int
		want   string
	}{
		{"creds/etl/../etl", 400, "name"},
		{"creds/./etl", 400, "name"},
		{"creds/missing", 404, `"missing"`},
		{"creds/etl/missing", 404, `"etl/missing"`},
		{"creds/has space", 404, "unsupported path"},
	}
	for _, c := range cases {
		resp, err := request(t, b, s, logical.ReadOperation, c.path, nil)
		got := statusOf(resp, err)
		if got != c.status || !strings.Contains(fmt.Sprint(respErr(resp, err)), c.want) {
			t.Errorf("%s: want %d mentioning %s, got %d %v", c.path, c.status, c.want, got, respErr(resp, err))
		}
		if resp != nil && resp.Data["password"] != nil {
			t.Errorf("%s served a password", c.path)
		}
	}

	// The list path's prefix gets the same checks.
	resp, err := request(t, b, s, logical.ListOperation, "accounts/a/../", nil)
	if statusOf(resp, err) != 400 || !strings.Contains(fmt.Sprint(respErr(resp, err)), "prefix") {
		t.Errorf("list with a .. prefix: %d %v", statusOf(resp, err), respErr(resp, err))
	}
}
