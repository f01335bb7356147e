package salesforce

import (
	"flag"
	"fmt"
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/hashicorp/vault/sdk/logical"
)

// pathFuzzCase is one kind of bad input: FuzzPathRequests starts from it,
// TestPathFuzzCases checks what it gets, and docs/fuzzing.md shows it in a
// table generated from this list (TestPathFuzzCasesDocumented).
type pathFuzzCase struct {
	// what was tried, in words.
	what string
	op   logical.Operation
	path string
	// data is the JSON body.
	data string
	// show replaces path and data in the docs when they are too long.
	show string
	// status is what Vault answers; 0 means the request never reaches
	// the plugin (Vault answers it itself).
	status int
	// msg must match the error message ("" for none).
	msg string
	// shape says in words what the answer says, for the docs.
	shape string
}

func (c pathFuzzCase) opIndex() uint8 {
	for i, op := range fuzzOps {
		if op == c.op {
			return uint8(i)
		}
	}
	panic("operation not fuzzed: " + c.op)
}

func (c pathFuzzCase) body() []byte { return []byte(c.data) }

const (
	opRead   = logical.ReadOperation
	opWrite  = logical.UpdateOperation
	opDelete = logical.DeleteOperation
	opList   = logical.ListOperation
)

var longName = strings.Repeat("a", 10000)

