package emulator

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Connect REST resources for External Client App OAuth credentials
// (reference §1): /apps/oauth/usage (v59.0+), /apps/oauth/credentials/…
// (v60.0+) and …/staged[/{id}] (v65.0+). Errors are REST error arrays.
//
// Access (doc: stage/rotate/delete need "External Client App Developer"
// and "View Client Secret"; reading a secret needs the org setting and
// View Client Secret). Listing apps and reading keys needs one of the
// External Client App Viewer, Developer or Admin permissions (an
// inference: no source says which). The error codes and texts are
// inferred too; the org-setting and permission messages contain the
// substrings sfdx-hardis looks for ("not currently enabled", "not
// enabled for this user").

const connectDate = "2006-01-02T15:04:05.000Z"

const (
	msgSecretsNotEnabled = "This feature is not currently enabled for this user type or org: [Allow access to External Client App consumer secrets via REST API]"
	msgNoECARead         = "This feature is not enabled for this user: viewing external client apps needs the External Client App Viewer, Developer or Admin permission."
	msgNoViewSecret      = "This feature is not enabled for this user: reading a consumer secret needs the View Client Secret permission."
	msgNoStaging         = "This feature is not enabled for this user: staging, rotating and deleting OAuth credentials need the External Client App Developer and View Client Secret permissions."
	msgPackaged          = "Only local external client apps can use the OAuth Staged Credentials Connect REST API. This external client app is packaged."
)

func writeConnectError(w http.ResponseWriter, e *connectError) {
	writeRESTError(w, e.status, e.code, e.msg)
}

func methodNotAllowed(w http.ResponseWriter, method, allowed string) {
	writeRESTError(w, http.StatusMethodNotAllowed, "METHOD_NOT_ALLOWED", "HTTP Method '"+method+"' not allowed. Allowed are "+allowed)
}

// canViewECAs: any of the External Client App permissions. Caller holds s.mu.
func (s *Server) canViewECAs(u *User) bool {
	return s.hasPermission(u, PermExternalClientAppViewer) || s.hasPermission(u, PermExternalClientAppDeveloper) ||
		s.hasPermission(u, PermExternalClientAppAdmin)
}

// secretAccess checks the org setting, then the user's permissions, for
// reading a secret (staging=false) or managing staged credentials.
// Caller holds s.mu.
func (s *Server) secretAccess(u *User, staging bool) *connectError {
	switch {
	case !s.org.EnableClientSecretInRESTAPIAccess:
		return &connectError{http.StatusForbidden, "FUNCTIONALITY_NOT_ENABLED", msgSecretsNotEnabled}
	case staging && !(s.hasPermission(u, PermExternalClientAppDeveloper) && s.hasPermission(u, PermViewClientSecret)):
		return &connectError{http.StatusForbidden, "INSUFFICIENT_ACCESS", msgNoStaging}
	case !staging && !s.hasPermission(u, PermViewClientSecret):
		return &connectError{http.StatusForbidden, "INSUFFICIENT_ACCESS", msgNoViewSecret}
	}
	return nil
}

func invalidIdentifier(id string) *connectError {
	return &connectError{http.StatusBadRequest, "INVALID_ID_FIELD", "Invalid identifier: " + id}
}

var errConnectNotFound = &connectError{http.StatusNotFound, "NOT_FOUND", "The requested resource does not exist"}

// connectApp resolves an ECA identifier: an id that is not an ECA's
// (malformed, or a connected app's) is invalid; an unknown ECA id is not
// found. Caller holds s.mu.
func (s *Server) connectApp(id string) (*ConnectedApp, *connectError) {
	app := s.appByID(id)
	switch {
	case app != nil && app.isECA():
		return app, nil
	case app == nil && validID(id, "0xI"):
		return nil, errConnectNotFound
	}
	return nil, invalidIdentifier(id)
}

func connectConsumer(app *ConnectedApp, id string) (*Consumer, *connectError) {
	for _, c := range app.consumers() {
		if sameID(c.ConsumerID, id) {
			return c, nil
		}
	}
	if validID(id, "888") {
		return nil, errConnectNotFound
	}
	return nil, invalidIdentifier(id)
}

