package emulator

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
)

// latestAPIVersion is Spring '26.
const latestAPIVersion = 66.0

// restError is one element of a REST error array.
type restError struct {
	Message   string `json:"message"`
	ErrorCode string `json:"errorCode"`
}

func writeRESTError(w http.ResponseWriter, status int, code, msg string) {
	if status == http.StatusUnauthorized {
		w.Header().Set("WWW-Authenticate", "Token")
	}
	writeJSON(w, status, []restError{{Message: msg, ErrorCode: code}})
}

func restStatus(e *apiError) int {
	switch e.Code {
	case "INSUFFICIENT_ACCESS":
		return http.StatusForbidden
	case "NOT_FOUND":
		return http.StatusNotFound
	}
	return http.StatusBadRequest
}

// releaseLabel names the release of an API version: v31.0 was Summer '14
// and there are three releases a year.
func releaseLabel(v int) string {
	k := v - 31
	season := [...]string{"Summer", "Winter", "Spring"}[k%3]
	return fmt.Sprintf("%s '%02d", season, 14+(k+2)/3)
}

func (s *Server) handleVersions(w *recorder, _ *http.Request, _ []byte) {
	type version struct {
		Label   string `json:"label"`
		URL     string `json:"url"`
		Version string `json:"version"`
	}
	var out []version
	for v := 31; v <= int(latestAPIVersion); v++ {
		vs := strconv.Itoa(v) + ".0"
		out = append(out, version{releaseLabel(v), "/services/data/v" + vs, vs})
	}
	writeJSON(w, http.StatusOK, out)
}

// restRoute names /services/data/vNN.N/... endpoints.
func (s *Server) restRoute(r *http.Request) (string, handlerFunc) {
	parts := strings.Split(strings.Trim(strings.TrimPrefix(r.URL.Path, "/services/data/"), "/"), "/")
	ver := parts[0]
	if ver == "latest" {
		ver = fmt.Sprintf("v%.1f", latestAPIVersion)
	}
	v, err := strconv.ParseFloat(strings.TrimPrefix(ver, "v"), 64)
	if !strings.HasPrefix(ver, "v") || err != nil || v < 31 || v > latestAPIVersion {
		return "", notFound
	}
	ver = strings.TrimPrefix(ver, "v")
	rest := parts[1:]
	is := func(method string, path ...string) bool {
		if method != "" && r.Method != method {
			return false
		}
		if len(rest) != len(path) {
			return false
		}
		for i, p := range path {
			if p != "*" && !strings.EqualFold(rest[i], p) {
				return false
			}
		}
		return true
	}
	with := func(h func(w *recorder, r *http.Request, c *restCall)) handlerFunc {
		return func(w *recorder, r *http.Request, _ []byte) { s.restCall(w, r, ver, rest, h) }
	}
	switch {
	case is("", "sobjects", "User", "*", "password"):
		return "rest.password", with(s.restPassword)
	case is("", "sobjects", "UserLogin", "*"):
		return "rest.userlogin", with(s.restUserLogin)
	case is(http.MethodGet, "sobjects", "User", "*"):
		return "rest.user", with(s.restUser)
	// Connect REST: ECA OAuth credentials. Below the version a resource
	// appeared in, it answers like any unknown resource.
	case is("", "apps", "oauth", "usage") && v >= 59:
		return "connect.appsUsage", with(s.connectUsage)
	case is("", "apps", "oauth", "credentials", "*") && v >= 60:
		return "connect.appCredentials", with(s.connectConsumers)
	case is("", "apps", "oauth", "credentials", "*", "*") && v >= 60:
		return "connect.consumerCredentials", with(s.connectConsumerCredentials)
	case is("", "apps", "oauth", "credentials", "*", "*", "staged") && v >= 65:
		return "connect.stagedCredentials", with(s.connectStaged)
	case is("", "apps", "oauth", "credentials", "*", "*", "staged", "*") && v >= 65:
		return "connect.stagedCredential", with(s.connectStagedItem)
	case is("", "sobjects", "*", "*"):
		return "rest.sobject", with(s.restSObject)
	case is(http.MethodGet, "query"):
		return "rest.query", with(s.restQuery)
	case is(http.MethodGet, "query", "*"):
		return "rest.queryMore", with(s.restQueryMore)
	case is(http.MethodGet, "limits"):
		return "rest.limits", with(s.restLimits)
	}
	return "", notFound
}

// restCall is an authenticated REST request. Handlers run with s.mu held.
type restCall struct {
	version string
	path    []string
	se      *session
	user    *User
}

func (s *Server) restCall(w *recorder, r *http.Request, ver string, path []string, h func(*recorder, *http.Request, *restCall)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	se, u := s.useSession(bearerToken(r))
	if se == nil {
		writeRESTError(w, http.StatusUnauthorized, "INVALID_SESSION_ID", "Session expired or invalid")
		return
	}
	w.username = u.Username
	if !s.apiEnabled(u) {
		writeRESTError(w, http.StatusForbidden, "API_DISABLED_FOR_ORG", "The REST API is not enabled for this Organization.")
		return
	}
	ownPasswordPost := r.Method == http.MethodPost && len(path) == 4 && s.userByID(path[2]) == u
	if se.passwordExpired && !ownPasswordPost {
		writeRESTError(w, http.StatusForbidden, "INVALID_OPERATION_WITH_EXPIRED_PASSWORD", msgExpiredPassword)
		return
	}
	s.apiUsed++
	w.Header().Set("Sforce-Limit-Info", "api-usage="+strconv.Itoa(s.apiUsed)+"/"+strconv.Itoa(s.org.dailyAPIRequests()))
	h(w, r, &restCall{version: ver, path: path, se: se, user: u})
}

