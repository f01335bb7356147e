package emulator

import (
	"net/http"
	"sort"
	"strings"
)

// AuthSession: one row per live session (SOAP session or OAuth access
// token). "You can't change user sessions… You can only read and delete
// them"; users without Manage Users see and end only their own.
var authSessionSchema = &soqlObject{name: "AuthSession", fields: []soqlField{
	{name: "Id", typ: ftID},
	{name: "UsersId", typ: ftID},
	{name: "CreatedDate", typ: ftDateTime},
	{name: "LastModifiedDate", typ: ftDateTime},
	{name: "NumSecondsValid", typ: ftNumber},
	{name: "SessionType", typ: ftPicklist},
	{name: "LoginType", typ: ftPicklist},
	{name: "SessionSecurityLevel", typ: ftPicklist},
	{name: "SourceIp", typ: ftString},
	{name: "UserType", typ: ftPicklist},
	{name: "ParentId", typ: ftID},
	{name: "LoginHistoryId", typ: ftID, since: 33},
	{name: "LoginGeoId", typ: ftID, since: 34},
	{name: "LogoutUrl", typ: ftString},
	{name: "IsCurrent", typ: ftBool, since: 37},
	{name: "IsAssociatedWithJwtAccessToken", typ: ftBool, since: 64},
}, rels: []soqlRel{{"Users", "User"}}}

// OauthToken: one row per refresh token (an app's grant to a user).
// Query only; Id is always null; DeleteToken revokes the grant at
// /services/oauth2/revoke. Results come 500 at a time, 2500 at most.
var oauthTokenSchema = &soqlObject{name: "OauthToken", fields: []soqlField{
	{name: "Id", typ: ftID},
	{name: "UserId", typ: ftID},
	{name: "AppName", typ: ftString},
	{name: "AppMenuItemId", typ: ftID},
	{name: "AccessToken", typ: ftString},
	{name: "RequestToken", typ: ftString},
	{name: "DeleteToken", typ: ftString},
	{name: "UseCount", typ: ftNumber},
	{name: "LastUsedDate", typ: ftDateTime},
	{name: "CreatedDate", typ: ftDateTime},
}, rels: []soqlRel{{"User", "User"}}, batchSize: 500, noURL: true}

// oauthTokenMax: "max 2,500 total".
const oauthTokenMax = 2500

// liveSessions lists live sessions, oldest first. Caller holds s.mu.
func (s *Server) liveSessions() []*session {
	var out []*session
	for tok := range s.sessions {
		if se := s.liveSession(tok); se != nil {
			out = append(out, se)
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if !out[i].issued.Equal(out[j].issued) {
			return out[i].issued.Before(out[j].issued)
		}
		return out[i].id < out[j].id
	})
	return out
}

// authSessionRow renders se; IsCurrent is relative to the caller's
// session family. Caller holds s.mu.
func (s *Server) authSessionRow(se *session, caller *session) *row {
	u := s.users[se.userKey]
	null := func(v string) any {
		if v == "" {
			return nil
		}
		return v
	}
	return &row{"AuthSession", se.id, map[string]any{
		"Id": se.id, "UsersId": u.ID, "Users": s.userRow(u), "CreatedDate": se.issued, "LastModifiedDate": se.lastUsed,
		"NumSecondsValid": int(s.org.sessionTimeout().Seconds()), "SessionType": se.sessionType,
		"LoginType": null(se.loginType), "SessionSecurityLevel": "STANDARD", "SourceIp": null(se.sourceIP),
		"UserType": "Standard", "ParentId": se.parentID, "LoginHistoryId": null(se.loginHistoryID), "LoginGeoId": nil,
		"LogoutUrl": nil, "IsCurrent": caller != nil && se.parentID == caller.parentID,
		"IsAssociatedWithJwtAccessToken": false,
	}}
}

// authSessionRows: administrators (Manage Users) see every session, other
// users their own. Caller holds s.mu.
func (s *Server) authSessionRows(c *restCall) []*row {
	all := s.hasPermission(c.user, PermManageUsers)
	var out []*row
	for _, se := range s.liveSessions() {
		if all || se.userKey == strings.ToLower(c.user.Username) {
			out = append(out, s.authSessionRow(se, c.se))
		}
	}
	return out
}

