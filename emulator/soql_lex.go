package emulator

import (
	"strconv"
	"strings"
)

// Tokens of the SOQL subset (soql_parse.go describes it) and the lexer that
// turns a query into them, keeping each token's offset for error carets.

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
