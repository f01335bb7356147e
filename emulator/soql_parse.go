package emulator

import (
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
//
// soql_lex.go lexes a query, this file parses it, and soql.go checks it
// against the schema and evaluates it.

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
