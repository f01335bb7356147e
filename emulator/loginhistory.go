package emulator

import (
	"bytes"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Login flows as LoginAttempt.Flow names them.
const (
	FlowSOAP              = "SOAP login()"
	FlowOAuthPassword     = "OAuth password"
	FlowClientCredentials = "OAuth client credentials"
	FlowJWTBearer         = "OAuth JWT bearer"
	FlowRefreshToken      = "OAuth refresh token"
)

// Login History statuses the emulator writes. Salesforce's texts are
// undocumented as a whole; these follow the capitalised forms observed in
// LoginHistory rows (see the reference, §2.4).
const (
	StatusSuccess           = "Success"
	StatusInvalidPassword   = "Invalid Password"
	StatusPasswordLockout   = "Password Lockout"
	StatusUserInactive      = "User is Inactive"
	StatusTokenRequired     = "Failed: API security token required"
	StatusRateExceeded      = "Login Rate Exceeded"
	StatusRestrictedIP      = "Restricted IP"
	StatusAPIDisabled       = "Failed: API access disabled"
	StatusAPIVersionRemoved = "Failed: API Version Removed"
	// StatusUsernamePasswordDisabled is what a third-party write-up (blog
	// enree.co) reports for the OAuth username-password flow when the org
	// blocks it or the app is an External Client App.
	StatusUsernamePasswordDisabled = "Username-Password Flow Disabled"
)

// loginHistoryRetention: Salesforce keeps six months of Login History.
const loginHistoryRetention = 6

// maxLoginHistory bounds the rows kept in memory (oldest dropped first).
const maxLoginHistory = 20000

// LoginAttempt is one row of the org's Login History (the LoginHistory
// sObject). String fields hold Salesforce's wire labels; "" reads as null.
type LoginAttempt struct {
	ID       string    `json:"id"` // 0Ya…
	Username string    `json:"username"`
	UserID   string    `json:"userId"`
	At       time.Time `json:"loginTime"`
	// Flow names the emulator flow that served it (FlowSOAP, …); "" for
	// rows added through the seed or the control API.
	Flow          string `json:"flow,omitempty"`
	LoginType     string `json:"loginType"`
	LoginSubType  string `json:"loginSubType,omitempty"`
	Application   string `json:"application"`
	APIType       string `json:"apiType"`
	APIVersion    string `json:"apiVersion"`
	ClientVersion string `json:"clientVersion"`
	Browser       string `json:"browser"`
	Platform      string `json:"platform"`
	SourceIP      string `json:"sourceIp"`
	LoginURL      string `json:"loginUrl"`
	TLSProtocol   string `json:"tlsProtocol,omitempty"`
	Status        string `json:"status"`
}

// loginContext is what a login request tells the history beyond the user.
type loginContext struct {
	flow       string
	ip         net.IP
	host       string // LoginUrl: the host the request was sent to
	tls        string
	apiVersion string // SOAP only, e.g. "64.0"
	client     string // SOAP CallOptions client name
	app        *ConnectedApp
}

func newLoginContext(r *http.Request, flow string) loginContext {
	lc := loginContext{flow: flow, ip: clientIP(r), host: hostname(r.Host), tls: "Unknown"}
	if r.TLS != nil {
		lc.tls = strings.Replace(tls.VersionName(r.TLS.Version), "TLSv", "TLS ", 1)
	}
	return lc
}

// flowFields fills LoginType, LoginSubType, ApiType, ApiVersion and
// Application for a flow.
//
// SOAP partner login(): LoginType "Other Apex API" with ApiType "SOAP
// Partner" (observed together); some orgs are reported to show "Partner
// Product" instead. LoginSubType SoapApiLogin is the documented picklist
// value ("for internal use only"); whether real orgs fill it for partner
// logins is unconfirmed, so reports should key on LoginType and ApiType.
// OAuth: "Remote Access 2.0" with the documented subtypes; JWT bearer has
// no documented subtype (null).
func (a *LoginAttempt) flowFields(flow, apiVersion, application string) {
	a.Flow = flow
	a.LoginType, a.APIType, a.APIVersion, a.Application = "Remote Access 2.0", "N/A", "N/A", application
	switch flow {
	case FlowSOAP:
		a.LoginType, a.LoginSubType, a.APIType, a.APIVersion = "Other Apex API", "SoapApiLogin", "SOAP Partner", apiVersion
	case FlowOAuthPassword:
		a.LoginSubType = "OauthUsernamePassword"
	case FlowClientCredentials:
		a.LoginSubType = "OauthClientCredentials"
	case FlowRefreshToken:
		a.LoginSubType = "OauthRefreshToken"
	}
	if a.Application == "" {
		a.Application = "N/A"
	}
}

// recordLogin appends a row to the login history and returns it. Caller
// holds s.mu.
func (s *Server) recordLogin(u *User, lc loginContext, status string) *LoginAttempt {
	a := &LoginAttempt{ID: newID("0Ya"), Username: u.Username, UserID: u.ID, At: s.clock(),
		ClientVersion: "N/A", Browser: "Unknown", Platform: "Unknown", LoginURL: lc.host, TLSProtocol: lc.tls, Status: status}
	if lc.ip != nil {
		a.SourceIP = lc.ip.String()
	}
	app := lc.client
	if lc.app != nil {
		app = lc.app.Name
	}
	a.flowFields(lc.flow, lc.apiVersion, app)
	s.logins = append(s.logins, a)
	s.trimLoginHistory()
	return a
}

// trimLoginHistory drops rows past retention and beyond the cap. Caller
// holds s.mu.
func (s *Server) trimLoginHistory() {
	cutoff := s.clock().AddDate(0, -loginHistoryRetention, 0)
	drop := 0
	for drop < len(s.logins) && s.logins[drop].At.Before(cutoff) {
		drop++
	}
	drop = max(drop, len(s.logins)-maxLoginHistory)
	if drop > 0 {
		s.logins = append([]*LoginAttempt(nil), s.logins[drop:]...)
	}
}

// LoginHistory returns the Login History rows of username (all users when
// empty), oldest first: the logins the emulator served and the rows added
// through the seed or AddLoginHistory.
func (s *Server) LoginHistory(username string) []LoginAttempt {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.trimLoginHistory()
	var out []LoginAttempt
	for _, a := range s.logins {
		if username == "" || strings.EqualFold(a.Username, username) {
			out = append(out, *a)
		}
	}
	return out
}

// SeedLogin is a historic Login History row for a seed or the control
// API. Flow fills LoginType, LoginSubType, ApiType and ApiVersion as a
// login through that flow would; explicit fields override it.
type SeedLogin struct {
	Username string `json:"username"`
	// LoginTime is absolute; Ago is relative to when the row is added
	// ("36h", "3d", "2d4h"). Neither means now.
	LoginTime time.Time `json:"loginTime,omitempty"`
	Ago       string    `json:"ago,omitempty"`
	// Flow: soap, oauth-password, oauth-client-credentials, oauth-jwt or
	// oauth-refresh.
	Flow          string `json:"flow,omitempty"`
	LoginType     string `json:"loginType,omitempty"`
	LoginSubType  string `json:"loginSubType,omitempty"`
	Application   string `json:"application,omitempty"`
	APIType       string `json:"apiType,omitempty"`
	APIVersion    string `json:"apiVersion,omitempty"`
	ClientVersion string `json:"clientVersion,omitempty"`
	Browser       string `json:"browser,omitempty"`
	Platform      string `json:"platform,omitempty"`
	SourceIP      string `json:"sourceIp,omitempty"`
	LoginURL      string `json:"loginUrl,omitempty"`
	Status        string `json:"status,omitempty"`
}

var seedFlows = map[string]string{
	"soap": FlowSOAP, "oauth-password": FlowOAuthPassword, "oauth-client-credentials": FlowClientCredentials,
	"oauth-jwt": FlowJWTBearer, "oauth-refresh": FlowRefreshToken,
}

var agoRe = regexp.MustCompile(`^(?:(\d+)d)?(.*)$`)

// parseAgo reads "3d", "36h", "2d4h30m".
func parseAgo(s string) (time.Duration, error) {
	m := agoRe.FindStringSubmatch(strings.TrimSpace(s))
	var d time.Duration
	if m[1] != "" {
		days, err := strconv.Atoi(m[1])
		if err != nil {
			return 0, err
		}
		d = time.Duration(days) * 24 * time.Hour
	}
	if m[2] != "" {
		rest, err := time.ParseDuration(m[2])
		if err != nil {
			return 0, err
		}
		d += rest
	}
	if d < 0 || (m[1] == "" && m[2] == "") {
		return 0, errors.New("want a duration such as 36h, 3d or 2d4h")
	}
	return d, nil
}

// validateSeedLogin checks a row without a server (seed validation).
func validateSeedLogin(i int, l SeedLogin, usernames map[string]bool) error {
	var errs []error
	if !usernames[strings.ToLower(l.Username)] {
		errs = append(errs, fmt.Errorf("unknown user %q", l.Username))
	}
	if l.Flow != "" && seedFlows[l.Flow] == "" {
		errs = append(errs, fmt.Errorf("unknown flow %q (soap, oauth-password, oauth-client-credentials, oauth-jwt, oauth-refresh)", l.Flow))
	}
	if l.Flow == "" && l.LoginType == "" {
		errs = append(errs, errors.New("needs a flow or a loginType"))
	}
	if l.Ago != "" {
		if !l.LoginTime.IsZero() {
			errs = append(errs, errors.New("give loginTime or ago, not both"))
		}
		if _, err := parseAgo(l.Ago); err != nil {
			errs = append(errs, fmt.Errorf("ago %q: %v", l.Ago, err))
		}
	}
	if l.SourceIP != "" && net.ParseIP(l.SourceIP) == nil {
		errs = append(errs, fmt.Errorf("sourceIp %q is not an IP address", l.SourceIP))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("loginHistory[%d]: %w", i, err)
	}
	return nil
}

// loginFromSeed builds the row. Caller holds s.mu.
func (s *Server) loginFromSeed(l SeedLogin, now time.Time) *LoginAttempt {
	u := s.userByName(l.Username)
	a := &LoginAttempt{ID: newID("0Ya"), Username: u.Username, UserID: u.ID, At: l.LoginTime,
		ClientVersion: "N/A", Browser: "Unknown", Platform: "Unknown", SourceIP: "127.0.0.1",
		LoginURL: "login.salesforce.com", TLSProtocol: "TLS 1.3", Status: StatusSuccess}
	if l.Ago != "" {
		d, _ := parseAgo(l.Ago)
		a.At = now.Add(-d)
	} else if a.At.IsZero() {
		a.At = now
	}
	if l.Flow != "" {
		apiVersion := l.APIVersion
		if apiVersion == "" {
			apiVersion = "64.0"
		}
		a.flowFields(seedFlows[l.Flow], apiVersion, l.Application)
		a.Flow = ""
	}
	for dst, src := range map[*string]string{&a.LoginType: l.LoginType, &a.LoginSubType: l.LoginSubType,
		&a.Application: l.Application, &a.APIType: l.APIType, &a.APIVersion: l.APIVersion,
		&a.ClientVersion: l.ClientVersion, &a.Browser: l.Browser, &a.Platform: l.Platform,
		&a.SourceIP: l.SourceIP, &a.LoginURL: l.LoginURL, &a.Status: l.Status} {
		if src != "" {
			*dst = src
		}
	}
	for _, p := range []*string{&a.Application, &a.APIType, &a.APIVersion} {
		if *p == "" {
			*p = "N/A"
		}
	}
	return a
}

// addLogins validates and adds rows, all or none. Caller holds s.mu.
func (s *Server) addLogins(rows []SeedLogin) ([]string, error) {
	usernames := map[string]bool{}
	for k := range s.users {
		usernames[k] = true
	}
	var errs []error
	for i, l := range rows {
		if err := validateSeedLogin(i, l, usernames); err != nil {
			errs = append(errs, err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	now := s.clock()
	ids := make([]string, 0, len(rows))
	for _, l := range rows {
		a := s.loginFromSeed(l, now)
		s.logins = append(s.logins, a)
		ids = append(ids, a.ID)
	}
	sort.SliceStable(s.logins, func(i, j int) bool { return s.logins[i].At.Before(s.logins[j].At) })
	s.trimLoginHistory()
	return ids, nil
}

// AddLoginHistory adds historic Login History rows (all or none) and
// returns their ids.
func (s *Server) AddLoginHistory(rows ...SeedLogin) ([]string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.addLogins(rows)
}

// loginHistorySchema: only the fields the Object Reference lists as
// filterable may appear in WHERE; Status, ApiType, Application, SourceIp
// and the like are "Group, Sort" only.
var loginHistorySchema = &soqlObject{name: "LoginHistory", fields: []soqlField{
	{name: "Id", typ: ftID},
	{name: "UserId", typ: ftID},
	{name: "LoginTime", typ: ftDateTime},
	{name: "LoginType", typ: ftPicklist},
	{name: "LoginSubType", typ: ftPicklist, noFilter: true},
	{name: "LoginUrl", typ: ftString},
	{name: "SourceIp", typ: ftString, noFilter: true},
	{name: "Status", typ: ftString, noFilter: true},
	{name: "Application", typ: ftString, noFilter: true},
	{name: "ApiType", typ: ftString, noFilter: true},
	{name: "ApiVersion", typ: ftString, noFilter: true},
	{name: "ClientVersion", typ: ftString, noFilter: true},
	{name: "Browser", typ: ftString, noFilter: true},
	{name: "Platform", typ: ftString, noFilter: true},
	{name: "TlsProtocol", typ: ftPicklist},
	{name: "CipherSuite", typ: ftPicklist},
	{name: "OptionsIsGet", typ: ftBool},
	{name: "OptionsIsPost", typ: ftBool},
	{name: "NetworkId", typ: ftID},
	{name: "AuthenticationServiceId", typ: ftID, since: 34},
	{name: "LoginGeoId", typ: ftID, noFilter: true, since: 34},
	{name: "CountryIso", typ: ftString, since: 37},
	{name: "AuthMethodReference", typ: ftString, noFilter: true, since: 51},
	{name: "ForwardedForIp", typ: ftString, noFilter: true, since: 61},
}}

func (a *LoginAttempt) row() *row {
	null := func(s string) any {
		if s == "" {
			return nil
		}
		return s
	}
	return &row{"LoginHistory", a.ID, map[string]any{
		"Id": a.ID, "UserId": a.UserID, "LoginTime": a.At, "LoginType": a.LoginType, "LoginSubType": null(a.LoginSubType),
		"LoginUrl": a.LoginURL, "SourceIp": a.SourceIP, "Status": a.Status, "Application": a.Application,
		"ApiType": a.APIType, "ApiVersion": a.APIVersion, "ClientVersion": a.ClientVersion, "Browser": a.Browser,
		"Platform": a.Platform, "TlsProtocol": null(a.TLSProtocol), "CipherSuite": nil, "OptionsIsGet": false,
		"OptionsIsPost": true, "NetworkId": nil, "AuthenticationServiceId": nil, "LoginGeoId": nil, "CountryIso": nil,
		"AuthMethodReference": nil, "ForwardedForIp": nil,
	}}
}

// loginHistoryRows: "only users with Manage Users or Monitor Login History
// can access this object… in API version 37.0 and later, all users can
// retrieve their own login history records." Caller holds s.mu.
func (s *Server) loginHistoryRows(c *restCall) []*row {
	s.trimLoginHistory()
	all := s.hasPermission(c.user, PermManageUsers) || s.hasPermission(c.user, PermMonitorLoginHistory)
	version, _ := strconv.ParseFloat(c.version, 64)
	var out []*row
	for _, a := range s.logins {
		if all || (version >= 37 && a.UserID == c.user.ID) {
			out = append(out, a.row())
		}
	}
	return out
}

// handleGetLoginHistory lists rows, oldest first (?username= for one user).
func (s *Server) handleGetLoginHistory(w *recorder, r *http.Request, _ []byte) {
	username := r.URL.Query().Get("username")
	if username != "" && !s.knownUser(username) {
		writeControlError(w, http.StatusNotFound, errNoSuchUser.Error())
		return
	}
	w.username = username
	rows := s.LoginHistory(username)
	if rows == nil {
		rows = []LoginAttempt{}
	}
	writeJSON(w, http.StatusOK, rows)
}

// handleAddLoginHistory adds historic rows: one SeedLogin object or an
// array of them, all or none.
func (s *Server) handleAddLoginHistory(w *recorder, r *http.Request, _ []byte) {
	data, err := io.ReadAll(http.MaxBytesReader(w, r.Body, 1<<20))
	if err != nil {
		writeControlError(w, http.StatusRequestEntityTooLarge, "body too large")
		return
	}
	var rows []SeedLogin
	trimmed := bytes.TrimSpace(data)
	if len(trimmed) > 0 && trimmed[0] == '{' {
		var one SeedLogin
		err = strictJSON(trimmed, &one)
		rows = []SeedLogin{one}
	} else {
		err = strictJSON(trimmed, &rows)
	}
	if err != nil || len(rows) == 0 {
		writeControlError(w, http.StatusBadRequest, "expected a Login History row or an array of them (see emulator/README.md)")
		return
	}
	ids, err := s.AddLoginHistory(rows...)
	if err != nil {
		writeControlError(w, http.StatusBadRequest, err.Error())
		return
	}
	writeJSON(w, http.StatusCreated, map[string][]string{"ids": ids})
}

func strictJSON(data []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return err
	}
	if dec.More() {
		return errors.New("trailing data")
	}
	return nil
}
