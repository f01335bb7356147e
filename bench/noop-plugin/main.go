// Command noop-plugin is the reference external secrets plugin of the
// real-Vault benchmark (bench/vaultbench, `make bench`): it does the least
// a plugin can do, so its throughput is the ceiling any plugin reaches
// through Vault's gRPC hop on the same server.
//
// It is built with the Vault SDK like the Salesforce plugin and served the
// same way (plugin.ServeMultiplex). Paths:
//
//	entry  read: the one stored entry, decoded (one storage Get through the
//	       gRPC hop, like creds/<name> would ideally be); write: stores the
//	       request's fields as that entry.
//	lease  read: a secret with a lease (renewable, revocation is a no-op)
//	       and no storage access in the plugin, like a cached token read
//	       would ideally be.
//
// It is a measuring instrument, not an example of a good engine: it keeps
// no secrets and validates nothing.
package main

import (
	"os"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/vault/api"
	"github.com/hashicorp/vault/sdk/plugin"
)

func main() {
	meta := &api.PluginAPIClientMeta{}
	flags := meta.FlagSet()
	if err := flags.Parse(os.Args[1:]); err != nil {
		fatal(err)
	}
	tlsProvider := api.VaultPluginTLSProvider(meta.GetTLSConfig())
	if err := plugin.ServeMultiplex(&plugin.ServeOpts{
		BackendFactoryFunc: Factory,
		TLSProviderFunc:    tlsProvider,
	}); err != nil {
		fatal(err)
	}
}

func fatal(err error) {
	hclog.New(&hclog.LoggerOptions{}).Error("plugin shutting down", "error", err)
	os.Exit(1)
}
