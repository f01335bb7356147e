package emulator

import (
	"bytes"
	"fmt"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"time"
)

// sfDateTime is how REST renders a dateTime field.
const sfDateTime = "2006-01-02T15:04:05.000+0000"

// field is one column of a record, kept in SELECT order.
type field struct {
	name  string
	value any
}

// record marshals with "attributes" first and fields in order, like
// Salesforce. A relationship field's value is a nested record (or nil).
type record struct {
	typ, url string
	fields   []field
}

func (r record) MarshalJSON() ([]byte, error) {
	var b bytes.Buffer
	b.WriteString(`{"attributes":{"type":`)
	t, _ := marshalJSON(r.typ)
	b.Write(t)
	if r.url != "" {
		u, _ := marshalJSON(r.url)
		b.WriteString(`,"url":`)
		b.Write(u)
	}
	b.WriteByte('}')
	for _, f := range r.fields {
		k, _ := marshalJSON(f.name)
		v, err := marshalJSON(f.value)
		if err != nil {
			return nil, err
		}
		b.WriteByte(',')
		b.Write(k)
		b.WriteByte(':')
		b.Write(v)
	}
	b.WriteByte('}')
	return b.Bytes(), nil
}

// row is a full record before projection. A relationship's value is a
// *row (nil when empty); dateTimes are time.Time.
type row struct {
	typ    string
	id     string
	values map[string]any // canonical field name -> value
}

// wireValue renders a field value as REST does.
func wireValue(v any) any {
	switch t := v.(type) {
	case time.Time:
		if t.IsZero() {
			return nil
		}
		return t.UTC().Format(sfDateTime)
	case *row:
		if t == nil {
			return nil
		}
	}
	return v
}

func recordURL(version, typ, id string) string {
	return "/services/data/v" + version + "/sobjects/" + typ + "/" + id
}

// project renders the row with the selected paths, nesting relationship
// fields as Salesforce does ("Profile": {"attributes": …, "Name": …}).
func (r *row) project(obj *soqlObject, version string, paths [][]string) record {
	rec := record{typ: r.typ}
	if obj == nil || !obj.noURL {
		rec.url = recordURL(version, r.typ, r.id)
	}
	type group struct {
		index int
		paths [][]string
	}
	groups := map[string]*group{}
	var order []string
	for _, p := range paths {
		if len(p) == 1 {
			rec.fields = append(rec.fields, field{p[0], wireValue(r.values[p[0]])})
			continue
		}
		g := groups[p[0]]
		if g == nil {
			g = &group{index: len(rec.fields)}
			groups[p[0]] = g
			order = append(order, p[0])
			rec.fields = append(rec.fields, field{p[0], nil})
		}
		g.paths = append(g.paths, p[1:])
	}
	for _, rel := range order {
		g := groups[rel]
		if child, ok := r.values[rel].(*row); ok && child != nil {
			rec.fields[g.index].value = child.project(nil, version, g.paths)
		}
	}
	return rec
}

// fullRecord renders every field of the schema (a retrieve()).
func (r *row) fullRecord(obj *soqlObject, version string) record {
	v, _ := strconv.ParseFloat(version, 64)
	var paths [][]string
	for _, f := range obj.fields {
		if v >= f.since {
			paths = append(paths, []string{f.name})
		}
	}
	return r.project(obj, version, paths)
}

// Built-in schemas; soqlSchema adds the org's seeded record types.
var builtinSchemas = map[string]*soqlObject{
	"user": {name: "User", fields: []soqlField{
		{name: "Id", typ: ftID}, {name: "Username", typ: ftString}, {name: "Email", typ: ftString},
		{name: "FirstName", typ: ftString}, {name: "LastName", typ: ftString}, {name: "Name", typ: ftString},
		{name: "IsActive", typ: ftBool}, {name: "ProfileId", typ: ftID}, {name: "UserType", typ: ftPicklist},
		{name: "LastPasswordChangeDate", typ: ftDateTime},
	}, rels: []soqlRel{{"Profile", "Profile"}}},
	"userlogin": {name: "UserLogin", fields: []soqlField{
		{name: "Id", typ: ftID}, {name: "UserId", typ: ftID}, {name: "IsFrozen", typ: ftBool}, {name: "IsPasswordLocked", typ: ftBool},
	}},
	"organization": {name: "Organization", fields: []soqlField{{name: "Id", typ: ftID}, {name: "Name", typ: ftString}}},
	"profile":      {name: "Profile", fields: []soqlField{{name: "Id", typ: ftID}, {name: "Name", typ: ftString}}},
}

