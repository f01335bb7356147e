package salesforce

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"
	"testing"

	"github.com/hashicorp/vault/sdk/framework"
	"github.com/hashicorp/vault/sdk/helper/errutil"
	"github.com/hashicorp/vault/sdk/logical"
)

// Issue 9, defect 8: a sensitive field sent with the wrong JSON type (an
// object, a list, a number) is refused with a 400 that names the field and
// the type it must have, and its value appears nowhere: not in the answer
// to the existence check (Vault logs that error and puts it in the audit
// log's un-hashed error field), not in the answer to the request, not in
// the log. Every sensitive input field of every path is tried.
func TestTrust08WrongTypeSensitiveFieldNotEchoed(t *testing.T) {
	b, s, _, logs := fakeBackend(t)
	mustWrite(t, b, s, "accounts/a", map[string]interface{}{"username": "etl@fake.test", "password": "Fake-Etl-Pass-22", "verify": false})
	const secret = "sekrit-typed-value-8"
	const digits = "424242424242424242"
	wrong := map[string]interface{}{
		"object":        map[string]interface{}{"value": secret},
		"list":          []interface{}{secret},
		"list of two":   []interface{}{secret, secret},
		"number":        json.Number(digits),
		"object in map": map[string]interface{}{secret: map[string]interface{}{"x": secret}},
	}
	tried := 0
	for _, example := range pathExamples {
		p := b.Route(example)
		var sensitive []string
		for name, f := range p.Fields {
			if f.DisplayAttrs != nil && f.DisplayAttrs.Sensitive {
				sensitive = append(sensitive, name)
			}
		}
		sort.Strings(sensitive)
		for _, field := range sensitive {
			for kind, value := range wrong {
				for _, op := range []logical.Operation{logical.CreateOperation, logical.UpdateOperation} {
					if _, ok := p.Operations[op]; !ok {
						continue
					}
					tried++
					what := fmt.Sprintf("%s %s %s as %s", op, example, field, kind)
					req := &logical.Request{Operation: op, Path: example, Storage: s, Data: map[string]interface{}{field: value}}
					if p.ExistenceCheck != nil {
						_, _, err := b.HandleExistenceCheck(context.Background(), req)
						var userErr errutil.UserError
						if err != nil && !errors.As(err, &userErr) {
							t.Errorf("%s: existence check error %v is not a 400", what, err)
						}
						if err != nil {
							assertNoSecrets(t, what+": existence check error", err.Error(), secret, digits)
						}
					}
					resp, err := b.HandleRequest(context.Background(), req)
					msg := fmt.Sprint(respErr(resp, err))
					if statusOf(resp, err) != 400 || !strings.Contains(msg, field) || !strings.Contains(msg, "must be") {
						t.Errorf("%s: %d %s, want a 400 naming the field and its type", what, statusOf(resp, err), msg)
					}
					assertNoSecrets(t, what+": response", responseText(resp, err), secret, digits)
				}
			}
		}
	}
	if tried < 20 {
		t.Fatalf("only %d requests tried; are sensitive fields still marked?", tried)
	}
	assertNoSecrets(t, "backend log", logs.String(), secret, digits)
}

// The check is on the raw type only: sensitive fields sent as strings and
// null (unset) pass through to the handlers as before.
func TestSensitiveFieldTypesPassStrings(t *testing.T) {
	b, s, _, _ := fakeBackend(t)
	mustWrite(t, b, s, "accounts/a", map[string]interface{}{"username": "etl@fake.test", "password": "Fake-Etl-Pass-22", "verify": false, "security_token": nil})
	if got := mustRead(t, b, s, "creds/a")["password"]; got != "Fake-Etl-Pass-22" {
		t.Errorf("password = %v", got)
	}
	if p := b.Route("accounts/a"); p.Fields["password"].Type != framework.TypeString {
		t.Fatal("the test assumes password is a string field")
	}
}
