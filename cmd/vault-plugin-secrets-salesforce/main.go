// Command vault-plugin-secrets-salesforce is the Vault plugin binary.
package main

import (
	"os"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/vault/api"
	"github.com/hashicorp/vault/sdk/plugin"

	salesforce "github.com/vault-salesforce/vault-plugin-secrets-salesforce"
)

// parentPollInterval is how often the plugin checks that Vault is still
// its parent: a dead Vault's plugin exits within about this long.
const parentPollInterval = 500 * time.Millisecond

func main() {
	go watchParent(os.Getppid(), os.Getppid, parentPollInterval, func() {
		hclog.New(&hclog.LoggerOptions{}).Error("plugin shutting down: the Vault server that started it is gone")
		os.Exit(2)
	})

	meta := &api.PluginAPIClientMeta{}
	flags := meta.FlagSet()
	if err := flags.Parse(os.Args[1:]); err != nil {
		fatal(err)
	}
	tlsConfig := meta.GetTLSConfig()
	tlsProvider := api.VaultPluginTLSProvider(tlsConfig)

	if err := plugin.ServeMultiplex(&plugin.ServeOpts{
		BackendFactoryFunc: salesforce.Factory,
		TLSProviderFunc:    tlsProvider,
	}); err != nil {
		fatal(err)
	}
}

// watchParent calls orphaned once the parent process id differs from
// parent, checking every interval. When Vault dies (kill -9, OOM), its
// plugin processes are not told: go-plugin only stops them on a clean
// shutdown. An orphaned plugin would go on with what it was doing, a
// scheduled rotation under a context nobody cancels, a password change
// Salesforce applies after another node already settled the rotation. A
// process whose parent dies is re-parented (to init or a subreaper), so
// a changed parent id means Vault is gone and the plugin must stop at
// once, before it makes another Salesforce call.
//
// Why not prctl(PR_SET_PDEATHSIG): it is Linux-only and does not fit Go
// on either side. The kernel keeps the setting per thread (a Go program
// cannot choose which OS thread runs the call, and only the thread group
// leader's setting counts), and it fires when the parent *thread* that
// forked us exits, not the parent process: Vault's Go runtime may end
// that thread (a goroutine locked to it returns) while Vault runs on,
// which would kill a healthy plugin. It is also set after exec, so a
// parent that died in between is missed. Polling getppid has none of
// these problems and costs nothing measurable.
//
// A parent id of 1 at start (Vault running as PID 1 in a container) is
// fine: the plugin exits only on a change.
func watchParent(parent int, getppid func() int, interval time.Duration, orphaned func()) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for range t.C {
		if getppid() != parent {
			orphaned()
			return
		}
	}
}

func fatal(err error) {
	hclog.New(&hclog.LoggerOptions{}).Error("plugin shutting down", "error", err)
	os.Exit(1)
}
