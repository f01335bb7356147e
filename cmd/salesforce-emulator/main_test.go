package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
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

// startEmulator runs the command with args until the test ends and returns
// its login URL and its stdout.
func startEmulator(t *testing.T, args ...string) (string, *syncBuffer) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	var out syncBuffer
	done := make(chan error, 1)
	go func() { done <- run(ctx, append([]string{"-addr", "127.0.0.1:0"}, args...), &out, io.Discard) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("run: %v", err)
		}
	})
	loginRe := regexp.MustCompile(`login URL:\s+(\S+)`)
	for i := 0; i < 200; i++ {
		if m := loginRe.FindStringSubmatch(out.String()); m != nil {
			return m[1], &out
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("no login URL printed: %q", out.String())
	return "", nil
}

func httpDo(t *testing.T, method, u, contentType, body string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, u, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// The command serves the control API by default: a refresh token issued
// through it works for the refresh grant, the mailbox answers, and the log
// names the control endpoints without printing any token.
func TestControlAPIServedAndNotLogged(t *testing.T) {
	loginURL, out := startEmulator(t)
	if !strings.Contains(out.String(), "control API:   "+loginURL+"/_emulator/") {
		t.Errorf("control API URL not printed:\n%s", out)
	}
	form := url.Values{"client_id": {"3MVG9demoClientId"}, "username": {"integration@acme.demo"}}
	status, body := httpDo(t, "POST", loginURL+"/_emulator/refresh-tokens", "application/x-www-form-urlencoded", form.Encode())
	var issued map[string]string
	if err := json.Unmarshal([]byte(body), &issued); err != nil || status != 200 || issued["refresh_token"] == "" {
		t.Fatalf("refresh-tokens: %d %s", status, body)
	}
	grant := url.Values{"grant_type": {"refresh_token"}, "refresh_token": {issued["refresh_token"]},
		"client_id": {"3MVG9demoClientId"}, "client_secret": {"demo-client-secret"}}
	status, body = httpDo(t, "POST", loginURL+"/services/oauth2/token", "application/x-www-form-urlencoded", grant.Encode())
	if status != 200 {
		t.Fatalf("refresh grant with the issued token: %d %s", status, body)
	}
	var tok map[string]string
	_ = json.Unmarshal([]byte(body), &tok)
	if status, body := httpDo(t, "GET", loginURL+"/_emulator/mailbox/integration@acme.demo", "", ""); status != 200 || strings.TrimSpace(body) != "[]" {
		t.Errorf("mailbox: %d %s", status, body)
	}
	log := out.String()
	for _, want := range []string{
		`POST /_emulator/refresh-tokens endpoint=control.refreshToken status=200`,
		`GET /_emulator/mailbox/integration@acme.demo endpoint=control.mailbox status=200`,
	} {
		if !strings.Contains(log, want) {
			t.Errorf("log lacks %q:\n%s", want, log)
		}
	}
	for _, secret := range []string{issued["refresh_token"], tok["access_token"], "demo-client-secret"} {
		if secret == "" || strings.Contains(log, secret) {
			t.Fatalf("a secret (or nothing) in the log check: %q", log)
		}
	}
}

func TestControlAPIOff(t *testing.T) {
	loginURL, out := startEmulator(t, "-control=false")
	if strings.Contains(out.String(), "control API") {
		t.Errorf("control API advertised while off:\n%s", out)
	}
	form := url.Values{"client_id": {"3MVG9demoClientId"}, "username": {"integration@acme.demo"}}
	if status, body := httpDo(t, "POST", loginURL+"/_emulator/refresh-tokens", "application/x-www-form-urlencoded", form.Encode()); status != 404 || strings.Contains(body, "refresh_token") {
		t.Fatalf("refresh-tokens with -control=false: %d %s", status, body)
	}
	if status, _ := httpDo(t, "GET", loginURL+"/_emulator/mailbox/integration@acme.demo", "", ""); status != 404 {
		t.Fatalf("mailbox with -control=false: %d", status)
	}
}

// The Connect REST staged-credential calls and the control API's app view
// are logged by endpoint, never with the consumer secrets they return.
func TestStagedCredentialsLoggedWithoutSecrets(t *testing.T) {
	loginURL, out := startEmulator(t)
	myDomain := strings.Replace(loginURL, "127.0.0.1", "localhost", 1)
	form := url.Values{"grant_type": {"client_credentials"}, "client_id": {"3MVG9demoClientId"}, "client_secret": {"demo-client-secret"}}
	status, body := httpDo(t, "POST", myDomain+"/services/oauth2/token", "application/x-www-form-urlencoded", form.Encode())
	var tok map[string]string
	if err := json.Unmarshal([]byte(body), &tok); err != nil || status != 200 {
		t.Fatalf("client credentials: %d %s", status, body)
	}
	req, _ := http.NewRequest("POST", myDomain+"/services/data/v65.0/apps/oauth/credentials/0xI5g000000EtlAEAS/8885g000000EtlAAAS/staged", strings.NewReader("{}"))
	req.Header.Set("Authorization", "Bearer "+tok["access_token"])
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var staged struct {
		StagedCredentials []struct{ Key, Secret string }
	}
	_ = json.NewDecoder(resp.Body).Decode(&staged)
	resp.Body.Close()
	if resp.StatusCode != 201 || len(staged.StagedCredentials) != 1 || staged.StagedCredentials[0].Secret == "" {
		t.Fatalf("stage: %d %+v", resp.StatusCode, staged)
	}
	if status, body := httpDo(t, "GET", loginURL+"/_emulator/apps/Acme_ETL", "", ""); status != 200 || !strings.Contains(body, staged.StagedCredentials[0].Secret) {
		t.Fatalf("control app view: %d %s", status, body)
	}
	log := out.String()
	for _, want := range []string{
		`POST /services/data/v65.0/apps/oauth/credentials/0xI5g000000EtlAEAS/8885g000000EtlAAAS/staged endpoint=connect.stagedCredentials status=201`,
		`GET /_emulator/apps/Acme_ETL endpoint=control.apps status=200`,
	} {
		if !strings.Contains(log, want) {
			t.Errorf("log lacks %q:\n%s", want, log)
		}
	}
	for _, secret := range []string{staged.StagedCredentials[0].Secret, "demo-etl-client-secret", "demo-client-secret", tok["access_token"]} {
		if strings.Contains(log, secret) {
			t.Fatalf("a secret in the log:\n%s", log)
		}
	}
}