// pathFuzzCases are the inputs the fuzz seeds and the docs table start
// from. Each answer holds every property of checkPathOutcome as well.
var pathFuzzCases = []pathFuzzCase{
	// Names in paths.
	{what: "Account name with `%2F` (a slash encoded twice; Vault decodes one level)", op: opRead, path: "accounts/a%2Fb",
		status: 404, msg: `^unsupported path$`, shape: "unsupported path: no pattern takes `%`"},
	{what: "Account name with a NUL or newline", op: opRead, path: "accounts/a\x00b", show: `read accounts/a\x00b`,
		status: 404, msg: `^unsupported path$`, shape: "unsupported path"},
	{what: "Account name with non-ASCII letters", op: opRead, path: "accounts/\u00e9t\u00e9",
		status: 404, msg: `^unsupported path$`, shape: "unsupported path: names are letters, digits, `_ . @ -` and `/`"},
	{what: "Account name of 10 000 characters, read", op: opRead, path: "accounts/" + longName, show: "read accounts/aaa… (10 000 a)",
		status: 404, shape: "not found (no body)"},
	{what: "Account name of 10 000 characters, written", op: opWrite, path: "accounts/" + longName,
		data: `{"username":"long@fake.test","password":"Some-Pass-123","verify":false}`, show: "write accounts/aaa… (10 000 a) username=… password=… verify=false",
		status: 200, shape: "stored: names have no length limit"},
	{what: "Account name with a `..` part, read", op: opRead, path: "accounts/a/../b",
		status: 400, msg: `^name "a/\.\./b" is not a valid account name: a part may not be \. or \.\.$`, shape: "names the name and says a part may not be `.` or `..`"},
	{what: "Account name with a `..` part, written", op: opWrite, path: "accounts/a/../b", data: `{"username":"x@fake.test","password":"Some-Pass-123","verify":false}`,
		status: 400, msg: `^name "a/\.\./b" is not a valid account name`, shape: "the same"},
	{what: "Account name with a `..` part, deleted", op: opDelete, path: "accounts/a/../b",
		status: 400, msg: `is not a valid account name`, shape: "the same"},
	{what: "Account name `..`, rotated", op: opWrite, path: "rotate/..",
		status: 400, msg: `is not a valid account name`, shape: "the same"},
	{what: "Account name ending in `/..`, its credential read", op: opRead, path: "creds/a/..",
		status: 400, msg: `is not a valid account name`, shape: "the same"},
	{what: "Account name with a `..` part, diagnosed", op: opRead, path: "accounts/a/../diagnose",
		status: 400, msg: `is not a valid account name`, shape: "the same"},
	{what: "Account name `..`, its security token written", op: opWrite, path: "accounts/../security-token", data: `{"security_token":"ABC123"}`,
		status: 400, msg: `is not a valid account name`, shape: "the same"},
	{what: "Account folder with a `..` part, listed", op: opList, path: "accounts/a/../",
		status: 400, msg: `is not a valid folder of accounts`, shape: "names the folder and says why"},
	{what: "Account name with `..` inside a part (`a..b`), read", op: opRead, path: "accounts/a..b",
		status: 400, msg: `"a\.\.b"`, shape: "names the name: storage refuses keys holding `..`"},
	{what: "Account name with `..` inside a part, written", op: opWrite, path: "accounts/x..y", data: `{"username":"x@fake.test","password":"Some-Pass-123","verify":false}`,
		status: 400, msg: `"x\.\.y"`, shape: "the same"},
	{what: "Account name with `..` inside a part, its credential read", op: opRead, path: "creds/a..b",
		status: 400, msg: `"a\.\.b"`, shape: "the same"},
	{what: "Role name with `..` inside (`a..b`), read", op: opRead, path: "roles/a..b",
		status: 400, msg: `"a\.\.b"`, shape: "names the role"},
	{what: "Role name with `..` inside, written", op: opWrite, path: "roles/a..b", data: `{"grant_type":"client_credentials"}`,
		status: 400, msg: `"a\.\.b"`, shape: "the same"},
	{what: "Role name with `..` inside, token read", op: opRead, path: "token/a..b",
		status: 400, msg: `"a\.\.b"`, shape: "the same"},
	{what: "Role name `..`", op: opRead, path: "roles/..",
		status: 404, msg: `^unsupported path$`, shape: "unsupported path: role names start and end with a letter or digit"},
	{what: "Path that does not exist", op: opRead, path: "nope",
		status: 404, msg: `^unsupported path$`, shape: "unsupported path"},
	{what: "Account that does not exist", op: opWrite, path: "rotate/nope",
		status: 404, msg: `^account "nope" does not exist: write accounts/nope first$`, shape: "names the account and says to write it first"},
	{what: "Role that does not exist", op: opRead, path: "token/nope",
		status: 400, msg: `^role "nope" does not exist$`, shape: "names the role"},

	// Operations.
	{what: "Operation the path does not have", op: opDelete, path: "creds/etl",
		status: 405, msg: `^unsupported operation$`, shape: "unsupported operation"},
	{what: "List on a path that is not a list", op: opList, path: "config",
		status: 405, msg: `^unsupported operation$`, shape: "unsupported operation"},
	{what: "Read of a folder path", op: opRead, path: "accounts/etl/",
		status: 405, msg: `^unsupported operation$`, shape: "unsupported operation (a trailing `/` is a folder: list it)"},

	// Field names, types and sizes.
	{what: "Unknown field", op: opWrite, path: "accounts/etl", data: `{"no_such_field":"x"}`,
		status: 204, shape: "ignored without a warning: the SDK warns only when the handler answers with a body"},
	{what: "Field name with a control character", op: opWrite, path: "accounts/etl", data: `{"\u0000x":1}`, show: `write accounts/etl {"\u0000x":1}`,
		status: 204, shape: "ignored, like any unknown field"},
	{what: "Boolean field as text", op: opWrite, path: "accounts/etl", data: `{"verify":"maybe"}`,
		status: 400, msg: `^error converting input for field "verify": .*invalid syntax$`, shape: "names the field and quotes the (non-secret) value"},
	{what: "Duration that does not parse", op: opWrite, path: "roles/new", data: `{"grant_type":"jwt_bearer","username":"etl@fake.test","ttl":"forever"}`,
		status: 400, msg: `^error converting input for field "ttl": time: invalid duration "forever"$`, shape: "names the field and the value"},
	{what: "Negative duration", op: opWrite, path: "accounts/etl", data: `{"rotation_period":"-5s"}`,
		status: 400, msg: `^error converting input for field "rotation_period": cannot provide negative value`, shape: "names the field"},
	{what: "Integer beyond int64", op: opWrite, path: "config/rotation", data: `{"password_length":99999999999999999999}`,
		status: 400, msg: `^password_length must be between 12 and 128$`, shape: "says the allowed range"},
	{what: "Number JSON decodes but float64 cannot hold (`1e309`)", op: opWrite, path: "config/rotation", data: `{"password_length":1e309}`,
		status: 0, shape: "Vault itself answers 500 `internal error` before the plugin sees the request"},
	{what: "Text longer than its limit", op: opWrite, path: "accounts/etl", data: `{"description":"` + strings.Repeat("d", 2000) + `"}`,
		show: "write accounts/etl description=ddd… (2 000 d)", status: 400, msg: `^description must be at most 1024 characters$`, shape: "says the limit"},
	{what: "Sensitive field as an object", op: opWrite, path: "accounts/etl", data: `{"password":{"Fz-Obj-Secret-1":"x"}}`,
		status: 400, msg: `^password must be a string$`, shape: "names the field and its type, never the value"},
	{what: "Sensitive field as a list", op: opWrite, path: "config", data: `{"client_secret":["Fz-Arr-Secret-2"]}`,
		status: 400, msg: `^client_secret must be a string$`, shape: "the same"},
	{what: "Sensitive field as a number", op: opWrite, path: "accounts/etl", data: `{"password":73105582931}`,
		status: 400, msg: `^password must be a string$`, shape: "the same (a number is not taken as its digits)"},
	{what: "Sensitive field as a boolean", op: opWrite, path: "accounts/etl", data: `{"password":true,"verify":false}`,
		status: 400, msg: `^password must be a string$`, shape: "the same"},
	{what: "Sensitive field of the wrong type on a read", op: opRead, path: "config", data: `{"password":{"Fz-Obj-Secret-3":""}}`,
		status: 400, msg: `^password must be a string$`, shape: "the same: reads convert their fields too"},
	{what: "Security token as an object", op: opWrite, path: "accounts/etl/security-token", data: `{"security_token":{"a":"Fz-Obj-Secret-4"}}`,
		status: 400, msg: `^security_token must be a string$`, shape: "the same"},
	{what: "Refresh token as an object", op: opWrite, path: "roles/rt", data: `{"refresh_token":{"Fz-Obj-Secret-5":1}}`,
		status: 400, msg: `^refresh_token must be a string$`, shape: "the same"},
	{what: "Webhook secret as a list", op: opWrite, path: "config/rotation", data: `{"webhook_secret":["Fz-Arr-Secret-6"]}`,
		status: 400, msg: `^webhook_secret must be a string$`, shape: "the same"},
	{what: "Private key as an object", op: opWrite, path: "config/jwt-key/rotate", data: `{"private_key":{"pem":"Fz-Obj-Secret-7"}}`,
		status: 400, msg: `^private_key must be a string$`, shape: "the same"},
	{what: "Null for a field", op: opWrite, path: "accounts/etl", data: `{"description":null}`,
		status: 204, shape: "taken as not sent: nothing changes"},
	{what: "Null for a required secret", op: opWrite, path: "accounts/etl", data: `{"password":null}`,
		status: 400, msg: `^password must not be empty$`, shape: "names the field"},
	{what: "Create without the required fields", op: opWrite, path: "accounts/new", data: `{}`,
		status: 400, msg: `^username is required when creating an account$`, shape: "names the missing field"},
	{what: "Control character in a username", op: opWrite, path: "accounts/new", data: `{"username":"a\u0000b@fake.test","password":"Some-Pass-123","verify":false}`,
		show: `write accounts/new username="a\u0000b@fake.test" …`, status: 400, msg: `^username must not contain spaces or control characters$`, shape: "names the field, not the value"},
	{what: "Bidi override (U+202E) in a username", op: opWrite, path: "accounts/new", data: `{"username":"a\u202eb@fake.test","password":"Some-Pass-123","verify":false}`,
		show: `write accounts/new username="a\u202eb@fake.test" … verify=false`, status: 200, shape: "stored: only spaces and control characters are refused (Salesforce refuses the login later)"},

	// Values the engine checks.
	{what: "`login_url` off Salesforce's domains", op: opWrite, path: "config", data: `{"login_url":"https://evil.example"}`,
		status: 400, msg: `^login_url host "evil.example" is not a Salesforce domain`, shape: "names the host and the opt-in `allow_non_salesforce_url`"},
	{what: "Role for an account that does not exist", op: opWrite, path: "roles/new", data: `{"grant_type":"password","account":"nope"}`,
		status: 400, msg: `^role "new": account "nope" does not exist`, shape: "names the role and the account"},
	{what: "`grant_type` outside its allowed values", op: opWrite, path: "roles/new", data: `{"grant_type":"sideways"}`,
		status: 400, msg: `^grant_type must be one of jwt_bearer, client_credentials, password, refresh_token$`, shape: "lists the allowed values"},
	{what: "`rotation_method` outside its allowed values", op: opWrite, path: "accounts/etl", data: `{"rotation_method":"sideways"}`,
		status: 400, msg: `rotation_method`, shape: "names the field (the SDK does not enforce allowed values)"},
	{what: "`security_token_mode` outside its allowed values", op: opWrite, path: "accounts/etl", data: `{"security_token_mode":"maybe"}`,
		status: 400, msg: `security_token_mode`, shape: "names the field"},
	{what: "Cron schedule that never fires", op: opWrite, path: "accounts/self", data: `{"rotation_schedule":"0 3 30 2 *"}`,
		status: 400, msg: `^rotation_schedule "0 3 30 2 \*" never fires`, shape: "says it never fires"},
	{what: "Password policy that does not exist", op: opWrite, path: "accounts/etl", data: `{"password_policy":"nope"}`,
		status: 400, msg: `^password_policy "nope" cannot generate passwords`, shape: "names the policy"},
	{what: "Wrong security token", op: opWrite, path: "accounts/etl/security-token", data: `{"security_token":"WRONGTOKEN1"}`,
		status: 400, msg: `^Salesforce did not accept the stored password with this security token .*nothing was stored`,
		shape: "Salesforce's code; nothing stored but the failed login's count"},
}

