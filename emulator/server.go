package emulator

import (
	"bufio"
	"errors"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"
)

// Server is an emulated Salesforce org. It implements http.Handler and is
// safe for concurrent use.
type Server struct {
	mu       sync.Mutex
	org      Org
	users    map[string]*User // by lower-case username
	byID     map[string]*User // by 15-character id
	sessions map[string]*session
	refresh  map[string]*refreshToken
	cursors  map[string]*queryCursor
	mail     map[string][]Email // by lower-case username
	logins   []*LoginAttempt
	revoked  int
	apiUsed  int
	clock    func() time.Time

	loginURL    string
	myDomainURL string
	// controlOff switches off the control API (see control.go).
	controlOff bool

	faults faultSet

	hookMu   sync.Mutex
	callHook func(CallInfo)
}

// session is a SOAP session or an OAuth access token: both are the same
// kind of Salesforce session and work as Bearer tokens on REST.
type session struct {
	token    string
	userKey  string
	appID    string // the app's identifier; "" for SOAP login()
	clientID string // the client id it was minted with; "" for SOAP login()
	scope    string
	refresh  string // the refresh token it came from, if any
	issued   time.Time
	lastUsed time.Time
	// passwordExpired restricts the session to setPassword/changeOwnPassword.
	passwordExpired bool

	// AuthSession fields.
	id             string // 0Ak…
	parentID       string // the session family; its own id when none
	loginHistoryID string
	sourceIP       string
	loginType      string // LoginHistory's LoginType label
	sessionType    string // "API" for SOAP login(), "Oauth2" for OAuth tokens
}

type refreshToken struct {
	token    string
	appID    string // refresh tokens belong to the app, whatever its key
	clientID string // the client id it was granted through
	userKey  string
	scope    string
	issued   time.Time
	// OauthToken fields: DeleteToken works at /services/oauth2/revoke.
	deleteToken string
	useCount    int
	lastUsed    time.Time
}

// newRefreshToken registers a refresh token granted through the app
// (found by any of its client ids or its identifier). Caller holds s.mu
// (or owns s).
func (s *Server) newRefreshToken(token, clientID, username string) *refreshToken {
	app := s.appFor(clientID)
	rt := &refreshToken{token: token, clientID: clientID, userKey: strings.ToLower(username),
		scope: app.scopes(), issued: s.clock(), deleteToken: randomString(40)}
	if app != nil {
		rt.appID = app.ID
	}
	s.refresh[token] = rt
	return rt
}

// CallInfo describes one handled request, for logging. It never carries a
// secret.
type CallInfo struct {
	Method   string
	Path     string
	Endpoint string
	Status   int
	Duration time.Duration
	Username string
}

// New builds an org from seed (nil means DefaultSeed). The seed is copied.
func New(seed *Seed) (*Server, error) {
	if seed == nil {
		seed = DefaultSeed()
	}
	cp, err := copySeed(seed)
	if err != nil {
		return nil, err
	}
	if err := cp.validate(); err != nil {
		return nil, err
	}
	s := &Server{
		org:         cp.Org,
		users:       map[string]*User{},
		byID:        map[string]*User{},
		sessions:    map[string]*session{},
		refresh:     map[string]*refreshToken{},
		cursors:     map[string]*queryCursor{},
		mail:        map[string][]Email{},
		clock:       time.Now,
		loginURL:    "https://login.salesforce.com",
		myDomainURL: "https://" + strings.ToLower(strings.ReplaceAll(cp.Org.Name, " ", "-")) + ".my.salesforce.com",
	}
	now := s.clock()
	for i := range cp.Users {
		u := cp.Users[i]
		if u.PasswordChangedAt.IsZero() {
			u.PasswordChangedAt = now
		}
		u.UserLoginID = id18("060" + u.ID[3:15])
		s.users[strings.ToLower(u.Username)] = &u
		s.byID[id15(u.ID)] = &u
	}
	if _, err := s.addLogins(cp.LoginHistory); err != nil {
		return nil, err
	}
	for _, rt := range cp.RefreshTokens {
		s.newRefreshToken(rt.Token, rt.ClientID, rt.Username)
	}
	return s, nil
}

// SetBaseURL tells the server the absolute URLs it is reachable at: the
// login host (login.salesforce.com) and the org's My Domain host.
func (s *Server) SetBaseURL(loginURL, myDomainURL string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.loginURL = strings.TrimRight(loginURL, "/")
	s.myDomainURL = strings.TrimRight(myDomainURL, "/")
}

// LoginURL is the URL acting as https://login.salesforce.com.
func (s *Server) LoginURL() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.loginURL
}

// MyDomainURL is the org's My Domain URL (instance_url, serverUrl).
func (s *Server) MyDomainURL() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.myDomainURL
}

// SetClock replaces the clock (tests move time forward with it).
func (s *Server) SetClock(now func() time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if now == nil {
		now = time.Now
	}
	s.clock = now
}

