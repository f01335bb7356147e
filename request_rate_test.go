package salesforce

import (
	"context"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/vault/sdk/logical"

	"github.com/vault-salesforce/vault-plugin-secrets-salesforce/sfapi"
)

// timedClient records when each call reached the org.
type timedClient struct {
	Client
	mu    sync.Mutex
	times []time.Time
}

func (c *timedClient) note() {
	c.mu.Lock()
	c.times = append(c.times, time.Now())
	c.mu.Unlock()
}

func (c *timedClient) ClientCredentialsGrant(ctx context.Context, scopes []string) (*sfapi.Session, error) {
	c.note()
	return c.Client.ClientCredentialsGrant(ctx, scopes)
}

func (c *timedClient) Introspect(ctx context.Context, token string) (*sfapi.Introspection, error) {
	c.note()
	return c.Client.Introspect(ctx, token)
}

// mostWithin is the largest number of times that fall within w of each
// other.
func mostWithin(times []time.Time, w time.Duration) int {
	t := append([]time.Time(nil), times...)
	sort.Slice(t, func(i, j int) bool { return t[i].Before(t[j]) })
	best, lo := 0, 0
	for hi := range t {
		for t[hi].Sub(t[lo]) >= w {
			lo++
		}
		best = max(best, hi-lo+1)
	}
	return best
}

// The limiter lets calls go so that no second holds more than
// requests_per_second of them, with 50 ms to spare for a call the network
// delays more than the next (checked at the limiter's own clock).
func TestRequestRateSpacing(t *testing.T) {
	for _, rps := range []int{1, 10, 50, 400} {
		var r requestRate
		lim := r.limiter(rps)
		base := time.Unix(1000, 0)
		var sent []time.Time
		for range 3*rps + 1 {
			res := lim.ReserveN(base, 1)
			sent = append(sent, base.Add(res.DelayFrom(base)))
		}
		if n := mostWithin(sent, time.Second+45*time.Millisecond); n > rps {
			t.Errorf("requests_per_second=%d: %d calls within 1.045s", rps, n)
		}
		// And the rate is used: 3 rps + 1 calls take little more than 3s.
		if span := sent[len(sent)-1].Sub(sent[0]); span > 3300*time.Millisecond {
			t.Errorf("requests_per_second=%d: %d calls took %s", rps, len(sent), span)
		}
	}
}

// Every Salesforce call waits for its turn within requests_per_second,
// whoever makes it and however many make them at once.
func TestRequestRateNeverExceeded(t *testing.T) {
	b, s, f := tokenTestBackend(t)
	timed := &timedClient{Client: f}
	b.newClient = func(sfapi.Config) (Client, error) { return timed, nil }
	b.resetClient()
	mustWrite(t, b, s, "config/rotation", map[string]interface{}{"requests_per_second": 10})
	mustWrite(t, b, s, "roles/fresh", map[string]interface{}{"grant_type": "client_credentials", "cache": false})

	const readers = 12 // a grant and an introspection each: 24 calls
	var wg sync.WaitGroup
	for range readers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			readToken(t, b, s, "fresh")
		}()
	}
	wg.Wait()
	timed.mu.Lock()
	defer timed.mu.Unlock()
	if len(timed.times) != 2*readers {
		t.Fatalf("%d calls, want %d", len(timed.times), 2*readers)
	}
	// 24 calls at 10 a second span 2.3s at least (a delay of the first
	// call to reach the org shortens it by that delay).
	sort.Slice(timed.times, func(i, j int) bool { return timed.times[i].Before(timed.times[j]) })
	if span := timed.times[len(timed.times)-1].Sub(timed.times[0]); span < 2200*time.Millisecond {
		t.Errorf("24 calls spanned %s at requests_per_second=10, want 2.3s or more", span)
	}
}

func TestRequestRateSetting(t *testing.T) {
	b, s := getTestBackend(t)
	if got := mustRead(t, b, s, "config/rotation")["requests_per_second"]; got != defaultRequestsPerSecond {
		t.Errorf("default requests_per_second = %v, want %d", got, defaultRequestsPerSecond)
	}
	for _, bad := range []int{0, -1, maxRequestsPerSecond + 1} {
		resp, err := request(t, b, s, logical.UpdateOperation, "config/rotation", map[string]interface{}{"requests_per_second": bad})
		if statusOf(resp, err) != 400 {
			t.Errorf("requests_per_second=%d: %d %v, want 400", bad, statusOf(resp, err), respErr(resp, err))
		}
	}
	mustWrite(t, b, s, "config/rotation", map[string]interface{}{"requests_per_second": 250})
	if got := mustRead(t, b, s, "config/rotation")["requests_per_second"]; got != 250 {
		t.Errorf("requests_per_second = %v after writing 250", got)
	}
}

// fakeOf is the fake client inside c, the rate limiter getClient puts
// around every client taken off.
func fakeOf(c Client) *fakeClient {
	if r, ok := c.(*rateLimitedClient); ok {
		c = r.inner
	}
	return c.(*fakeClient)
}

// capStub is a Client with the wire client's extra capabilities, noting
// when their calls reach the org.
type capStub struct {
	Client
	ecaClient
	loginHistoryClient
	mu    sync.Mutex
	times []time.Time
}

func (c *capStub) note() {
	c.mu.Lock()
	c.times = append(c.times, time.Now())
	c.mu.Unlock()
}

func (c *capStub) AppConsumers(context.Context, *sfapi.Session, string) ([]sfapi.AppConsumer, error) {
	c.note()
	return nil, nil
}

func (c *capStub) UserIDs(context.Context, *sfapi.Session, []string) (map[string]string, error) {
	c.note()
	return nil, nil
}

// The capabilities beyond Client (External Client App credentials, Login
// History) are reachable through the rate-limited client, and their calls
// wait for requests_per_second like every other.
func TestRequestRateCoversCapabilities(t *testing.T) {
	b, s := getTestBackend(t)
	mustWrite(t, b, s, "config/rotation", map[string]interface{}{"requests_per_second": 4})
	stub := &capStub{}
	c := b.limitRequests(stub, s)
	ctx := context.Background()
	ec, err := asECAClient(c)
	if err != nil {
		t.Fatal(err)
	}
	lc, err := asLoginHistoryClient(c)
	if err != nil {
		t.Fatal(err)
	}
	for range 3 {
		if _, err := ec.AppConsumers(ctx, nil, "app"); err != nil {
			t.Fatal(err)
		}
		if _, err := lc.UserIDs(ctx, nil, nil); err != nil {
			t.Fatal(err)
		}
	}
	stub.mu.Lock()
	defer stub.mu.Unlock()
	// 6 calls at 4 a second (less the margin) span 1.3s at least.
	if span := stub.times[len(stub.times)-1].Sub(stub.times[0]); span < 1200*time.Millisecond {
		t.Errorf("6 calls spanned %s at requests_per_second=4, want 1.3s or more", span)
	}

	// A client without them still says so, naming itself.
	plain := b.limitRequests(newFakeClient(), s)
	if _, err := asECAClient(plain); err == nil || !strings.Contains(err.Error(), "fakeClient") {
		t.Errorf("asECAClient of a client without the capability: %v", err)
	}
}
