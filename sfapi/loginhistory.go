package sfapi

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// LoginHistory queries. Salesforce lets only Id, UserId, LoginTime,
// LoginType, LoginUrl, TlsProtocol, CipherSuite, CountryIso, NetworkId,
// AuthenticationServiceId and OptionsIsGet/Post appear in WHERE; Status,
// Application, ApiType, ApiVersion and SourceIp cannot be filtered, so the
// query filters by user and time only and callers group the rest.

// loginHistoryIDsPerQuery keeps each query's IN list, and so its URL,
// short.
const loginHistoryIDsPerQuery = 100

// LoginRecord is one LoginHistory row.
type LoginRecord struct {
	ID           string
	UserID       string
	LoginTime    time.Time
	LoginType    string
	LoginSubType string
	Application  string
	APIType      string
	APIVersion   string
	SourceIP     string
	Status       string
	LoginURL     string
}

type loginHistoryJSON struct {
	ID           string  `json:"Id"`
	UserID       string  `json:"UserId"`
	LoginTime    string  `json:"LoginTime"`
	LoginType    *string `json:"LoginType"`
	LoginSubType *string `json:"LoginSubType"`
	Application  *string `json:"Application"`
	APIType      *string `json:"ApiType"`
	APIVersion   *string `json:"ApiVersion"`
	SourceIP     *string `json:"SourceIp"`
	Status       *string `json:"Status"`
	LoginURL     *string `json:"LoginUrl"`
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

// queryPage is one page of a query answer.
type queryPage struct {
	Done           bool              `json:"done"`
	NextRecordsURL string            `json:"nextRecordsUrl"`
	Records        []json.RawMessage `json:"records"`
}

// LoginHistory returns the logins of the users since the given time,
// newest first, at most limit rows (0: no limit); truncated reports that
// more rows matched. The session's user needs Manage Users or Monitor
// Login History to see other users' rows.
func (c *Client) LoginHistory(ctx context.Context, s *Session, userIDs []string, since time.Time, limit int) (rows []LoginRecord, truncated bool, err error) {
	const op = "query login history"
	defer scrubSecrets(&err, sessionSecret(s))
	for _, id := range userIDs {
		if e := checkSalesforceID(op, id); e != nil {
			return nil, false, e
		}
	}
	for start := 0; start < len(userIDs); start += loginHistoryIDsPerQuery {
		ids := userIDs[start:min(start+loginHistoryIDsPerQuery, len(userIDs))]
		quoted := make([]string, len(ids))
		for i, id := range ids {
			quoted[i] = soqlQuote(id)
		}
		soql := "SELECT Id, UserId, LoginTime, LoginType, LoginSubType, Application, ApiType, ApiVersion, SourceIp, Status, LoginUrl " +
			"FROM LoginHistory WHERE UserId IN (" + strings.Join(quoted, ", ") + ") AND LoginTime >= " +
			since.UTC().Format("2006-01-02T15:04:05Z") + " ORDER BY LoginTime DESC"
		remaining := 0
		if limit > 0 {
			if remaining = limit - len(rows); remaining <= 0 {
				truncated = true
				break
			}
		}
		cut, e := c.queryAll(ctx, op, s, soql, remaining, func(raw json.RawMessage) bool {
			var j loginHistoryJSON
			if json.Unmarshal(raw, &j) != nil || j.ID == "" {
				return false
			}
			rows = append(rows, LoginRecord{ID: j.ID, UserID: j.UserID, LoginTime: parseSalesforceTime(j.LoginTime),
				LoginType: deref(j.LoginType), LoginSubType: deref(j.LoginSubType), Application: deref(j.Application),
				APIType: deref(j.APIType), APIVersion: deref(j.APIVersion), SourceIP: deref(j.SourceIP),
				Status: deref(j.Status), LoginURL: deref(j.LoginURL)})
			return true
		})
		if e != nil {
			return nil, false, e
		}
		if cut {
			truncated = true
			break
		}
	}
	return rows, truncated, nil
}

// UserIDs looks up users by username and returns their ids by username
// (lower case); usernames no user has are left out.
func (c *Client) UserIDs(ctx context.Context, s *Session, usernames []string) (ids map[string]string, err error) {
	const op = "look up users"
	defer scrubSecrets(&err, sessionSecret(s))
	ids = map[string]string{}
	for start := 0; start < len(usernames); start += loginHistoryIDsPerQuery {
		names := usernames[start:min(start+loginHistoryIDsPerQuery, len(usernames))]
		quoted := make([]string, len(names))
		for i, n := range names {
			quoted[i] = soqlQuote(n)
		}
		soql := "SELECT Id, Username FROM User WHERE Username IN (" + strings.Join(quoted, ", ") + ")"
		_, e := c.queryAll(ctx, op, s, soql, 0, func(raw json.RawMessage) bool {
			var rec struct {
				ID       string `json:"Id"`
				Username string `json:"Username"`
			}
			if json.Unmarshal(raw, &rec) != nil || rec.ID == "" {
				return false
			}
			ids[strings.ToLower(rec.Username)] = rec.ID
			return true
		})
		if e != nil {
			return nil, e
		}
	}
	return ids, nil
}

// queryAll runs a query and follows nextRecordsUrl, handing each record
// to add (false: unreadable record, an error). It stops after limit
// records (0: no limit) and then reports cut when more were left.
func (c *Client) queryAll(ctx context.Context, op string, s *Session, soql string, limit int, add func(json.RawMessage) bool) (cut bool, e *Error) {
	n := 0
	resp, e := c.restCall(ctx, op, s, http.MethodGet, "/query", url.Values{"q": {soql}}, nil, http.StatusOK)
	for e == nil {
		var page queryPage
		if json.Unmarshal(resp.body, &page) != nil {
			return false, &Error{Op: op, Message: "unreadable query response", HTTPStatus: resp.status, Kind: KindOther}
		}
		for _, raw := range page.Records {
			if limit > 0 && n >= limit {
				return true, nil
			}
			if !add(raw) {
				return false, &Error{Op: op, Message: "unreadable record in query response", HTTPStatus: resp.status, Kind: KindOther}
			}
			n++
		}
		if page.Done || page.NextRecordsURL == "" {
			return false, nil
		}
		if limit > 0 && n >= limit {
			return true, nil
		}
		next, ok := nextRecordsPath(page.NextRecordsURL)
		if !ok {
			return false, &Error{Op: op, Message: "unexpected nextRecordsUrl in query response", HTTPStatus: resp.status, Kind: KindOther}
		}
		resp, e = c.restCall(ctx, op, s, http.MethodGet, next, nil, nil, http.StatusOK)
	}
	return false, e
}

// nextRecordsPath turns a nextRecordsUrl (/services/data/vNN.N/query/…)
// into a path below the client's REST base; anything else is refused so a
// response cannot send the session elsewhere.
func nextRecordsPath(raw string) (string, bool) {
	if strings.ContainsAny(raw, "?#") || strings.Contains(raw, "..") || strings.Contains(raw, "//") {
		return "", false
	}
	rest, ok := strings.CutPrefix(raw, "/services/data/v")
	if !ok {
		return "", false
	}
	_, tail, ok := strings.Cut(rest, "/")
	if !ok || !strings.HasPrefix(tail, "query/") {
		return "", false
	}
	return "/" + tail, true
}