// soqlSchema returns the schema of an sObject type, nil if unknown.
// Caller holds s.mu.
func (s *Server) soqlSchema(name string) *soqlObject {
	switch strings.ToLower(name) {
	case "loginhistory":
		return loginHistorySchema
	case "authsession":
		return authSessionSchema
	case "oauthtoken":
		return oauthTokenSchema
	case "permissionset":
		return s.permissionSetSchema()
	case "permissionsetassignment":
		return permissionSetAssignmentSchema
	case "permissionsetgroup":
		return permissionSetGroupSchema
	}
	if o := builtinSchemas[strings.ToLower(name)]; o != nil {
		return o
	}
	for typ, recs := range s.org.Records {
		if !strings.EqualFold(typ, name) {
			continue
		}
		o := &soqlObject{name: typ, fields: []soqlField{{name: "Id", typ: ftID}}}
		seen := map[string]bool{"id": true}
		for _, rec := range recs {
			for _, k := range sortedKeys(rec) {
				if seen[strings.ToLower(k)] {
					continue
				}
				seen[strings.ToLower(k)] = true
				ft := ftString
				switch rec[k].(type) {
				case bool:
					ft = ftBool
				case float64:
					ft = ftNumber
				}
				o.fields = append(o.fields, soqlField{name: k, typ: ft})
			}
		}
		return o
	}
	return nil
}

func (s *Server) profileRow(p *Profile) *row {
	return &row{"Profile", p.ID, map[string]any{"Id": p.ID, "Name": p.Name}}
}

func (s *Server) userRow(u *User) *row {
	var profile *row
	profileID := ""
	if p := s.org.profile(u.Profile); p != nil {
		profileID = p.ID
		profile = s.profileRow(p)
	}
	return &row{"User", u.ID, map[string]any{
		"Id": u.ID, "Username": u.Username, "Email": u.Email, "IsActive": u.IsActive,
		"FirstName": u.FirstName, "LastName": u.LastName, "Name": strings.TrimSpace(u.FirstName + " " + u.LastName),
		"ProfileId": profileID, "Profile": profile, "UserType": "Standard",
		"LastPasswordChangeDate": u.PasswordChangedAt,
	}}
}

func (s *Server) userLoginRow(u *User) *row {
	return &row{"UserLogin", u.UserLoginID, map[string]any{
		"Id": u.UserLoginID, "UserId": u.ID, "IsPasswordLocked": s.locked(u), "IsFrozen": false,
	}}
}

func (s *Server) userRecord(u *User, version string) record {
	return s.userRow(u).fullRecord(builtinSchemas["user"], version)
}

func (s *Server) userLoginRecord(u *User, version string) record {
	return s.userLoginRow(u).fullRecord(builtinSchemas["userlogin"], version)
}

func sortedKeys(m map[string]any) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// sortedUsers lists users by username. Caller holds s.mu.
func (s *Server) sortedUsers() []*User {
	users := make([]*User, 0, len(s.users))
	for _, u := range s.users {
		users = append(users, u)
	}
	sort.Slice(users, func(i, j int) bool { return users[i].Username < users[j].Username })
	return users
}

