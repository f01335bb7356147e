package sfapi

import (
	"context"
	"crypto/hmac"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"
	"golang.org/x/oauth2/jwt"
)

// OAuth 2.0 flows (through golang.org/x/oauth2) and the token helper
// endpoints: revoke, introspect, userinfo.

const (
	oauthTokenPath      = "/services/oauth2/token"
	oauthRevokePath     = "/services/oauth2/revoke"
	oauthIntrospectPath = "/services/oauth2/introspect"
	oauthUserinfoPath   = "/services/oauth2/userinfo"

	// jwtAssertionLifetime keeps "exp" inside Salesforce's three-minute window with
	// room for clock skew between Vault and Salesforce.
	jwtAssertionLifetime = 2 * time.Minute
)

func (c *Client) tokenURL() string { return c.cfg.LoginURL + oauthTokenPath }

func (c *Client) oauthConfig(scopes []string) *oauth2.Config {
	return &oauth2.Config{
		ClientID:     c.cfg.ClientID,
		ClientSecret: c.cfg.ClientSecret,
		Endpoint:     oauth2.Endpoint{TokenURL: c.tokenURL(), AuthStyle: oauth2.AuthStyleInParams},
		Scopes:       scopes,
	}
}

// tokenCall runs one x/oauth2 token request within RequestTimeout, with our
// transport, and converts the outcome.
func (c *Client) tokenCall(ctx context.Context, op string, fetch func(ctx context.Context) (*oauth2.Token, error)) (s *Session, err error) {
	ctx, cancel := c.withTimeout(ctx)
	defer cancel()
	rec := &transportRecorder{ctx: ctx}
	defer func() { scrubSecrets(&err, rec.sent...) }()
	ctx = context.WithValue(ctx, oauth2.HTTPClient, c.httpClient(rec))
	tok, ferr := fetch(ctx)
	if ferr != nil {
		return nil, c.oauthError(ctx, op, ferr, rec)
	}
	if tok.AccessToken == "" {
		return nil, tokenWithoutAccessToken(op, tok)
	}
	return c.sessionFromToken(op, tok)
}

// tokenWithoutAccessToken explains a 2xx token answer that carries no
// access token. x/oauth2 refuses one itself, but its jwt package does not,
// so a jwt_bearer grant answered with {} or with an OAuth error under 200
// would otherwise pass as a session without a token. Which 2xx it was
// x/oauth2 does not say, so HTTPStatus stays 0.
func tokenWithoutAccessToken(op string, tok *oauth2.Token) *Error {
	if code := tokenExtraString(tok, "error"); code != "" {
		return oauthCodeError(op, 0, code, tokenExtraString(tok, "error_description"))
	}
	return &Error{Op: op, Message: "token response without access_token", Kind: KindOther}
}

// oauthError classifies what x/oauth2 returned. Its own error strings may
// quote the response body or the URL, so none of them is passed through.
func (c *Client) oauthError(ctx context.Context, op string, err error, rec *transportRecorder) *Error {
	var re *oauth2.RetrieveError
	if errors.As(err, &re) {
		status := 0
		if re.Response != nil {
			status = re.Response.StatusCode
		}
		code, desc := re.ErrorCode, re.ErrorDescription
		if code == "" {
			code, desc = parseOAuthErrorBody(re.Body)
		}
		return oauthCodeError(op, status, code, desc)
	}
	if rec.err != nil {
		return c.transportError(ctx, op, rec.method, rec.url, rec.err)
	}
	if ctx.Err() != nil {
		return c.transportError(ctx, op, http.MethodPost, c.tokenURL(), ctx.Err())
	}
	// Remaining x/oauth2 failures: a 2xx answer without access_token or
	// not parseable. Their texts are fixed strings plus JSON syntax errors.
	return &Error{Op: op, Message: "unusable token response", Kind: KindOther}
}

func parseOAuthErrorBody(body []byte) (code, desc string) {
	var e struct {
		Error       string `json:"error"`
		Description string `json:"error_description"`
	}
	if json.Unmarshal(body, &e) == nil {
		return e.Error, e.Description
	}
	return "", ""
}

