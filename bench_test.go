package salesforce

import (
	"testing"
	"time"

	"github.com/vault-salesforce/vault-plugin-secrets-salesforce/emulator"
)

// BenchmarkTokenReadCachedVsUncached reads token/<role> from two roles of
// the same org, one with the cache and one with cache=false, alternating
// read by read so both see the same machine load. It reports the latency
// ratio and the Salesforce token calls per read of each: the cache exists
// to keep logins far below Salesforce's per-user hourly limit.
func BenchmarkTokenReadCachedVsUncached(b *testing.B) {
	be, s, srv, _ := tokenEmulatorBackend(b)
	mustWrite(b, be, s, "roles/cached", map[string]interface{}{"grant_type": "client_credentials"})
	mustWrite(b, be, s, "roles/uncached", map[string]interface{}{"grant_type": "client_credentials", "cache": false})
	// The uncached side logs in on every read; thousands of iterations
	// would hit Salesforce's 3,600 logins per user and hour, which is the
	// point of the cache but not what this benchmark measures.
	srv.SetOrg(func(o *emulator.Org) { o.LoginRateLimitPerHour = 1 << 30 })
	readToken(b, be, s, "cached") // warm: the steady state is what callers see
	srv.ResetCalls()

	var cached, uncached time.Duration
	var cachedCalls, uncachedCalls int
	b.ResetTimer()
	for range b.N {
		before := srv.Calls("oauth.token")
		start := time.Now()
		readToken(b, be, s, "cached")
		cached += time.Since(start)
		mid := srv.Calls("oauth.token")
		cachedCalls += mid - before

		start = time.Now()
		readToken(b, be, s, "uncached")
		uncached += time.Since(start)
		uncachedCalls += srv.Calls("oauth.token") - mid
	}
	b.StopTimer()
	n := float64(b.N)
	b.ReportMetric(float64(cached.Nanoseconds())/n, "ns/cached-read")
	b.ReportMetric(float64(uncached.Nanoseconds())/n, "ns/uncached-read")
	b.ReportMetric(float64(uncached)/float64(cached), "uncached/cached-latency")
	b.ReportMetric(float64(cachedCalls)/n, "token-calls/cached-read")
	b.ReportMetric(float64(uncachedCalls)/n, "token-calls/uncached-read")
}

// BenchmarkCredsReadVsAccountRead measures the composed-credential read an application
// makes, against reading the stored account's status: both are storage
// reads, and creds must not cost more than a small constant over it.
func BenchmarkCredsReadVsAccountRead(b *testing.B) {
	be, s, _, _ := tokenEmulatorBackend(b)
	var creds, acct time.Duration
	b.ResetTimer()
	for range b.N {
		start := time.Now()
		if _, err := request(b, be, s, "read", "creds/integ", nil); err != nil {
			b.Fatal(err)
		}
		creds += time.Since(start)
		start = time.Now()
		if _, err := request(b, be, s, "read", "accounts/integ", nil); err != nil {
			b.Fatal(err)
		}
		acct += time.Since(start)
	}
	b.StopTimer()
	b.ReportMetric(float64(creds)/float64(acct), "creds/account-latency")
}
