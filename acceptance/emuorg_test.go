package acceptance

import (
	"fmt"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vault-salesforce/vault-plugin-secrets-salesforce/emulator"
)

// privateOrg is an emulated org of a test's own, on its own loopback port:
// its users, faults and lockouts touch no other test. Loopback is a
// trusted IP range, so nobody needs a security token, and three failed
// logins lock a user out (a strict but common org setting).
type privateOrg struct {
	emu   *emulator.Server
	url   string
	gate  *emuGate
	users []string // extra users, see user(i)
	// requests counts every request that reached the org.
	requests atomic.Int64
}

// orgLockoutThreshold is the private orgs' "maximum invalid login
// attempts".
const orgLockoutThreshold = 3

func newPrivateOrg(t *testing.T, extraUsers int) *privateOrg {
	t.Helper()
	need(t)
	seed := emulator.DefaultSeed()
	seed.Org.TrustedIPRanges = []string{"127.0.0.0/8"}
	seed.Org.PasswordPolicy.MaxLoginAttempts = orgLockoutThreshold
	o := &privateOrg{}
	for i := 1; i <= extraUsers; i++ {
		name := fmt.Sprintf("user%d@chaos.demo", i)
		seed.Users = append(seed.Users, emulator.User{Username: name, Email: name, FirstName: "Chaos", LastName: fmt.Sprint(i),
			Profile: "Integration", IsActive: true, Password: fmt.Sprintf("Chaos-Initial-%d-pass", i)})
		o.users = append(o.users, name)
	}
	// Passwords set two days ago, as in an org that has been running (the
	// emulator would date them now): a change made seconds before a
	// rotation would make the engine's LastPasswordChangeDate reading
	// inconclusive (rotation_settle.go, changeMarkGuard), and no minimum
	// lifetime applies.
	for i := range seed.Users {
		if seed.Users[i].PasswordChangedAt.IsZero() {
			seed.Users[i].PasswordChangedAt = time.Now().Add(-48 * time.Hour)
		}
	}
	emu, err := emulator.New(seed)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	o.url = fmt.Sprintf("http://127.0.0.1:%d", port)
	emu.SetBaseURL(o.url, fmt.Sprintf("http://localhost:%d", port))
	o.emu = emu
	o.gate = &emuGate{}
	tapped := tapSecrets(emu)
	count := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		o.requests.Add(1)
		tapped.ServeHTTP(w, r)
	})
	srv := &http.Server{Handler: o.gate.wrap(count), ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() {
		o.gate.open()
		_ = srv.Close()
	})
	noteOrg(emu, seedUsernames(seed))
	for _, u := range o.users {
		noteSecret(emu.Password(u))
	}
	return o
}

// user is the i-th extra user (1-based).
func (o *privateOrg) user(i int) string { return o.users[i-1] }

// userState is a copy of a user's lockout facts.
type userState struct {
	Locked       bool
	FailedLogins int
	PreviousPws  int
}

func (o *privateOrg) state(username string) userState {
	var s userState
	o.emu.SetUserState(username, func(u *emulator.User) {
		s = userState{Locked: u.IsPasswordLocked, FailedLogins: u.FailedLoginAttempts, PreviousPws: len(u.PreviousPasswords)}
	})
	return s
}

// configure writes the mount's config for this org: the admin user through
// the password grant (no security token: loopback is trusted, which also
// lets rotate-root run), calls bounded by a short request_timeout.
func (o *privateOrg) configure(t testing.TB, c *raftCluster, mount string) {
	t.Helper()
	c.writeJSON(t, mount+"/config", map[string]any{
		"login_url":                o.url,
		"allow_non_salesforce_url": true,
		"client_id":                demoClientID,
		"client_secret":            demoClientSecret,
		"grant_type":               "password",
		"username":                 demoAdminUser,
		"password":                 o.emu.Password(demoAdminUser),
		"request_timeout":          "10s",
	})
}

// emuGate makes the org unreachable: while closed, requests hang (as
// behind a firewall that drops packets) until the caller gives up; when
// it opens again, the held requests are dropped unanswered, never served
// late.
type emuGate struct {
	mu     sync.Mutex
	closed bool
	reopen chan struct{}
	// stopped counts the requests that met the closed gate.
	stopped atomic.Int64
}

func (g *emuGate) close() {
	g.mu.Lock()
	defer g.mu.Unlock()
	if !g.closed {
		g.closed, g.reopen = true, make(chan struct{})
	}
}

func (g *emuGate) open() {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.closed {
		g.closed = false
		close(g.reopen)
	}
}

func (g *emuGate) wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		g.mu.Lock()
		closed, reopen := g.closed, g.reopen
		g.mu.Unlock()
		if closed && !strings.HasPrefix(r.URL.Path, emulator.ControlPrefix) {
			g.stopped.Add(1)
			select {
			case <-r.Context().Done():
			case <-reopen:
			}
			panic(http.ErrAbortHandler) // close the connection unanswered
		}
		next.ServeHTTP(w, r)
	})
}