// SetCallHook registers a function called after every request (logging).
func (s *Server) SetCallHook(fn func(CallInfo)) {
	s.hookMu.Lock()
	defer s.hookMu.Unlock()
	s.callHook = fn
}

// SetOrg mutates org settings under the server lock.
func (s *Server) SetOrg(fn func(*Org)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	fn(&s.org)
}

// SetUserState mutates a user under the server lock. It panics on an
// unknown username, so a typo in a test cannot pass silently.
func (s *Server) SetUserState(username string, fn func(*User)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	u := s.users[strings.ToLower(username)]
	if u == nil {
		panic("emulator: SetUserState: unknown user " + username)
	}
	wasLocked := u.IsPasswordLocked
	fn(u)
	switch {
	case wasLocked && !u.IsPasswordLocked:
		s.unlock(u)
	case !wasLocked && u.IsPasswordLocked && u.LockedAt.IsZero():
		// A test lock starts the lockout interval now.
		u.LockedAt = s.clock()
	}
}

// Password returns the user's current password (a test peek).
func (s *Server) Password(username string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if u := s.users[strings.ToLower(username)]; u != nil {
		return u.Password
	}
	return ""
}

// UserID returns the user's 18-character id, "" if unknown.
func (s *Server) UserID(username string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if u := s.users[strings.ToLower(username)]; u != nil {
		return u.ID
	}
	return ""
}

// OrgID returns the 18-character org id.
func (s *Server) OrgID() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.org.ID
}

// SetConnectedAppCertificate replaces the certificate (or public key) that
// verifies the app's JWT bearer assertions.
func (s *Server) SetConnectedAppCertificate(clientID, certPEM string) error {
	if _, err := parsePublicKeyPEM(certPEM); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	app := s.appFor(clientID)
	if app == nil {
		return errors.New("emulator: unknown connected app " + clientID)
	}
	app.CertificatePEM = certPEM
	return nil
}

// IssueRefreshToken grants a refresh token for username through the app,
// as the web-server flow would after the user's consent.
func (s *Server) IssueRefreshToken(clientID, username string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	token := id15(s.org.ID) + "!" + randomString(60)
	s.newRefreshToken(token, clientID, username)
	return token
}

// RevokedTokens counts tokens revoked through /services/oauth2/revoke.
func (s *Server) RevokedTokens() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.revoked
}

// IsTokenActive reports whether an access token (or SOAP session id) or a
// refresh token is currently valid.
func (s *Server) IsTokenActive(token string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.refresh[token]; ok {
		return true
	}
	return s.liveSession(token) != nil
}

// liveSession returns the session if it exists and has not timed out.
// Caller holds s.mu.
func (s *Server) liveSession(token string) *session {
	se := s.sessions[token]
	if se == nil {
		return nil
	}
	if s.clock().Sub(se.lastUsed) >= s.org.sessionTimeout() {
		delete(s.sessions, token)
		return nil
	}
	if u := s.users[se.userKey]; u == nil || !u.IsActive {
		return nil
	}
	return se
}

// useSession validates a session and records activity: Salesforce's
// timeout is an inactivity timeout. Caller holds s.mu.
func (s *Server) useSession(token string) (*session, *User) {
	se := s.liveSession(token)
	if se == nil {
		return nil, nil
	}
	se.lastUsed = s.clock()
	return se, s.users[se.userKey]
}

// newSession creates a session for u, or with Org.ReuseSessions returns
// the user's live session for the same app and scope. attempt is the
// login's Login History row. Caller holds s.mu.
func (s *Server) newSession(u *User, app *ConnectedApp, clientID, scope, refresh string, attempt *LoginAttempt) *session {
	appID := ""
	if app != nil {
		appID = app.ID
	}
	now := s.clock()
	key := strings.ToLower(u.Username)
	if s.org.ReuseSessions && refresh == "" {
		var newest *session
		for tok, se := range s.sessions {
			if se.userKey == key && se.appID == appID && se.scope == scope && se.refresh == "" &&
				!se.passwordExpired && s.liveSession(tok) != nil && (newest == nil || se.issued.After(newest.issued) ||
				(se.issued.Equal(newest.issued) && se.token > newest.token)) {
				newest = se
			}
		}
		if newest != nil {
			newest.lastUsed = now
			return newest
		}
	}
	if len(s.sessions)%1024 == 1023 {
		s.sweepSessions()
	}
	se := &session{
		token:       id15(s.org.ID) + "!" + randomString(96),
		userKey:     key,
		appID:       appID,
		clientID:    clientID,
		scope:       scope,
		refresh:     refresh,
		issued:      now,
		lastUsed:    now,
		id:          newID("0Ak"),
		sessionType: "Oauth2",
	}
	se.parentID = se.id
	if clientID == "" {
		se.sessionType = "API"
	}
	if attempt != nil {
		se.loginHistoryID, se.sourceIP, se.loginType = attempt.ID, attempt.SourceIP, attempt.LoginType
	}
	s.sessions[se.token] = se
	return se
}

