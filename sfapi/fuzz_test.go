package sfapi

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"net/url"
	"strings"
	"sync"
	"testing"
)

// Fuzz tests of everything the client decodes from the wire. Each target
// drives the real Client against an httptest server that answers with the
// fuzzed status, Content-Type and body, so the whole path (transport, size
// limit, x/oauth2, encoding/xml, encoding/json, error classification and
// scrubbing) runs. Properties, for every input:
//
//   - no panic, and the call returns within the request timeout;
//   - a failure is a *Error naming the call (Op), with a Kind the answer
//     justifies (see checkFuzzKind) and the HTTP status that arrived;
//   - no secret the call sent (password, token, session id, client secret,
//     refresh token, JWT assertion), in any of the encodings the server may
//     echo it in, appears in the error text;
//   - no more than the 1 MiB body limit is read from any answer, however
//     long it is (the transport counts what the client consumes);
//   - a success carries what the engine relies on: an access token, an
//     instance URL that is http(s) with a host and no user info, query or
//     fragment, user and org ids that are Salesforce ids (or none), a
//     record id.
//
// The seeds below run in every plain `go test`; `make fuzz` explores.

// SOAP partner API answers: login, changeOwnPassword, logout.
func FuzzSOAPResponse(f *testing.F) {
	h := newFuzzHarness(f, nil)
	h.calls = []fuzzCall{
		{op: "soap login", ok: sessionOK, run: func(ctx context.Context, c *Client) (any, error) {
			return c.SOAPLogin(ctx, fuzzUser, fuzzPassword+fuzzToken)
		}},
		{op: "soap change own password", run: func(ctx context.Context, c *Client) (any, error) {
			return nil, c.ChangeOwnPassword(ctx, fuzzAdmin(h.fs.srv.URL), fuzzPassword, fuzzNewPassword)
		}},
		{op: "soap logout", run: func(ctx context.Context, c *Client) (any, error) {
			return nil, c.Logout(ctx, fuzzAdmin(h.fs.srv.URL))
		}},
	}
	addFuzzSeeds(f, 0, recordedLoginResponse,
		soapFaultBody("INVALID_LOGIN", "LoginFault", "Invalid username, password, security token; or user locked out."),
		soapFaultBody("LOGIN_MUST_USE_SECURITY_TOKEN", "LoginFault", "{{S}}"),
		soapFaultBody("REQUEST_LIMIT_EXCEEDED", "UnexpectedErrorFault", "TotalRequests Limit exceeded."),
		`<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/"><soapenv:Body><soapenv:Fault><faultcode>soapenv:Server</faultcode><faultstring>{{SX}} {{REQ}}</faultstring></soapenv:Fault></soapenv:Body></soapenv:Envelope>`,
		`<Envelope><Body><loginResponse><result><serverUrl>https://na1.salesforce.com</serverUrl><sessionId>00D!x</sessionId><userInfo><sessionSecondsValid>99999999999999999999</sessionSecondsValid></userInfo></result></loginResponse></Body></Envelope>`,
		`<html><body>Service Unavailable</body></html>`, ``)
	addFuzzSeeds(f, 1,
		`<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" xmlns="urn:partner.soap.sforce.com"><soapenv:Body><changeOwnPasswordResponse/></soapenv:Body></soapenv:Envelope>`,
		soapFaultBody("INVALID_NEW_PASSWORD", "ApiFault", "Your password must have a mix of letters and numbers: {{SN}}"),
		soapFaultBody("INVALID_OLD_PASSWORD", "ApiFault", "{{SJ}} {{SQ}} {{SP}}"),
		soapFaultBody("INVALID_SESSION_ID", "UnexpectedErrorFault", "Invalid Session ID found in SessionHeader: {{S}}"))
	addFuzzSeeds(f, 2,
		`<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" xmlns="urn:partner.soap.sforce.com"><soapenv:Body><logoutResponse/></soapenv:Body></soapenv:Envelope>`,
		`<a><b><c>`+strings.Repeat("<d>", 200))
	f.Add(uint8(0), uint16(0), uint8(0), true, []byte(recordedLoginResponse))
	f.Fuzz(h.run)
}

