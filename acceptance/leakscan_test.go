package acceptance

// The leak scan: every Vault server log (trace level, so it holds the
// plugin's own log lines, which Vault copies there), and every audit log
// of the run is searched, once all tests are done, for every secret the
// suite ever used. Secrets come from three places: the tests (noteSecret),
// the wire between the plugin and the emulated orgs (tapSecrets notes
// every password, candidate, session id, access and refresh token and
// client secret that crossed it, rejected ones included), and a last
// sweep of each org's users (current and previous passwords, security
// tokens, emailed passwords). One hit, or one file that cannot be read,
// fails the run.

import (
	"bufio"
	"bytes"
	"encoding/json"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"regexp"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/vault-salesforce/vault-plugin-secrets-salesforce/emulator"
)

// minSecretLen: shorter values are not secrets worth the name and would
// match ordinary words in a log.
const minSecretLen = 8

var scanReg struct {
	sync.Mutex
	files map[string]string // path -> what it is
	orgs  []scanOrg
}

type scanOrg struct {
	emu   *emulator.Server
	users []string
}

// noteScanFile adds a log file to the leak scan. A file that does not
// exist at the end fails the scan.
func noteScanFile(path, what string) {
	scanReg.Lock()
	defer scanReg.Unlock()
	if scanReg.files == nil {
		scanReg.files = map[string]string{}
	}
	scanReg.files[path] = what
}

// noteOrg adds an emulated org whose users' secrets are swept at the end.
func noteOrg(emu *emulator.Server, users []string) {
	scanReg.Lock()
	defer scanReg.Unlock()
	scanReg.orgs = append(scanReg.orgs, scanOrg{emu: emu, users: users})
}

// seedUsernames lists the users of a seed, whose secrets sweepOrgs notes.
func seedUsernames(seed *emulator.Seed) []string {
	var out []string
	for _, u := range seed.Users {
		out = append(out, u.Username)
	}
	return out
}

// sweepOrgs notes what the orgs hold now: passwords (current and previous,
// so every rotated-away one), security tokens, emailed passwords and
// tokens.
func sweepOrgs() {
	scanReg.Lock()
	orgs := append([]scanOrg(nil), scanReg.orgs...)
	scanReg.Unlock()
	for _, o := range orgs {
		for _, u := range o.users {
			var values []string
			o.emu.SetUserState(u, func(user *emulator.User) {
				values = append(append(values, user.Password, user.SecurityToken), user.PreviousPasswords...)
			})
			for _, m := range o.emu.Mailbox(u) {
				values = append(values, m.SecurityToken, m.Password)
			}
			noteSecretValues(values...)
		}
	}
}

// noteSecretValues is noteSecret for values seen on the wire: too short
// values are skipped.
func noteSecretValues(values ...string) {
	var keep []string
	for _, v := range values {
		if len(v) >= minSecretLen {
			keep = append(keep, v)
		}
	}
	noteSecret(keep...)
}

// Secrets as they travel: SOAP elements (any namespace prefix), form
// fields, JSON members, bearer tokens.
var (
	soapSecretRe = regexp.MustCompile(`<(?:[\w-]+:)?(password|newPassword|oldPassword|sessionId)>([^<]+)</`)
	formSecrets  = []string{"password", "client_secret", "refresh_token", "token", "code"}
	jsonSecrets  = []string{"NewPassword", "access_token", "refresh_token", "password"}
)

// tapSecrets notes every secret in the requests to and answers from an
// emulated org.
func tapSecrets(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if a := r.Header.Get("Authorization"); strings.HasPrefix(a, "Bearer ") {
			noteSecretValues(strings.TrimPrefix(a, "Bearer "))
		}
		if r.Body != nil {
			body, _ := io.ReadAll(io.LimitReader(r.Body, 1<<20))
			r.Body.Close()
			r.Body = io.NopCloser(bytes.NewReader(body))
			noteSecretsIn(r.Header.Get("Content-Type"), body)
		}
		if q := r.URL.Query(); len(q) > 0 {
			for _, f := range formSecrets {
				noteSecretValues(q[f]...)
			}
		}
		tw := &tapWriter{ResponseWriter: w}
		next.ServeHTTP(tw, r)
		noteSecretsIn(w.Header().Get("Content-Type"), tw.body.Bytes())
	})
}

func noteSecretsIn(contentType string, body []byte) {
	if len(body) == 0 {
		return
	}
	switch {
	case bytes.Contains(body, []byte("Envelope")):
		for _, m := range soapSecretRe.FindAllSubmatch(body, -1) {
			noteSecretValues(xmlUnescape(string(m[2])))
		}
	case strings.Contains(contentType, "x-www-form-urlencoded"):
		if form, err := url.ParseQuery(string(body)); err == nil {
			for _, f := range formSecrets {
				noteSecretValues(form[f]...)
			}
		}
	case bytes.HasPrefix(bytes.TrimSpace(body), []byte("{")):
		var m map[string]any
		if json.Unmarshal(body, &m) == nil {
			for _, f := range jsonSecrets {
				if s, ok := m[f].(string); ok {
					noteSecretValues(s)
				}
			}
		}
	}
}