// oauthTokenRows: Customize Application sees every user's tokens, others
// their own. Caller holds s.mu.
func (s *Server) oauthTokenRows(c *restCall) []*row {
	all := s.hasPermission(c.user, PermCustomizeApplication)
	tokens := make([]*refreshToken, 0, len(s.refresh))
	for _, rt := range s.refresh {
		if all || rt.userKey == strings.ToLower(c.user.Username) {
			tokens = append(tokens, rt)
		}
	}
	sort.Slice(tokens, func(i, j int) bool {
		if !tokens[i].issued.Equal(tokens[j].issued) {
			return tokens[i].issued.Before(tokens[j].issued)
		}
		return tokens[i].deleteToken < tokens[j].deleteToken
	})
	var out []*row
	for _, rt := range tokens {
		u := s.users[rt.userKey]
		if u == nil {
			continue
		}
		appName := ""
		if app := s.appByID(rt.appID); app != nil {
			appName = app.Name
		}
		var lastUsed any
		if !rt.lastUsed.IsZero() {
			lastUsed = rt.lastUsed
		}
		out = append(out, &row{"OauthToken", "", map[string]any{
			"Id": nil, "UserId": u.ID, "User": s.userRow(u), "AppName": appName, "AppMenuItemId": nil,
			// The doc calls AccessToken "the refresh token for
			// authorization"; the emulator never returns a usable token
			// here and masks it (what real orgs return is unknown).
			"AccessToken": id15(s.org.ID) + "!" + strings.Repeat("*", 16), "RequestToken": nil,
			"DeleteToken": rt.deleteToken, "UseCount": rt.useCount, "LastUsedDate": lastUsed, "CreatedDate": rt.issued,
		}})
		if len(out) == oauthTokenMax {
			break
		}
	}
	return out
}

// retrievable sObjects for GET sobjects/{type}/{id}, beyond User and
// UserLogin.
var retrievable = map[string]bool{"authsession": true, "loginhistory": true, "permissionset": true,
	"permissionsetassignment": true, "permissionsetgroup": true, "profile": true}

// restSObject serves GET sobjects/{type}/{id} (retrieve()) and DELETE
// sobjects/AuthSession/{id} (end a session).
func (s *Server) restSObject(w *recorder, r *http.Request, c *restCall) {
	obj := s.soqlSchema(c.path[1])
	id := c.path[2]
	if obj == nil || !retrievable[strings.ToLower(obj.name)] {
		writeRESTError(w, http.StatusNotFound, "NOT_FOUND", "The requested resource does not exist")
		return
	}
	isSession := obj.name == "AuthSession"
	switch {
	case r.Method == http.MethodGet || r.Method == http.MethodHead:
	case r.Method == http.MethodDelete && isSession:
	default:
		allowed := "GET,HEAD"
		if isSession {
			allowed = "GET,HEAD,DELETE"
		}
		writeRESTError(w, http.StatusMethodNotAllowed, "METHOD_NOT_ALLOWED", "HTTP Method '"+r.Method+"' not allowed. Allowed are "+allowed)
		return
	}
	if isSession {
		s.restAuthSession(w, r, c, id)
		return
	}
	for _, rw := range s.soqlRows(obj, c) {
		if looksLikeID(id) && id15(rw.id) == id15(id) {
			writeJSON(w, http.StatusOK, rw.fullRecord(obj, c.version))
			return
		}
	}
	writeRESTError(w, http.StatusNotFound, "NOT_FOUND", "The requested resource does not exist")
}

// restAuthSession retrieves or deletes one session. Deleting a session
// ends its token (and the sessions of its family), which then answers 401
// INVALID_SESSION_ID like an expired one. Other users' sessions need Manage
// Users. Caller holds s.mu.
func (s *Server) restAuthSession(w *recorder, r *http.Request, c *restCall, id string) {
	var target *session
	for _, se := range s.liveSessions() {
		if looksLikeID(id) && id15(se.id) == id15(id) {
			target = se
		}
	}
	if target == nil {
		writeRESTError(w, http.StatusNotFound, "NOT_FOUND", "The requested resource does not exist")
		return
	}
	if target.userKey != strings.ToLower(c.user.Username) && !s.hasPermission(c.user, PermManageUsers) {
		writeRESTError(w, http.StatusForbidden, "INSUFFICIENT_ACCESS", "insufficient access rights on object id")
		return
	}
	if r.Method != http.MethodDelete {
		writeJSON(w, http.StatusOK, s.authSessionRow(target, c.se).fullRecord(authSessionSchema, c.version))
		return
	}
	for tok, se := range s.sessions {
		if se.id == target.id || se.parentID == target.id {
			delete(s.sessions, tok)
		}
	}
	w.WriteHeader(http.StatusNoContent)
}

// SessionIDs lists the AuthSession ids of the user's live sessions,
// oldest first.
func (s *Server) SessionIDs(username string) []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	for _, se := range s.liveSessions() {
		if se.userKey == strings.ToLower(username) {
			out = append(out, se.id)
		}
	}
	return out
}