// fuzzTokenBody is a recorded token response of the shape Salesforce sends.
const fuzzTokenBody = `{"access_token":"00Dx0000000001!AQcurrentAccess","signature":"x","scope":"id full","instance_url":"https://acme.my.salesforce.com/","id":"https://login.salesforce.com/id/00D36000001HDi3EAG/00536000002PmoeAAC","token_type":"Bearer","issued_at":"1767222000000"}`

// OAuth token endpoint answers, through x/oauth2 for every grant.
func FuzzOAuthTokenResponse(f *testing.F) {
	h := newFuzzHarness(f, nil)
	h.calls = []fuzzCall{
		{op: "oauth token (password)", ok: sessionOK, run: func(ctx context.Context, c *Client) (any, error) {
			return c.PasswordGrant(ctx, fuzzUser, fuzzPassword+fuzzToken)
		}},
		{op: "oauth token (client_credentials)", ok: sessionOK, run: func(ctx context.Context, c *Client) (any, error) {
			return c.ClientCredentialsGrant(ctx, []string{"api"})
		}},
		{op: "oauth token (jwt_bearer)", ok: sessionOK, run: func(ctx context.Context, c *Client) (any, error) {
			return c.JWTBearerGrant(ctx, fuzzUser, fuzzRSAKey(), []string{"api"})
		}},
		{op: "oauth token (refresh_token)", ok: sessionOK, run: func(ctx context.Context, c *Client) (any, error) {
			return c.RefreshTokenGrant(ctx, fuzzRefresh, nil)
		}},
	}
	answers := []string{
		fuzzTokenBody,
		`{"access_token":"x","id":"https://login.salesforce.com/id/x/y","issued_at":1767222000000.5,"signature":"%%%"}`,
		`{"access_token":"x","id_token":"a.b.c","expires_in":99999999999999999999}`,
		`access_token=x&instance_url=https%3A%2F%2Facme.my.salesforce.com&error=invalid_grant&error_description=%7B%7BS%7D%7D`,
		`<html>Bad Gateway</html>`, ``,
	}
	refusals := []string{
		`{"error":"invalid_grant","error_description":"authentication failure {{S}} {{SQ}} {{SJ}}"}`,
		`{"error":"invalid_client","error_description":"{{REQ}}"}`,
		`{"error":"rate_limit_exceeded","error_description":"slow down"}`,
		`{"error":"unsupported_grant_type","error_description":"grant type not supported"}`,
		`{"error":["not","a","string"]}`,
		`null`, `[]`, `{}`,
	}
	for i := range h.calls {
		addFuzzSeeds(f, uint8(i), answers...)
		for _, b := range refusals {
			for _, st := range []uint16{2, 3, 6} { // 400, 401, 500
				f.Add(uint8(i), st, uint8(1), false, []byte(b))
			}
		}
		f.Add(uint8(i), uint16(0), uint8(2), false, []byte(answers[3]))
		f.Add(uint8(i), uint16(0), uint8(3), false, []byte(`access_token=tok&instance_url=http://x`))
	}
	f.Add(uint8(0), uint16(0), uint8(1), true, []byte(fuzzTokenBody))
	f.Fuzz(h.run)
}

var (
	fuzzKeyOnce sync.Once
	fuzzKey     *rsa.PrivateKey
)

// fuzzRSAKey is a 2048-bit key generated once per process.
func fuzzRSAKey() *rsa.PrivateKey {
	fuzzKeyOnce.Do(func() {
		k, err := rsa.GenerateKey(rand.Reader, 2048)
		if err != nil {
			panic(err)
		}
		fuzzKey = k
	})
	return fuzzKey
}