// oauthCodeError maps Salesforce's OAuth {"error","error_description"}.
func oauthCodeError(op string, status int, code, desc string) *Error {
	e := &Error{Op: op, Code: code, Message: desc, HTTPStatus: status}
	if code == "" {
		*e = *httpStatusError(op, status)
		return e
	}
	d := strings.ToLower(desc)
	switch {
	case status >= 500 || status == http.StatusTooManyRequests || code == "rate_limit_exceeded" ||
		code == "server_error" || code == "temporarily_unavailable":
		e.Kind = KindTransient
	case code == "unsupported_grant_type", code == "inactive_org",
		// The flow is not allowed here rather than the credential being
		// wrong: client credentials on the wrong host or without a run-as
		// user, a blocked username-password flow, an app not approved.
		strings.Contains(d, "not supported"), strings.Contains(d, "not enabled"),
		strings.Contains(d, "no client credentials user"),
		strings.Contains(d, "blocked"), strings.Contains(d, "approved"):
		e.Kind = KindPermission
	case code == "invalid_grant", code == "invalid_client_id", code == "invalid_client",
		code == "invalid_app_access", code == "inactive_user":
		e.Kind = KindCredentials
	case code == "invalid_token":
		// Revoke or userinfo with a token Salesforce no longer knows.
		e.Kind = KindSession
	default:
		e.Kind = kindForHTTPStatus(status)
	}
	return e
}

// sessionFromToken reads Salesforce's token response. Salesforce sends no
// expires_in, so tok.Expiry is meaningless and ignored.
func (c *Client) sessionFromToken(op string, tok *oauth2.Token) (*Session, error) {
	s := &Session{
		AccessToken:  tok.AccessToken,
		RefreshToken: tok.RefreshToken,
		TokenType:    tok.TokenType,
		InstanceURL:  strings.TrimRight(tokenExtraString(tok, "instance_url"), "/"),
		ID:           tokenExtraString(tok, "id"),
		Scope:        tokenExtraString(tok, "scope"),
		Signature:    tokenExtraString(tok, "signature"),
	}
	issuedAt := tokenExtraString(tok, "issued_at")
	if ms, err := strconv.ParseInt(issuedAt, 10, 64); err == nil && ms > 0 {
		s.IssuedAt = time.UnixMilli(ms)
	}
	s.OrgID, s.UserID = parseIdentityURL(s.ID)
	if s.InstanceURL != "" {
		base, err := c.checkInstance(op, s.InstanceURL)
		if err != nil {
			return nil, err
		}
		s.InstanceURL = base
	}
	// The signature proves the answer comes from the connected app we
	// configured; it can only be checked when we know the secret.
	if s.Signature != "" && c.cfg.ClientSecret != "" && s.ID != "" && issuedAt != "" {
		mac := hmac.New(sha256.New, []byte(c.cfg.ClientSecret))
		mac.Write([]byte(s.ID + issuedAt))
		got, err := base64.StdEncoding.DecodeString(s.Signature)
		if err != nil || !hmac.Equal(got, mac.Sum(nil)) {
			return nil, &Error{Op: op, Code: "invalid_signature",
				Message: "token response signature does not match the configured client secret", Kind: KindOther}
		}
	}
	return s, nil
}

// tokenExtraString reads a response field that may come as a string or number.
func tokenExtraString(tok *oauth2.Token, key string) string {
	switch v := tok.Extra(key).(type) {
	case string:
		return v
	case float64:
		return strconv.FormatFloat(v, 'f', -1, 64)
	case json.Number:
		return v.String()
	}
	return ""
}

// parseIdentityURL returns org and user ids from
// https://login.salesforce.com/id/<org>/<user>.
func parseIdentityURL(id string) (orgID, userID string) {
	u, err := url.Parse(id)
	if err != nil {
		return "", ""
	}
	parts := strings.Split(strings.Trim(u.Path, "/"), "/")
	for i := 0; i+2 < len(parts); i++ {
		if parts[i] == "id" && sfIDPattern.MatchString(parts[i+1]) && sfIDPattern.MatchString(parts[i+2]) {
			return parts[i+1], parts[i+2]
		}
	}
	return "", ""
}

// PasswordGrant runs the username-password flow.
func (c *Client) PasswordGrant(ctx context.Context, username, passwordWithToken string) (s *Session, err error) {
	const op = "oauth token (password)"
	defer scrubSecrets(&err, passwordWithToken, c.cfg.ClientSecret)
	return c.tokenCall(ctx, op, func(ctx context.Context) (*oauth2.Token, error) {
		return c.oauthConfig(nil).PasswordCredentialsToken(ctx, username, passwordWithToken)
	})
}

