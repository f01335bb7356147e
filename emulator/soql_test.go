package emulator

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"
)

// queryAs runs a SOQL query through the REST query resource.
func queryAs(t *testing.T, s *Server, token, q string) (int, string) {
	t.Helper()
	resp, body := restDo(t, "GET", s.MyDomainURL()+"/services/data/v66.0/query?q="+url.QueryEscape(q), token, "")
	return resp.StatusCode, body
}

type queryResult struct {
	TotalSize      int              `json:"totalSize"`
	Done           bool             `json:"done"`
	NextRecordsURL string           `json:"nextRecordsUrl"`
	Records        []map[string]any `json:"records"`
}

func mustQuery(t *testing.T, s *Server, token, q string) queryResult {
	t.Helper()
	status, body := queryAs(t, s, token, q)
	if status != 200 {
		t.Fatalf("%s: %d %s", q, status, body)
	}
	var out queryResult
	if err := json.Unmarshal([]byte(body), &out); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	return out
}

// widgetSeed is the demo org with n Widget records: Name W0001…, Size i,
// Active for even i, Color red/blue/(none).
func widgetSeed(n int) *Seed {
	seed := DefaultSeed()
	var recs []map[string]any
	for i := 1; i <= n; i++ {
		rec := map[string]any{"Id": id18(fmt.Sprintf("a00AC%010d", i)), "Name": fmt.Sprintf("W%04d", i),
			"Size": float64(i), "Active": i%2 == 0}
		switch i % 3 {
		case 0:
			rec["Color"] = "red"
		case 1:
			rec["Color"] = "blue"
		}
		recs = append(recs, rec)
	}
	seed.Org.Records["Widget__c"] = recs
	return seed
}

func names(res queryResult) string {
	var out []string
	for _, r := range res.Records {
		out = append(out, fmt.Sprint(r["Name"]))
	}
	return strings.Join(out, ",")
}

func TestSOQLWhereOrderLimit(t *testing.T) {
	s := NewTestServer(t, widgetSeed(9))
	tok := mustPasswordGrant(t, s, adminUser, adminPass+adminTok)
	for _, tc := range []struct {
		q, want string
	}{
		{"SELECT Name FROM Widget__c WHERE Name = 'w0003'", "W0003"}, // strings compare case-insensitively
		{"SELECT Name FROM Widget__c WHERE Name IN ('W0001', 'W0004', 'nope')", "W0001,W0004"},
		{"SELECT Name FROM Widget__c WHERE Name NOT IN ('W0001','W0002','W0003','W0004','W0005')", "W0006,W0007,W0008,W0009"},
		{"SELECT Name FROM Widget__c WHERE Size >= 8", "W0008,W0009"},
		{"SELECT Name FROM Widget__c WHERE Size < 2.5 OR Size > 8", "W0001,W0002,W0009"},
		{"SELECT Name FROM Widget__c WHERE Active = true AND (Color = 'red' OR Color = null)", "W0002,W0006,W0008"},
		{"SELECT Name FROM Widget__c WHERE NOT Color = 'blue' AND Size <= 3", "W0002,W0003"},
		{"SELECT Name FROM Widget__c WHERE Color != 'blue' AND Size <= 3", "W0002,W0003"}, // != keeps nulls
		{"SELECT Name FROM Widget__c WHERE Name LIKE 'W000_' AND Name LIKE '%9'", "W0009"},
		{"SELECT Name FROM Widget__c ORDER BY Size DESC LIMIT 3", "W0009,W0008,W0007"},
		{"SELECT Name FROM Widget__c ORDER BY Size LIMIT 2 OFFSET 4", "W0005,W0006"},
		{"SELECT Name FROM Widget__c ORDER BY Color, Size DESC LIMIT 4", "W0008,W0005,W0002,W0007"}, // nulls first ascending
		{"SELECT Name FROM Widget__c ORDER BY Color NULLS LAST, Name LIMIT 2", "W0001,W0004"},
		{"select name from widget__c where size = 1", "W0001"}, // keywords and names are case-insensitive
	} {
		if got := names(mustQuery(t, s, tok, tc.q)); got != tc.want {
			t.Errorf("%s\n got %s\nwant %s", tc.q, got, tc.want)
		}
	}
	// SELECT COUNT() answers the count with no records.
	res := mustQuery(t, s, tok, "SELECT COUNT() FROM Widget__c WHERE Active = false")
	if res.TotalSize != 5 || len(res.Records) != 0 || !res.Done {
		t.Errorf("COUNT(): %+v", res)
	}
	// Field names come back canonical, in SELECT order.
	_, body := queryAs(t, s, tok, "SELECT size, NAME FROM Widget__c WHERE Name = 'W0002'")
	if !strings.Contains(body, `"Size":2,"Name":"W0002"`) {
		t.Errorf("canonical names: %s", body)
	}
}

