package emulator

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"regexp"
	"sort"
	"strconv"
	"strings"
)

// A deliberately small SOQL subset: SELECT f1, f2 FROM Object
// [WHERE f = 'v' [AND g = true]] [LIMIT n].
var (
	soqlRe      = regexp.MustCompile(`(?is)^\s*SELECT\s+(.+?)\s+FROM\s+(\w+)(?:\s+WHERE\s+(.+?))?(?:\s+LIMIT\s+(\d+))?\s*$`)
	soqlAndRe   = regexp.MustCompile(`(?i)\s+AND\s+`)
	soqlCondRe  = regexp.MustCompile(`(?is)^\s*(\w+)\s*=\s*(?:'((?:[^'\\]|\\.)*)'|(true|false|null))\s*$`)
	soqlFieldRe = regexp.MustCompile(`^\w+$`)
)

// field is one column of a record, kept in SELECT order.
type field struct {
	name  string
	value any
}

// record marshals with "attributes" first and fields in order, like
// Salesforce.
type record struct {
	typ, url string
	fields   []field
}

func (r record) MarshalJSON() ([]byte, error) {
	var b bytes.Buffer
	attrs, _ := json.Marshal(map[string]string{"type": r.typ, "url": r.url})
	b.WriteString(`{"attributes":`)
	b.Write(attrs)
	for _, f := range r.fields {
		k, _ := json.Marshal(f.name)
		v, err := json.Marshal(f.value)
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

// row is a full record before projection.
type row struct {
	typ    string
	id     string
	values map[string]any // canonical field name -> value
}

func (s *Server) userRow(u *User) row {
	profileID := ""
	if p := s.org.profile(u.Profile); p != nil {
		profileID = p.ID
	}
	return row{"User", u.ID, map[string]any{
		"Id": u.ID, "Username": u.Username, "Email": u.Email, "IsActive": u.IsActive,
		"FirstName": u.FirstName, "LastName": u.LastName, "Name": strings.TrimSpace(u.FirstName + " " + u.LastName),
		"ProfileId": profileID, "UserType": "Standard",
		"LastPasswordChangeDate": u.PasswordChangedAt.UTC().Format("2006-01-02T15:04:05.000+0000"),
	}}
}

func (s *Server) userLoginRow(u *User) row {
	return row{"UserLogin", u.UserLoginID, map[string]any{
		"Id": u.UserLoginID, "UserId": u.ID, "IsPasswordLocked": s.locked(u), "IsFrozen": false,
	}}
}

func (r row) project(version string, names []string) record {
	rec := record{typ: r.typ, url: "/services/data/v" + version + "/sobjects/" + r.typ + "/" + r.id}
	for _, n := range names {
		rec.fields = append(rec.fields, field{n, r.values[n]})
	}
	return rec
}

func (s *Server) userRecord(u *User, version string, names []string) record {
	r := s.userRow(u)
	if names == nil {
		names = sortedKeys(r.values)
	}
	return r.project(version, names)
}

func (s *Server) userLoginRecord(u *User, version string, names []string) record {
	r := s.userLoginRow(u)
	if names == nil {
		names = sortedKeys(r.values)
	}
	return r.project(version, names)
}

func sortedKeys(m map[string]any) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// rows returns every row of an sObject type. Caller holds s.mu.
func (s *Server) rows(object string) (string, []row, bool) {
	var out []row
	users := make([]*User, 0, len(s.users))
	for _, u := range s.users {
		users = append(users, u)
	}
	sort.Slice(users, func(i, j int) bool { return users[i].Username < users[j].Username })
	switch strings.ToLower(object) {
	case "user":
		for _, u := range users {
			out = append(out, s.userRow(u))
		}
		return "User", out, true
	case "userlogin":
		for _, u := range users {
			out = append(out, s.userLoginRow(u))
		}
		return "UserLogin", out, true
	case "organization":
		return "Organization", []row{{"Organization", s.org.ID, map[string]any{"Id": s.org.ID, "Name": s.org.Name}}}, true
	case "profile":
		for _, p := range s.org.Profiles {
			out = append(out, row{"Profile", p.ID, map[string]any{"Id": p.ID, "Name": p.Name}})
		}
		return "Profile", out, true
	}
	for typ, recs := range s.org.Records {
		if !strings.EqualFold(typ, object) {
			continue
		}
		for _, rec := range recs {
			id, _ := rec["Id"].(string)
			values := map[string]any{"Id": id}
			for k, v := range rec {
				values[k] = v
			}
			out = append(out, row{typ, id, values})
		}
		return typ, out, true
	}
	return "", nil, false
}

type condition struct {
	field string
	value any // string, bool or nil
}

func (s *Server) restQuery(w *recorder, r *http.Request, c *restCall) {
	q := r.URL.Query().Get("q")
	m := soqlRe.FindStringSubmatch(q)
	if m == nil {
		writeRESTError(w, http.StatusBadRequest, "MALFORMED_QUERY", "unexpected token in query (the emulator supports SELECT fields FROM Object [WHERE f = 'v' [AND ...]] [LIMIT n])")
		return
	}
	typ, rows, ok := s.rows(m[2])
	if !ok {
		writeRESTError(w, http.StatusBadRequest, "INVALID_TYPE", fmt.Sprintf("sObject type '%s' is not supported. If you are attempting to use a custom object, be sure to append the '__c' after the entity name. Please reference your WSDL or the describe call for the appropriate names.", m[2]))
		return
	}
	known := map[string]string{"id": "Id"}
	for _, rw := range rows {
		for k := range rw.values {
			known[strings.ToLower(k)] = k
		}
	}
	if typ == "User" || typ == "UserLogin" {
		for k := range s.userRow(&User{}).values {
			known[strings.ToLower(k)] = k
		}
		for k := range s.userLoginRow(&User{}).values {
			if typ == "UserLogin" {
				known[strings.ToLower(k)] = k
			}
		}
	}
	canonical := func(name string) (string, bool) {
		n, ok := known[strings.ToLower(strings.TrimSpace(name))]
		if !ok {
			writeRESTError(w, http.StatusBadRequest, "INVALID_FIELD", fmt.Sprintf("No such column '%s' on entity '%s'. If you are attempting to use a custom field, be sure to append the '__c' after the custom field name. Please reference your WSDL or the describe call for the appropriate names.", strings.TrimSpace(name), typ))
		}
		return n, ok
	}
	var names []string
	for _, f := range strings.Split(m[1], ",") {
		if !soqlFieldRe.MatchString(strings.TrimSpace(f)) {
			writeRESTError(w, http.StatusBadRequest, "MALFORMED_QUERY", "unsupported select list")
			return
		}
		n, ok := canonical(f)
		if !ok {
			return
		}
		names = append(names, n)
	}
	var conds []condition
	if m[3] != "" {
		for _, part := range soqlAndRe.Split(m[3], -1) {
			cm := soqlCondRe.FindStringSubmatch(part)
			if cm == nil {
				writeRESTError(w, http.StatusBadRequest, "MALFORMED_QUERY", "unsupported WHERE clause")
				return
			}
			n, ok := canonical(cm[1])
			if !ok {
				return
			}
			var v any
			switch strings.ToLower(cm[3]) {
			case "true":
				v = true
			case "false":
				v = false
			case "null":
				v = nil
			default:
				v = strings.NewReplacer(`\'`, `'`, `\\`, `\`).Replace(cm[2])
			}
			conds = append(conds, condition{n, v})
		}
	}
	limit := -1
	if m[4] != "" {
		limit, _ = strconv.Atoi(m[4])
	}
	records := []record{}
	for _, rw := range rows {
		if limit >= 0 && len(records) >= limit {
			break
		}
		if matches(rw, conds) {
			records = append(records, rw.project(c.version, names))
		}
	}
	writeJSON(w, http.StatusOK, map[string]any{"totalSize": len(records), "done": true, "records": records})
}

// matches compares like SOQL: strings case-insensitively, ids by their
// 15-character form.
func matches(rw row, conds []condition) bool {
	for _, c := range conds {
		got := rw.values[c.field]
		switch want := c.value.(type) {
		case nil:
			if got != nil && got != "" {
				return false
			}
		case bool:
			if got != want {
				return false
			}
		case string:
			gs, ok := got.(string)
			if !ok {
				return false
			}
			if strings.HasSuffix(c.field, "Id") && (len(want) == 15 || len(want) == 18) && len(gs) == 18 {
				if id15(gs) != id15(want) {
					return false
				}
			} else if !strings.EqualFold(gs, want) {
				return false
			}
		}
	}
	return true
}