var updateFuzzDocs = flag.Bool("update-fuzz-docs", false, "rewrite the table in docs/fuzzing.md from pathFuzzCases")

// TestPathFuzzCases checks that every case gets the status and message it
// documents, and holds every fuzz property.
func TestPathFuzzCases(t *testing.T) {
	m := fuzzMount(t)
	for _, c := range pathFuzzCases {
		t.Run(c.what, func(t *testing.T) {
			in := pathRequest{op: c.op, path: c.path, data: decodeFuzzBody(c.path, c.body())}
			out := runPathRequest(t, m, in)
			if c.status == 0 {
				if !out.skipped {
					t.Fatalf("the request reached the plugin (status %d %q); the case says Vault answers it", out.status, out.message)
				}
				return
			}
			checkPathOutcome(t, m, in, out)
			if out.status != c.status {
				t.Errorf("status %d (%q), documented %d", out.status, out.message, c.status)
			}
			switch {
			case c.msg == "" && out.message != "":
				t.Errorf("message %q, documented none", out.message)
			case c.msg != "" && !regexp.MustCompile(c.msg).MatchString(out.message):
				t.Errorf("message %q does not match the documented %s", out.message, c.msg)
			}
		})
	}
}

// renderPathFuzzTable is the docs table of pathFuzzCases.
func renderPathFuzzTable() string {
	var b strings.Builder
	b.WriteString("| What was tried | Request | Status | What the answer says |\n| --- | --- | --- | --- |\n")
	for _, c := range pathFuzzCases {
		req := c.show
		if req == "" {
			verb := map[logical.Operation]string{opRead: "read", opWrite: "write", opDelete: "delete", opList: "list"}[c.op]
			req = verb + " " + c.path
			if c.data != "" {
				req += " " + c.data
			}
		}
		status := fmt.Sprint(c.status)
		if c.status == 0 {
			status = "500 (Vault)"
		}
		fmt.Fprintf(&b, "| %s | `%s` | %s | %s |\n", c.what, strings.ReplaceAll(req, "|", `\|`), status, c.shape)
	}
	return b.String()
}