// OAuth helper endpoints: revoke, introspect, userinfo.
func FuzzOAuthEndpointResponse(f *testing.F) {
	h := newFuzzHarness(f, nil)
	h.calls = []fuzzCall{
		{op: "oauth revoke", run: func(ctx context.Context, c *Client) (any, error) {
			return nil, c.Revoke(ctx, fuzzRevokeToken)
		}},
		{op: "oauth introspect", run: func(ctx context.Context, c *Client) (any, error) {
			return c.Introspect(ctx, fuzzRevokeToken)
		}},
		{op: "oauth userinfo", run: func(ctx context.Context, c *Client) (any, error) {
			return c.UserInfo(ctx, fuzzAdmin(h.fs.srv.URL))
		}},
	}
	bodies := []string{
		``,
		`{"error":"invalid_token","error_description":"Invalid token {{S}}"}`,
		`{"error":"unsupported_token_type","error_description":"{{REQ}}"}`,
		`{"active":true,"scope":"api refresh_token","client_id":"3MVGunitClientId","username":"user@acme.demo","token_type":"access_token","exp":1767229200,"iat":1767222000,"nbf":1767222000}`,
		`{"active":"yes","exp":"soon","iat":-5e300}`,
		`{"active":false}`,
		`{"sub":"https://login.salesforce.com/id/00D36000001HDi3EAG/00536000002PmoeAAC","user_id":"00536000002PmoeAAC","organization_id":"00D36000001HDi3EAG","preferred_username":"user@acme.demo","email":"user@acme.example","active":true}`,
		`{"user_id":7,"active":null}`,
		`Bad_OAuth_Token`, `Missing_OAuth_Token`,
		`[{"message":"Session expired or invalid {{S}}","errorCode":"INVALID_SESSION_ID"}]`,
	}
	for i := range h.calls {
		addFuzzSeeds(f, uint8(i), bodies...)
	}
	f.Add(uint8(1), uint16(0), uint8(1), true, []byte(bodies[3]))
	f.Fuzz(h.run)
}