func TestSOQLErrorsLikeSalesforce(t *testing.T) {
	s := NewTestServer(t, widgetSeed(2))
	tok := mustPasswordGrant(t, s, adminUser, adminPass+adminTok)
	for _, tc := range []struct {
		q, code, msg string
	}{
		{"SELECT Idd FROM Account", "INVALID_FIELD",
			"\nSELECT Idd FROM Account\n       ^\nERROR at Row:1:Column:8\nNo such column 'Idd' on entity 'Account'. If you are attempting to use a custom field, be sure to append the '__c' after the custom field name. Please reference your WSDL or the describe call for the appropriate names."},
		{"SELECT Id FROM Acount", "INVALID_TYPE",
			"\nSELECT Id FROM Acount\n               ^\nERROR at Row:1:Column:16\nsObject type 'Acount' is not supported. If you are attempting to use a custom object, be sure to append the '__c' after the entity name. Please reference your WSDL or the describe call for the appropriate names."},
		{"SELECT Id FROM User WHERE", "MALFORMED_QUERY", "\nSELECT Id FROM User WHERE\n                         ^\nERROR at Row:1:Column:26\nunexpected token: '<EOF>'"},
		{"SELECT Id FROM User WHERE IsActive = 'true'", "INVALID_FIELD",
			"\nSELECT Id FROM User WHERE IsActive = 'true'\n                                     ^\nERROR at Row:1:Column:38\nvalue of filter criterion for field 'IsActive' must be of type boolean and should not be enclosed in quotes"},
		{"SELECT Id FROM User WHERE LastPasswordChangeDate > '2026-01-01'", "INVALID_FIELD", "must be of type dateTime and should not be enclosed in quotes"},
		{"SELECT Id FROM Widget__c WHERE Name = 5", "INVALID_FIELD", "must be of type string and should be enclosed in quotes"},
		{"SELECT Id FROM User WHERE Id = 'abc'", "INVALID_QUERY_FILTER_OPERATOR", "invalid ID field: abc"},
		{"SELECT Id FROM User WHERE Profile.Nme = 'x'", "INVALID_FIELD", "No such column 'Nme' on entity 'Profile'"},
		{"SELECT Id, Profil.Name FROM User", "INVALID_FIELD", "Didn't understand relationship 'Profil' in field path"},
		{"SELECT Id FROM Account OFFSET 2001", "NUMBER_OUTSIDE_VALID_RANGE", "Maximum SOQL offset allowed is 2000"},
		{"SELECT Id, id FROM Account", "INVALID_FIELD", "duplicate field selected: Id"},
		{"DELETE everything", "MALFORMED_QUERY", "unexpected token: 'DELETE'"},
		{"SELECT Id FROM User WHERE Username = 'unterminated", "MALFORMED_QUERY", "expecting '''"},
	} {
		status, body := queryAs(t, s, tok, tc.q)
		var errs []restError
		if err := json.Unmarshal([]byte(body), &errs); err != nil || status != 400 || len(errs) != 1 {
			t.Errorf("%s: %d %s", tc.q, status, body)
			continue
		}
		if errs[0].ErrorCode != tc.code || !strings.Contains(errs[0].Message, tc.msg) {
			t.Errorf("%s:\n got %s %q\nwant %s containing %q", tc.q, errs[0].ErrorCode, errs[0].Message, tc.code, tc.msg)
		}
	}
	resp, body := restDo(t, "GET", s.MyDomainURL()+"/services/data/v66.0/query", tok, "")
	if resp.StatusCode != 400 || body != `[{"message":"A query string has to be specified","errorCode":"MALFORMED_QUERY"}]`+"\n" {
		t.Errorf("no q: %d %s", resp.StatusCode, body)
	}
}