// soqlRows returns the rows of an sObject type the caller may see.
// Caller holds s.mu.
func (s *Server) soqlRows(obj *soqlObject, c *restCall) []*row {
	var out []*row
	switch obj.name {
	case "User":
		for _, u := range s.sortedUsers() {
			out = append(out, s.userRow(u))
		}
		return out
	case "UserLogin":
		for _, u := range s.sortedUsers() {
			out = append(out, s.userLoginRow(u))
		}
		return out
	case "Organization":
		return []*row{{"Organization", s.org.ID, map[string]any{"Id": s.org.ID, "Name": s.org.Name}}}
	case "Profile":
		for i := range s.org.Profiles {
			out = append(out, s.profileRow(&s.org.Profiles[i]))
		}
		return out
	case "LoginHistory":
		return s.loginHistoryRows(c)
	case "AuthSession":
		return s.authSessionRows(c)
	case "OauthToken":
		return s.oauthTokenRows(c)
	case "PermissionSet":
		return s.permissionSetRows()
	case "PermissionSetAssignment":
		return s.permissionSetAssignmentRows()
	case "PermissionSetGroup":
		for i := range s.org.PermissionSetGroups {
			out = append(out, s.permissionSetGroupRow(&s.org.PermissionSetGroups[i]))
		}
		return out
	}
	for typ, recs := range s.org.Records {
		if typ != obj.name {
			continue
		}
		for _, rec := range recs {
			id, _ := rec["Id"].(string)
			values := map[string]any{"Id": id}
			for k, v := range rec {
				values[k] = v
			}
			out = append(out, &row{typ, id, values})
		}
	}
	return out
}

// queryResponse has Salesforce's field order.
type queryResponse struct {
	TotalSize      int      `json:"totalSize"`
	Done           bool     `json:"done"`
	NextRecordsURL string   `json:"nextRecordsUrl,omitempty"`
	Records        []record `json:"records"`
}

// queryCursor holds the rest of a result for nextRecordsUrl.
type queryCursor struct {
	id       string
	userKey  string
	version  string
	records  []record
	batch    int
	lastUsed time.Time
}

const (
	// cursorIdle: a query locator expires after 15 minutes unused.
	cursorIdle = 15 * time.Minute
	// cursorsPerUser: a user's oldest open cursor is dropped beyond 10.
	cursorsPerUser = 10
)

func writeQueryError(w http.ResponseWriter, q string, e *soqlError) {
	writeRESTError(w, http.StatusBadRequest, e.code, e.message(q))
}

// batchSize honours "Sforce-Query-Options: batchSize=N" (200 to 2000; a
// hint, as in Salesforce) within the object's own maximum.
func batchSize(r *http.Request, obj *soqlObject) int {
	limit := 2000
	if obj.batchSize > 0 {
		limit = obj.batchSize
	}
	for _, opt := range strings.Split(r.Header.Get("Sforce-Query-Options"), ",") {
		k, v, ok := strings.Cut(strings.TrimSpace(opt), "=")
		if n, err := strconv.Atoi(strings.TrimSpace(v)); ok && strings.EqualFold(strings.TrimSpace(k), "batchSize") && err == nil {
			return min(max(n, 200), limit)
		}
	}
	return limit
}

