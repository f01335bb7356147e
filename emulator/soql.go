package emulator

import (
	"fmt"
	"math"
	"regexp"
	"strings"
	"time"
)

// Checking a parsed query (soql_parse.go) against the objects' schema and
// evaluating it over the org's rows, with Salesforce's filterability rules
// and error texts.

// dateRange turns a date literal into [start, end) in UTC.
func dateRange(v soqlValue, now time.Time) (time.Time, time.Time) {
	now = now.UTC()
	day := 24 * time.Hour
	today := time.Date(now.Year(), now.Month(), now.Day(), 0, 0, 0, 0, time.UTC)
	n := time.Duration(v.litN)
	switch v.lit {
	case "YESTERDAY":
		return today.Add(-day), today
	case "TOMORROW":
		return today.Add(day), today.Add(2 * day)
	case "LAST_N_DAYS":
		// "Starts with the current day and continues for the past n days":
		// LAST_N_DAYS:1 is yesterday and today.
		return today.Add(-n * day), today.Add(day)
	case "NEXT_N_DAYS":
		return today.Add(day), today.Add((n + 1) * day)
	case "N_DAYS_AGO":
		return today.Add(-n * day), today.Add(-(n - 1) * day)
	}
	return today, today.Add(day) // TODAY
}

// Schema: field types and the relationships a query may follow.

type soqlFieldType int

const (
	ftString soqlFieldType = iota
	ftID
	ftBool
	ftDateTime
	ftNumber
	ftPicklist
)

func (t soqlFieldType) String() string {
	switch t {
	case ftID:
		return "id"
	case ftBool:
		return "boolean"
	case ftDateTime:
		return "dateTime"
	case ftNumber:
		return "double"
	case ftPicklist:
		return "picklist"
	}
	return "string"
}

type soqlField struct {
	name string
	typ  soqlFieldType
	// noFilter: the field may be selected and sorted but not used in WHERE
	// ("field 'X' can not be filtered in query call").
	noFilter bool
	// since is the first API version with the field (0: always).
	since float64
}

type soqlRel struct {
	name   string // relationship name, e.g. Profile
	target string // sObject type
}

type soqlObject struct {
	name   string
	fields []soqlField
	rels   []soqlRel
	// batchSize is how many records one response holds (default 2000).
	batchSize int
	// noURL: records carry no attributes.url (OauthToken, whose Id is
	// always null).
	noURL bool
}

func (o *soqlObject) field(name string, version float64) *soqlField {
	for i := range o.fields {
		f := &o.fields[i]
		if strings.EqualFold(f.name, name) && version >= f.since {
			return f
		}
	}
	return nil
}

func (o *soqlObject) rel(name string) *soqlRel {
	for i := range o.rels {
		if strings.EqualFold(o.rels[i].name, name) {
			return &o.rels[i]
		}
	}
	return nil
}

// soqlCond is a condition resolved against the schema.
type soqlCond struct {
	path  []string
	field *soqlField
	op    string
	vals  []soqlValue
}

// resolvedPath is a field reference resolved against the schema:
// canonical names along the relationship path.
type resolvedPath struct {
	names []string
	field *soqlField
}

func noSuchColumn(p soqlPath, name, object string, pos int) *soqlError {
	return &soqlError{"INVALID_FIELD", fmt.Sprintf("No such column '%s' on entity '%s'. If you are attempting to use a custom field, be sure to append the '__c' after the custom field name. Please reference your WSDL or the describe call for the appropriate names.", name, object), pos}
}

// resolve walks a dotted path through relationships. Caller holds s.mu.
func (s *Server) resolvePath(obj *soqlObject, p soqlPath, version float64) (resolvedPath, *soqlError) {
	parts := strings.Split(p.text, ".")
	var out resolvedPath
	cur := obj
	pos := p.pos
	for i, part := range parts {
		if i == len(parts)-1 {
			f := cur.field(part, version)
			if f == nil {
				return out, noSuchColumn(p, part, cur.name, pos)
			}
			out.names = append(out.names, f.name)
			out.field = f
			return out, nil
		}
		r := cur.rel(part)
		var target *soqlObject
		if r != nil {
			target = s.soqlSchema(r.target)
		}
		if target == nil {
			return out, &soqlError{"INVALID_FIELD", fmt.Sprintf("Didn't understand relationship '%s' in field path. If you are attempting to use a custom relationship, be sure to append the '__r' after the custom relationship name. Please reference your WSDL or the describe call for the appropriate names.", part), pos}
		}
		out.names = append(out.names, r.name)
		cur = target
		pos += len(part) + 1
	}
	return out, nil
}