func TestSOQLRelationshipFields(t *testing.T) {
	s := NewTestServer(t, nil)
	tok := mustPasswordGrant(t, s, adminUser, adminPass+adminTok)
	_, body := queryAs(t, s, tok, "SELECT Username, Profile.Name, ProfileId FROM User WHERE Profile.Name = 'system administrator'")
	want := `"Username":"admin@acme.demo","Profile":{"attributes":{"type":"Profile","url":"/services/data/v66.0/sobjects/Profile/00e5g000000SysAAAS"},"Name":"System Administrator"},"ProfileId":"00e5g000000SysAAAS"`
	if !strings.Contains(body, want) || !strings.Contains(body, `"totalSize":1`) {
		t.Errorf("got %s\nwant it to contain %s", body, want)
	}
}

func TestSOQLDateLiterals(t *testing.T) {
	now := time.Date(2026, 5, 10, 15, 30, 0, 0, time.UTC)
	day := func(d int, hour int) time.Time { return time.Date(2026, 5, d, hour, 0, 0, 0, time.UTC) }
	for _, tc := range []struct {
		lit        string
		start, end time.Time
	}{
		{"TODAY", day(10, 0), day(11, 0)},
		{"YESTERDAY", day(9, 0), day(10, 0)},
		{"TOMORROW", day(11, 0), day(12, 0)},
		{"LAST_N_DAYS:1", day(9, 0), day(11, 0)},
		{"LAST_N_DAYS:7", day(3, 0), day(11, 0)},
		{"NEXT_N_DAYS:2", day(11, 0), day(13, 0)},
		{"N_DAYS_AGO:3", day(7, 0), day(8, 0)},
	} {
		p := &soqlParser{toks: []soqlToken{{tkIdent, tc.lit, 0}, {tkEOF, "", 0}}}
		v, err := p.parseValue()
		if err != nil {
			t.Fatalf("%s: %v", tc.lit, err.msg)
		}
		start, end := dateRange(v, now)
		if !start.Equal(tc.start) || !end.Equal(tc.end) {
			t.Errorf("%s: [%s, %s), want [%s, %s)", tc.lit, start, end, tc.start, tc.end)
		}
	}
}

func TestSOQLDateTimeFilter(t *testing.T) {
	s := NewTestServer(t, nil)
	clock := newFakeClock(s)
	clock.Advance(48 * time.Hour)
	tok := mustPasswordGrant(t, s, adminUser, adminPass+adminTok)
	rotateIntegPassword(t, s, "Integ-Pass-5678")
	changed := clock.Now().UTC()
	q := func(cond string) string {
		return names2(mustQuery(t, s, tok, "SELECT Username FROM User WHERE "+cond+" ORDER BY Username"))
	}
	if got := q("LastPasswordChangeDate = TODAY"); got != integUser {
		t.Errorf("TODAY: %q", got)
	}
	if got := q("LastPasswordChangeDate < LAST_N_DAYS:1"); !strings.Contains(got, adminUser) || strings.Contains(got, integUser) {
		t.Errorf("< LAST_N_DAYS:1: %q", got)
	}
	at := changed.Format("2006-01-02T15:04:05Z")
	if got := q("LastPasswordChangeDate >= " + at); got != integUser {
		t.Errorf(">= %s: %q", at, got)
	}
	before := changed.Add(-time.Hour).Format("2006-01-02T15:04:05.000+00:00")
	if got := q("LastPasswordChangeDate <= " + before); strings.Contains(got, integUser) || got == "" {
		t.Errorf("<= %s: %q", before, got)
	}
}

