//go:build chaos

package salesforce

import (
	"testing"
	"time"
)

func TestParseChaosPauses(t *testing.T) {
	got, err := parseChaosPauses(" wal-written=3s, root-stored=250ms ,")
	if err != nil || len(got) != 2 || got[stepWALWritten] != 3*time.Second || got[stepRootStored] != 250*time.Millisecond {
		t.Fatalf("parseChaosPauses = %v, %v", got, err)
	}
	if got, err := parseChaosPauses(""); err != nil || len(got) != 0 {
		t.Fatalf("empty spec: %v, %v", got, err)
	}
	for _, bad := range []string{"wal-writen=3s", "stored", "stored=0s", "stored=-1s", "stored=soon"} {
		if _, err := parseChaosPauses(bad); err == nil {
			t.Errorf("parseChaosPauses(%q) accepted a bad spec", bad)
		}
	}
}
