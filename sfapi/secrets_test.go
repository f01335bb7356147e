package sfapi

import (
	"context"
	"encoding/json"
	"encoding/xml"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
)

// TestClientErrorsNeverEchoSecrets runs every call against a hostile server
// that copies the whole request (body, Authorization header, query) into
// each kind of error answer the client parses. No error text may carry
// any of the secrets sent.
func TestClientErrorsNeverEchoSecrets(t *testing.T) {
	const (
		password  = "Leak-Pass-9876"
		token     = "LEAKTOKEN0000000000000000"
		newPW     = "Leak-NewPass-5432"
		session   = "00Dleak000000001!AQleaksession"
		refresh   = "5AepLeakRefresh00000"
		secret    = "leak-client-secret"
		revokeTok = "00Dleak000000001!AQrevokeme"
	)
	secrets := []string{password, token, newPW, session, refresh, secret, revokeTok,
		// The start of every JWT assertion x/oauth2 signs.
		"eyJhbGciOiJSUzI1NiIsInR5cCI6IkpXVCJ9"}
	for _, s := range secrets[:7] {
		secrets = append(secrets, url.QueryEscape(s))
	}

	modes := []string{"soapfault", "oauth", "rest", "restobject", "html500", "text400"}
	for _, mode := range modes {
		t.Run(mode, func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				b, _ := io.ReadAll(r.Body)
				echo := string(b) + " auth=" + r.Header.Get("Authorization") + " q=" + r.URL.RawQuery
				// Undo the encodings so the echo holds the plain secrets.
				if u, err := url.QueryUnescape(echo); err == nil {
					echo += " " + u
				}
				var xmlEsc strings.Builder
				xml.EscapeText(&xmlEsc, []byte(echo))
				jsonEsc, _ := json.Marshal(echo)
				switch mode {
				case "soapfault":
					w.WriteHeader(500)
					fmt.Fprintf(w, `<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" xmlns:sf="urn:fault.partner.soap.sforce.com"><soapenv:Body><soapenv:Fault><faultcode>sf:INVALID_LOGIN</faultcode><faultstring>%s</faultstring><detail><sf:LoginFault><sf:exceptionCode>INVALID_LOGIN</sf:exceptionCode><sf:exceptionMessage>%s</sf:exceptionMessage></sf:LoginFault></detail></soapenv:Fault></soapenv:Body></soapenv:Envelope>`, xmlEsc.String(), xmlEsc.String())
				case "oauth":
					w.Header().Set("Content-Type", "application/json")
					w.WriteHeader(400)
					fmt.Fprintf(w, `{"error":"invalid_grant","error_description":%s}`, jsonEsc)
				case "rest":
					w.Header().Set("Content-Type", "application/json")
					w.WriteHeader(400)
					fmt.Fprintf(w, `[{"errorCode":"INVALID_NEW_PASSWORD","message":%s}]`, jsonEsc)
				case "restobject":
					w.Header().Set("Content-Type", "application/json")
					w.WriteHeader(401)
					fmt.Fprintf(w, `{"errorCode":"INVALID_SESSION_ID","message":%s}`, jsonEsc)
				case "html500":
					w.WriteHeader(500)
					fmt.Fprintf(w, `<html><pre>%s</pre></html>`, xmlEsc.String())
				case "text400":
					w.WriteHeader(400)
					io.WriteString(w, echo)
				}
			}))
			defer srv.Close()
			c := newTestClient(t, srv.URL, func(cfg *Config) { cfg.ClientSecret = secret })
			s := &Session{AccessToken: session, InstanceURL: srv.URL}
			ctx := context.Background()
			var errs []error
			add := func(_ any, err error) { errs = append(errs, err) }
			add(c.SOAPLogin(ctx, "leak@acme.demo", password+token))
			add(c.PasswordGrant(ctx, "leak@acme.demo", password+token))
			add(c.ClientCredentialsGrant(ctx, nil))
			add(c.JWTBearerGrant(ctx, "leak@acme.demo", testRSAKey(t), nil))
			add(c.RefreshTokenGrant(ctx, refresh, nil))
			add(nil, c.Revoke(ctx, revokeTok))
			add(c.Introspect(ctx, revokeTok))
			add(c.UserInfo(ctx, s))
			add(nil, c.Logout(ctx, s))
			add(nil, c.SetPassword(ctx, s, "005000000000001AAA", newPW))
			add(nil, c.ChangeOwnPassword(ctx, s, password, newPW))
			add(c.LookupUser(ctx, s, "leak@acme.demo"))
			add(c.PasswordExpired(ctx, s, "005000000000001AAA"))
			_, _, err := c.LoginLocked(ctx, s, "005000000000001AAA")
			add(nil, err)
			add(nil, c.UnlockLogin(ctx, s, "060000000000001AAA"))
			add(c.Query(ctx, s, "SELECT Id FROM User"))
			for i, err := range errs {
				if err == nil {
					t.Errorf("call %d succeeded against a hostile server", i)
					continue
				}
				checkClientErr(t, err, secrets...)
			}
		})
	}
}
