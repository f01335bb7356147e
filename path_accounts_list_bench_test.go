package salesforce

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/vault/sdk/logical"
)

// readCalls is the number of storage reads (gets and lists) in calls.
func readCalls(calls map[string]int) int64 {
	var n int64
	for op, c := range calls {
		if strings.HasPrefix(op, "get ") || strings.HasPrefix(op, "list ") {
			n += int64(c)
		}
	}
	return n
}

// BenchmarkAccountsListVsReads lists a folder of 1,000 accounts with their
// key_info (what vault list -detailed shows) and, beside it, reads each of
// them as accounts/<name>: the list must cost no more than the reads it
// replaces. It reports the latency ratio and the storage calls per account.
func BenchmarkAccountsListVsReads(b *testing.B) {
	const n = 1000
	be, s := getTestBackend(b)
	cs := newCountingStorage(s)
	for i := range n {
		putAccount(b, be, s, fmt.Sprintf("fleet/a%04d", i), &account{
			Username: fmt.Sprintf("a%04d@fleet.test", i), Password: "Fleet-Pass-1234",
			accountRotation: accountRotation{RotationMethod: rotationMethodAdmin, SecurityTokenMode: tokenModeNotRequired},
		})
	}
	var list, reads time.Duration
	var listCalls int64
	b.ResetTimer()
	for range b.N {
		cs.taken()
		start := time.Now()
		resp, err := request(b, be, cs, logical.ListOperation, "accounts/fleet/", nil)
		list += time.Since(start)
		listCalls += readCalls(cs.taken())
		if err := respErr(resp, err); err != nil || len(resp.Data["key_info"].(map[string]interface{})) != n {
			b.Fatalf("list: %v", err)
		}
		start = time.Now()
		for i := range n {
			if _, err := request(b, be, s, logical.ReadOperation, fmt.Sprintf("accounts/fleet/a%04d", i), nil); err != nil {
				b.Fatal(err)
			}
		}
		reads += time.Since(start)
	}
	b.StopTimer()
	b.ReportMetric(float64(list.Nanoseconds())/float64(b.N), "ns/list-of-1000")
	b.ReportMetric(float64(list)/float64(reads), "list/reads-latency")
	b.ReportMetric(float64(listCalls)/float64(b.N)/n, "storage-calls/listed-account")
}
