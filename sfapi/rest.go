package sfapi

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"time"
	"unicode/utf8"
)

// REST API calls made with a session (Authorization: Bearer).

// restCall sends one REST request with the session and returns the answer
// when its status is one of ok; anything else becomes a *Error.
func (c *Client) restCall(ctx context.Context, op string, s *Session, method, path string, query url.Values, payload any, ok ...int) (*clientHTTPResponse, *Error) {
	if e := checkClientSession(op, s); e != nil {
		return nil, e
	}
	header := http.Header{
		"Authorization": {"Bearer " + s.AccessToken},
		"Accept":        {"application/json"},
	}
	var body []byte
	if payload != nil {
		var err error
		if body, err = json.Marshal(payload); err != nil {
			return nil, &Error{Op: op, Message: "cannot encode request", Kind: KindOther}
		}
		header.Set("Content-Type", "application/json")
	}
	base, ierr := c.instanceBase(op, s)
	if ierr != nil {
		return nil, ierr
	}
	target := base + "/services/data/v" + c.cfg.APIVersion + path
	if len(query) > 0 {
		target += "?" + query.Encode()
	}
	resp, herr := c.do(ctx, op, method, target, header, body)
	if herr != nil {
		return nil, herr
	}
	for _, st := range ok {
		if resp.status == st {
			return resp, nil
		}
	}
	return nil, restAPIError(op, resp)
}

// restAPIError reads Salesforce's REST error array [{"message","errorCode"}]
// (or, from OAuth endpoints, {"error","error_description"}). The raw body is
// never quoted.
func restAPIError(op string, resp *clientHTTPResponse) *Error {
	code, msg := parseRESTErrorBody(resp.body)
	kind := kindForSalesforceCode(code)
	switch {
	case resp.status == http.StatusUnauthorized:
		kind = KindSession
	case kind == KindOther:
		kind = kindForHTTPStatus(resp.status)
	}
	e := &Error{Op: op, Code: code, Message: msg, HTTPStatus: resp.status, Kind: kind}
	if code == "" && msg == "" {
		e.Message = httpStatusError(op, resp.status).Message
	}
	return e
}

func parseRESTErrorBody(body []byte) (code, msg string) {
	var arr []struct {
		Message   string `json:"message"`
		ErrorCode string `json:"errorCode"`
	}
	if json.Unmarshal(body, &arr) == nil && len(arr) > 0 {
		return arr[0].ErrorCode, arr[0].Message
	}
	var obj struct {
		Message          string `json:"message"`
		ErrorCode        string `json:"errorCode"`
		Error            string `json:"error"`
		ErrorDescription string `json:"error_description"`
	}
	if json.Unmarshal(body, &obj) == nil {
		if obj.ErrorCode != "" {
			return obj.ErrorCode, obj.Message
		}
		return obj.Error, obj.ErrorDescription
	}
	return "", ""
}

// SetPassword sets a user's password with an admin session.
func (c *Client) SetPassword(ctx context.Context, admin *Session, userID, newPassword string) (err error) {
	const op = "set password"
	defer scrubSecrets(&err, newPassword, sessionSecret(admin))
	if e := checkSalesforceID(op, userID); e != nil {
		return e
	}
	// json.Marshal would replace invalid UTF-8, setting another password
	// than the caller keeps.
	if !utf8.ValidString(newPassword) {
		return &Error{Op: op, Message: "password is not valid UTF-8", Kind: KindPassword}
	}
	payload := struct {
		NewPassword string `json:"NewPassword"`
	}{newPassword}
	if _, e := c.restCall(ctx, op, admin, http.MethodPost, "/sobjects/User/"+userID+"/password", nil, payload,
		http.StatusNoContent, http.StatusOK); e != nil {
		return e
	}
	return nil
}

// PasswordExpired reads isExpired from the user's password resource.
func (c *Client) PasswordExpired(ctx context.Context, admin *Session, userID string) (expired bool, err error) {
	const op = "read password expiry"
	defer scrubSecrets(&err, sessionSecret(admin))
	if e := checkSalesforceID(op, userID); e != nil {
		return false, e
	}
	resp, e := c.restCall(ctx, op, admin, http.MethodGet, "/sobjects/User/"+userID+"/password", nil, nil, http.StatusOK)
	if e != nil {
		return false, e
	}
	var body struct {
		IsExpired *bool `json:"isExpired"`
	}
	if json.Unmarshal(resp.body, &body) != nil || body.IsExpired == nil {
		return false, &Error{Op: op, Message: "unreadable password resource", HTTPStatus: resp.status, Kind: KindOther}
	}
	return *body.IsExpired, nil
}

// PasswordChangedAt reads the user's LastPasswordChangeDate: when
// Salesforce last set the user's password, by Salesforce's clock (zero
// when it never was). Comparing two readings tells whether the password
// changed in between without a login as the user.
func (c *Client) PasswordChangedAt(ctx context.Context, admin *Session, userID string) (at time.Time, err error) {
	const op = "read password change date"
	defer scrubSecrets(&err, sessionSecret(admin))
	if e := checkSalesforceID(op, userID); e != nil {
		return time.Time{}, e
	}
	qr, e := c.query(ctx, op, admin, "SELECT LastPasswordChangeDate FROM User WHERE Id = "+soqlQuote(userID))
	if e != nil {
		return time.Time{}, e
	}
	if len(qr.Records) == 0 {
		return time.Time{}, &Error{Op: op, Code: "NOT_FOUND", Message: "no user with id " + userID, Kind: KindNotFound}
	}
	var rec struct {
		LastPasswordChangeDate *string `json:"LastPasswordChangeDate"`
	}
	if err := json.Unmarshal(qr.Records[0], &rec); err != nil {
		return time.Time{}, &Error{Op: op, Message: "unreadable User record", Kind: KindOther}
	}
	if rec.LastPasswordChangeDate == nil {
		return time.Time{}, nil
	}
	at, perr := time.Parse(sfDateTimeLayout, *rec.LastPasswordChangeDate)
	if perr != nil {
		return time.Time{}, &Error{Op: op, Message: "unreadable LastPasswordChangeDate", Kind: KindOther}
	}
	return at.UTC(), nil
}

