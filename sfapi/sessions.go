package sfapi

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"time"
)

// Ending what a credential opened: a user's sessions (AuthSession, which an
// administrator with Manage Users may query and delete) and the OAuth
// grants apps hold for the user (OauthToken rows, query only; each
// DeleteToken is revoked at /services/oauth2/revoke). Wire facts:
// salesforce-api-2026.md §3.

// AuthSession is one of a user's sessions.
type AuthSession struct {
	ID          string
	SessionType string
	LoginType   string
	SourceIP    string
	CreatedDate time.Time
}

// OAuthGrant is one OauthToken row: an app's refresh token for a user.
// DeleteToken revokes it (and its access tokens) through Revoke; it is a
// secret and never appears in errors or logs.
type OAuthGrant struct {
	AppName     string
	UseCount    int
	LastUsed    time.Time
	DeleteToken string
}

// maxQueryRows bounds how many rows a query follows through nextRecordsUrl.
const maxQueryRows = 10000

// sfDateTime parses Salesforce's JSON dateTime (2026-11-30T06:46:27.805+0000).
func sfDateTime(s string) time.Time {
	for _, layout := range []string{"2006-01-02T15:04:05.000-0700", time.RFC3339Nano} {
		if t, err := time.Parse(layout, s); err == nil {
			return t.UTC()
		}
	}
	return time.Time{}
}

// queryRecords runs a SOQL query and returns its records, following
// nextRecordsUrl (queryAll) up to maxQueryRows records.
func (c *Client) queryRecords(ctx context.Context, op string, s *Session, soql string) ([]json.RawMessage, *Error) {
	var records []json.RawMessage
	_, e := c.queryAll(ctx, op, s, soql, maxQueryRows, func(raw json.RawMessage) bool {
		records = append(records, raw)
		return true
	})
	if e != nil {
		return nil, e
	}
	return records, nil
}

// UserSessions lists the user's sessions outside the caller's own session
// family (IsCurrent = false), oldest first. The caller needs Manage Users
// to see another user's sessions.
func (c *Client) UserSessions(ctx context.Context, admin *Session, userID string) (out []AuthSession, err error) {
	const op = "list user sessions"
	defer scrubSecrets(&err, sessionSecret(admin))
	if e := checkSalesforceID(op, userID); e != nil {
		return nil, e
	}
	records, e := c.queryRecords(ctx, op, admin, "SELECT Id, SessionType, LoginType, SourceIp, CreatedDate FROM AuthSession WHERE UsersId = "+
		soqlQuote(userID)+" AND IsCurrent = false ORDER BY CreatedDate ASC")
	if e != nil {
		return nil, e
	}
	for _, raw := range records {
		var rec struct {
			ID          string `json:"Id"`
			SessionType string `json:"SessionType"`
			LoginType   string `json:"LoginType"`
			SourceIP    string `json:"SourceIp"`
			CreatedDate string `json:"CreatedDate"`
		}
		if json.Unmarshal(raw, &rec) != nil || rec.ID == "" {
			return nil, &Error{Op: op, Message: "unreadable AuthSession record", Kind: KindOther}
		}
		out = append(out, AuthSession{ID: rec.ID, SessionType: rec.SessionType, LoginType: rec.LoginType,
			SourceIP: rec.SourceIP, CreatedDate: sfDateTime(rec.CreatedDate)})
	}
	return out, nil
}

// CurrentSessionIDs lists the AuthSession ids of s's own session family
// (IsCurrent = true), asked with s itself: how a caller learns which
// sessions are its own.
func (c *Client) CurrentSessionIDs(ctx context.Context, s *Session) (ids []string, err error) {
	const op = "list own sessions"
	defer scrubSecrets(&err, sessionSecret(s))
	records, e := c.queryRecords(ctx, op, s, "SELECT Id FROM AuthSession WHERE IsCurrent = true")
	if e != nil {
		return nil, e
	}
	for _, raw := range records {
		var rec struct {
			ID string `json:"Id"`
		}
		if json.Unmarshal(raw, &rec) != nil || rec.ID == "" {
			return nil, &Error{Op: op, Message: "unreadable AuthSession record", Kind: KindOther}
		}
		ids = append(ids, rec.ID)
	}
	return ids, nil
}

// EndSession deletes one AuthSession. A session already gone (404: it
// ended, or deleting its parent ended it) counts as ended.
func (c *Client) EndSession(ctx context.Context, admin *Session, sessionID string) (err error) {
	const op = "end session"
	defer scrubSecrets(&err, sessionSecret(admin))
	if e := checkSalesforceID(op, sessionID); e != nil {
		return e
	}
	if _, e := c.restCall(ctx, op, admin, http.MethodDelete, "/sobjects/AuthSession/"+url.PathEscape(sessionID), nil, nil,
		http.StatusNoContent, http.StatusOK, http.StatusNotFound); e != nil {
		return e
	}
	return nil
}

// UserOAuthGrants lists the OAuth grants (refresh tokens) apps hold for the
// user. The caller needs Customize Application to see another user's.
func (c *Client) UserOAuthGrants(ctx context.Context, admin *Session, userID string) (out []OAuthGrant, err error) {
	const op = "list user oauth tokens"
	defer scrubSecrets(&err, sessionSecret(admin))
	if e := checkSalesforceID(op, userID); e != nil {
		return nil, e
	}
	records, e := c.queryRecords(ctx, op, admin, "SELECT AppName, UseCount, LastUsedDate, DeleteToken FROM OauthToken WHERE UserId = "+soqlQuote(userID))
	if e != nil {
		return nil, e
	}
	for _, raw := range records {
		var rec struct {
			AppName      string  `json:"AppName"`
			UseCount     float64 `json:"UseCount"`
			LastUsedDate string  `json:"LastUsedDate"`
			DeleteToken  string  `json:"DeleteToken"`
		}
		if json.Unmarshal(raw, &rec) != nil {
			return nil, &Error{Op: op, Message: "unreadable OauthToken record", Kind: KindOther}
		}
		if rec.DeleteToken == "" {
			continue
		}
		out = append(out, OAuthGrant{AppName: rec.AppName, UseCount: int(rec.UseCount), LastUsed: sfDateTime(rec.LastUsedDate), DeleteToken: rec.DeleteToken})
	}
	return out, nil
}
