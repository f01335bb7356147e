// Command salesforce-emulator serves an emulated Salesforce org (SOAP
// partner API, OAuth, REST password and query endpoints, External Client
// App staged credentials, LoginHistory, AuthSession) for local development
// and demos. See emulator/README.md for the seed format and curl examples.
package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"syscall"
	"time"

	"github.com/vault-salesforce/vault-plugin-secrets-salesforce/emulator"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "salesforce-emulator:", err)
		os.Exit(1)
	}
}

// run parses flags, serves until ctx is done, then shuts down gracefully.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("salesforce-emulator", flag.ContinueOnError)
	fs.SetOutput(stderr)
	addr := fs.String("addr", "127.0.0.1:8787", "listen address (loopback by default)")
	seedPath := fs.String("seed", "", "JSON seed file of the org (default: the built-in demo org)")
	useTLS := fs.Bool("tls", false, "serve HTTPS with a freshly generated self-signed certificate")
	certOut := fs.String("tls-cert-out", "", "with -tls: file to write the certificate PEM to, for clients to trust")
	myDomainHost := fs.String("my-domain-host", "localhost", "host name that acts as the org's My Domain (must resolve to this server)")
	control := fs.Bool("control", true, "serve the loopback-only development control API under "+emulator.ControlPrefix+" (mailbox, certificates, refresh tokens, users, apps, org switches, login history, clock)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *useTLS && *certOut == "" {
		return errors.New("-tls needs -tls-cert-out so that clients can trust the certificate")
	}

	seed := emulator.DefaultSeed()
	if *seedPath != "" {
		var err error
		if seed, err = emulator.LoadSeed(*seedPath); err != nil {
			return err
		}
	}
	srv, err := emulator.New(seed)
	if err != nil {
		return err
	}

	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		return err
	}
	defer ln.Close()
	host, port, _ := net.SplitHostPort(ln.Addr().String())
	if ip := net.ParseIP(host); ip == nil || ip.IsUnspecified() {
		host = "127.0.0.1"
	} else if !ip.IsLoopback() {
		fmt.Fprintln(stderr, "warning: listening on a non-loopback address; the demo org's credentials are public")
	}
	scheme := "http"
	httpSrv := &http.Server{Handler: srv, ReadHeaderTimeout: 10 * time.Second, ErrorLog: log.New(stderr, "", log.LstdFlags)}
	if *useTLS {
		cert, certPEM, err := selfSignedCert(host, *myDomainHost)
		if err != nil {
			return err
		}
		if err := os.WriteFile(*certOut, certPEM, 0o644); err != nil {
			return err
		}
		httpSrv.TLSConfig = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
		scheme = "https"
		ln = tls.NewListener(ln, httpSrv.TLSConfig)
	}
	loginURL := scheme + "://" + net.JoinHostPort(host, port)
	myDomainURL := scheme + "://" + net.JoinHostPort(*myDomainHost, port)
	srv.SetBaseURL(loginURL, myDomainURL)
	srv.SetControlAPI(*control)

	logger := log.New(stdout, "", log.LstdFlags|log.LUTC)
	srv.SetCallHook(func(c emulator.CallInfo) {
		// Path only (never the query string: revoke takes ?token=). Control
		// API paths carry a username or client id, never a token; their
		// responses do, so bodies are never logged.
		user := c.Username
		if user == "" {
			user = "-"
		}
		endpoint := c.Endpoint
		if endpoint == "" {
			endpoint = "-"
		}
		logger.Printf("%s %s endpoint=%s status=%s duration=%s user=%s",
			c.Method, c.Path, endpoint, statusText(c.Status), c.Duration.Round(time.Microsecond), strconv.Quote(user))
	})

	fmt.Fprintf(stdout, "salesforce-emulator: serving org %s\n", srv.OrgID())
	fmt.Fprintf(stdout, "login URL:     %s\n", loginURL)
	fmt.Fprintf(stdout, "My Domain URL: %s\n", myDomainURL)
	if *useTLS {
		fmt.Fprintf(stdout, "TLS certificate written to %s\n", *certOut)
	}
	if *control {
		fmt.Fprintf(stdout, "control API:   %s%s (loopback callers only; not part of Salesforce's API; see emulator/README.md)\n", loginURL, emulator.ControlPrefix)
	}

	errc := make(chan error, 1)
	go func() { errc <- httpSrv.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	fmt.Fprintln(stdout, "salesforce-emulator: shutting down")
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return httpSrv.Shutdown(shutdownCtx)
}

func statusText(code int) string {
	if code == 0 {
		return "dropped"
	}
	return strconv.Itoa(code)
}

// selfSignedCert makes an ECDSA certificate valid for the login and My
// Domain host names, both IP and DNS forms.
func selfSignedCert(hosts ...string) (tls.Certificate, []byte, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, nil, err
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 62))
	if err != nil {
		return tls.Certificate{}, nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: "salesforce-emulator", Organization: []string{"Salesforce emulator (self-signed)"}},
		NotBefore:             time.Now().Add(-time.Minute),
		NotAfter:              time.Now().Add(30 * 24 * time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IsCA:                  true, // self-signed: clients trust it directly as a root
		BasicConstraintsValid: true,
	}
	seen := map[string]bool{}
	for _, h := range append(hosts, "localhost", "127.0.0.1", "::1") {
		if seen[h] {
			continue
		}
		seen[h] = true
		if ip := net.ParseIP(h); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else {
			tmpl.DNSNames = append(tmpl.DNSNames, h)
		}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return tls.Certificate{}, nil, err
	}
	certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}, certPEM, nil
}