// sfDateTimeLayout is how the REST API writes a dateTime.
const sfDateTimeLayout = "2006-01-02T15:04:05.000-0700"

// soqlQuote quotes s as a SOQL string literal, escaping what the SOQL
// reference lists for quoted strings.
func soqlQuote(s string) string {
	var b strings.Builder
	b.WriteByte('\'')
	for _, r := range s {
		switch r {
		case '\\':
			b.WriteString(`\\`)
		case '\'':
			b.WriteString(`\'`)
		case '"':
			b.WriteString(`\"`)
		case '\n':
			b.WriteString(`\n`)
		case '\r':
			b.WriteString(`\r`)
		case '\t':
			b.WriteString(`\t`)
		case '\b':
			b.WriteString(`\b`)
		case '\f':
			b.WriteString(`\f`)
		default:
			b.WriteRune(r)
		}
	}
	b.WriteByte('\'')
	return b.String()
}

// soqlQueryResult is the part of a query answer we read; records stay raw so
// each caller decodes its own fields.
type soqlQueryResult struct {
	TotalSize int               `json:"totalSize"`
	Done      bool              `json:"done"`
	Records   []json.RawMessage `json:"records"`
}

func (c *Client) query(ctx context.Context, op string, s *Session, soql string) (*soqlQueryResult, *Error) {
	resp, e := c.restCall(ctx, op, s, http.MethodGet, "/query", url.Values{"q": {soql}}, nil, http.StatusOK)
	if e != nil {
		return nil, e
	}
	var qr soqlQueryResult
	if err := json.Unmarshal(resp.body, &qr); err != nil {
		return nil, &Error{Op: op, Message: "unreadable query response", HTTPStatus: resp.status, Kind: KindOther}
	}
	return &qr, nil
}

// LookupUser finds a user by username.
func (c *Client) LookupUser(ctx context.Context, admin *Session, username string) (u *User, err error) {
	const op = "lookup user"
	defer scrubSecrets(&err, sessionSecret(admin))
	if username == "" {
		return nil, &Error{Op: op, Message: "no username", Kind: KindNotFound}
	}
	qr, e := c.query(ctx, op, admin, "SELECT Id, Username, Email, IsActive FROM User WHERE Username = "+soqlQuote(username))
	if e != nil {
		return nil, e
	}
	if len(qr.Records) == 0 {
		return nil, &Error{Op: op, Code: "NOT_FOUND", Message: "no user with username " + username, Kind: KindNotFound}
	}
	var rec struct {
		ID       string `json:"Id"`
		Username string `json:"Username"`
		Email    string `json:"Email"`
		IsActive bool   `json:"IsActive"`
	}
	// The id goes into later URL paths and is stored on the account, so
	// anything but a Salesforce id makes the record unreadable.
	if err := json.Unmarshal(qr.Records[0], &rec); err != nil || !sfIDPattern.MatchString(rec.ID) {
		return nil, &Error{Op: op, Message: "unreadable User record", Kind: KindOther}
	}
	return &User{ID: rec.ID, Username: rec.Username, Email: rec.Email, IsActive: rec.IsActive}, nil
}

// LoginLocked reads the user's UserLogin record.
func (c *Client) LoginLocked(ctx context.Context, admin *Session, userID string) (locked bool, userLoginID string, err error) {
	const op = "read login lock"
	defer scrubSecrets(&err, sessionSecret(admin))
	if e := checkSalesforceID(op, userID); e != nil {
		return false, "", e
	}
	qr, e := c.query(ctx, op, admin, "SELECT Id, IsPasswordLocked FROM UserLogin WHERE UserId = "+soqlQuote(userID))
	if e != nil {
		return false, "", e
	}
	if len(qr.Records) == 0 {
		return false, "", &Error{Op: op, Code: "NOT_FOUND", Message: "no UserLogin for user " + userID, Kind: KindNotFound}
	}
	var rec struct {
		ID               string `json:"Id"`
		IsPasswordLocked bool   `json:"IsPasswordLocked"`
	}
	if err := json.Unmarshal(qr.Records[0], &rec); err != nil || !sfIDPattern.MatchString(rec.ID) {
		return false, "", &Error{Op: op, Message: "unreadable UserLogin record", Kind: KindOther}
	}
	return rec.IsPasswordLocked, rec.ID, nil
}

// UnlockLogin clears UserLogin.IsPasswordLocked.
func (c *Client) UnlockLogin(ctx context.Context, admin *Session, userLoginID string) (err error) {
	const op = "unlock login"
	defer scrubSecrets(&err, sessionSecret(admin))
	if e := checkSalesforceID(op, userLoginID); e != nil {
		return e
	}
	payload := map[string]bool{"IsPasswordLocked": false}
	if _, e := c.restCall(ctx, op, admin, http.MethodPatch, "/sobjects/UserLogin/"+userLoginID, nil, payload,
		http.StatusNoContent, http.StatusOK); e != nil {
		return e
	}
	return nil
}

// Query runs a SOQL query and returns totalSize.
func (c *Client) Query(ctx context.Context, s *Session, soql string) (totalSize int, err error) {
	const op = "query"
	defer scrubSecrets(&err, sessionSecret(s))
	qr, e := c.query(ctx, op, s, soql)
	if e != nil {
		return 0, e
	}
	return qr.TotalSize, nil
}
