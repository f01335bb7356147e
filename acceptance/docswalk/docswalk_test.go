package docswalk

import (
	"strings"
	"testing"
	"time"
)

func TestParseTranscriptsAndMarkers(t *testing.T) {
	src := "# Title\n" +
		"\n" +
		"```\n" +
		"$ vault write -f salesforce/rotate/demo\n" +
		"Key     Value\n" +
		"---     -----\n" +
		"outcome rotated\n" +
		"\n" +
		"$ curl -s http://127.0.0.1:8787/x |\n" +
		"    vault write salesforce/accounts/demo/security-token -\n" +
		"```\n" +
		"\n" +
		"<!-- docs-walk: expect fails -->\n" +
		"```\n" +
		"$ vault read salesforce/token/jwt   # it's refused\n" +
		"Code: 400. Errors:\n" +
		"```\n" +
		"\n" +
		"- a list item:\n" +
		"\n" +
		"  <!-- docs-walk: skip: needs a real org -->\n" +
		"  ```sh\n" +
		"  $ vault write salesforce/config - <<'EOF'\n" +
		"  {\"login_url\": \"https://acme.my.salesforce.com\"}\n" +
		"  EOF\n" +
		"  Success! Data written to: salesforce/config\n" +
		"  ```\n" +
		"\n" +
		"```json\n" +
		"{\"event\": \"rotate\"}\n" +
		"```\n"
	doc, err := Parse("x.md", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	if len(doc.Blocks) != 3 {
		t.Fatalf("got %d blocks, want 3 (the json block is not a transcript): %+v", len(doc.Blocks), doc.Blocks)
	}
	b0 := doc.Blocks[0]
	if b0.Line != 3 || b0.Expect || b0.Fails || b0.Skip || len(b0.Commands) != 2 {
		t.Fatalf("block 0: %+v", b0)
	}
	if c := b0.Commands[0]; c.Line != 4 || c.Text != "vault write -f salesforce/rotate/demo" || !strings.HasSuffix(c.Output, "outcome rotated") {
		t.Fatalf("command 0: %+v", c)
	}
	if c := b0.Commands[1]; c.Line != 9 || !strings.Contains(c.Text, "|\n    vault write") || c.Output != "" {
		t.Fatalf("a pipe at the end of a line continues the command: %+v", c)
	}
	if b := doc.Blocks[1]; !b.Expect || !b.Fails || b.Commands[0].Output != "Code: 400. Errors:" {
		t.Fatalf("block 1: %+v", b)
	}
	b2 := doc.Blocks[2]
	if !b2.Skip || b2.SkipReason != "needs a real org" || len(b2.Commands) != 1 {
		t.Fatalf("block 2: %+v", b2)
	}
	if c := b2.Commands[0]; !strings.HasSuffix(c.Text, "\nEOF") || c.Output != "Success! Data written to: salesforce/config" {
		t.Fatalf("a here-document belongs to its command: %+v", c)
	}
}

func TestParseRefusesMistakes(t *testing.T) {
	for name, src := range map[string]string{
		"shell block without prompts": "```sh\nvault read salesforce/config\n```\n",
		"skip without reason":         "<!-- docs-walk: skip -->\n```\n$ true\n```\n",
		"unknown marker":              "<!-- docs-walk: expected -->\n```\n$ true\n```\n",
		"malformed marker":            "<!-- docs-walk: expect\n```\n$ true\n```\n",
		"marker before prose":         "<!-- docs-walk: expect -->\nSome text.\n```\n$ true\n```\n",
		"marker on an output sample":  "<!-- docs-walk: expect -->\n```\nKey Value\n```\n",
		"incomplete command":          "```\n$ echo 'open quote\n```\n",
		"text before the first $":     "```\nhello\n$ true\n```\n",
		"unclosed fence":              "```\n$ true\n",
	} {
		if _, err := Parse("x.md", []byte(src)); err == nil {
			t.Errorf("%s: Parse accepted %q", name, src)
		}
	}
}

func TestMatchNormalisesRunSpecificValues(t *testing.T) {
	documented := `Key                Value
---                -----
lease_id           salesforce/token/jwt/iB1ydtYe0qQuFDfG49NA2jHk
lease_duration     1h59m59s
access_token       <redacted>
expires_at         2026-11-29T12:32:06Z
fingerprint_sha256 1b8f4b9264b452e02bd28727b4530487dad79738ed5fbaa67cbc4fa1d6acc48a
ttl                0s`
	real := `Key                 Value
---                 -----
lease_id            salesforce/token/jwt/Zz9ydtYe0qQuFDfG49NA2jHq
lease_duration      1h59m58s
access_token        <redacted>
expires_at          2026-12-01T08:00:00.123Z
fingerprint_sha256  00000000b452e02bd28727b4530487dad79738ed5fbaa67cbc4fa1d6acc48a
ttl                 0s`
	if d := Match(documented, real); d != "" {
		t.Fatalf("equal up to run-specific values, got:\n%s", d)
	}
	if d := Match(documented, strings.Replace(real, "ttl                 0s", "ttl                 5s", 1)); d == "" {
		t.Fatal("a changed setting (ttl 0s -> 5s) matched")
	}
	// Base64 in a certificate is not a lease id, even where 24 letters and
	// digits follow a slash.
	if d := Match("MIIC3jCCAcagAwIB/AgIQGJfb2PI6eenuzzhOD89NDAN+BgkqhkiG9w0BAQsFADAa", "MIIC3jCCAcagAwIB/AgIQNqi3zvXjgoNY0zSImFFrPzAN+BgkqhkiG9w0BAQsFADAa"); d == "" {
		t.Fatal("two different base64 lines matched")
	}
	if d := Match(documented, real+"\nextra               line"); d == "" {
		t.Fatal("an extra real line matched without a ... line")
	}
}

func TestMatchWildcards(t *testing.T) {
	real := "certificate -----BEGIN CERTIFICATE-----\nMIIC3jCCAcag\nAAAA\n-----END CERTIFICATE-----\ncommon_name vault-dev"
	if d := Match("certificate -----BEGIN CERTIFICATE-----\n...\n-----END CERTIFICATE-----\ncommon_name vault-dev", real); d != "" {
		t.Fatalf("a ... line stands for any lines:\n%s", d)
	}
	if d := Match("...\ncommon_name vault-dev", real); d != "" {
		t.Fatalf("a leading ... line:\n%s", d)
	}
	if d := Match("... endpoint=oauth.revoke status=200 ... user=\"x\"", `2026/11/29 10:42:11 POST /services/oauth2/revoke endpoint=oauth.revoke status=200 duration=1.2ms user="x"`); d != "" {
		t.Fatalf("inline ... stands for any text:\n%s", d)
	}
	if d := Match("...\ncommon_name other", real); d == "" {
		t.Fatal("a ... line matched a different last line")
	}
	if d := Match("password <redacted>", "password"); d == "" {
		t.Fatal("<redacted> matched an empty value")
	}
}

func TestPortMap(t *testing.T) {
	p := PortMap{8200: 41000, 8787: 41001}
	cmd := "export VAULT_ADDR=http://127.0.0.1:8200; curl http://localhost:8787/x http://127.0.0.1:8788/y"
	want := "export VAULT_ADDR=http://127.0.0.1:41000; curl http://localhost:41001/x http://127.0.0.1:8788/y"
	if got := p.ToReal(cmd); got != want {
		t.Fatalf("ToReal:\n got %s\nwant %s", got, want)
	}
	if got := p.ToDoc(want); got != cmd {
		t.Fatalf("ToDoc:\n got %s\nwant %s", got, cmd)
	}
}

func TestLeaseIDsFollowTheRun(t *testing.T) {
	var ids LeaseIDs
	ids.Learn("lease_id salesforce/token/pw/nFz8DuG9vtMJBmSZK1gbOpyg", "lease_id salesforce/token/pw/AAAAAAAAAAAAAAAAAAAAAAA1")
	// A list shows the known lease and two more, in the server's order.
	ids.Learn("Keys\n----\ncdtofkWdJvaB5WsFa34jDu7G\nnFz8DuG9vtMJBmSZK1gbOpyg\nrUHh6LX2ltRHQZshlfP8V1MH",
		"Keys\n----\nAAAAAAAAAAAAAAAAAAAAAAA1\nBBBBBBBBBBBBBBBBBBBBBBB2\nCCCCCCCCCCCCCCCCCCCCCCC3")
	for doc, real := range map[string]string{
		"vault lease renew salesforce/token/pw/nFz8DuG9vtMJBmSZK1gbOpyg":  "vault lease renew salesforce/token/pw/AAAAAAAAAAAAAAAAAAAAAAA1",
		"vault lease revoke salesforce/token/pw/cdtofkWdJvaB5WsFa34jDu7G": "vault lease revoke salesforce/token/pw/BBBBBBBBBBBBBBBBBBBBBBB2",
		"vault lease revoke salesforce/token/pw/rUHh6LX2ltRHQZshlfP8V1MH": "vault lease revoke salesforce/token/pw/CCCCCCCCCCCCCCCCCCCCCCC3",
		"vault read salesforce/creds/demo":                                "vault read salesforce/creds/demo",
	} {
		if got := ids.Rewrite(doc); got != real {
			t.Errorf("Rewrite(%q) = %q, want %q", doc, got, real)
		}
	}
}

func TestRedactorHidesSecretsEverywhere(t *testing.T) {
	var r Redactor
	out := r.Redact("vault read salesforce/creds/demo", "Key Value\npassword               s3cr3t-Pass-XYZ\nsecurity_token         n/a\nsecurity_token_status  current\nusername               integration@acme.demo")
	if strings.Contains(out, "s3cr3t") || !strings.Contains(out, "password <redacted>") && !strings.Contains(out, "password               <redacted>") {
		t.Fatalf("table value not redacted:\n%s", out)
	}
	if !strings.Contains(out, "security_token         n/a") || !strings.Contains(out, "current") {
		t.Fatalf("placeholders and other fields must stay:\n%s", out)
	}
	out = r.Redact("curl -s mailbox", `[{"to":"a@b","securityToken":"5TQE3J0rrWYh4MgGX6EPtqXi7","at":"x"}]`)
	if strings.Contains(out, "5TQE3J") {
		t.Fatalf("JSON value not redacted: %s", out)
	}
	out = r.Redact("curl -s soap", `<result><sessionId>00D5g!AQ0AQAbCdEf</sessionId></result>`)
	if strings.Contains(out, "AQ0AQ") {
		t.Fatalf("XML value not redacted: %s", out)
	}
	out = r.Redact("vault read -field=password salesforce/creds/demo", "Zq9-new-generated-password")
	if out != "<redacted>" {
		t.Fatalf("-field=password output: %q", out)
	}
	// A value seen once is scrubbed wherever it shows up again.
	if out := r.Redact("grep x log", "old s3cr3t-Pass-XYZ and Zq9-new-generated-password and 5TQE3J0rrWYh4MgGX6EPtqXi7"); strings.Contains(out, "s3cr3t") || strings.Contains(out, "Zq9") || strings.Contains(out, "5TQE3J") {
		t.Fatalf("known values not scrubbed: %s", out)
	}
	if out := r.Redact("vault read -field=access_token salesforce/token/pw | sha256sum", "3985fc7d  -"); out != "3985fc7d  -" {
		t.Fatalf("a hash of a token is not the token: %q", out)
	}
	if len(r.Seen()) != 4 {
		t.Fatalf("Seen() = %d values, want 4", len(r.Seen()))
	}
}

func TestShellKeepsStateAndStatus(t *testing.T) {
	sh, err := StartShell(t.TempDir(), []string{"PATH=/usr/bin:/bin"})
	if err != nil {
		t.Fatal(err)
	}
	defer sh.Close()
	run := func(cmd string) (string, int) {
		t.Helper()
		out, status, err := sh.Run(cmd, 30*time.Second)
		if err != nil {
			t.Fatalf("%s: %v", cmd, err)
		}
		return out, status
	}
	run("X=from-an-earlier-command; alias hi='echo hi'")
	if out, status := run("echo $X; hi"); out != "from-an-earlier-command\nhi\n" || status != 0 {
		t.Fatalf("state did not carry over: %q %d", out, status)
	}
	if out, status := run("echo to-stderr >&2; false"); out != "to-stderr\n" || status != 1 {
		t.Fatalf("stderr and status: %q %d", out, status)
	}
	if out, _ := run("cat <<'EOF'\nhere\nEOF"); out != "here\n" {
		t.Fatalf("here-document: %q", out)
	}
	if out, _ := run("cat"); out != "" {
		t.Fatalf("a command reading stdin got input: %q", out)
	}
	if out, _ := run("printf 'no newline'"); out != "no newline" {
		t.Fatalf("output without a trailing newline: %q", out)
	}
	if _, _, err := sh.Run("sleep 5", 200*time.Millisecond); err == nil {
		t.Fatal("a hanging command did not time out")
	}
}

func TestParseScriptReadsPastedCommands(t *testing.T) {
	banner := "  export VAULT_ADDR=http://127.0.0.1:8200 VAULT_TOKEN=root\n" +
		"  alias vault=/usr/bin/vault        # unless a vault CLI is already on your PATH\n" +
		"\n" +
		"  # Rotate the password; it's emailed:\n" +
		"  vault write -f salesforce/rotate/demo\n" +
		"  curl -s -d client_id=x \\\n" +
		"    http://127.0.0.1:8787/_emulator/refresh-tokens |\n" +
		"    vault write salesforce/roles/rt -\n"
	doc, err := ParseScript("banner", banner)
	if err != nil {
		t.Fatal(err)
	}
	var cmds []Command
	for _, b := range doc.Blocks {
		if b.Skip {
			t.Fatalf("block %+v skipped", b)
		}
		cmds = append(cmds, b.Commands...)
	}
	if len(cmds) != 4 {
		t.Fatalf("got %d commands, want 4: %+v", len(cmds), cmds)
	}
	if cmds[2].Text != "vault write -f salesforce/rotate/demo" || cmds[2].Line != 5 {
		t.Fatalf("command 2: %+v", cmds[2])
	}
	if !strings.HasSuffix(cmds[3].Text, "vault write salesforce/roles/rt -") || strings.Count(cmds[3].Text, "\n") != 2 {
		t.Fatalf("continued command: %q", cmds[3].Text)
	}
	doc, err = ParseScript("banner", "  ./app -creds creds.json   # runs until Ctrl-C\n  vault write -f salesforce/rotate/app\n")
	if err != nil || len(doc.Blocks) != 2 || !doc.Blocks[0].Skip || doc.Blocks[1].Skip {
		t.Fatalf("a command that runs until Ctrl-C is not skipped (alone): %+v, %v", doc, err)
	}
	if _, err := ParseScript("banner", "  echo 'open\n"); err == nil {
		t.Fatal("an incomplete command was accepted")
	}
}