func credentialsURL(version string, app *ConnectedApp, c *Consumer) string {
	return "/services/data/v" + version + "/apps/oauth/credentials/" + app.ID + "/" + c.ConsumerID
}

// consumerJSON is "App Oauth Credentials".
type consumerJSON struct {
	ID                   string `json:"id"`
	Key                  string `json:"key,omitempty"`
	Secret               string `json:"secret,omitempty"`
	Name                 string `json:"name"`
	URL                  string `json:"url"`
	StagedCredentialsURL string `json:"stagedCredentialsUrl,omitempty"` // 65.0+
}

func consumerView(version string, app *ConnectedApp, c *Consumer, key, secret bool) consumerJSON {
	out := consumerJSON{ID: c.ConsumerID, Name: app.Name, URL: credentialsURL(version, app, c)}
	if v, _ := strconv.ParseFloat(version, 64); v >= 65 {
		out.StagedCredentialsURL = out.URL + "/staged"
	}
	if key {
		out.Key = c.ClientID
	}
	if secret {
		out.Secret = c.ClientSecret
	}
	return out
}

// stagedJSON is "App Oauth Staged Credentials". url points at the staged
// item itself (the doc calls it the primary credentials URL, but clients
// use it as the PATCH/DELETE target of the staged item).
type stagedJSON struct {
	ID                   string `json:"id"`
	Key                  string `json:"key"`
	Secret               string `json:"secret"`
	State                string `json:"state"`
	CreatedBy            string `json:"createdBy"`
	CreatedDate          string `json:"createdDate"`
	ExpirationDate       string `json:"expirationDate"`
	URL                  string `json:"url"`
	StagedCredentialsURL string `json:"stagedCredentialsUrl"`
}

type stagedCollectionJSON struct {
	StagedCredentials []stagedJSON `json:"stagedCredentials"`
	URL               string       `json:"url"`
}

func stagedView(version string, app *ConnectedApp, c *Consumer, st *StagedCredential, now time.Time) stagedJSON {
	base := credentialsURL(version, app, c) + "/staged"
	return stagedJSON{ID: st.ID, Key: st.ClientID, Secret: st.ClientSecret, State: st.stateAt(now), CreatedBy: st.CreatedBy,
		CreatedDate: st.CreatedDate.UTC().Format(connectDate), ExpirationDate: st.ExpirationDate.UTC().Format(connectDate),
		URL: base + "/" + st.ID, StagedCredentialsURL: base}
}

// stagedCollection: an empty slot answers an empty list (the doc gives
// this resource a collection response; sfdx-hardis suspects a 404 when
// nothing is staged, which the emulator does not do).
func stagedCollection(version string, app *ConnectedApp, c *Consumer, now time.Time) stagedCollectionJSON {
	out := stagedCollectionJSON{StagedCredentials: []stagedJSON{}, URL: credentialsURL(version, app, c) + "/staged"}
	if c.Staged != nil {
		out.StagedCredentials = append(out.StagedCredentials, stagedView(version, app, c, c.Staged, now))
	}
	return out
}

// connectUsage: GET /apps/oauth/usage?page=&pageSize= lists the org's
// ECAs. nextPageUrl is set on every page, even the last; a page past the
// end has no apps.
func (s *Server) connectUsage(w *recorder, r *http.Request, c *restCall) {
	if r.Method != http.MethodGet {
		methodNotAllowed(w, r.Method, "GET")
		return
	}
	if !s.canViewECAs(c.user) {
		writeRESTError(w, http.StatusForbidden, "INSUFFICIENT_ACCESS", msgNoECARead)
		return
	}
	page, ok := intParam(w, r, "page", 0, 0, 1<<20)
	if !ok {
		return
	}
	// pageSize: default 100 (doc); the maximum is not documented, the
	// emulator accepts 1 to 100.
	size, ok := intParam(w, r, "pageSize", 100, 1, 100)
	if !ok {
		return
	}
	type appJSON struct {
		Identifier    string `json:"identifier"`
		DeveloperName string `json:"developerName"`
		Label         string `json:"label"`
	}
	var ecas []appJSON
	for i := range s.org.ConnectedApps {
		if a := &s.org.ConnectedApps[i]; a.isECA() {
			ecas = append(ecas, appJSON{a.ID, a.DeveloperName, a.Name})
		}
	}
	start := min(page*size, len(ecas))
	end := min(start+size, len(ecas))
	base := "/services/data/v" + c.version + "/apps/oauth/usage"
	pageURL := func(p int) string { return base + "?page=" + strconv.Itoa(p) + "&pageSize=" + strconv.Itoa(size) }
	writeJSON(w, http.StatusOK, struct {
		Apps           []appJSON `json:"apps"`
		CurrentPageURL string    `json:"currentPageUrl"`
		NextPageURL    string    `json:"nextPageUrl"`
	}{append([]appJSON{}, ecas[start:end]...), pageURL(page), pageURL(page + 1)})
}

