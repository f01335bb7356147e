package emulator

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// ControlPrefix is where the control API lives: a local-development stand-in
// for the things a Salesforce admin or user does outside the API (reading
// the email inbox, uploading a certificate in Setup, approving an app in a
// browser). It is not part of Salesforce's wire surface: it never counts as
// a call, faults never apply to it, and only loopback callers may use it.
const ControlPrefix = "/_emulator/"

// Control endpoint names, as they appear in CallInfo and the command's log.
const (
	controlMailbox       = "control.mailbox"
	controlSecurityToken = "control.securityToken"
	controlCertificate   = "control.certificate"
	controlRefreshToken  = "control.refreshToken"
	controlUser          = "control.user"
	controlPermissionSet = "control.permissionSet"
	controlLoginHistory  = "control.loginHistory"
	controlApps          = "control.apps"
	controlOrg           = "control.org"
	controlClock         = "control.clock"
)

// controlBodyLimit bounds PEM and form bodies; a certificate is a few KiB.
const controlBodyLimit = 64 << 10

// SetControlAPI turns the control API under ControlPrefix on or off (it is
// on by default). When off, its paths answer 404 like any unknown path.
func (s *Server) SetControlAPI(enabled bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.controlOff = !enabled
}

func isControlEndpoint(endpoint string) bool {
	return strings.HasPrefix(endpoint, "control.")
}

// controlRoute maps a path under ControlPrefix to its handler.
func (s *Server) controlRoute(r *http.Request) (string, handlerFunc) {
	s.mu.Lock()
	off := s.controlOff
	s.mu.Unlock()
	if off {
		return "", notFound
	}
	rest := strings.TrimPrefix(r.URL.Path, ControlPrefix)
	parts := strings.Split(rest, "/")
	switch {
	case len(parts) == 2 && parts[0] == "mailbox" && parts[1] != "":
		return controlMailbox, s.guardControl(map[string]handlerFunc{http.MethodGet: s.handleMailbox(parts[1])})
	case len(parts) == 3 && parts[0] == "mailbox" && parts[1] != "" && parts[2] == "security-token":
		return controlSecurityToken, s.guardControl(map[string]handlerFunc{http.MethodGet: s.handleLatestToken(parts[1])})
	case len(parts) == 3 && parts[0] == "connected-apps" && parts[1] != "" && parts[2] == "certificate":
		return controlCertificate, s.guardControl(map[string]handlerFunc{
			http.MethodGet: s.handleGetCertificate(parts[1]),
			http.MethodPut: s.handlePutCertificate(parts[1]),
		})
	case len(parts) == 1 && parts[0] == "refresh-tokens":
		return controlRefreshToken, s.guardControl(map[string]handlerFunc{http.MethodPost: s.handleIssueRefreshToken})
	case len(parts) == 1 && parts[0] == "apps":
		return controlApps, s.guardControl(map[string]handlerFunc{http.MethodGet: s.handleListApps, http.MethodPost: s.handleCreateApp})
	case len(parts) == 2 && parts[0] == "apps" && parts[1] != "":
		return controlApps, s.guardControl(map[string]handlerFunc{http.MethodGet: s.handleGetApp(parts[1])})
	case len(parts) == 1 && parts[0] == "org":
		return controlOrg, s.guardControl(map[string]handlerFunc{http.MethodGet: s.handleGetOrg, http.MethodPatch: s.handlePatchOrg})
	case len(parts) == 1 && parts[0] == "clock":
		return controlClock, s.guardControl(map[string]handlerFunc{http.MethodGet: s.handleGetClock, http.MethodPost: s.handleAdvanceClock})
	case len(parts) == 1 && parts[0] == "login-history":
		return controlLoginHistory, s.guardControl(map[string]handlerFunc{
			http.MethodGet:  s.handleGetLoginHistory,
			http.MethodPost: s.handleAddLoginHistory,
		})
	case len(parts) == 2 && parts[0] == "users" && parts[1] != "":
		return controlUser, s.guardControl(map[string]handlerFunc{
			http.MethodGet:   s.handleGetUser(parts[1]),
			http.MethodPatch: s.handlePatchUser(parts[1]),
		})
	case len(parts) == 4 && parts[0] == "users" && parts[1] != "" && parts[2] == "permission-sets" && parts[3] != "":
		return controlPermissionSet, s.guardControl(map[string]handlerFunc{
			http.MethodPut:    s.handleAssignPermissionSet(parts[1], parts[3], true),
			http.MethodDelete: s.handleAssignPermissionSet(parts[1], parts[3], false),
		})
	}
	return "control.unknown", s.guardControl(nil)
}