func names2(res queryResult) string {
	var out []string
	for _, r := range res.Records {
		out = append(out, fmt.Sprint(r["Username"]))
	}
	return strings.Join(out, ",")
}

// Results beyond a batch (2000 by default) come in pages linked by
// nextRecordsUrl, as Salesforce's query locators.
func TestSOQLPagination(t *testing.T) {
	s := NewTestServer(t, widgetSeed(4100))
	clock := newFakeClock(s)
	tok := mustPasswordGrant(t, s, adminUser, adminPass+adminTok)
	first := mustQuery(t, s, tok, "SELECT Name FROM Widget__c ORDER BY Size")
	if first.TotalSize != 4100 || first.Done || len(first.Records) != 2000 ||
		!strings.HasPrefix(first.NextRecordsURL, "/services/data/v66.0/query/01g") || !strings.HasSuffix(first.NextRecordsURL, "-2000") {
		t.Fatalf("first page: total %d done %v records %d next %q", first.TotalSize, first.Done, len(first.Records), first.NextRecordsURL)
	}
	// Another user cannot follow the locator.
	integ := mustPasswordGrant(t, s, integUser, integPass+integTok)
	if resp, body := restDo(t, "GET", s.MyDomainURL()+first.NextRecordsURL, integ, ""); resp.StatusCode != 400 || restErrorCode(t, body) != "INVALID_QUERY_LOCATOR" {
		t.Fatalf("other user: %d %s", resp.StatusCode, body)
	}
	var all []string
	all = append(all, strings.Split(names(first), ",")...)
	next := first.NextRecordsURL
	for next != "" {
		resp, body := restDo(t, "GET", s.MyDomainURL()+next, tok, "")
		var page queryResult
		if err := json.Unmarshal([]byte(body), &page); err != nil || resp.StatusCode != 200 {
			t.Fatalf("%s: %d %s", next, resp.StatusCode, body)
		}
		if page.TotalSize != 4100 {
			t.Errorf("page totalSize %d", page.TotalSize)
		}
		all = append(all, strings.Split(names(page), ",")...)
		if page.Done != (page.NextRecordsURL == "") {
			t.Fatalf("done %v with next %q", page.Done, page.NextRecordsURL)
		}
		next = page.NextRecordsURL
	}
	if len(all) != 4100 || all[0] != "W0001" || all[2000] != "W2001" || all[4099] != "W4100" {
		t.Fatalf("%d records, %s … %s", len(all), all[0], all[len(all)-1])
	}
	// A finished locator is gone.
	if resp, _ := restDo(t, "GET", s.MyDomainURL()+first.NextRecordsURL, tok, ""); resp.StatusCode != 400 {
		t.Errorf("finished locator: %d", resp.StatusCode)
	}
	// The batch size header is honoured within 200..2000.
	req, _ := http.NewRequest("GET", s.MyDomainURL()+"/services/data/v66.0/query?q="+url.QueryEscape("SELECT Id FROM Widget__c"), nil)
	req.Header.Set("Authorization", "Bearer "+tok)
	req.Header.Set("Sforce-Query-Options", "batchSize=50")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var small queryResult
	_ = json.NewDecoder(resp.Body).Decode(&small)
	resp.Body.Close()
	if len(small.Records) != 200 || !strings.HasSuffix(small.NextRecordsURL, "-200") {
		t.Errorf("batchSize=50: %d records, next %q", len(small.Records), small.NextRecordsURL)
	}
	// A locator idle for 15 minutes expires.
	clock.Advance(15 * time.Minute)
	if resp, body := restDo(t, "GET", s.MyDomainURL()+small.NextRecordsURL, tok, ""); resp.StatusCode != 400 || restErrorCode(t, body) != "INVALID_QUERY_LOCATOR" {
		t.Errorf("idle locator: %d %s", resp.StatusCode, body)
	}
}