func (s *Server) restQuery(w *recorder, r *http.Request, c *restCall) {
	q := r.URL.Query().Get("q")
	if strings.TrimSpace(q) == "" {
		writeRESTError(w, http.StatusBadRequest, "MALFORMED_QUERY", "A query string has to be specified")
		return
	}
	version, _ := strconv.ParseFloat(c.version, 64)
	pq, perr := parseSOQL(q)
	if perr != nil {
		writeQueryError(w, q, perr)
		return
	}
	obj := s.soqlSchema(pq.object.text)
	if obj == nil {
		writeQueryError(w, q, &soqlError{"INVALID_TYPE", fmt.Sprintf("sObject type '%s' is not supported. If you are attempting to use a custom object, be sure to append the '__c' after the entity name. Please reference your WSDL or the describe call for the appropriate names.", pq.object.text), pq.object.pos})
		return
	}
	var paths [][]string
	seen := map[string]bool{}
	for _, f := range pq.fields {
		rp, err := s.resolvePath(obj, f, version)
		if err != nil {
			writeQueryError(w, q, err)
			return
		}
		key := strings.Join(rp.names, ".")
		if seen[key] {
			writeQueryError(w, q, &soqlError{"INVALID_FIELD", "duplicate field selected: " + key, f.pos})
			return
		}
		seen[key] = true
		paths = append(paths, rp.names)
	}
	if err := s.resolveWhere(obj, pq.where, version); err != nil {
		writeQueryError(w, q, err)
		return
	}
	var order []resolvedOrder
	for _, o := range pq.order {
		rp, err := s.resolvePath(obj, o.path, version)
		if err != nil {
			writeQueryError(w, q, err)
			return
		}
		order = append(order, resolvedOrder{rp.names, o.desc, o.nullsLast})
	}
	now := s.clock()
	var matched []*row
	for _, rw := range s.soqlRows(obj, c) {
		if pq.where == nil || pq.where.eval(rw, now) {
			matched = append(matched, rw)
		}
	}
	if len(order) > 0 {
		sort.SliceStable(matched, func(i, j int) bool { return orderLess(matched[i], matched[j], order) })
	}
	if pq.offset > 0 {
		matched = matched[min(pq.offset, len(matched)):]
	}
	if pq.limit >= 0 && len(matched) > pq.limit {
		matched = matched[:pq.limit]
	}
	if pq.count {
		writeJSON(w, http.StatusOK, queryResponse{TotalSize: len(matched), Done: true, Records: []record{}})
		return
	}
	records := make([]record, 0, len(matched))
	for _, rw := range matched {
		records = append(records, rw.project(obj, c.version, paths))
	}
	cur := &queryCursor{userKey: strings.ToLower(c.user.Username), version: c.version, records: records,
		batch: batchSize(r, obj), lastUsed: now}
	writeJSON(w, http.StatusOK, s.queryPage(cur, 0))
}

// queryPage answers the batch starting at offset, keeping the cursor
// while records remain. Caller holds s.mu.
func (s *Server) queryPage(cur *queryCursor, offset int) queryResponse {
	end := min(offset+cur.batch, len(cur.records))
	resp := queryResponse{TotalSize: len(cur.records), Done: end == len(cur.records), Records: cur.records[offset:end]}
	if resp.Done {
		if cur.id != "" {
			delete(s.cursors, cur.id)
		}
		return resp
	}
	if cur.id == "" {
		s.openCursor(cur)
	}
	resp.NextRecordsURL = "/services/data/v" + cur.version + "/query/" + cur.id + "-" + strconv.Itoa(end)
	return resp
}

// openCursor registers a cursor, expiring idle ones and the user's oldest
// beyond the per-user limit. Caller holds s.mu.
func (s *Server) openCursor(cur *queryCursor) {
	now := s.clock()
	var mine []*queryCursor
	for id, c := range s.cursors {
		if now.Sub(c.lastUsed) >= cursorIdle {
			delete(s.cursors, id)
			continue
		}
		if c.userKey == cur.userKey {
			mine = append(mine, c)
		}
	}
	if len(mine) >= cursorsPerUser {
		sort.Slice(mine, func(i, j int) bool { return mine[i].lastUsed.Before(mine[j].lastUsed) })
		for _, c := range mine[:len(mine)-cursorsPerUser+1] {
			delete(s.cursors, c.id)
		}
	}
	cur.id = newID("01g")
	s.cursors[cur.id] = cur
}

// restQueryMore serves nextRecordsUrl: query/{locator}-{offset}.
func (s *Server) restQueryMore(w *recorder, _ *http.Request, c *restCall) {
	id, off, ok := strings.Cut(c.path[1], "-")
	offset, err := strconv.Atoi(off)
	cur := s.cursors[id]
	if !ok || err != nil || cur == nil || cur.userKey != strings.ToLower(c.user.Username) ||
		offset <= 0 || offset >= len(cur.records) || s.clock().Sub(cur.lastUsed) >= cursorIdle {
		if cur != nil && s.clock().Sub(cur.lastUsed) >= cursorIdle {
			delete(s.cursors, id)
		}
		writeRESTError(w, http.StatusBadRequest, "INVALID_QUERY_LOCATOR", "invalid query locator")
		return
	}
	cur.lastUsed = s.clock()
	writeJSON(w, http.StatusOK, s.queryPage(cur, offset))
}