// resolveWhere resolves and type-checks every condition. Caller holds s.mu.
func (s *Server) resolveWhere(obj *soqlObject, e *soqlExpr, version float64) *soqlError {
	if e == nil {
		return nil
	}
	for _, k := range e.kids {
		if err := s.resolveWhere(obj, k, version); err != nil {
			return err
		}
	}
	if e.cond == nil {
		return nil
	}
	c := e.cond
	rp, err := s.resolvePath(obj, c.path, version)
	if err != nil {
		return err
	}
	f := rp.field
	if f.noFilter {
		return &soqlError{"INVALID_FIELD", fmt.Sprintf("field '%s' can not be filtered in query call", f.name), c.path.pos}
	}
	for _, v := range c.vals {
		if err := checkFilterValue(f, c.op, v); err != nil {
			return err
		}
	}
	e.resolved = &soqlCond{path: rp.names, field: f, op: c.op, vals: c.vals}
	return nil
}

func checkFilterValue(f *soqlField, op string, v soqlValue) *soqlError {
	mustBe := func(quoted bool) *soqlError {
		q := "should not be enclosed in quotes"
		if quoted {
			q = "should be enclosed in quotes"
		}
		return &soqlError{"INVALID_FIELD", fmt.Sprintf("value of filter criterion for field '%s' must be of type %s and %s", f.name, f.typ, q), v.pos}
	}
	if v.kind == vNull {
		if op != "=" && op != "!=" && op != "IN" && op != "NOT IN" {
			return &soqlError{"INVALID_QUERY_FILTER_OPERATOR", "invalid operator on null", v.pos}
		}
		return nil
	}
	if op == "LIKE" && f.typ != ftString && f.typ != ftPicklist && f.typ != ftID {
		return &soqlError{"INVALID_QUERY_FILTER_OPERATOR", fmt.Sprintf("invalid operator on %s field: LIKE", f.typ), v.pos}
	}
	switch f.typ {
	case ftBool:
		if v.kind != vBool {
			return mustBe(false)
		}
		if op != "=" && op != "!=" {
			return &soqlError{"INVALID_QUERY_FILTER_OPERATOR", "invalid operator on boolean field: " + op, v.pos}
		}
	case ftDateTime:
		if v.kind != vDateTime && v.kind != vDateLiteral {
			return mustBe(false)
		}
	case ftNumber:
		if v.kind != vNumber {
			return mustBe(false)
		}
	case ftID:
		if v.kind != vString {
			return mustBe(true)
		}
		if v.s != "" && op != "LIKE" && !looksLikeID(v.s) {
			return &soqlError{"INVALID_QUERY_FILTER_OPERATOR", "invalid ID field: " + v.s, v.pos}
		}
	default:
		if v.kind != vString {
			return mustBe(true)
		}
	}
	return nil
}

// looksLikeID: 15 or 18 alphanumeric characters (the checksum is not
// verified here; an unknown id simply matches nothing).
func looksLikeID(s string) bool {
	if len(s) != 15 && len(s) != 18 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if strings.IndexByte(alphanumeric, s[i]) < 0 {
			return false
		}
	}
	return true
}

// lookup follows a canonical path through a row's relationships.
func (r *row) lookup(path []string) any {
	cur := r
	for i, name := range path {
		v := cur.values[name]
		if i == len(path)-1 {
			return v
		}
		next, ok := v.(*row)
		if !ok || next == nil {
			return nil
		}
		cur = next
	}
	return nil
}

func isNull(v any) bool {
	switch t := v.(type) {
	case nil:
		return true
	case string:
		return t == ""
	case *row:
		return t == nil
	case time.Time:
		return t.IsZero()
	}
	return false
}

func (e *soqlExpr) eval(r *row, now time.Time) bool {
	switch e.op {
	case "AND":
		return e.kids[0].eval(r, now) && e.kids[1].eval(r, now)
	case "OR":
		return e.kids[0].eval(r, now) || e.kids[1].eval(r, now)
	case "NOT":
		return !e.kids[0].eval(r, now)
	}
	return e.resolved.eval(r, now)
}