// intParam reads an integer query parameter within [lo, hi].
func intParam(w http.ResponseWriter, r *http.Request, name string, def, lo, hi int) (int, bool) {
	raw := r.URL.Query().Get(name)
	if raw == "" {
		return def, true
	}
	n, err := strconv.Atoi(raw)
	if err != nil || n < lo || n > hi {
		writeRESTError(w, http.StatusBadRequest, "ILLEGAL_QUERY_PARAMETER_VALUE",
			"Invalid value for parameter "+name+": "+raw+" (expected an integer from "+strconv.Itoa(lo)+" to "+strconv.Itoa(hi)+")")
		return 0, false
	}
	return n, true
}

// connectConsumers: GET /apps/oauth/credentials/{appIdentifier} lists the
// app's consumers with their keys (never the secrets).
func (s *Server) connectConsumers(w *recorder, r *http.Request, c *restCall) {
	if r.Method != http.MethodGet {
		methodNotAllowed(w, r.Method, "GET")
		return
	}
	if !s.canViewECAs(c.user) {
		writeRESTError(w, http.StatusForbidden, "INSUFFICIENT_ACCESS", msgNoECARead)
		return
	}
	app, cerr := s.connectApp(c.path[3])
	if cerr != nil {
		writeConnectError(w, cerr)
		return
	}
	out := []consumerJSON{}
	for _, cons := range app.consumers() {
		out = append(out, consumerView(c.version, app, cons, true, false))
	}
	writeJSON(w, http.StatusOK, struct {
		Consumers      []consumerJSON `json:"consumers"`
		CurrentPageURL string         `json:"currentPageUrl"`
		NextPageURL    *string        `json:"nextPageUrl"`
	}{out, "/services/data/v" + c.version + "/apps/oauth/credentials/" + app.ID, nil})
}

// connectConsumerCredentials: GET …/{app}/{consumer}?part=key|secret|
// keyandsecret. Without part only the key comes back; "the secret value
// is returned only when specified in this parameter".
func (s *Server) connectConsumerCredentials(w *recorder, r *http.Request, c *restCall) {
	if r.Method != http.MethodGet {
		methodNotAllowed(w, r.Method, "GET")
		return
	}
	if !s.canViewECAs(c.user) {
		writeRESTError(w, http.StatusForbidden, "INSUFFICIENT_ACCESS", msgNoECARead)
		return
	}
	var key, secret bool
	switch part := r.URL.Query().Get("part"); strings.ToLower(part) {
	case "", "key":
		key = true
	case "secret":
		secret = true
	case "keyandsecret":
		key, secret = true, true
	default:
		writeRESTError(w, http.StatusBadRequest, "ILLEGAL_QUERY_PARAMETER_VALUE", "Invalid value for parameter part: "+part+" (expected key, secret or keyandsecret)")
		return
	}
	app, cons, ok := s.connectTarget(w, c, secret)
	if !ok {
		return
	}
	writeJSON(w, http.StatusOK, consumerView(c.version, app, cons, key, secret))
}

