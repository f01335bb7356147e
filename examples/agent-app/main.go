// Command agent-app is a small application that gets its Salesforce login
// from a file Vault Agent renders (docs/applications.md): it logs in, runs a
// SOQL query every -interval, and logs in again when the file changes, for
// example after Vault rotated the password. It never prints a secret.
//
// Two kinds of file, rendered by the templates in examples/agent:
//
//	agent-app -creds .dev/agent/creds.json   # creds/<name>: login_url, username, password_with_token
//	agent-app -token .dev/agent/token.json   # token/<role>: instance_url, access_token
//
// With -creds it logs in through the OAuth username-password flow of the
// connected app named by SF_CLIENT_ID and SF_CLIENT_SECRET, sending
// password_with_token as the password. go-salesforce's own password flow
// cannot do this for users who need no security token (trusted IP ranges):
// it requires a non-empty token and otherwise switches to the client
// credentials flow, that is to the connected app's run-as user. So the app
// gets the session with golang.org/x/oauth2 and hands it to go-salesforce,
// as go-salesforce documents for sessions from other flows.
//
// A rejected password is not tried again until the file changes: every
// failed login brings the user closer to Salesforce's lockout.
package main

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"log"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	gosf "github.com/k-capehart/go-salesforce/v3"
	"golang.org/x/oauth2"
)

// credsFile is what examples/agent/creds.ctmpl renders from creds/<name>.
type credsFile struct {
	LoginURL          string `json:"login_url"`
	Username          string `json:"username"`
	PasswordWithToken string `json:"password_with_token"`
	Version           int    `json:"version"`
}

// tokenFile is what examples/agent/token.ctmpl renders from token/<role>.
type tokenFile struct {
	InstanceURL string `json:"instance_url"`
	AccessToken string `json:"access_token"`
	ExpiresAt   string `json:"expires_at"`
}

// errRejected marks a login Salesforce refused (as opposed to one that
// could not reach it): the same file is not tried again.
var errRejected = errors.New("rejected")

type app struct {
	credsPath, tokenPath string
	clientID             string
	clientSecret         string
	query                string
	http                 *http.Client

	sf       *gosf.Salesforce
	loggedIn [sha256.Size]byte // the file content sf logged in with
	rejected [sha256.Size]byte // file content whose login Salesforce refused
	waiting  bool              // rejected is set
}

