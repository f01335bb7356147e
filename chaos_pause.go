//go:build chaos

package salesforce

// This file is compiled only into the plugin the acceptance suite's crash
// tests run (go build -tags chaos). It reads SF_CHAOS_PAUSE, which the
// test passes to the plugin through `vault plugin register -env`, and
// holds a rotation for a while at the named steps, so that the test can
// kill Vault or the plugin exactly there:
//
//	SF_CHAOS_PAUSE=wal-written=3s,password-changed=3s
//
// Steps: wal-written, password-changed, stored, wal-deleted (account
// rotation) and root-wal-written, root-password-changed, root-stored
// (rotate-root). Release builds have no such code.

import (
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/hashicorp/go-hclog"
)

const chaosPauseEnv = "SF_CHAOS_PAUSE"

func init() {
	pauses, err := parseChaosPauses(os.Getenv(chaosPauseEnv))
	if err != nil {
		// A typo must not quietly run the test without its window.
		panic(err)
	}
	if len(pauses) == 0 {
		return
	}
	stepPause = func(logger hclog.Logger, step string) {
		d, ok := pauses[step]
		if !ok {
			return
		}
		logger.Warn("chaos build: pausing the rotation", "step", step, "for", d.String())
		time.Sleep(d)
	}
}

var chaosSteps = map[string]bool{
	stepWALWritten: true, stepPasswordChanged: true, stepStored: true, stepWALDeleted: true,
	stepRootWALWritten: true, stepRootPasswordChanged: true, stepRootStored: true,
}

// parseChaosPauses reads "step=duration,step=duration".
func parseChaosPauses(spec string) (map[string]time.Duration, error) {
	out := map[string]time.Duration{}
	for _, item := range strings.Split(spec, ",") {
		item = strings.TrimSpace(item)
		if item == "" {
			continue
		}
		step, dur, ok := strings.Cut(item, "=")
		if !ok || !chaosSteps[step] {
			return nil, fmt.Errorf("%s: %q is not step=duration with a known step", chaosPauseEnv, item)
		}
		d, err := time.ParseDuration(dur)
		if err != nil || d <= 0 {
			return nil, fmt.Errorf("%s: %q: the duration must be positive, like 3s", chaosPauseEnv, item)
		}
		out[step] = d
	}
	return out, nil
}