// guardControl refuses callers that are not on this machine before
// anything else (so a remote caller learns nothing, not even which paths
// exist), then dispatches on the method.
func (s *Server) guardControl(methods map[string]handlerFunc) handlerFunc {
	return func(w *recorder, r *http.Request, body []byte) {
		if ip := clientIP(r); ip == nil || !ip.IsLoopback() {
			writeControlError(w, http.StatusForbidden, "the emulator control API only answers loopback callers")
			return
		}
		// A web page the developer visits could reach 127.0.0.1 through a
		// DNS name it controls (DNS rebinding); such requests carry that
		// name in Host, so only this server's own host names are accepted.
		if !s.controlHostOK(r.Host) {
			writeControlError(w, http.StatusForbidden, "the emulator control API only answers requests to its own host names")
			return
		}
		if methods == nil {
			writeControlError(w, http.StatusNotFound, "no such control endpoint; see emulator/README.md")
			return
		}
		h := methods[r.Method]
		if h == nil {
			allowed := make([]string, 0, len(methods))
			for _, m := range []string{http.MethodGet, http.MethodPut, http.MethodPost, http.MethodPatch, http.MethodDelete} {
				if methods[m] != nil {
					allowed = append(allowed, m)
				}
			}
			w.Header().Set("Allow", strings.Join(allowed, ", "))
			writeControlError(w, http.StatusMethodNotAllowed, "method not allowed")
			return
		}
		h(w, r, body)
	}
}

func (s *Server) controlHostOK(hostport string) bool {
	h := hostname(hostport)
	if strings.EqualFold(h, "localhost") {
		return true
	}
	if ip := net.ParseIP(h); ip != nil && ip.IsLoopback() {
		return true
	}
	s.mu.Lock()
	bases := []string{s.loginURL, s.myDomainURL}
	s.mu.Unlock()
	for _, b := range bases {
		if u, err := url.Parse(b); err == nil && strings.EqualFold(h, u.Hostname()) {
			return true
		}
	}
	return false
}

type controlError struct {
	Error string `json:"error"`
}

func writeControlError(w http.ResponseWriter, status int, msg string) {
	writeJSON(w, status, controlError{Error: msg})
}

// controlEmail is the JSON form of an Email.
type controlEmail struct {
	To            string    `json:"to"`
	Subject       string    `json:"subject"`
	SecurityToken string    `json:"securityToken,omitempty"`
	Password      string    `json:"password,omitempty"`
	At            time.Time `json:"at"`
}

// knownUser reports whether username exists (in any state).
func (s *Server) knownUser(username string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.users[strings.ToLower(username)] != nil
}

// handleMailbox lists the user's emails, oldest first: the inbox in which
// Salesforce delivers new security tokens and temporary passwords.
func (s *Server) handleMailbox(username string) handlerFunc {
	return func(w *recorder, _ *http.Request, _ []byte) {
		if !s.knownUser(username) {
			writeControlError(w, http.StatusNotFound, "no such user")
			return
		}
		w.username = username
		box := s.Mailbox(username)
		out := make([]controlEmail, 0, len(box))
		for _, e := range box {
			out = append(out, controlEmail{To: e.To, Subject: e.Subject, SecurityToken: e.SecurityToken,
				Password: e.Password, At: e.At.UTC()})
		}
		writeJSON(w, http.StatusOK, out)
	}
}

// handleLatestToken answers {"security_token": "…"}, the newest emailed
// token, in the shape `vault write …/security-token -` reads from stdin.
func (s *Server) handleLatestToken(username string) handlerFunc {
	return func(w *recorder, _ *http.Request, _ []byte) {
		if !s.knownUser(username) {
			writeControlError(w, http.StatusNotFound, "no such user")
			return
		}
		w.username = username
		tok := s.LatestSecurityToken(username)
		if tok == "" {
			writeControlError(w, http.StatusNotFound, "no security token email for this user yet")
			return
		}
		writeJSON(w, http.StatusOK, map[string]string{"security_token": tok})
	}
}

