package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"
)

// syncBuffer is an io.Writer safe to read while run writes to it.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func TestServeTLSLoginAndLog(t *testing.T) {
	certFile := filepath.Join(t.TempDir(), "emulator.crt")
	seed, _ := filepath.Abs("../../emulator/testdata/demo-org.json")
	ctx, cancel := context.WithCancel(context.Background())
	var out syncBuffer
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"-addr", "127.0.0.1:0", "-tls", "-tls-cert-out", certFile, "-seed", seed}, &out, io.Discard)
	}()
	loginRe := regexp.MustCompile(`login URL:\s+(\S+)`)
	var loginURL string
	for i := 0; i < 200 && loginURL == ""; i++ {
		if m := loginRe.FindStringSubmatch(out.String()); m != nil {
			loginURL = m[1]
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if !strings.HasPrefix(loginURL, "https://127.0.0.1:") {
		cancel()
		t.Fatalf("no login URL printed: %q", out.String())
	}
	pemBytes, err := os.ReadFile(certFile)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(pemBytes)
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	password := "Admin-Pass-1234ADMINTOKEN0000000000000000"
	body := `<?xml version="1.0"?><soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" xmlns:urn="urn:partner.soap.sforce.com"><soapenv:Body><urn:login><urn:username>admin@acme.demo</urn:username><urn:password>` +
		password + `</urn:password></urn:login></soapenv:Body></soapenv:Envelope>`
	resp, err := client.Post(loginURL+"/services/Soap/u/64.0", "text/xml", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	respBody, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(respBody), "<sessionId>") {
		t.Fatalf("login over TLS: %d %s", resp.StatusCode, respBody)
	}
	sid := regexp.MustCompile(`<sessionId>([^<]+)<`).FindStringSubmatch(string(respBody))[1]
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("run: %v", err)
	}
	log := out.String()
	if !strings.Contains(log, "POST /services/Soap/u/64.0 endpoint=soap.login status=200") || !strings.Contains(log, `user="admin@acme.demo"`) {
		t.Fatalf("no call log line:\n%s", log)
	}
	for _, secret := range []string{password, "Admin-Pass-1234", sid} {
		if strings.Contains(log, secret) {
			t.Fatal("secret in the log")
		}
	}
}
