package main

import (
	"fmt"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/vault-salesforce/vault-plugin-secrets-salesforce/emulator"
)

// The emulator as the bench runs it: in process, seeded with the rotation
// users, behind a front that records when each call arrives and at which
// endpoint (the rotation phase's bound counts them).

// emuFront sits in front of the emulator: it delays every Salesforce call
// by latency (control calls are not Salesforce calls) and, while
// recording, notes when each call arrived.
type emuFront struct {
	emu     *emulator.Server
	latency atomic.Int64 // nanoseconds

	mu        sync.Mutex
	recording bool
	arrivals  []time.Time
	endpoints map[string]bool
}

func (f *emuFront) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if !strings.HasPrefix(r.URL.Path, emulator.ControlPrefix) {
		now := time.Now()
		f.mu.Lock()
		if f.recording {
			f.arrivals = append(f.arrivals, now)
		}
		f.mu.Unlock()
		if d := time.Duration(f.latency.Load()); d > 0 {
			t := time.NewTimer(d)
			select {
			case <-t.C:
			case <-r.Context().Done():
				t.Stop()
				return
			}
		}
	}
	f.emu.ServeHTTP(w, r)
}

// startRecording zeroes the emulator's counters and starts noting arrivals.
func (f *emuFront) startRecording() {
	f.emu.ResetCalls()
	f.mu.Lock()
	defer f.mu.Unlock()
	f.recording = true
	f.arrivals = nil
	f.endpoints = map[string]bool{}
}

// stopRecording returns the arrivals and the per-endpoint counters.
func (f *emuFront) stopRecording() ([]time.Time, map[string]int) {
	f.mu.Lock()
	f.recording = false
	arrivals := f.arrivals
	names := make([]string, 0, len(f.endpoints))
	for name := range f.endpoints {
		names = append(names, name)
	}
	f.mu.Unlock()
	calls := map[string]int{}
	for _, name := range names {
		if n := f.emu.Calls(name); n > 0 {
			calls[name] = n
		}
	}
	return arrivals, calls
}

// lastArrival is when the last call arrived while recording.
func (f *emuFront) lastArrival() time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.arrivals) == 0 {
		return time.Time{}
	}
	return f.arrivals[len(f.arrivals)-1]
}

// noteEndpoint is the emulator's call hook: it learns the endpoint names
// whose counters stopRecording reads.
func (f *emuFront) noteEndpoint(ci emulator.CallInfo) {
	if ci.Endpoint == "" {
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.recording {
		f.endpoints[ci.Endpoint] = true
	}
}

// benchSeed is the demo org plus rotUsers users that log in from loopback
// without a security token (the Trusted Integration profile), with the
// org's login and API limits lifted: the benchmark measures the engine,
// not the limits (which have their own tests).
func benchSeed(rotUsers int) *emulator.Seed {
	seed := emulator.DefaultSeed()
	seed.Org.LoginRateLimitPerHour = 1 << 30
	seed.Org.DailyAPIRequests = 1 << 30
	for i := 1; i <= rotUsers; i++ {
		u := rotUsername(i)
		seed.Users = append(seed.Users, emulator.User{
			Username: u, Email: u, LastName: fmt.Sprintf("Rotation %d", i),
			Profile: "Trusted Integration", IsActive: true, Password: rotPassword(i),
		})
	}
	return seed
}

func rotUsername(i int) string { return fmt.Sprintf("rot-%06d@bench.example", i) }
func rotPassword(i int) string { return fmt.Sprintf("Bench-Pass-%06d", i) }

func (e *env) startEmulator(rotUsers int) error {
	e.seed = benchSeed(rotUsers)
	emu, err := emulator.New(e.seed)
	if err != nil {
		return fmt.Errorf("emulator: %w", err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	port := ln.Addr().(*net.TCPAddr).Port
	e.loginURL = fmt.Sprintf("http://127.0.0.1:%d", port)
	e.myDomainURL = fmt.Sprintf("http://localhost:%d", port)
	emu.SetBaseURL(e.loginURL, e.myDomainURL)
	e.emu = emu
	e.front = &emuFront{emu: emu}
	emu.SetCallHook(e.front.noteEndpoint)
	e.emuSrv = &http.Server{Handler: e.front, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = e.emuSrv.Serve(ln) }()
	return nil
}