type controlCertificateInfo struct {
	ClientID          string `json:"clientId"`
	Certificate       string `json:"certificate,omitempty"`
	FingerprintSHA256 string `json:"fingerprintSha256"`
}

// certificateInfo describes the app's certificate; the fingerprint is the
// SHA-256 of the PEM block's DER bytes, as Vault's config/jwt-key shows it.
func certificateInfo(clientID, certPEM string) controlCertificateInfo {
	info := controlCertificateInfo{ClientID: clientID, Certificate: certPEM}
	if block, _ := pem.Decode([]byte(certPEM)); block != nil {
		sum := sha256.Sum256(block.Bytes)
		info.FingerprintSHA256 = hex.EncodeToString(sum[:])
	}
	return info
}

func (s *Server) appCertificate(clientID string) (string, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	app := s.appFor(clientID)
	if app == nil {
		return "", false
	}
	return app.CertificatePEM, true
}

func (s *Server) handleGetCertificate(clientID string) handlerFunc {
	return func(w *recorder, _ *http.Request, _ []byte) {
		certPEM, ok := s.appCertificate(clientID)
		if !ok {
			writeControlError(w, http.StatusNotFound, "no such connected app")
			return
		}
		writeJSON(w, http.StatusOK, certificateInfo(clientID, certPEM))
	}
}

// handlePutCertificate is Setup's "Use digital signatures" upload: the PEM
// body (CERTIFICATE or PUBLIC KEY) replaces the app's certificate.
func (s *Server) handlePutCertificate(clientID string) handlerFunc {
	return func(w *recorder, r *http.Request, _ []byte) {
		if _, ok := s.appCertificate(clientID); !ok {
			writeControlError(w, http.StatusNotFound, "no such connected app")
			return
		}
		body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, controlBodyLimit))
		if err != nil {
			writeControlError(w, http.StatusRequestEntityTooLarge, "certificate body too large")
			return
		}
		certPEM := strings.TrimSpace(string(body)) + "\n"
		if err := s.SetConnectedAppCertificate(clientID, certPEM); err != nil {
			writeControlError(w, http.StatusBadRequest, "the body is not a PEM CERTIFICATE or PUBLIC KEY with an RSA key")
			return
		}
		// The fingerprint is enough to compare with Vault's; the PEM the
		// caller just sent would only flood the terminal.
		info := certificateInfo(clientID, certPEM)
		info.Certificate = ""
		writeJSON(w, http.StatusOK, info)
	}
}

var errControlUnknownApp = errors.New("no such connected app")

// handleIssueRefreshToken grants a refresh token as the web-server flow
// would after the user's consent in a browser.
func (s *Server) handleIssueRefreshToken(w *recorder, r *http.Request, _ []byte) {
	r.Body = http.MaxBytesReader(w, r.Body, controlBodyLimit)
	if err := r.ParseForm(); err != nil {
		writeControlError(w, http.StatusBadRequest, "expected a form body with client_id and username")
		return
	}
	clientID, username := r.PostForm.Get("client_id"), r.PostForm.Get("username")
	if clientID == "" || username == "" {
		writeControlError(w, http.StatusBadRequest, "client_id and username are required")
		return
	}
	w.username = username
	token, err := s.issueRefreshTokenChecked(clientID, username)
	if err != nil {
		status := http.StatusBadRequest
		if errors.Is(err, errControlUnknownApp) {
			status = http.StatusNotFound
		}
		writeControlError(w, status, err.Error())
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"refresh_token": token})
}

// issueRefreshTokenChecked is IssueRefreshToken for an existing app and an
// active user: a browser consent needs both.
func (s *Server) issueRefreshTokenChecked(clientID, username string) (string, error) {
	s.mu.Lock()
	app := s.appFor(clientID)
	u := s.users[strings.ToLower(username)]
	active := u != nil && u.IsActive
	s.mu.Unlock()
	switch {
	case app == nil:
		return "", errControlUnknownApp
	case u == nil:
		return "", errors.New("no such user")
	case !active:
		return "", errors.New("the user is inactive")
	}
	return s.IssueRefreshToken(clientID, username), nil
}
