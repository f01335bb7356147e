package salesforce

import (
	"context"
	"reflect"
	"strings"
	"testing"

	"github.com/hashicorp/vault/sdk/framework"
	"github.com/hashicorp/vault/sdk/logical"
)

func TestRoleValidation(t *testing.T) {
	b, s, _ := tokenTestBackend(t)
	cases := []struct {
		name   string
		fields map[string]interface{}
		// wantField must appear in the 400's message.
		wantField string
	}{
		{"no grant type", map[string]interface{}{}, "grant_type"},
		{"unknown grant type", map[string]interface{}{"grant_type": "implicit"}, "grant_type"},
		{"password without account", map[string]interface{}{"grant_type": "password"}, "account"},
		{"password with unknown account", map[string]interface{}{"grant_type": "password", "account": "ghost"}, `account "ghost"`},
		{"password with scopes", map[string]interface{}{"grant_type": "password", "account": "etl", "scopes": "api"}, "scopes"},
		{"jwt without username", map[string]interface{}{"grant_type": "jwt_bearer"}, "username"},
		{"jwt without key", map[string]interface{}{"grant_type": "jwt_bearer", "username": "etl@acme.test"}, "config/jwt-key"},
		{"refresh without token", map[string]interface{}{"grant_type": "refresh_token"}, "refresh_token"},
		{"account on client credentials", map[string]interface{}{"grant_type": "client_credentials", "account": "etl"}, "account"},
		{"username on password", map[string]interface{}{"grant_type": "password", "account": "etl", "username": "x@y.z"}, "username"},
		{"refresh token on jwt", map[string]interface{}{"grant_type": "client_credentials", "refresh_token": "abc"}, "refresh_token"},
		{"ttl above max_ttl", map[string]interface{}{"grant_type": "client_credentials", "ttl": "2h", "max_ttl": "1h"}, "ttl"},
		{"session timeout too short", map[string]interface{}{"grant_type": "client_credentials", "session_timeout": "10s"}, "session_timeout"},
		{"session timeout too long", map[string]interface{}{"grant_type": "client_credentials", "session_timeout": "48h"}, "session_timeout"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			resp, err := request(t, b, s, logical.CreateOperation, "roles/bad", tc.fields)
			if statusOf(resp, err) != 400 {
				t.Fatalf("status = %d (%v), want 400", statusOf(resp, err), respErr(resp, err))
			}
			if msg := respErr(resp, err).Error(); !strings.Contains(msg, tc.wantField) {
				t.Errorf("error %q does not name %s", msg, tc.wantField)
			}
			if r, _ := request(t, b, s, logical.ReadOperation, "roles/bad", nil); r != nil {
				t.Error("an invalid role was stored")
			}
		})
	}
}

