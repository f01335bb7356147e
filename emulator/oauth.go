package emulator

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"mime"
	"net/http"
	"net/url"
	"strconv"
	"strings"
)

// oauthError is an OAuth error body; Salesforce sends them with HTTP 400.
type oauthError struct {
	Error       string `json:"error"`
	Description string `json:"error_description"`
}

var (
	errUnsupportedGrant = &oauthError{"unsupported_grant_type", "grant type not supported"}
	errClientID         = &oauthError{"invalid_client_id", "client identifier invalid"}
	errClientSecret     = &oauthError{"invalid_client", "invalid client credentials"}
	errAuthFailure      = &oauthError{"invalid_grant", "authentication failure"}
	errExpiredToken     = &oauthError{"invalid_grant", "expired access/refresh token"}
	errNotApproved      = &oauthError{"invalid_grant", "user hasn't approved this consumer"}
	errAudience         = &oauthError{"invalid_grant", "audience is invalid"}
	errAssertion        = &oauthError{"invalid_grant", "invalid assertion"}
	errExpiredAuthCode  = &oauthError{"invalid_grant", "expired authorization code"}
	errWrongDomain      = &oauthError{"invalid_grant", "request not supported on this domain"}
	errNoRunAsUser      = &oauthError{"invalid_grant", "no client credentials user enabled"}
	errAppAccess        = &oauthError{"invalid_app_access", "user is not admin approved to access this app"}
	errInactiveUser     = &oauthError{"inactive_user", "user is inactive"}
	errRateLimit        = &oauthError{"rate_limit_exceeded", "rate limit exceeded"}
)

// writeJSON sends v as Salesforce does: no HTML escaping ("&" stays "&"
// in a nextPageUrl, "<EOF>" in a query error).
func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json;charset=UTF-8")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(v)
}

// marshalJSON is json.Marshal without HTML escaping.
func marshalJSON(v any) ([]byte, error) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimRight(b.Bytes(), "\n"), nil
}

func writeOAuthError(w http.ResponseWriter, e *oauthError) {
	writeJSON(w, http.StatusBadRequest, e)
}

// tokenResponse has Salesforce's field order.
type tokenResponse struct {
	AccessToken  string `json:"access_token"`
	RefreshToken string `json:"refresh_token,omitempty"`
	Signature    string `json:"signature,omitempty"`
	Scope        string `json:"scope,omitempty"`
	InstanceURL  string `json:"instance_url"`
	ID           string `json:"id"`
	TokenType    string `json:"token_type"`
	IssuedAt     string `json:"issued_at,omitempty"`
}

// tokenFor builds the response for a new session. A secret adds the
// signature (flows that authenticate with the client secret sign with the
// secret presented). Caller holds s.mu.
func (s *Server) tokenFor(se *session, u *User, secret string) tokenResponse {
	tr := tokenResponse{
		AccessToken: se.token,
		Scope:       se.scope,
		InstanceURL: s.myDomainURL,
		ID:          s.identityURL(u),
		TokenType:   "Bearer",
		IssuedAt:    strconv.FormatInt(se.issued.UnixMilli(), 10),
	}
	if secret != "" {
		tr.Signature = Signature(secret, tr.ID, tr.IssuedAt)
	}
	return tr
}

// Signature is base64(HMAC-SHA256(clientSecret, id + issuedAt)), the
// token response's "signature".
func Signature(clientSecret, id, issuedAt string) string {
	m := hmac.New(sha256.New, []byte(clientSecret))
	m.Write([]byte(id + issuedAt))
	return base64.StdEncoding.EncodeToString(m.Sum(nil))
}

// formRequest parses a form body; anything but
// application/x-www-form-urlencoded fails (a JSON body included).
func formRequest(r *http.Request) bool {
	if r.Method == http.MethodPost {
		mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
		if err != nil || mt != "application/x-www-form-urlencoded" {
			return false
		}
	}
	r.Body = http.MaxBytesReader(nil, r.Body, 1<<20)
	return r.ParseForm() == nil
}

// clientCredentials takes the client id and secret from HTTP Basic or the
// body; both are accepted by Salesforce.
func clientCredentials(r *http.Request) (id, secret string) {
	if u, p, ok := r.BasicAuth(); ok {
		// RFC 6749 2.3.1: form-urlencoded before Basic encoding (x/oauth2
		// does this).
		if uu, err := url.QueryUnescape(u); err == nil {
			u = uu
		}
		if pu, err := url.QueryUnescape(p); err == nil {
			p = pu
		}
		return u, p
	}
	return r.PostFormValue("client_id"), r.PostFormValue("client_secret")
}

