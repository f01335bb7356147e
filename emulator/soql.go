package emulator

import (
	"fmt"
	"math"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// A small SOQL engine, enough for what credential tooling sends:
//
//	SELECT f1, Rel.f2, … | COUNT() FROM Object
//	  [WHERE cond [AND|OR cond] …]   cond: f op value | f [NOT] IN (…) | f LIKE '…' | NOT cond | (…)
//	  [ORDER BY f [ASC|DESC] [NULLS FIRST|LAST], …] [LIMIT n] [OFFSET n]
//
// op is =, !=, <>, <, <=, >, >=; a value is a 'string', a number, true,
// false, null, a dateTime (2026-05-01T00:00:00Z), or a date literal
// (TODAY, YESTERDAY, TOMORROW, LAST_N_DAYS:n, NEXT_N_DAYS:n, N_DAYS_AGO:n).
// Date literals are evaluated in UTC; a real org uses the running user's
// time zone. Errors carry Salesforce's query echo, caret and
// "ERROR at Row:r:Column:c" lines.

type soqlTokKind int

const (
	tkEOF soqlTokKind = iota
	tkIdent
	tkString
	tkLiteral // a number, date or dateTime; classified by the parser
	tkOp
	tkLParen
	tkRParen
	tkComma
)

type soqlToken struct {
	kind soqlTokKind
	text string // raw text; for strings the unescaped value
	pos  int    // byte offset in the query
}

// soqlError is a query error with the position Salesforce points at.
type soqlError struct {
	code string
	msg  string
	pos  int
}

// message renders Salesforce's form: the query line, a caret under the
// position, "ERROR at Row:r:Column:c" and the text.
func (e *soqlError) message(q string) string {
	row, lineStart := 1, 0
	for i := 0; i < e.pos && i < len(q); i++ {
		if q[i] == '\n' {
			row++
			lineStart = i + 1
		}
	}
	line := q[lineStart:]
	if nl := strings.IndexByte(line, '\n'); nl >= 0 {
		line = line[:nl]
	}
	col := e.pos - lineStart
	return "\n" + line + "\n" + strings.Repeat(" ", col) + "^\nERROR at Row:" + strconv.Itoa(row) + ":Column:" + strconv.Itoa(col+1) + "\n" + e.msg
}

func isIdentStart(c byte) bool {
	return c == '_' || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

func soqlLex(q string) ([]soqlToken, *soqlError) {
	var toks []soqlToken
	i := 0
	for i < len(q) {
		c := q[i]
		switch {
		case c == ' ' || c == '\t' || c == '\n' || c == '\r':
			i++
		case c == '(':
			toks = append(toks, soqlToken{tkLParen, "(", i})
			i++
		case c == ')':
			toks = append(toks, soqlToken{tkRParen, ")", i})
			i++
		case c == ',':
			toks = append(toks, soqlToken{tkComma, ",", i})
			i++
		case c == '\'':
			start := i
			var b strings.Builder
			i++
			closed := false
			for i < len(q) {
				if q[i] == '\\' && i+1 < len(q) {
					switch q[i+1] {
					case 'n':
						b.WriteByte('\n')
					case 't':
						b.WriteByte('\t')
					case 'r':
						b.WriteByte('\r')
					default:
						b.WriteByte(q[i+1])
					}
					i += 2
					continue
				}
				if q[i] == '\'' {
					closed = true
					i++
					break
				}
				b.WriteByte(q[i])
				i++
			}
			if !closed {
				return nil, &soqlError{"MALFORMED_QUERY", "line 1:" + strconv.Itoa(start) + " mismatched character '<EOF>' expecting '''", start}
			}
			toks = append(toks, soqlToken{tkString, b.String(), start})
		case c == '=' || c == '<' || c == '>' || c == '!':
			start := i
			i++
			if i < len(q) && (q[i] == '=' || (c == '<' && q[i] == '>')) {
				i++
			}
			op := q[start:i]
			if op == "!" {
				return nil, &soqlError{"MALFORMED_QUERY", "unexpected token: '!'", start}
			}
			toks = append(toks, soqlToken{tkOp, op, start})
		case isDigit(c) || ((c == '-' || c == '+') && i+1 < len(q) && isDigit(q[i+1])):
			start := i
			i++
			for i < len(q) && (isDigit(q[i]) || strings.IndexByte("-+:.TZ", q[i]) >= 0) {
				i++
			}
			toks = append(toks, soqlToken{tkLiteral, q[start:i], start})
		case isIdentStart(c):
			start := i
			for i < len(q) && (isIdentStart(q[i]) || isDigit(q[i]) || q[i] == '.' || q[i] == ':') {
				i++
			}
			toks = append(toks, soqlToken{tkIdent, q[start:i], start})
		default:
			return nil, &soqlError{"MALFORMED_QUERY", "unexpected token: '" + string(c) + "'", i}
		}
	}
	toks = append(toks, soqlToken{tkEOF, "<EOF>", len(q)})
	return toks, nil
}

type soqlValKind int

const (
	vString soqlValKind = iota
	vNumber
	vBool
	vNull
	vDateTime
	vDate
	vDateLiteral
)

type soqlValue struct {
	kind soqlValKind
	s    string
	n    float64
	b    bool
	t    time.Time
	lit  string // date literal name, e.g. LAST_N_DAYS
	litN int
	pos  int
	raw  string
}

// soqlPath is a field reference as written, resolved later.
type soqlPath struct {
	text string
	pos  int
}

type soqlCondNode struct {
	path soqlPath
	op   string // =, !=, <, <=, >, >=, IN, NOT IN, LIKE
	vals []soqlValue
}

type soqlExpr struct {
	op       string // "AND", "OR", "NOT" or "" for a condition
	kids     []*soqlExpr
	cond     *soqlCondNode
	resolved *soqlCond
}

type soqlOrderItem struct {
	path      soqlPath
	desc      bool
	nullsLast bool
}

type soqlQuery struct {
	count  bool
	fields []soqlPath
	object soqlPath
	where  *soqlExpr
	order  []soqlOrderItem
	limit  int // -1: none
	offset int
}

type soqlParser struct {
	toks []soqlToken
	i    int
}

func (p *soqlParser) peek() soqlToken { return p.toks[p.i] }

func (p *soqlParser) next() soqlToken {
	t := p.toks[p.i]
	if t.kind != tkEOF {
		p.i++
	}
	return t
}

func (p *soqlParser) isKeyword(kw string) bool {
	t := p.peek()
	return t.kind == tkIdent && strings.EqualFold(t.text, kw)
}

func (p *soqlParser) keyword(kw string) bool {
	if p.isKeyword(kw) {
		p.i++
		return true
	}
	return false
}

func unexpected(t soqlToken) *soqlError {
	return &soqlError{"MALFORMED_QUERY", "unexpected token: '" + t.text + "'", t.pos}
}

func (p *soqlParser) expectKeyword(kw string) *soqlError {
	if !p.keyword(kw) {
		return unexpected(p.peek())
	}
	return nil
}

func parseSOQL(q string) (*soqlQuery, *soqlError) {
	toks, err := soqlLex(q)
	if err != nil {
		return nil, err
	}
	p := &soqlParser{toks: toks}
	out := &soqlQuery{limit: -1}
	if err := p.expectKeyword("SELECT"); err != nil {
		return nil, err
	}
	if p.isKeyword("COUNT") && p.toks[p.i+1].kind == tkLParen {
		p.i += 2
		if t := p.next(); t.kind != tkRParen {
			return nil, unexpected(t)
		}
		out.count = true
	} else {
		for {
			t := p.next()
			if t.kind != tkIdent || strings.EqualFold(t.text, "FROM") {
				return nil, unexpected(t)
			}
			out.fields = append(out.fields, soqlPath{t.text, t.pos})
			if p.peek().kind != tkComma {
				break
			}
			p.next()
		}
	}
	if err := p.expectKeyword("FROM"); err != nil {
		return nil, err
	}
	obj := p.next()
	if obj.kind != tkIdent || strings.Contains(obj.text, ".") {
		return nil, unexpected(obj)
	}
	out.object = soqlPath{obj.text, obj.pos}
	if p.keyword("WHERE") {
		e, err := p.parseOr()
		if err != nil {
			return nil, err
		}
		out.where = e
	}
	if p.keyword("ORDER") {
		if err := p.expectKeyword("BY"); err != nil {
			return nil, err
		}
		for {
			t := p.next()
			if t.kind != tkIdent {
				return nil, unexpected(t)
			}
			item := soqlOrderItem{path: soqlPath{t.text, t.pos}}
			if p.keyword("DESC") {
				item.desc = true
			} else {
				p.keyword("ASC")
			}
			// Salesforce: nulls first when ascending, last when descending.
			item.nullsLast = item.desc
			if p.keyword("NULLS") {
				switch {
				case p.keyword("FIRST"):
					item.nullsLast = false
				case p.keyword("LAST"):
					item.nullsLast = true
				default:
					return nil, unexpected(p.peek())
				}
			}
			out.order = append(out.order, item)
			if p.peek().kind != tkComma {
				break
			}
			p.next()
		}
	}
	if p.keyword("LIMIT") {
		n, err := p.nonNegativeInt()
		if err != nil {
			return nil, err
		}
		out.limit = n
	}
	if p.keyword("OFFSET") {
		t := p.peek()
		n, err := p.nonNegativeInt()
		if err != nil {
			return nil, err
		}
		if n > 2000 {
			return nil, &soqlError{"NUMBER_OUTSIDE_VALID_RANGE", "Maximum SOQL offset allowed is 2000", t.pos}
		}
		out.offset = n
	}
	if t := p.peek(); t.kind != tkEOF {
		return nil, unexpected(t)
	}
	return out, nil
}

func (p *soqlParser) nonNegativeInt() (int, *soqlError) {
	t := p.next()
	n, err := strconv.Atoi(t.text)
	if t.kind != tkLiteral || err != nil || n < 0 {
		return 0, unexpected(t)
	}
	return n, nil
}

func (p *soqlParser) parseOr() (*soqlExpr, *soqlError) {
	left, err := p.parseAnd()
	if err != nil {
		return nil, err
	}
	for p.keyword("OR") {
		right, err := p.parseAnd()
		if err != nil {
			return nil, err
		}
		left = &soqlExpr{op: "OR", kids: []*soqlExpr{left, right}}
	}
	return left, nil
}

func (p *soqlParser) parseAnd() (*soqlExpr, *soqlError) {
	left, err := p.parseNot()
	if err != nil {
		return nil, err
	}
	for p.keyword("AND") {
		right, err := p.parseNot()
		if err != nil {
			return nil, err
		}
		left = &soqlExpr{op: "AND", kids: []*soqlExpr{left, right}}
	}
	return left, nil
}

func (p *soqlParser) parseNot() (*soqlExpr, *soqlError) {
	if p.keyword("NOT") {
		e, err := p.parseNot()
		if err != nil {
			return nil, err
		}
		return &soqlExpr{op: "NOT", kids: []*soqlExpr{e}}, nil
	}
	if p.peek().kind == tkLParen {
		p.next()
		e, err := p.parseOr()
		if err != nil {
			return nil, err
		}
		if t := p.next(); t.kind != tkRParen {
			return nil, unexpected(t)
		}
		return e, nil
	}
	return p.parseCond()
}

func (p *soqlParser) parseCond() (*soqlExpr, *soqlError) {
	f := p.next()
	if f.kind != tkIdent {
		return nil, unexpected(f)
	}
	c := &soqlCondNode{path: soqlPath{f.text, f.pos}}
	switch t := p.peek(); {
	case t.kind == tkOp:
		p.next()
		c.op = t.text
		if c.op == "<>" {
			c.op = "!="
		}
		v, err := p.parseValue()
		if err != nil {
			return nil, err
		}
		c.vals = []soqlValue{v}
	case p.isKeyword("LIKE"):
		p.next()
		c.op = "LIKE"
		v, err := p.parseValue()
		if err != nil {
			return nil, err
		}
		c.vals = []soqlValue{v}
	case p.isKeyword("IN") || p.isKeyword("NOT"):
		c.op = "IN"
		if p.keyword("NOT") {
			c.op = "NOT IN"
		}
		if err := p.expectKeyword("IN"); err != nil {
			return nil, err
		}
		if t := p.next(); t.kind != tkLParen {
			return nil, unexpected(t)
		}
		for {
			v, err := p.parseValue()
			if err != nil {
				return nil, err
			}
			c.vals = append(c.vals, v)
			t := p.next()
			if t.kind == tkRParen {
				break
			}
			if t.kind != tkComma {
				return nil, unexpected(t)
			}
		}
	default:
		return nil, unexpected(t)
	}
	return &soqlExpr{cond: c}, nil
}

var (
	soqlDateTimeRe = regexp.MustCompile(`^(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d{1,3})?)(Z|[+-]\d{2}:\d{2})$`)
	soqlDateRe     = regexp.MustCompile(`^\d{4}-\d{2}-\d{2}$`)
	soqlNumberRe   = regexp.MustCompile(`^[+-]?\d+(?:\.\d+)?$`)
	soqlDateLitRe  = regexp.MustCompile(`(?i)^(TODAY|YESTERDAY|TOMORROW|LAST_N_DAYS:(\d+)|NEXT_N_DAYS:(\d+)|N_DAYS_AGO:(\d+))$`)
)

func (p *soqlParser) parseValue() (soqlValue, *soqlError) {
	t := p.next()
	v := soqlValue{pos: t.pos, raw: t.text}
	switch t.kind {
	case tkString:
		v.kind, v.s = vString, t.text
		v.raw = "'" + t.text + "'"
	case tkLiteral:
		switch {
		case soqlDateTimeRe.MatchString(t.text):
			m := soqlDateTimeRe.FindStringSubmatch(t.text)
			zone := m[2]
			if zone == "Z" {
				zone = "+00:00"
			}
			tm, err := time.Parse("2006-01-02T15:04:05.999-07:00", m[1]+zone)
			if err != nil {
				return v, &soqlError{"MALFORMED_QUERY", "line 1:" + strconv.Itoa(t.pos) + " no viable alternative at character '" + t.text + "'", t.pos}
			}
			v.kind, v.t = vDateTime, tm.UTC()
		case soqlDateRe.MatchString(t.text):
			tm, err := time.Parse("2006-01-02", t.text)
			if err != nil {
				return v, unexpected(t)
			}
			v.kind, v.t = vDate, tm
		case soqlNumberRe.MatchString(t.text):
			n, _ := strconv.ParseFloat(t.text, 64)
			v.kind, v.n = vNumber, n
		default:
			return v, unexpected(t)
		}
	case tkIdent:
		switch up := strings.ToUpper(t.text); {
		case up == "TRUE" || up == "FALSE":
			v.kind, v.b = vBool, up == "TRUE"
		case up == "NULL":
			v.kind = vNull
		case soqlDateLitRe.MatchString(t.text):
			m := soqlDateLitRe.FindStringSubmatch(t.text)
			name, _, _ := strings.Cut(up, ":")
			v.kind, v.lit = vDateLiteral, name
			for _, g := range m[2:] {
				if g != "" {
					n, err := strconv.Atoi(g)
					if err != nil {
						return v, unexpected(t)
					}
					v.litN = n
				}
			}
		default:
			return v, unexpected(t)
		}
	default:
		return v, unexpected(t)
	}
	return v, nil
}

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
