package emulator

import (
	"net/http/httptest"
	"strings"
	"testing"
)

// NewTestServer starts the org (seed nil means DefaultSeed) on an httptest
// server, closed at t.Cleanup. One listener serves both hosts: the login
// URL is http://127.0.0.1:PORT and the My Domain URL http://localhost:PORT;
// requests are told apart by the Host header.
func NewTestServer(t testing.TB, seed *Seed) *Server {
	t.Helper()
	s, err := New(seed)
	if err != nil {
		t.Fatalf("emulator: %v", err)
	}
	ts := httptest.NewServer(s)
	t.Cleanup(ts.Close)
	s.SetBaseURL(ts.URL, strings.Replace(ts.URL, "127.0.0.1", "localhost", 1))
	return s
}