// authenticateApp finds the app by any client id that authenticates
// (during an ECA rotation the staged or rotated-out key too) and checks
// the secret that goes with it. Caller holds s.mu.
func (s *Server) authenticateApp(id, secret string) (*appCredential, *oauthError) {
	cred := s.credentialFor(id)
	if cred == nil {
		return nil, errClientID
	}
	if !hmac.Equal([]byte(secret), []byte(cred.secret)) {
		return nil, errClientSecret
	}
	return cred, nil
}

func (s *Server) handleToken(w *recorder, r *http.Request, _ []byte) {
	if r.Method != http.MethodPost {
		writeOAuthError(w, &oauthError{"invalid_request", "must use HTTP POST"})
		return
	}
	if !formRequest(r) {
		writeOAuthError(w, errUnsupportedGrant)
		return
	}
	var tr tokenResponse
	var oerr *oauthError
	switch r.PostFormValue("grant_type") {
	case "password":
		tr, oerr = s.passwordGrant(w, r)
	case "client_credentials":
		tr, oerr = s.clientCredentialsGrant(w, r)
	case "urn:ietf:params:oauth:grant-type:jwt-bearer":
		tr, oerr = s.jwtBearerGrant(w, r)
	case "refresh_token":
		tr, oerr = s.refreshGrant(w, r)
	default:
		oerr = errUnsupportedGrant
	}
	if oerr != nil {
		writeOAuthError(w, oerr)
		return
	}
	w.Header().Set("Cache-Control", "no-cache,must-revalidate,max-age=0,no-store,private")
	writeJSON(w, http.StatusOK, tr)
}

func (s *Server) passwordGrant(w *recorder, r *http.Request) (tokenResponse, *oauthError) {
	username := r.PostFormValue("username")
	w.username = username
	id, secret := clientCredentials(r)
	s.mu.Lock()
	defer s.mu.Unlock()
	cred, oerr := s.authenticateApp(id, secret)
	if oerr != nil {
		return tokenResponse{}, oerr
	}
	app := cred.app
	lc := newLoginContext(r, FlowOAuthPassword)
	lc.app = app
	if s.org.BlockUsernamePasswordFlow || app.isECA() {
		// External Client Apps do not offer the username-password flow,
		// and orgs can block it for connected apps. A third-party write-up
		// (enree.co) reports a plain authentication failure, whatever the
		// credentials, and "Username-Password Flow Disabled" in Login
		// History, for both.
		if u := s.userByName(username); u != nil {
			s.recordLogin(u, lc, StatusUsernamePasswordDisabled)
		}
		return tokenResponse{}, errAuthFailure
	}
	u, lerr, attempt := s.passwordLogin(lc, username, r.PostFormValue("password"))
	switch lerr {
	case loginOK, loginAPIDisabled:
		// Without "API Enabled" the token is granted; REST calls then fail.
	case loginRateExceeded:
		return tokenResponse{}, errRateLimit
	case loginInactive:
		return tokenResponse{}, errInactiveUser
	default:
		return tokenResponse{}, errAuthFailure
	}
	if s.passwordExpired(u) {
		// No interactive change is possible in this flow (uncertain).
		return tokenResponse{}, errAuthFailure
	}
	if app.adminApprovedOnly() && !app.preAuthorized(u) {
		return tokenResponse{}, errAppAccess
	}
	se := s.newSession(u, app, id, app.scopes(), "", attempt)
	return s.tokenFor(se, u, cred.secret), nil
}

func (s *Server) clientCredentialsGrant(w *recorder, r *http.Request) (tokenResponse, *oauthError) {
	if !s.onMyDomain(r) {
		return tokenResponse{}, errWrongDomain
	}
	id, secret := clientCredentials(r)
	s.mu.Lock()
	defer s.mu.Unlock()
	cred, oerr := s.authenticateApp(id, secret)
	if oerr != nil {
		return tokenResponse{}, oerr
	}
	app := cred.app
	u := s.userByName(app.RunAsUser)
	if app.RunAsUser == "" || u == nil {
		return tokenResponse{}, errNoRunAsUser
	}
	w.username = u.Username
	lc := newLoginContext(r, FlowClientCredentials)
	lc.app = app
	if !u.IsActive {
		s.recordLogin(u, lc, StatusUserInactive)
		return tokenResponse{}, errInactiveUser
	}
	if s.checkRateLimit(u) {
		s.recordLogin(u, lc, StatusRateExceeded)
		return tokenResponse{}, errRateLimit
	}
	attempt := s.recordLogin(u, lc, StatusSuccess)
	se := s.newSession(u, app, id, app.scopes(), "", attempt)
	return s.tokenFor(se, u, cred.secret), nil
}