// restUserTarget resolves sobjects/User/{id}. Caller holds s.mu.
func (s *Server) restUserTarget(w *recorder, id string) *User {
	t := s.userByID(id)
	if t == nil || !validID(id, "005") {
		writeRESTError(w, http.StatusNotFound, "NOT_FOUND", "The requested resource does not exist")
		return nil
	}
	return t
}

var errViewPermission = &apiError{"INSUFFICIENT_ACCESS", "You do not have permission to view this record."}

func (s *Server) restPassword(w *recorder, r *http.Request, c *restCall) {
	t := s.restUserTarget(w, c.path[2])
	if t == nil {
		return
	}
	switch r.Method {
	case http.MethodGet, http.MethodHead:
		if t != c.user && !s.canManagePasswords(c.user) {
			writeRESTError(w, http.StatusForbidden, errViewPermission.Code, errViewPermission.Message)
			return
		}
		writeJSON(w, http.StatusOK, map[string]bool{"isExpired": s.passwordExpired(t)})
	case http.MethodPost:
		var body map[string]any
		data, _ := io.ReadAll(io.LimitReader(r.Body, 1<<16))
		if err := json.Unmarshal(data, &body); err != nil {
			writeRESTError(w, http.StatusBadRequest, "JSON_PARSER_ERROR", "Unexpected character in the request body")
			return
		}
		pw, ok := body["NewPassword"].(string)
		if !ok || len(body) != 1 {
			// "You can only set one password per request."
			writeRESTError(w, http.StatusBadRequest, "INVALID_FIELD", "Request body must contain exactly one NewPassword field")
			return
		}
		if err := s.setPassword(c.user, c.se, t, pw); err != nil {
			if err.Code == "INSUFFICIENT_ACCESS" && err != errSelfSetPassword {
				err = errViewPermission
			}
			writeRESTError(w, restStatus(err), err.Code, err.Message)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	case http.MethodDelete:
		pw, err := s.resetPassword(c.user, t)
		if err != nil {
			writeRESTError(w, http.StatusForbidden, errViewPermission.Code, errViewPermission.Message)
			return
		}
		writeJSON(w, http.StatusOK, map[string]string{"NewPassword": pw})
	default:
		writeRESTError(w, http.StatusMethodNotAllowed, "METHOD_NOT_ALLOWED", "HTTP Method '"+r.Method+"' not allowed. Allowed are HEAD,GET,POST,DELETE")
	}
}

func (s *Server) restUser(w *recorder, _ *http.Request, c *restCall) {
	t := s.restUserTarget(w, c.path[2])
	if t == nil {
		return
	}
	writeJSON(w, http.StatusOK, s.userRecord(t, c.version))
}

// restUserLogin: GET a UserLogin row, or PATCH {"IsPasswordLocked":false}
// to unlock (admin only).
func (s *Server) restUserLogin(w *recorder, r *http.Request, c *restCall) {
	var t *User
	for _, u := range s.users {
		if id15(u.UserLoginID) == id15(c.path[2]) && validID(c.path[2], "060") {
			t = u
		}
	}
	if t == nil {
		writeRESTError(w, http.StatusNotFound, "NOT_FOUND", "The requested resource does not exist")
		return
	}
	switch r.Method {
	case http.MethodGet:
		writeJSON(w, http.StatusOK, s.userLoginRecord(t, c.version))
	case http.MethodPatch:
		if !s.canManagePasswords(c.user) {
			writeRESTError(w, http.StatusForbidden, "INSUFFICIENT_ACCESS", "insufficient access rights on object id")
			return
		}
		var body map[string]any
		data, _ := io.ReadAll(io.LimitReader(r.Body, 1<<16))
		if err := json.Unmarshal(data, &body); err != nil {
			writeRESTError(w, http.StatusBadRequest, "JSON_PARSER_ERROR", "Unexpected character in the request body")
			return
		}
		for k, v := range body {
			if k != "IsPasswordLocked" || v != false {
				writeRESTError(w, http.StatusBadRequest, "INVALID_FIELD_FOR_INSERT_UPDATE",
					"Unable to create/update fields: "+k+". Please check the security settings of this field and verify that it is read/write for your profile or permission set.")
				return
			}
		}
		s.unlock(t)
		w.WriteHeader(http.StatusNoContent)
	default:
		writeRESTError(w, http.StatusMethodNotAllowed, "METHOD_NOT_ALLOWED", "HTTP Method '"+r.Method+"' not allowed. Allowed are GET,PATCH")
	}
}

func (s *Server) restLimits(w *recorder, _ *http.Request, _ *restCall) {
	max := s.org.dailyAPIRequests()
	limit := func(m, rem int) map[string]int { return map[string]int{"Max": m, "Remaining": rem} }
	writeJSON(w, http.StatusOK, map[string]any{
		"DailyApiRequests":                  limit(max, max-s.apiUsed),
		"ConcurrentAsyncGetReportInstances": limit(200, 200),
		"DailyAsyncApexExecutions":          limit(250000, 250000),
		"DailyBulkApiBatches":               limit(15000, 15000),
		"DataStorageMB":                     limit(5, 5),
		"FileStorageMB":                     limit(20, 20),
	})
}
