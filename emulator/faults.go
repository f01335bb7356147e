package emulator

import (
	"bytes"
	"io"
	"net/http"
	"strings"
	"sync"
	"time"
)

// Fault is an injected failure for one endpoint (see Calls for the names).
type Fault struct {
	// Status, when non-zero, is sent with Body instead of the real answer.
	Status int
	Body   string
	// Latency delays the call (the real answer or the fault) before it
	// is handled: a change it asks for is not applied yet. A caller that
	// gives up meanwhile cancels the call, unless IgnoreCancel is set.
	Latency time.Duration
	// IgnoreCancel runs the call to the end of its Latency and handles it
	// even when the caller has gone, as Salesforce completes a request it
	// has fully received: the change lands late and the answer goes
	// nowhere.
	IgnoreCancel bool
	// LatencyAfter lets the call take effect (a password is set, a failed
	// login is counted) and then holds its answer back for this long, so
	// the caller does not know yet what happened. A caller that gives up
	// meanwhile never gets the answer; the change stays. It applies only
	// to calls handled for real (not with Status or Drop).
	LatencyAfter time.Duration
	// Drop closes the connection without an answer.
	Drop bool
	// Times limits the fault to the next N calls; 0 means until cleared.
	Times int
}

type faultSet struct {
	mu     sync.Mutex
	faults map[string]*Fault
	calls  map[string]int
	// held counts the answers held back by LatencyAfter, per endpoint.
	held map[string]int
}

func (f *faultSet) count(endpoint string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.calls == nil {
		f.calls = map[string]int{}
	}
	f.calls[endpoint]++
}

// take returns the fault to apply to this call, consuming one of its Times.
func (f *faultSet) take(endpoint string) (Fault, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	ft := f.faults[endpoint]
	if ft == nil {
		return Fault{}, false
	}
	out := *ft
	if ft.Times > 0 {
		ft.Times--
		if ft.Times == 0 {
			delete(f.faults, endpoint)
		}
	}
	return out, true
}

// apply runs an injected fault; it reports whether the call is finished.
func (f *faultSet) apply(endpoint string, w *recorder, r *http.Request) bool {
	ft, ok := f.take(endpoint)
	if !ok {
		return false
	}
	if ft.Latency > 0 {
		done := r.Context().Done()
		if ft.IgnoreCancel {
			done = nil
		} else if r.Body != nil {
			// net/http notices a caller that hangs up only once the
			// request body is consumed: read it now, so a REST call is
			// cancelled like a SOAP one (whose body routing has read).
			body, _ := io.ReadAll(io.LimitReader(r.Body, 1<<20))
			r.Body = io.NopCloser(bytes.NewReader(body))
		}
		t := time.NewTimer(ft.Latency)
		select {
		case <-t.C:
		case <-done:
			t.Stop()
			return true
		}
	}
	if ft.Drop {
		conn, _, err := w.Hijack()
		if err == nil {
			conn.Close()
			return true
		}
		// HTTP/2 cannot be hijacked; abort the stream instead.
		panic(http.ErrAbortHandler)
	}
	if ft.Status != 0 {
		if ft.Body != "" {
			w.Header().Set("Content-Type", sniffContentType(ft.Body))
		}
		w.WriteHeader(ft.Status)
		_, _ = w.Write([]byte(ft.Body))
		return true
	}
	if ft.LatencyAfter > 0 {
		// The handler writes into a buffer (some handlers write while
		// holding the org lock, which must not be held for the delay);
		// deliver sends it once the delay is over.
		w.ResponseWriter = &heldAnswer{dst: w.ResponseWriter, endpoint: endpoint, delay: ft.LatencyAfter}
	}
	return false
}

// heldAnswer buffers a handler's answer for LatencyAfter.
type heldAnswer struct {
	dst      http.ResponseWriter
	endpoint string
	delay    time.Duration
	status   int
	body     bytes.Buffer
}

// Header is the real header map: it is sent with the held answer.
func (h *heldAnswer) Header() http.Header { return h.dst.Header() }

func (h *heldAnswer) WriteHeader(code int) {
	if h.status == 0 {
		h.status = code
	}
}

func (h *heldAnswer) Write(b []byte) (int, error) {
	if h.status == 0 {
		h.status = http.StatusOK
	}
	return h.body.Write(b)
}

// deliver runs after the handler: an answer held by LatencyAfter is sent
// once its delay is over, or never if the caller has gone.
func (f *faultSet) deliver(w *recorder, r *http.Request) {
	h, ok := w.ResponseWriter.(*heldAnswer)
	if !ok {
		return
	}
	w.ResponseWriter = h.dst
	f.mu.Lock()
	if f.held == nil {
		f.held = map[string]int{}
	}
	f.held[h.endpoint]++
	f.mu.Unlock()
	t := time.NewTimer(h.delay)
	select {
	case <-t.C:
	case <-r.Context().Done():
		t.Stop()
		return
	}
	if h.status == 0 {
		h.status = http.StatusOK
	}
	h.dst.WriteHeader(h.status)
	_, _ = h.dst.Write(h.body.Bytes())
}

func sniffContentType(body string) string {
	switch t := strings.TrimSpace(body); {
	case strings.HasPrefix(t, "<"):
		return "text/xml; charset=utf-8"
	case strings.HasPrefix(t, "{"), strings.HasPrefix(t, "["):
		return "application/json;charset=UTF-8"
	}
	return "text/plain; charset=utf-8"
}

// InjectFault makes the next calls to endpoint fail as f describes,
// replacing any earlier fault for that endpoint.
func (s *Server) InjectFault(endpoint string, f Fault) {
	s.faults.mu.Lock()
	defer s.faults.mu.Unlock()
	if s.faults.faults == nil {
		s.faults.faults = map[string]*Fault{}
	}
	s.faults.faults[endpoint] = &f
}

// ClearFaults removes every injected fault.
func (s *Server) ClearFaults() {
	s.faults.mu.Lock()
	defer s.faults.mu.Unlock()
	s.faults.faults = nil
}

// Calls returns how many requests reached endpoint, faulted ones included.
// Names: soap.login, soap.setPassword, soap.changeOwnPassword,
// soap.resetPassword, soap.logout, oauth.token, oauth.revoke,
// oauth.introspect, oauth.userinfo, id, rest.password, rest.query,
// rest.limits, rest.userlogin, rest.versions, rest.queryMore, rest.sobject
// (GET sobjects/{type}/{id}, DELETE sobjects/AuthSession/{id}) (and
// rest.user, soap.other).
func (s *Server) Calls(endpoint string) int {
	s.faults.mu.Lock()
	defer s.faults.mu.Unlock()
	return s.faults.calls[endpoint]
}

// HeldAnswers returns how many calls to endpoint took effect and then had
// their answer held back by Fault.LatencyAfter (counted when the hold
// starts).
func (s *Server) HeldAnswers(endpoint string) int {
	s.faults.mu.Lock()
	defer s.faults.mu.Unlock()
	return s.faults.held[endpoint]
}

// ResetCalls zeroes every counter.
func (s *Server) ResetCalls() {
	s.faults.mu.Lock()
	defer s.faults.mu.Unlock()
	s.faults.calls = nil
	s.faults.held = nil
}
