package salesforce

import (
	"strings"
	"testing"

	"github.com/hashicorp/vault/sdk/logical"
)

// Issue 9, "Also": account names with a "." or ".." part are refused with
// a 400 that says why on every path that names an account, never a 500
// from storage ("relative paths not supported", which Vault's storage
// view answers: the test storage is wrapped in one). A password role's
// account is held to the same rule.
func TestTrustDotDotAccountNames(t *testing.T) {
	b, inmem, _, _ := fakeBackend(t)
	s := logical.NewStorageView(inmem, "")
	mustWrite(t, b, s, "accounts/a/b", map[string]interface{}{"username": "etl@fake.test", "password": "Fake-Etl-Pass-22", "verify": false})
	for _, name := range []string{"a/../b", "../b", "a/..", "./b", "a/./b", "a/."} {
		for _, c := range []struct {
			op   logical.Operation
			path string
			data map[string]interface{}
		}{
			{logical.ReadOperation, "accounts/" + name, nil},
			{logical.UpdateOperation, "accounts/" + name, map[string]interface{}{"username": "x@fake.test", "password": "Some-Pass-123", "verify": false}},
			{logical.UpdateOperation, "accounts/" + name, map[string]interface{}{"description": "update"}},
			{logical.DeleteOperation, "accounts/" + name, nil},
			{logical.ReadOperation, "accounts/" + name + "/diagnose", nil},
			{logical.UpdateOperation, "accounts/" + name + "/security-token", map[string]interface{}{"security_token": "ABC123"}},
			{logical.UpdateOperation, "rotate/" + name, nil},
			{logical.ReadOperation, "creds/" + name, nil},
			{logical.ListOperation, "accounts/" + name + "/", nil},
			{logical.UpdateOperation, "roles/r", map[string]interface{}{"grant_type": "password", "account": name}},
		} {
			before := snapshotStorage(t, inmem)
			resp, err := request(t, b, s, c.op, c.path, c.data)
			msg := ""
			if e := respErr(resp, err); e != nil {
				msg = e.Error()
			}
			if statusOf(resp, err) != 400 || !strings.Contains(msg, "not a valid account name") || !strings.Contains(msg, "may not be . or ..") {
				t.Errorf("%s %s: got %d %q, want 400 saying a part may not be . or ..", c.op, c.path, statusOf(resp, err), msg)
			}
			assertSameStorage(t, before, snapshotStorage(t, inmem))
		}
	}
}