func xmlUnescape(s string) string {
	var out struct {
		V string `xml:",chardata"`
	}
	if xml.Unmarshal([]byte("<v>"+s+"</v>"), &out) != nil {
		return s
	}
	return out.V
}

// tapWriter copies the answer it passes on; it keeps hijacking (the
// emulator's dropped-connection faults) working.
type tapWriter struct {
	http.ResponseWriter
	body bytes.Buffer
}

func (w *tapWriter) Write(b []byte) (int, error) {
	if w.body.Len() < 1<<20 {
		w.body.Write(b)
	}
	return w.ResponseWriter.Write(b)
}

func (w *tapWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	hj, ok := w.ResponseWriter.(http.Hijacker)
	if !ok {
		return nil, nil, errors.New("cannot hijack")
	}
	return hj.Hijack()
}

// leakReport is what the scan read and found.
type leakReport struct {
	Files   int
	Bytes   int64
	Secrets int
	// Hits per file: lengths of the secrets found, never the values.
	Hits map[string][]int
}

// scanForLeaks reads every registered file and searches it for every noted
// secret. An unreadable or missing file is an error.
func scanForLeaks() (leakReport, error) {
	sweepOrgs()
	scanReg.Lock()
	files := make([]string, 0, len(scanReg.files))
	for f := range scanReg.files {
		files = append(files, f)
	}
	scanReg.Unlock()
	sort.Strings(files)
	secretsMu.Lock()
	values := make([]string, 0, len(secrets))
	for s := range secrets {
		values = append(values, s)
	}
	secretsMu.Unlock()

	rep, err := searchFiles(files, values)
	if err == nil && len(files) == 0 {
		err = errors.New("no log file was registered for the leak scan")
	}
	return rep, err
}

// searchFiles searches each file for each value.
func searchFiles(files, values []string) (leakReport, error) {
	rep := leakReport{Secrets: len(values), Hits: map[string][]int{}}
	var errs []error
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			errs = append(errs, fmt.Errorf("cannot read %s: %w", f, err))
			continue
		}
		rep.Files++
		rep.Bytes += int64(len(data))
		for _, v := range values {
			if bytes.Contains(data, []byte(v)) {
				rep.Hits[f] = append(rep.Hits[f], len(v))
			}
		}
	}
	return rep, errors.Join(errs...)
}

// The scan itself: a planted secret is found (by length only), a missing
// file is an error, and the tap notes what crosses the wire.
func TestLeakScanFindsPlantedSecrets(t *testing.T) {
	dir := t.TempDir()
	log := dir + "/vault.log"
	if err := os.WriteFile(log, []byte("2025 [DEBUG] secrets.plugin: password=Planted-Secret-123 done\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	rep, err := searchFiles([]string{log}, []string{"Planted-Secret-123", "Absent-Secret-456"})
	if err != nil || rep.Files != 1 || len(rep.Hits[log]) != 1 || rep.Hits[log][0] != len("Planted-Secret-123") {
		t.Fatalf("report %+v, error %v: want one hit in %s", rep, err, log)
	}
	if _, err := searchFiles([]string{log, dir + "/missing.log"}, nil); err == nil {
		t.Fatal("a missing file was not an error")
	}

	before := len(snapshotSecrets())
	noteSecretsIn("text/xml", []byte(`<env:Envelope><n1:login><n1:password>Tapped&amp;Pass-1</n1:password></n1:login></env:Envelope>`))
	noteSecretsIn("application/x-www-form-urlencoded", []byte("grant_type=password&password=Tapped-Form-2&client_secret=Tapped-Client-3"))
	noteSecretsIn("application/json", []byte(`{"access_token":"00D!Tapped-Access-4","NewPassword":"short"}`))
	got := snapshotSecrets()
	for _, want := range []string{"Tapped&Pass-1", "Tapped-Form-2", "Tapped-Client-3", "00D!Tapped-Access-4"} {
		if !got[want] {
			t.Errorf("the tap did not note %q", want)
		}
	}
	if got["short"] {
		t.Error("the tap noted a value shorter than minSecretLen")
	}
	if len(got) < before+4 {
		t.Errorf("secrets grew from %d to %d, want at least 4 more", before, len(got))
	}
}

func snapshotSecrets() map[string]bool {
	secretsMu.Lock()
	defer secretsMu.Unlock()
	out := make(map[string]bool, len(secrets))
	for k := range secrets {
		out[k] = true
	}
	return out
}