// ClientCredentialsGrant runs the client credentials flow against LoginURL,
// which must be the org's My Domain for Salesforce to accept it.
func (c *Client) ClientCredentialsGrant(ctx context.Context, scopes []string) (s *Session, err error) {
	const op = "oauth token (client_credentials)"
	defer scrubSecrets(&err, c.cfg.ClientSecret)
	cc := &clientcredentials.Config{
		ClientID:     c.cfg.ClientID,
		ClientSecret: c.cfg.ClientSecret,
		TokenURL:     c.tokenURL(),
		Scopes:       scopes,
		AuthStyle:    oauth2.AuthStyleInParams,
	}
	return c.tokenCall(ctx, op, cc.Token)
}

// JWTBearerGrant signs an RS256 assertion (iss = client id, sub = username)
// and exchanges it for an access token.
func (c *Client) JWTBearerGrant(ctx context.Context, username string, key *rsa.PrivateKey, scopes []string) (s *Session, err error) {
	const op = "oauth token (jwt_bearer)"
	if key == nil {
		return nil, &Error{Op: op, Message: "no private key", Kind: KindCredentials}
	}
	keyPEM := pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(key)})
	jc := &jwt.Config{
		Email:      c.cfg.ClientID,
		Subject:    username,
		PrivateKey: keyPEM,
		Scopes:     scopes,
		TokenURL:   c.tokenURL(),
		Expires:    jwtAssertionLifetime,
		Audience:   c.jwtAudience(),
	}
	return c.tokenCall(ctx, op, func(ctx context.Context) (*oauth2.Token, error) {
		return jc.TokenSource(ctx).Token()
	})
}

// jwtAudience is the "aud" Salesforce expects: login.salesforce.com for
// production hosts, test.salesforce.com for sandboxes, else (an Experience
// Cloud site, an emulator) the login URL itself.
func (c *Client) jwtAudience() string {
	if c.cfg.Audience != "" {
		return c.cfg.Audience
	}
	host := strings.ToLower(c.loginURL.Hostname())
	switch {
	case host == "test.salesforce.com", strings.HasSuffix(host, ".sandbox.my.salesforce.com"):
		return "https://test.salesforce.com"
	case host == "login.salesforce.com", strings.HasSuffix(host, ".my.salesforce.com"):
		// My Domain token endpoints of production orgs take the
		// login.salesforce.com audience.
		return "https://login.salesforce.com"
	}
	return c.cfg.LoginURL
}

// RefreshTokenGrant exchanges a refresh token. x/oauth2 sends no scope on
// refresh, so scopes only document intent; Salesforce keeps the granted
// ones. The refresh token stays in the returned Session because Salesforce
// does not issue a new one.
func (c *Client) RefreshTokenGrant(ctx context.Context, refreshToken string, scopes []string) (s *Session, err error) {
	const op = "oauth token (refresh_token)"
	defer scrubSecrets(&err, refreshToken, c.cfg.ClientSecret)
	if refreshToken == "" {
		return nil, &Error{Op: op, Message: "no refresh token", Kind: KindCredentials}
	}
	// An already expired token makes the TokenSource refresh at once.
	expired := &oauth2.Token{RefreshToken: refreshToken, Expiry: time.Unix(1, 0)}
	return c.tokenCall(ctx, op, func(ctx context.Context) (*oauth2.Token, error) {
		return c.oauthConfig(scopes).TokenSource(ctx, expired).Token()
	})
}

// postForm posts an OAuth form and returns the answer; client credentials
// go in the body when addClient is set.
func (c *Client) postForm(ctx context.Context, op, path string, form url.Values, addClient bool) (*clientHTTPResponse, *Error) {
	if addClient {
		if c.cfg.ClientID != "" {
			form.Set("client_id", c.cfg.ClientID)
		}
		if c.cfg.ClientSecret != "" {
			form.Set("client_secret", c.cfg.ClientSecret)
		}
	}
	header := http.Header{
		"Content-Type": {"application/x-www-form-urlencoded"},
		"Accept":       {"application/json"},
	}
	return c.do(ctx, op, http.MethodPost, c.cfg.LoginURL+path, header, []byte(form.Encode()))
}

