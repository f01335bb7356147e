package emulator

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"
	"golang.org/x/oauth2/jwt"
)

// The plugin's client is built on golang.org/x/oauth2; its defaults (Basic
// client auth first, numeric exp, sub and prn) must work as against a real org.
func TestXOAuth2Flows(t *testing.T) {
	s := NewTestServer(t, nil)
	ctx := context.Background()

	conf := &oauth2.Config{ClientID: DemoClientID, ClientSecret: DemoClientSecret,
		Endpoint: oauth2.Endpoint{TokenURL: s.LoginURL() + "/services/oauth2/token"}}
	tok, err := conf.PasswordCredentialsToken(ctx, adminUser, adminPass+adminTok)
	if err != nil || tok.AccessToken == "" || tok.Extra("instance_url") != s.MyDomainURL() || !tok.Expiry.IsZero() {
		t.Fatalf("password: %v %+v", err, tok)
	}
	if s.Calls("oauth.token") != 1 {
		t.Errorf("auto-detected client auth took %d calls", s.Calls("oauth.token"))
	}

	cc := &clientcredentials.Config{ClientID: DemoClientID, ClientSecret: DemoClientSecret, TokenURL: s.MyDomainURL() + "/services/oauth2/token"}
	if tok, err := cc.Token(ctx); err != nil || tok.AccessToken == "" {
		t.Fatalf("client credentials: %v", err)
	}

	jc := &jwt.Config{Email: DemoClientID, Subject: integUser, PrivateKey: []byte(DemoPrivateKeyPEM),
		Audience: "https://login.salesforce.com", Expires: 3 * time.Minute, TokenURL: s.LoginURL() + "/services/oauth2/token"}
	if tok, err := jc.TokenSource(ctx).Token(); err != nil || tok.AccessToken == "" {
		t.Fatalf("jwt: %v", err)
	}
	// Its default one-hour assertion is refused.
	jc.Expires = 0
	if _, err := jc.TokenSource(ctx).Token(); err == nil {
		t.Fatal("a one-hour assertion was accepted")
	} else if re := (*oauth2.RetrieveError)(nil); !errors.As(err, &re) || !strings.Contains(string(re.Body), `"invalid_grant"`) {
		t.Fatalf("error %v", err)
	}
}
