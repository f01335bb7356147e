//go:build pprof

// Profiling hook, compiled only with `go build -tags pprof` (the benchmark
// driver's -pprof flag builds the plugin that way; release builds never
// contain it). When SALESFORCE_PLUGIN_PPROF_ADDR names a loopback address,
// e.g. 127.0.0.1:6061, the plugin process serves net/http/pprof there.
// Vault starts plugins with an empty environment, so pass the variable at
// registration: vault plugin register -env SALESFORCE_PLUGIN_PPROF_ADDR=127.0.0.1:6061 ...
package main

import (
	"fmt"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"time"

	"github.com/hashicorp/go-hclog"
)

// pprofAddrEnv names the environment variable with the listen address.
const pprofAddrEnv = "SALESFORCE_PLUGIN_PPROF_ADDR"

func init() {
	addr := os.Getenv(pprofAddrEnv)
	if addr == "" {
		return
	}
	logger := hclog.New(&hclog.LoggerOptions{Name: "pprof"})
	if err := checkLoopback(addr); err != nil {
		logger.Error("not serving pprof", "env", pprofAddrEnv, "error", err)
		return
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		// A second plugin process (during a reload) finds the port taken.
		logger.Error("not serving pprof", "addr", addr, "error", err)
		return
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	logger.Info("serving pprof", "addr", ln.Addr().String(), "pid", os.Getpid())
	go func() { _ = srv.Serve(ln) }()
}

// checkLoopback refuses anything but a loopback IP or localhost: profiles
// and heap dumps show memory, which holds secrets.
func checkLoopback(addr string) error {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("%q is not host:port: %w", addr, err)
	}
	if host == "localhost" {
		return nil
	}
	if ip := net.ParseIP(host); ip == nil || !ip.IsLoopback() {
		return fmt.Errorf("%q is not a loopback address", addr)
	}
	return nil
}