const (
	fuzzDocsPath  = "docs/fuzzing.md"
	fuzzDocsBegin = "<!-- fuzz-table:begin (generated from pathFuzzCases: go test -run TestPathFuzzCasesDocumented -update-fuzz-docs) -->\n"
	fuzzDocsEnd   = "<!-- fuzz-table:end -->"
)

// TestPathFuzzCasesDocumented keeps the table in docs/fuzzing.md equal to
// pathFuzzCases, so the docs cannot drift from what the tests check.
func TestPathFuzzCasesDocumented(t *testing.T) {
	doc, err := os.ReadFile(fuzzDocsPath)
	if err != nil {
		t.Fatal(err)
	}
	text := string(doc)
	i := strings.Index(text, fuzzDocsBegin)
	j := strings.Index(text, fuzzDocsEnd)
	if i < 0 || j < i {
		t.Fatalf("%s has no fuzz-table markers", fuzzDocsPath)
	}
	want := renderPathFuzzTable()
	got := text[i+len(fuzzDocsBegin) : j]
	if got == want {
		return
	}
	if *updateFuzzDocs {
		if err := os.WriteFile(fuzzDocsPath, []byte(text[:i+len(fuzzDocsBegin)]+want+text[j:]), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	t.Errorf("the table in %s differs from pathFuzzCases; run go test -run TestPathFuzzCasesDocumented -update-fuzz-docs .", fuzzDocsPath)
}