// connectTarget resolves {app}/{consumer} of the path and, for secrets
// and staged credentials, the org setting, the permissions and that the
// app is local. Caller holds s.mu.
func (s *Server) connectTarget(w *recorder, c *restCall, secrets bool) (*ConnectedApp, *Consumer, bool) {
	staging := len(c.path) > 5
	if secrets || staging {
		if cerr := s.secretAccess(c.user, staging); cerr != nil {
			writeConnectError(w, cerr)
			return nil, nil, false
		}
	}
	app, cerr := s.connectApp(c.path[3])
	if cerr != nil {
		writeConnectError(w, cerr)
		return nil, nil, false
	}
	cons, cerr := connectConsumer(app, c.path[4])
	if cerr != nil {
		writeConnectError(w, cerr)
		return nil, nil, false
	}
	if (secrets || staging) && app.Packaged {
		writeRESTError(w, http.StatusForbidden, "INSUFFICIENT_ACCESS", msgPackaged)
		return nil, nil, false
	}
	return app, cons, true
}

// connectStaged: GET or POST …/{app}/{consumer}/staged. POST stages a new
// key and secret; it takes no body, and accepts an empty one or {} (a
// client sends {} because Salesforce reportedly hangs on a bodiless POST).
func (s *Server) connectStaged(w *recorder, r *http.Request, c *restCall) {
	if r.Method != http.MethodGet && r.Method != http.MethodPost {
		methodNotAllowed(w, r.Method, "GET,POST")
		return
	}
	app, cons, ok := s.connectTarget(w, c, true)
	if !ok {
		return
	}
	if r.Method == http.MethodGet {
		writeJSON(w, http.StatusOK, stagedCollection(c.version, app, cons, s.clock()))
		return
	}
	body, _ := io.ReadAll(io.LimitReader(r.Body, 1<<16))
	switch t := string(bytes.TrimSpace(body)); {
	case t == "" || t == "null":
	case json.Valid(body):
		var obj map[string]any
		if json.Unmarshal(body, &obj) != nil || len(obj) > 0 {
			writeRESTError(w, http.StatusBadRequest, "INVALID_API_INPUT", "This request doesn't take a request body.")
			return
		}
	default:
		writeRESTError(w, http.StatusBadRequest, "JSON_PARSER_ERROR", "Unexpected character in the request body")
		return
	}
	if _, cerr := s.stage(cons, c.user); cerr != nil {
		writeConnectError(w, cerr)
		return
	}
	writeJSON(w, http.StatusCreated, stagedCollection(c.version, app, cons, s.clock()))
}

// connectStagedItem: GET, PATCH {"command":"rotate"} or DELETE
// …/staged/{stagedCredentialId}. PATCH answers the staged slot as it
// stands after the rotation (the demoted credential, Rotated): what
// Salesforce returns is undocumented and no client reads it.
func (s *Server) connectStagedItem(w *recorder, r *http.Request, c *restCall) {
	switch r.Method {
	case http.MethodGet, http.MethodPatch, http.MethodDelete:
	default:
		methodNotAllowed(w, r.Method, "GET,PATCH,DELETE")
		return
	}
	app, cons, ok := s.connectTarget(w, c, true)
	if !ok {
		return
	}
	id := c.path[6]
	if cons.Staged == nil || !sameID(cons.Staged.ID, id) {
		writeConnectError(w, errConnectNotFound)
		return
	}
	switch r.Method {
	case http.MethodGet:
		writeJSON(w, http.StatusOK, stagedView(c.version, app, cons, cons.Staged, s.clock()))
	case http.MethodDelete:
		cons.deleteStaged(id)
		w.WriteHeader(http.StatusNoContent)
	case http.MethodPatch:
		var in struct {
			Command *string `json:"command"`
		}
		body, _ := io.ReadAll(io.LimitReader(r.Body, 1<<16))
		if err := json.Unmarshal(body, &in); err != nil {
			writeRESTError(w, http.StatusBadRequest, "JSON_PARSER_ERROR", "Unexpected character in the request body")
			return
		}
		if in.Command == nil || *in.Command != "rotate" {
			writeRESTError(w, http.StatusBadRequest, "INVALID_API_INPUT", `Invalid value for command. Valid values: rotate`)
			return
		}
		if cerr := s.rotate(cons); cerr != nil {
			writeConnectError(w, cerr)
			return
		}
		writeJSON(w, http.StatusOK, stagedView(c.version, app, cons, cons.Staged, s.clock()))
	}
}