// sweepSessions drops timed-out sessions so a long-running emulator does
// not grow without bound. Caller holds s.mu.
func (s *Server) sweepSessions() {
	for tok := range s.sessions {
		s.liveSession(tok)
	}
}

// ActiveSessions counts the user's live sessions (SOAP and OAuth).
func (s *Server) ActiveSessions(username string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for tok, se := range s.sessions {
		if se.userKey == strings.ToLower(username) && s.liveSession(tok) != nil {
			n++
		}
	}
	return n
}

// identityURL is https://<login host>/id/<org18>/<user18>. Caller holds s.mu.
func (s *Server) identityURL(u *User) string {
	return s.loginURL + "/id/" + s.org.ID + "/" + u.ID
}

// onMyDomain reports whether the request was sent to the My Domain host.
func (s *Server) onMyDomain(r *http.Request) bool {
	s.mu.Lock()
	my := s.myDomainURL
	s.mu.Unlock()
	mu, err := url.Parse(my)
	if err != nil {
		return false
	}
	return strings.EqualFold(hostname(r.Host), mu.Hostname())
}

func hostname(hostport string) string {
	if h, _, err := net.SplitHostPort(hostport); err == nil {
		return strings.Trim(h, "[]")
	}
	return strings.Trim(hostport, "[]")
}

func clientIP(r *http.Request) net.IP {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	return net.ParseIP(host)
}

// ServeHTTP routes a request to its endpoint, after counting the call and
// applying any injected fault.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	rec := &recorder{ResponseWriter: w, status: http.StatusOK}
	var body []byte
	endpoint, handler := s.route(r, &body)
	defer func() {
		s.hookMu.Lock()
		hook := s.callHook
		s.hookMu.Unlock()
		if hook != nil {
			hook(CallInfo{Method: r.Method, Path: r.URL.Path, Endpoint: endpoint, Status: rec.status,
				Duration: time.Since(start), Username: rec.username})
		}
	}()
	if endpoint != "" && !isControlEndpoint(endpoint) {
		s.faults.count(endpoint)
		if s.faults.apply(endpoint, rec, r) {
			return
		}
	}
	handler(rec, r, body)
	s.faults.deliver(rec, r)
}

type handlerFunc func(w *recorder, r *http.Request, body []byte)

// route picks the endpoint name and handler. SOAP needs the body to know
// the operation, so it is read here.
func (s *Server) route(r *http.Request, body *[]byte) (string, handlerFunc) {
	p := r.URL.Path
	switch {
	case strings.HasPrefix(p, "/services/Soap/u/"):
		if r.Method != http.MethodPost {
			return "", notFound
		}
		b, err := readLimited(r, 1<<20)
		if err != nil {
			return "soap.invalid", func(w *recorder, r *http.Request, _ []byte) {
				writeSOAPFault(w, soapClientFault("Unable to read request body"))
			}
		}
		*body = b
		return s.soapRoute(r, b)
	case p == "/services/oauth2/token":
		return "oauth.token", s.handleToken
	case p == "/services/oauth2/revoke":
		return "oauth.revoke", s.handleRevoke
	case p == "/services/oauth2/introspect":
		return "oauth.introspect", s.handleIntrospect
	case p == "/services/oauth2/userinfo":
		return "oauth.userinfo", s.handleUserInfo
	case strings.HasPrefix(p, "/id/"):
		return "id", s.handleIdentity
	case p == "/services/data" || p == "/services/data/":
		return "rest.versions", s.handleVersions
	case strings.HasPrefix(p, "/services/data/"):
		return s.restRoute(r)
	case strings.HasPrefix(p, ControlPrefix):
		return s.controlRoute(r)
	}
	return "", notFound
}

func notFound(w *recorder, _ *http.Request, _ []byte) {
	writeRESTError(w, http.StatusNotFound, "NOT_FOUND", "The requested resource does not exist")
}

func readLimited(r *http.Request, limit int64) ([]byte, error) {
	if r.Body == nil {
		return nil, nil
	}
	return io.ReadAll(io.LimitReader(r.Body, limit))
}

// recorder captures the status and the username for the call log, and
// passes hijacking through for dropped-connection faults.
type recorder struct {
	http.ResponseWriter
	status   int
	username string
	wrote    bool
}

func (w *recorder) WriteHeader(code int) {
	if !w.wrote {
		w.status = code
		w.wrote = true
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *recorder) Write(b []byte) (int, error) {
	w.wrote = true
	return w.ResponseWriter.Write(b)
}

func (w *recorder) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	h, ok := w.ResponseWriter.(http.Hijacker)
	if !ok {
		return nil, nil, errors.New("emulator: connection cannot be hijacked")
	}
	w.status = 0
	return h.Hijack()
}
