package salesforce

import (
	"encoding/json"
	"reflect"
	"testing"

	"github.com/hashicorp/vault/sdk/logical"
)

// The key_info of vault list -detailed salesforce/roles: each role's grant
// type, its account or username, cache, revoke_on_lease_end and ttl, with
// the values its read shows, and never the refresh token.
func TestRolesListKeyInfo(t *testing.T) {
	b, s, _ := tokenTestBackend(t)
	cfg, _ := readConfig(t.Context(), s)
	cfg.PrivateKey = testJWTKeyPEM(t)
	if err := writeConfig(t.Context(), s, cfg); err != nil {
		t.Fatal(err)
	}
	mustWrite(t, b, s, "roles/pw", map[string]interface{}{"grant_type": "password", "account": "etl"})
	mustWrite(t, b, s, "roles/jwt", map[string]interface{}{"grant_type": "jwt_bearer", "username": "etl@acme.test", "ttl": "15m"})
	mustWrite(t, b, s, "roles/cc", map[string]interface{}{"grant_type": "client_credentials", "cache": false})
	mustWrite(t, b, s, "roles/rt", map[string]interface{}{"grant_type": "refresh_token", "refresh_token": fakeRefreshToken, "revoke_on_lease_end": false})

	resp, err := request(t, b, s, logical.ListOperation, "roles/", nil)
	if err := respErr(resp, err); err != nil {
		t.Fatal(err)
	}
	if keys := resp.Data["keys"]; !reflect.DeepEqual(keys, []string{"cc", "jwt", "pw", "rt"}) {
		t.Fatalf("keys = %v", keys)
	}
	info := resp.Data["key_info"].(map[string]interface{})
	want := map[string]map[string]interface{}{
		"pw":  {"grant_type": "password", "account": "etl", "cache": true, "revoke_on_lease_end": true, "ttl": int64(0)},
		"jwt": {"grant_type": "jwt_bearer", "username": "etl@acme.test", "cache": true, "revoke_on_lease_end": true, "ttl": int64(900)},
		"cc":  {"grant_type": "client_credentials", "cache": false, "revoke_on_lease_end": true, "ttl": int64(0)},
		"rt":  {"grant_type": "refresh_token", "cache": true, "revoke_on_lease_end": false, "ttl": int64(0)},
	}
	for name, fields := range want {
		if !reflect.DeepEqual(info[name], fields) {
			t.Errorf("key_info[%s] = %#v\nwant %#v", name, info[name], fields)
		}
		read := mustRead(t, b, s, "roles/"+name)
		for k, v := range info[name].(map[string]interface{}) {
			if !reflect.DeepEqual(read[k], v) {
				t.Errorf("%s: key_info %s = %#v, the read says %#v", name, k, v, read[k])
			}
		}
	}
	out, _ := json.Marshal(resp.Data)
	assertNoSecrets(t, "list of roles/", string(out), fakeRefreshToken, fakeAccountPassword, fakeAccountToken)
}