func (s *Server) refreshGrant(w *recorder, r *http.Request) (tokenResponse, *oauthError) {
	id, secret := clientCredentials(r)
	s.mu.Lock()
	defer s.mu.Unlock()
	// "Require Secret for Refresh Token Flow" is on by default.
	cred, oerr := s.authenticateApp(id, secret)
	if oerr != nil {
		return tokenResponse{}, oerr
	}
	app := cred.app
	// A refresh token belongs to the app, not to one of its keys: after an
	// ECA rotation it works with the new key as with the old one.
	rt := s.refresh[r.PostFormValue("refresh_token")]
	if rt == nil || rt.appID != app.ID {
		return tokenResponse{}, errExpiredToken
	}
	u := s.users[rt.userKey]
	if u == nil {
		return tokenResponse{}, errExpiredToken
	}
	w.username = u.Username
	lc := newLoginContext(r, FlowRefreshToken)
	lc.app = app
	if !u.IsActive {
		s.recordLogin(u, lc, StatusUserInactive)
		return tokenResponse{}, errInactiveUser
	}
	attempt := s.recordLogin(u, lc, StatusSuccess)
	rt.useCount++
	rt.lastUsed = s.clock()
	se := s.newSession(u, app, id, rt.scope, rt.token, attempt)
	return s.tokenFor(se, u, cred.secret), nil
}

// bearerToken reads "Authorization: Bearer X" or "OAuth X".
func bearerToken(r *http.Request) string {
	scheme, tok, ok := strings.Cut(strings.TrimSpace(r.Header.Get("Authorization")), " ")
	if !ok || !(strings.EqualFold(scheme, "Bearer") || strings.EqualFold(scheme, "OAuth")) {
		return ""
	}
	return strings.TrimSpace(tok)
}

func (s *Server) handleRevoke(w *recorder, r *http.Request, _ []byte) {
	if !formRequest(r) {
		writeOAuthError(w, &oauthError{"unsupported_token_type", "this token type is not supported"})
		return
	}
	token := r.FormValue("token")
	if token == "" {
		writeOAuthError(w, &oauthError{"unsupported_token_type", "this token type is not supported"})
		return
	}
	s.mu.Lock()
	found := false
	rt := s.refresh[token]
	if rt == nil {
		// An OauthToken row's DeleteToken revokes its refresh token.
		for _, cand := range s.refresh {
			if hmac.Equal([]byte(cand.deleteToken), []byte(token)) {
				rt = cand
			}
		}
	}
	if rt != nil {
		// Revoking a refresh token revokes its access tokens too.
		if u := s.users[rt.userKey]; u != nil {
			w.username = u.Username
		}
		s.revokeRefreshToken(rt)
		found = true
	} else if se := s.liveSession(token); se != nil {
		w.username = s.users[se.userKey].Username
		delete(s.sessions, token)
		found = true
	}
	if found {
		s.revoked++
	}
	s.mu.Unlock()
	if !found {
		writeOAuthError(w, &oauthError{"invalid_token", "invalid token"})
		return
	}
	w.WriteHeader(http.StatusOK)
}

// revokeRefreshToken ends a refresh token and the sessions it minted.
// Caller holds s.mu.
func (s *Server) revokeRefreshToken(rt *refreshToken) {
	delete(s.refresh, rt.token)
	for k, se := range s.sessions {
		if se.refresh == rt.token {
			delete(s.sessions, k)
		}
	}
}

func (s *Server) handleIntrospect(w *recorder, r *http.Request, _ []byte) {
	if r.Method != http.MethodPost || !formRequest(r) {
		writeOAuthError(w, &oauthError{"invalid_request", "invalid request"})
		return
	}
	id, secret := clientCredentials(r)
	token := r.PostFormValue("token")
	s.mu.Lock()
	defer s.mu.Unlock()
	cred, oerr := s.authenticateApp(id, secret)
	if oerr != nil {
		writeOAuthError(w, oerr)
		return
	}
	app := cred.app
	inactive := map[string]any{"active": false}
	if rt := s.refresh[token]; rt != nil {
		u := s.users[rt.userKey]
		if u == nil || (!app.IntrospectAllTokens && rt.appID != app.ID) {
			writeJSON(w, http.StatusOK, inactive)
			return
		}
		writeJSON(w, http.StatusOK, map[string]any{"active": true, "scope": rt.scope, "client_id": rt.clientID,
			"username": u.Username, "sub": s.identityURL(u), "token_type": "refresh_token",
			"iat": rt.issued.Unix(), "nbf": rt.issued.Unix()})
		return
	}
	se := s.liveSession(token)
	if se == nil || (!app.IntrospectAllTokens && se.appID != app.ID) {
		writeJSON(w, http.StatusOK, inactive)
		return
	}
	u := s.users[se.userKey]
	resp := map[string]any{"active": true, "scope": se.scope, "client_id": se.clientID,
		"username": u.Username, "sub": s.identityURL(u), "token_type": "access_token",
		"exp": se.lastUsed.Add(s.org.sessionTimeout()).Unix(), "iat": se.issued.Unix(), "nbf": se.issued.Unix()}
	writeJSON(w, http.StatusOK, resp)
}