// Revoke revokes an access or refresh token (always by POST: a GET would
// put the token in the URL). A token Salesforce does not know gives
// invalid_token with KindSession.
func (c *Client) Revoke(ctx context.Context, token string) (err error) {
	const op = "oauth revoke"
	defer scrubSecrets(&err, token, c.cfg.ClientSecret)
	if token == "" {
		return &Error{Op: op, Message: "no token", Kind: KindOther}
	}
	resp, herr := c.postForm(ctx, op, oauthRevokePath, url.Values{"token": {token}}, false)
	if herr != nil {
		return herr
	}
	if resp.status != http.StatusOK {
		code, desc := parseOAuthErrorBody(resp.body)
		return oauthCodeError(op, resp.status, code, desc)
	}
	return nil
}

// Introspect asks whether a token is active.
func (c *Client) Introspect(ctx context.Context, token string) (in *Introspection, err error) {
	const op = "oauth introspect"
	defer scrubSecrets(&err, token, c.cfg.ClientSecret)
	form := url.Values{"token": {token}, "token_type_hint": {"access_token"}}
	resp, herr := c.postForm(ctx, op, oauthIntrospectPath, form, true)
	if herr != nil {
		return nil, herr
	}
	if resp.status != http.StatusOK {
		code, desc := parseOAuthErrorBody(resp.body)
		return nil, oauthCodeError(op, resp.status, code, desc)
	}
	var body struct {
		Active   bool        `json:"active"`
		Scope    string      `json:"scope"`
		ClientID string      `json:"client_id"`
		Username string      `json:"username"`
		Exp      json.Number `json:"exp"`
		Iat      json.Number `json:"iat"`
	}
	dec := json.NewDecoder(strings.NewReader(string(resp.body)))
	dec.UseNumber()
	if err := dec.Decode(&body); err != nil {
		return nil, &Error{Op: op, Message: "unreadable introspection response", HTTPStatus: resp.status, Kind: KindOther}
	}
	return &Introspection{
		Active:   body.Active,
		Username: body.Username,
		Scope:    body.Scope,
		ClientID: body.ClientID,
		Expires:  unixSecondsTime(body.Exp),
		IssuedAt: unixSecondsTime(body.Iat),
	}, nil
}

func unixSecondsTime(n json.Number) time.Time {
	if v, err := n.Int64(); err == nil && v > 0 {
		return time.Unix(v, 0)
	}
	return time.Time{}
}

// UserInfo calls the OpenID Connect userinfo endpoint of the session's
// instance (the login host when the session names none).
func (c *Client) UserInfo(ctx context.Context, s *Session) (ui *UserInfo, err error) {
	const op = "oauth userinfo"
	defer scrubSecrets(&err, sessionSecret(s))
	if e := checkClientSession(op, s); e != nil {
		return nil, e
	}
	header := http.Header{
		"Authorization": {"Bearer " + s.AccessToken},
		"Accept":        {"application/json"},
	}
	base, ierr := c.instanceBase(op, s)
	if ierr != nil {
		return nil, ierr
	}
	resp, herr := c.do(ctx, op, http.MethodGet, base+oauthUserinfoPath, header, nil)
	if herr != nil {
		return nil, herr
	}
	if resp.status != http.StatusOK {
		// The identity endpoints answer a bad token with a plain-text 403
		// "Bad_OAuth_Token" (or "Missing_OAuth_Token"), not a REST error.
		if code := strings.TrimSpace(string(resp.body)); code == "Bad_OAuth_Token" || code == "Missing_OAuth_Token" {
			return nil, &Error{Op: op, Code: code, Message: "the session is invalid or expired",
				HTTPStatus: resp.status, Kind: KindSession}
		}
		return nil, restAPIError(op, resp)
	}
	var body struct {
		UserID            string `json:"user_id"`
		OrganizationID    string `json:"organization_id"`
		PreferredUsername string `json:"preferred_username"`
		Email             string `json:"email"`
		Active            *bool  `json:"active"`
	}
	if err := json.Unmarshal(resp.body, &body); err != nil {
		return nil, &Error{Op: op, Message: "unreadable userinfo response", HTTPStatus: resp.status, Kind: KindOther}
	}
	return &UserInfo{
		UserID:         body.UserID,
		OrganizationID: body.OrganizationID,
		Username:       body.PreferredUsername,
		Email:          body.Email,
		// A user that can call userinfo is active unless Salesforce says
		// otherwise.
		Active: body.Active == nil || *body.Active,
	}, nil
}
