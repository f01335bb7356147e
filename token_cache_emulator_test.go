package salesforce

import (
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/vault/sdk/logical"

	"github.com/vault-salesforce/vault-plugin-secrets-salesforce/emulator"
)

// The token cache against the emulator: one token call for many cold
// readers, and a token minted again after what it was minted from changed.

func TestEmulatorConcurrentColdReadsOneTokenCall(t *testing.T) {
	b, s, srv, _ := tokenEmulatorBackend(t)
	mustWrite(t, b, s, "roles/pw", map[string]interface{}{"grant_type": "password", "account": "integ"})
	// Slow token answers make sure the readers overlap the mint.
	srv.InjectFault("oauth.token", emulator.Fault{Latency: 100 * time.Millisecond})

	const readers = 64
	var wg sync.WaitGroup
	errs := make(chan error, readers)
	tokens := make(chan string, readers)
	for range readers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			resp, err := request(t, b, s, logical.ReadOperation, "token/pw", nil)
			if err := respErr(resp, err); err != nil {
				errs <- err
				return
			}
			tokens <- resp.Data["access_token"].(string)
		}()
	}
	wg.Wait()
	close(errs)
	close(tokens)
	for err := range errs {
		t.Fatal(err)
	}
	distinct := map[string]bool{}
	for tok := range tokens {
		distinct[tok] = true
	}
	if n := srv.Calls("oauth.token"); n != 1 || len(distinct) != 1 {
		t.Errorf("oauth.token calls = %d, distinct tokens = %d; want 1 and 1", n, len(distinct))
	}
}

func TestEmulatorCacheInvalidationOnChanges(t *testing.T) {
	b, s, srv, _ := tokenEmulatorBackend(t)
	mustWrite(t, b, s, "roles/pw", map[string]interface{}{"grant_type": "password", "account": "integ"})
	mustWrite(t, b, s, "roles/jwt", map[string]interface{}{"grant_type": "jwt_bearer", "username": demoIntegrationUser})
	readBoth := func() {
		readToken(t, b, s, "pw")
		readToken(t, b, s, "jwt")
	}
	readBoth()
	readBoth()
	if n := srv.Calls("oauth.token"); n != 2 {
		t.Fatalf("token calls = %d, want 2 (one per role)", n)
	}
	steps := []struct {
		name   string
		change func()
		want   int // token calls after reading both roles again
	}{
		{"account rewritten", func() {
			mustWrite(t, b, s, "accounts/integ", map[string]interface{}{"description": "ETL"})
		}, 3},
		{"role rewritten", func() {
			mustWrite(t, b, s, "roles/jwt", map[string]interface{}{"ttl": "10m"})
		}, 4},
		{"config rewritten", func() {
			// verify=false: the admin login would count as a token call.
			mustWrite(t, b, s, "config", map[string]interface{}{"request_timeout": "20s", "verify": false})
		}, 6},
	}
	for _, step := range steps {
		step.change()
		readBoth()
		readBoth()
		if n := srv.Calls("oauth.token"); n != step.want {
			t.Errorf("after %s: token calls = %d, want %d", step.name, n, step.want)
		}
	}
}