// identityFailure is the identity service's plain-text error (403
// Bad_OAuth_Token / Bad_Id / Missing_OAuth_Token, from memory: uncertain).
func identityFailure(w http.ResponseWriter, body string) {
	w.Header().Set("Content-Type", "text/plain;charset=UTF-8")
	w.WriteHeader(http.StatusForbidden)
	_, _ = w.Write([]byte(body))
}

// identityUser authenticates the bearer token. Caller holds s.mu.
func (s *Server) identityUser(w *recorder, r *http.Request) *User {
	tok := bearerToken(r)
	if tok == "" {
		identityFailure(w, "Missing_OAuth_Token")
		return nil
	}
	se, u := s.useSession(tok)
	if se == nil {
		identityFailure(w, "Bad_OAuth_Token")
		return nil
	}
	w.username = u.Username
	return u
}

func (s *Server) handleUserInfo(w *recorder, r *http.Request, _ []byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	u := s.identityUser(w, r)
	if u == nil {
		return
	}
	idURL := s.identityURL(u)
	writeJSON(w, http.StatusOK, map[string]any{
		"sub": idURL, "user_id": u.ID, "organization_id": s.org.ID,
		"preferred_username": u.Username, "nickname": strings.Split(u.Username, "@")[0],
		"name": strings.TrimSpace(u.FirstName + " " + u.LastName), "email": u.Email, "email_verified": true,
		"given_name": u.FirstName, "family_name": u.LastName, "zoneinfo": "America/Los_Angeles",
		"profile": s.myDomainURL + "/" + u.ID, "is_salesforce_integration_user": false,
		"urls": s.identityURLs(), "active": u.IsActive, "user_type": "STANDARD",
		"language": "en_US", "locale": "en_US", "utcOffset": -28800000,
	})
}

// identityURLs lists the API endpoints of the org. Caller holds s.mu.
func (s *Server) identityURLs() map[string]string {
	org15 := id15(s.org.ID)
	base := s.myDomainURL
	return map[string]string{
		"enterprise": base + "/services/Soap/c/{version}/" + org15,
		"metadata":   base + "/services/Soap/m/{version}/" + org15,
		"partner":    base + "/services/Soap/u/{version}/" + org15,
		"rest":       base + "/services/data/v{version}/",
		"sobjects":   base + "/services/data/v{version}/sobjects/",
		"search":     base + "/services/data/v{version}/search/",
		"query":      base + "/services/data/v{version}/query/",
		"profile":    base + "/",
	}
}

func (s *Server) handleIdentity(w *recorder, r *http.Request, _ []byte) {
	parts := strings.Split(strings.Trim(strings.TrimPrefix(r.URL.Path, "/id/"), "/"), "/")
	s.mu.Lock()
	defer s.mu.Unlock()
	u := s.identityUser(w, r)
	if u == nil {
		return
	}
	// A token may read its own identity only.
	if len(parts) != 2 || id15(parts[0]) != id15(s.org.ID) || s.userByID(parts[1]) != u {
		identityFailure(w, "Bad_Id")
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{
		"id": s.identityURL(u), "asserted_user": true, "user_id": u.ID, "organization_id": s.org.ID,
		"username": u.Username, "nick_name": strings.Split(u.Username, "@")[0],
		"display_name": strings.TrimSpace(u.FirstName + " " + u.LastName), "email": u.Email, "email_verified": true,
		"first_name": u.FirstName, "last_name": u.LastName, "timezone": "America/Los_Angeles",
		"status": map[string]any{"created_date": nil, "body": nil},
		"urls":   s.identityURLs(),
		"active": u.IsActive, "user_type": "STANDARD", "language": "en_US", "locale": "en_US",
		"utcOffset": -28800000, "is_app_installed": true,
	})
}