func TestRoleCRUD(t *testing.T) {
	b, s, _ := tokenTestBackend(t)

	resp := mustWrite(t, b, s, "roles/pw", map[string]interface{}{"grant_type": "password", "account": "etl"})
	if resp == nil || len(resp.Warnings) == 0 || !strings.Contains(resp.Warnings[0], "username-password flow") {
		t.Errorf("password role written without the blocked-flow warning: %+v", resp)
	}
	data := mustRead(t, b, s, "roles/pw")
	want := map[string]interface{}{
		"grant_type": "password", "account": "etl", "scopes": []string{},
		"ttl": int64(0), "max_ttl": int64(0), "session_timeout": int64(7200),
		"revoke_on_lease_end": true, "cache": true,
	}
	if !reflect.DeepEqual(data, want) {
		t.Errorf("read = %#v\nwant %#v", data, want)
	}

	mustWrite(t, b, s, "roles/refresh", map[string]interface{}{
		"grant_type": "refresh_token", "refresh_token": fakeRefreshToken, "scopes": "api, refresh_token,api",
		"ttl": "15m", "max_ttl": "1h", "session_timeout": "30m", "revoke_on_lease_end": false, "cache": false,
	})
	data = mustRead(t, b, s, "roles/refresh")
	if _, ok := data["refresh_token"]; ok {
		t.Error("refresh_token is readable")
	}
	if data["refresh_token_set"] != true || data["ttl"] != int64(900) || data["max_ttl"] != int64(3600) ||
		data["session_timeout"] != int64(1800) || data["revoke_on_lease_end"] != false || data["cache"] != false {
		t.Errorf("read = %#v", data)
	}
	if !reflect.DeepEqual(data["scopes"], []string{"api", "refresh_token"}) {
		t.Errorf("scopes = %v, want trimmed and deduplicated", data["scopes"])
	}

	// An update keeps fields it does not send, the write-only token included.
	mustWrite(t, b, s, "roles/refresh", map[string]interface{}{"ttl": "20m"})
	r, err := readRole(t.Context(), s, "refresh")
	if err != nil || r.RefreshToken != fakeRefreshToken || r.Cache || r.RevokeOnLeaseEnd || r.SessionTimeout.Minutes() != 30 {
		t.Errorf("update lost fields: %+v, %v", r, err)
	}

	list, err := request(t, b, s, logical.ListOperation, "roles/", nil)
	if err != nil || !reflect.DeepEqual(list.Data["keys"], []string{"pw", "refresh"}) {
		t.Errorf("list = %v, %v", list, err)
	}

	if _, err := request(t, b, s, logical.DeleteOperation, "roles/pw", nil); err != nil {
		t.Fatal(err)
	}
	if r, _ := request(t, b, s, logical.ReadOperation, "roles/pw", nil); r != nil {
		t.Error("deleted role still readable")
	}
}

func TestRoleJWTBearerAcceptsConfigPrivateKey(t *testing.T) {
	b, s, f := tokenTestBackend(t)
	cfg, _ := readConfig(t.Context(), s)
	cfg.PrivateKey = testJWTKeyPEM(t)
	if err := writeConfig(t.Context(), s, cfg); err != nil {
		t.Fatal(err)
	}
	mustWrite(t, b, s, "roles/jwt", map[string]interface{}{"grant_type": "jwt_bearer", "username": "etl@acme.test"})
	readToken(t, b, s, "jwt")
	if f.lastKey == nil {
		t.Error("jwt role did not sign with the config's private_key")
	}
}

func TestRoleGrantTypeChangeDropsOldInputs(t *testing.T) {
	b, s, _ := tokenTestBackend(t)
	mustWrite(t, b, s, "roles/r", map[string]interface{}{"grant_type": "refresh_token", "refresh_token": fakeRefreshToken})
	mustWrite(t, b, s, "roles/r", map[string]interface{}{"grant_type": "password", "account": "etl"})
	r, err := readRole(t.Context(), s, "r")
	if err != nil || r.RefreshToken != "" || r.Account != "etl" {
		t.Errorf("after switching to password: %+v, %v", r, err)
	}
}

// The role's write-only refresh_token is marked sensitive in the OpenAPI
// document, so the UI and generated clients mask it.
func TestRoleOpenAPIMarksRefreshTokenSensitive(t *testing.T) {
	b, s := getTestBackend(t)
	resp, err := b.HandleRequest(context.Background(), &logical.Request{Operation: logical.HelpOperation, Path: "roles/x", Storage: s})
	if err != nil || resp == nil {
		t.Fatalf("help: %v", err)
	}
	doc, ok := resp.Data["openapi"].(*framework.OASDocument)
	if !ok {
		t.Fatalf("no OpenAPI document in the help response: %T", resp.Data["openapi"])
	}
	found := false
	for name, schema := range doc.Components.Schemas {
		if field := schema.Properties["refresh_token"]; field != nil {
			found = true
			if field.DisplayAttrs == nil || !field.DisplayAttrs.Sensitive {
				t.Errorf("%s: refresh_token is not marked sensitive", name)
			}
		}
	}
	if !found {
		t.Error("the role's request schema has no refresh_token field")
	}
}