func (c *soqlCond) eval(r *row, now time.Time) bool {
	got := r.lookup(c.path)
	switch c.op {
	case "IN", "NOT IN":
		in := false
		for _, v := range c.vals {
			if c.compare(got, v, now) == 0 {
				in = true
				break
			}
		}
		return in == (c.op == "IN")
	case "LIKE":
		s, ok := got.(string)
		return ok && likeMatch(s, c.vals[0].s)
	}
	v := c.vals[0]
	if v.kind == vNull || isNull(got) {
		bothNull := v.kind == vNull && isNull(got)
		switch c.op {
		case "=":
			return bothNull
		case "!=":
			return !bothNull
		}
		return false
	}
	if v.kind == vDateLiteral {
		t, ok := got.(time.Time)
		if !ok {
			return false
		}
		start, end := dateRange(v, now)
		switch c.op {
		case "=":
			return !t.Before(start) && t.Before(end)
		case "!=":
			return t.Before(start) || !t.Before(end)
		case "<":
			return t.Before(start)
		case "<=":
			return t.Before(end)
		case ">":
			return !t.Before(end)
		case ">=":
			return !t.Before(start)
		}
		return false
	}
	cmp := c.compare(got, v, now)
	switch c.op {
	case "=":
		return cmp == 0
	case "!=":
		return cmp != 0
	case "<":
		return cmp == -1
	case "<=":
		return cmp == -1 || cmp == 0
	case ">":
		return cmp == 1
	case ">=":
		return cmp == 1 || cmp == 0
	}
	return false
}

// compare returns -1, 0 or 1, or 2 when the two are not comparable.
// Strings compare case-insensitively, ids by their 15-character form.
func (c *soqlCond) compare(got any, v soqlValue, now time.Time) int {
	if v.kind == vNull || isNull(got) {
		if v.kind == vNull && isNull(got) {
			return 0
		}
		return 2
	}
	switch g := got.(type) {
	case string:
		if v.kind != vString {
			return 2
		}
		if c.field.typ == ftID && looksLikeID(g) && looksLikeID(v.s) {
			return strings.Compare(id15(g), id15(v.s))
		}
		return strings.Compare(strings.ToLower(g), strings.ToLower(v.s))
	case bool:
		if v.kind != vBool {
			return 2
		}
		if g == v.b {
			return 0
		}
		return 1
	case time.Time:
		if v.kind == vDateLiteral {
			start, end := dateRange(v, now)
			if !g.Before(start) && g.Before(end) {
				return 0
			}
			return 2
		}
		if v.kind != vDateTime {
			return 2
		}
		return g.Compare(v.t)
	case int:
		return compareFloat(float64(g), v)
	case float64:
		return compareFloat(g, v)
	}
	return 2
}

func compareFloat(g float64, v soqlValue) int {
	if v.kind != vNumber {
		return 2
	}
	switch {
	case g < v.n:
		return -1
	case g > v.n:
		return 1
	}
	return 0
}

// likeMatch: % is any run, _ any one character; case-insensitive.
func likeMatch(s, pattern string) bool {
	var b strings.Builder
	b.WriteString("(?is)^")
	for _, r := range pattern {
		switch r {
		case '%':
			b.WriteString(".*")
		case '_':
			b.WriteString(".")
		default:
			b.WriteString(regexp.QuoteMeta(string(r)))
		}
	}
	b.WriteString("$")
	re, err := regexp.Compile(b.String())
	return err == nil && re.MatchString(s)
}

// orderLess compares two rows by the ORDER BY items.
func orderLess(a, b *row, order []resolvedOrder) bool {
	for _, o := range order {
		av, bv := a.lookup(o.path), b.lookup(o.path)
		an, bn := isNull(av), isNull(bv)
		if an || bn {
			if an && bn {
				continue
			}
			// a null sorts first unless NULLS LAST.
			return an != o.nullsLast
		}
		c := compareValues(av, bv)
		if c == 0 {
			continue
		}
		if o.desc {
			return c > 0
		}
		return c < 0
	}
	return false
}

type resolvedOrder struct {
	path      []string
	desc      bool
	nullsLast bool
}

func compareValues(a, b any) int {
	switch x := a.(type) {
	case string:
		y, _ := b.(string)
		return strings.Compare(strings.ToLower(x), strings.ToLower(y))
	case time.Time:
		y, _ := b.(time.Time)
		return x.Compare(y)
	case bool:
		y, _ := b.(bool)
		switch {
		case x == y:
			return 0
		case !x:
			return -1
		}
		return 1
	case int:
		y, _ := b.(int)
		return compareFloat(float64(x), soqlValue{kind: vNumber, n: float64(y)})
	case float64:
		y, _ := b.(float64)
		if math.IsNaN(x) || math.IsNaN(y) {
			return 0
		}
		return compareFloat(x, soqlValue{kind: vNumber, n: y})
	}
	return 0
}