func main() {
	a := &app{http: &http.Client{Timeout: 30 * time.Second}}
	flag.StringVar(&a.credsPath, "creds", "", "file rendered from creds/<name> (login_url, username, password_with_token)")
	flag.StringVar(&a.tokenPath, "token", "", "file rendered from token/<role> (instance_url, access_token)")
	flag.StringVar(&a.query, "query", "SELECT Id, Name FROM Account LIMIT 1", "SOQL query to run")
	interval := flag.Duration("interval", 5*time.Second, "how often to check the file and run the query")
	once := flag.Bool("once", false, "log in, run the query once and exit (non-zero on failure)")
	flag.Parse()
	log.SetFlags(log.LstdFlags)
	log.SetPrefix("agent-app: ")

	if (a.credsPath == "") == (a.tokenPath == "") {
		log.Fatal("give exactly one of -creds FILE or -token FILE")
	}
	if a.credsPath != "" {
		a.clientID, a.clientSecret = os.Getenv("SF_CLIENT_ID"), os.Getenv("SF_CLIENT_SECRET")
		if a.clientID == "" || a.clientSecret == "" {
			log.Fatal("-creds logs in through the OAuth username-password flow: set SF_CLIENT_ID and SF_CLIENT_SECRET to the connected app's consumer key and secret")
		}
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	if *once {
		if err := a.step(ctx); err != nil {
			log.Fatal(err)
		}
		return
	}
	ticker := time.NewTicker(*interval)
	defer ticker.Stop()
	for {
		if err := a.step(ctx); err != nil {
			log.Print(err)
		}
		select {
		case <-ctx.Done():
			log.Print("stopping")
			return
		case <-ticker.C:
		}
	}
}

func (a *app) path() string {
	if a.credsPath != "" {
		return a.credsPath
	}
	return a.tokenPath
}

// step reads the file, logs in when it is new or changed, and runs the
// query. A query that fails on a session from an unchanged file logs in
// once more (the session may have ended) and tries again.
func (a *app) step(ctx context.Context) error {
	content, err := os.ReadFile(a.path())
	if err != nil {
		return fmt.Errorf("reading the rendered file: %w", err)
	}
	sum := sha256.Sum256(content)
	if a.waiting && sum == a.rejected {
		return nil // said so when the login failed
	}
	if a.sf != nil && sum != a.loggedIn {
		log.Printf("%s changed: logging in again", a.path())
		a.sf = nil
	}
	fresh := false
	if a.sf == nil {
		if err := a.login(ctx, content, sum); err != nil {
			return err
		}
		fresh = true
	}
	n, err := a.runQuery()
	if err != nil && !fresh {
		log.Printf("query failed (%v): logging in again", err)
		a.sf = nil
		if err := a.login(ctx, content, sum); err != nil {
			return err
		}
		n, err = a.runQuery()
	}
	if err != nil {
		return fmt.Errorf("query failed: %w", err)
	}
	log.Printf("query ok: %d record(s)", n)
	return nil
}

func (a *app) login(ctx context.Context, content []byte, sum [sha256.Size]byte) error {
	var (
		sf  *gosf.Salesforce
		who string
		err error
	)
	if a.credsPath != "" {
		sf, who, err = a.loginWithCreds(ctx, content)
	} else {
		sf, who, err = a.loginWithToken(content)
	}
	if err != nil {
		if errors.Is(err, errRejected) {
			a.rejected, a.waiting = sum, true
			return fmt.Errorf("login failed: %w; waiting for %s to change before logging in again", err, a.path())
		}
		return fmt.Errorf("login failed: %w", err)
	}
	a.sf, a.loggedIn, a.waiting = sf, sum, false
	log.Printf("logged in %s", who)
	return nil
}

// loginWithCreds runs the OAuth username-password flow with
// password_with_token, then gives the session to go-salesforce.
func (a *app) loginWithCreds(ctx context.Context, content []byte) (*gosf.Salesforce, string, error) {
	var c credsFile
	if err := json.Unmarshal(content, &c); err != nil {
		return nil, "", fmt.Errorf("%s is not a rendered creds file: %v", a.credsPath, err)
	}
	if c.LoginURL == "" || c.Username == "" || c.PasswordWithToken == "" {
		return nil, "", fmt.Errorf("%s lacks login_url, username or password_with_token", a.credsPath)
	}
	conf := &oauth2.Config{
		ClientID:     a.clientID,
		ClientSecret: a.clientSecret,
		Endpoint: oauth2.Endpoint{
			TokenURL:  strings.TrimRight(c.LoginURL, "/") + "/services/oauth2/token",
			AuthStyle: oauth2.AuthStyleInParams,
		},
	}
	tok, err := conf.PasswordCredentialsToken(context.WithValue(ctx, oauth2.HTTPClient, a.http), c.Username, c.PasswordWithToken)
	if err != nil {
		var re *oauth2.RetrieveError
		if errors.As(err, &re) {
			// Salesforce's answer names the reason (invalid_grant:
			// authentication failure) and never echoes the password.
			return nil, "", fmt.Errorf("%w by Salesforce for %s: %s %s", errRejected, c.Username, re.ErrorCode, re.ErrorDescription)
		}
		return nil, "", err
	}
	instanceURL, _ := tok.Extra("instance_url").(string)
	if instanceURL == "" {
		return nil, "", errors.New("the token response has no instance_url")
	}
	sf, err := gosf.Init(gosf.Creds{Domain: instanceURL, AccessToken: tok.AccessToken})
	if err != nil {
		return nil, "", fmt.Errorf("go-salesforce refused the new session: %w", err)
	}
	return sf, fmt.Sprintf("as %s (credential version %d) with the OAuth username-password flow", c.Username, c.Version), nil
}

// loginWithToken gives the rendered access token to go-salesforce, which
// checks it with one API call.
func (a *app) loginWithToken(content []byte) (*gosf.Salesforce, string, error) {
	var t tokenFile
	if err := json.Unmarshal(content, &t); err != nil {
		return nil, "", fmt.Errorf("%s is not a rendered token file: %v", a.tokenPath, err)
	}
	if t.InstanceURL == "" || t.AccessToken == "" {
		return nil, "", fmt.Errorf("%s lacks instance_url or access_token", a.tokenPath)
	}
	sf, err := gosf.Init(gosf.Creds{Domain: t.InstanceURL, AccessToken: t.AccessToken})
	if err != nil {
		return nil, "", fmt.Errorf("go-salesforce refused the access token: %w", err)
	}
	return sf, fmt.Sprintf("to %s with an access token (session ends %s)", t.InstanceURL, t.ExpiresAt), nil
}

func (a *app) runQuery() (int, error) {
	var records []map[string]any
	if err := a.sf.Query(a.query, &records); err != nil {
		return 0, err
	}
	return len(records), nil
}