// REST answers: the password resource, SOQL query results and the error
// arrays and objects of failed calls.
func FuzzRESTResponse(f *testing.F) {
	h := newFuzzHarness(f, nil)
	admin := func() *Session { return fuzzAdmin(h.fs.srv.URL) }
	h.calls = []fuzzCall{
		{op: "set password", run: func(ctx context.Context, c *Client) (any, error) {
			return nil, c.SetPassword(ctx, admin(), fuzzUserID, fuzzNewPassword)
		}},
		{op: "read password expiry", run: func(ctx context.Context, c *Client) (any, error) {
			return c.PasswordExpired(ctx, admin(), fuzzUserID)
		}},
		{op: "lookup user", run: func(ctx context.Context, c *Client) (any, error) {
			return c.LookupUser(ctx, admin(), fuzzUser)
		}, ok: func(res any) string {
			if u, _ := res.(*User); u == nil || !sfIDPattern.MatchString(u.ID) {
				return "user without a Salesforce id"
			}
			return ""
		}},
		{op: "read login lock", run: func(ctx context.Context, c *Client) (any, error) {
			locked, id, err := c.LoginLocked(ctx, admin(), fuzzUserID)
			return [2]any{locked, id}, err
		}, ok: func(res any) string {
			if id, _ := res.([2]any)[1].(string); !sfIDPattern.MatchString(id) {
				return "UserLogin without a Salesforce id"
			}
			return ""
		}},
		{op: "unlock login", run: func(ctx context.Context, c *Client) (any, error) {
			return nil, c.UnlockLogin(ctx, admin(), fuzzUserLoginID)
		}},
		{op: "query", run: func(ctx context.Context, c *Client) (any, error) {
			return c.Query(ctx, admin(), "SELECT Id FROM Account")
		}},
	}
	bodies := []string{
		``,
		`{"isExpired":false}`, `{"isExpired":"false"}`, `{"isExpired":null}`,
		`{"totalSize":1,"done":true,"records":[{"attributes":{"type":"User"},"Id":"005000000000001AAA","Username":"fuzz.user@acme.demo","Email":"f@acme.demo","IsActive":true}]}`,
		`{"totalSize":1,"done":true,"records":[{"Id":"0600000000000001AA","IsPasswordLocked":true}]}`,
		`{"totalSize":2001,"done":false,"nextRecordsUrl":"/services/data/v66.0/query/01gD0000002HU6KIAW-2000","records":[{"Id":"001000000000001AAA"}]}`,
		`{"totalSize":-1,"done":true,"records":null}`,
		`{"totalSize":1.5,"records":[1,"x",null]}`,
		`{"totalSize":1,"records":[{"Id":""}]}`,
		`[{"message":"Your password must have a mix of letters and numbers. {{S}}","errorCode":"INVALID_NEW_PASSWORD"}]`,
		`[{"message":"Session expired or invalid {{SJ}} {{SN}}","errorCode":"INVALID_SESSION_ID"}]`,
		`[{"message":"{{REQ}}","errorCode":"INSUFFICIENT_ACCESS"}]`,
		`[]`, `[{}]`, `[1,2]`,
		`{"errorCode":"NOT_FOUND","message":"The requested resource does not exist"}`,
		`{"error":"invalid_grant","error_description":"{{SQ}}"}`,
		`[{"message":"x","errorCode":"REQUEST_LIMIT_EXCEEDED","fields":[]}]`,
	}
	for i := range h.calls {
		addFuzzSeeds(f, uint8(i), bodies...)
		f.Add(uint8(i), uint16(7), uint8(1), false, []byte(bodies[4])) // 201
		f.Add(uint8(i), uint16(8), uint8(1), false, []byte{})          // 204
	}
	f.Add(uint8(5), uint16(0), uint8(1), true, []byte(bodies[6]))
	f.Fuzz(h.run)
}

// The login URL policy: operator input, not a Salesforce answer, but it
// decides where credentials go. Accepted URLs are canonical (validating
// the result again gives it back), and without the opt-in only https on a
// Salesforce domain passes.
func FuzzValidateLoginURL(f *testing.F) {
	for _, s := range []string{
		"https://login.salesforce.com", "https://acme.my.salesforce.com/", "https://test.salesforce.com:443",
		"http://127.0.0.1:8080/emulator", "https://evil.com\u3002.salesforce.com", "https://a..salesforce.com",
		"https://user:pw@login.salesforce.com", "https://login.salesforce.com?x=1", "HTTPS://LOGIN.SALESFORCE.COM",
		"https://login.salesforce.com.evil.com", "https://[::1]:443", "https://xn--80ak6aa92e.salesforce.com",
		"https://login.salesforce.com/%2e%2e/", "https://login.salesforce.com#", "javascript:alert(1)",
	} {
		f.Add(s, false)
		f.Add(s, true)
	}
	f.Fuzz(func(t *testing.T, raw string, allow bool) {
		got, err := ValidateLoginURL(raw, allow)
		if err != nil {
			if got != "" {
				t.Errorf("refused %q but returned %q", raw, got)
			}
			return
		}
		again, err := ValidateLoginURL(got, allow)
		if err != nil || again != got {
			t.Errorf("accepted %q as %q, which validates to %q, %v", raw, got, again, err)
		}
		u, perr := url.Parse(got)
		if perr != nil || u.Host == "" || u.User != nil || u.RawQuery != "" || u.Fragment != "" {
			t.Errorf("accepted %q as %q, not a plain origin", raw, got)
		}
		if !allow && (u.Scheme != "https" || !IsSalesforceHost(u.Hostname()) || u.Path != "") {
			t.Errorf("accepted %q as %q without allow_non_salesforce_url", raw, got)
		}
	})
}
