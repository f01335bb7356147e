package emulator

import (
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// jwtClockSkew: a client that computes exp as now+3m on a clock a second
// ahead should not fail (what Salesforce tolerates is uncertain).
const jwtClockSkew = 5 * time.Second

// parsePublicKeyPEM reads an RSA public key from a CERTIFICATE or PUBLIC
// KEY PEM block.
func parsePublicKeyPEM(data string) (*rsa.PublicKey, error) {
	block, _ := pem.Decode([]byte(data))
	if block == nil {
		return nil, errors.New("no PEM block found")
	}
	var pub any
	switch block.Type {
	case "CERTIFICATE":
		cert, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return nil, err
		}
		pub = cert.PublicKey
	case "PUBLIC KEY":
		k, err := x509.ParsePKIXPublicKey(block.Bytes)
		if err != nil {
			return nil, err
		}
		pub = k
	case "RSA PUBLIC KEY":
		k, err := x509.ParsePKCS1PublicKey(block.Bytes)
		if err != nil {
			return nil, err
		}
		pub = k
	default:
		return nil, errors.New("unsupported PEM block " + block.Type)
	}
	rsaKey, ok := pub.(*rsa.PublicKey)
	if !ok {
		return nil, errors.New("not an RSA key")
	}
	return rsaKey, nil
}

// numericClaim accepts exp as a JSON number or a numeric string: the
// Salesforce doc example sends "exp": "1333685628".
func numericClaim(v any) (int64, bool) {
	switch t := v.(type) {
	case json.Number:
		f, err := t.Float64()
		return int64(f), err == nil
	case float64:
		return int64(t), true
	case string:
		n, err := strconv.ParseInt(strings.TrimSpace(t), 10, 64)
		return n, err == nil
	}
	return 0, false
}

func (s *Server) audienceOK(aud any) bool {
	valid := map[string]bool{
		"https://login.salesforce.com": true,
		"https://test.salesforce.com":  true,
		s.loginURL:                     true,
		s.myDomainURL:                  true,
	}
	check := func(a string) bool { return valid[strings.TrimRight(a, "/")] }
	switch t := aud.(type) {
	case string:
		return check(t)
	case []any:
		for _, a := range t {
			if str, ok := a.(string); ok && check(str) {
				return true
			}
		}
	}
	return false
}

func (s *Server) jwtBearerGrant(w *recorder, r *http.Request) (tokenResponse, *oauthError) {
	assertion := r.PostFormValue("assertion")
	// Read the claims unverified first: iss picks the app whose
	// certificate verifies the signature.
	claims := jwt.MapClaims{}
	if _, _, err := jwt.NewParser(jwt.WithJSONNumber()).ParseUnverified(assertion, claims); err != nil {
		return tokenResponse{}, errAssertion
	}
	iss, _ := claims["iss"].(string)
	subject, _ := claims["sub"].(string)
	if prn, ok := claims["prn"].(string); ok && prn != "" {
		subject = prn // "If both are specified, prn is used"
	}
	w.username = subject

	s.mu.Lock()
	defer s.mu.Unlock()
	cred := s.credentialFor(iss)
	if cred == nil {
		return tokenResponse{}, errClientID
	}
	app := cred.app
	pub, err := parsePublicKeyPEM(app.CertificatePEM)
	if err != nil {
		return tokenResponse{}, errAssertion
	}
	verified := jwt.MapClaims{}
	_, err = jwt.NewParser(jwt.WithValidMethods([]string{"RS256"}), jwt.WithoutClaimsValidation(), jwt.WithJSONNumber()).
		ParseWithClaims(assertion, verified, func(*jwt.Token) (any, error) { return pub, nil })
	if err != nil {
		return tokenResponse{}, errAssertion
	}
	if !s.audienceOK(verified["aud"]) {
		return tokenResponse{}, errAudience
	}
	exp, ok := numericClaim(verified["exp"])
	now := s.clock()
	switch {
	case !ok:
		return tokenResponse{}, errAssertion
	case !now.Before(time.Unix(exp, 0)):
		// Observed in public issue threads (simple-salesforce #371, #491)
		// for assertions whose exp had passed.
		return tokenResponse{}, errExpiredAuthCode
	case time.Unix(exp, 0).After(now.Add(s.org.jwtMaxLifetime() + jwtClockSkew)):
		// The error text for a too-distant exp is uncertain.
		return tokenResponse{}, errAssertion
	}
	u := s.userByName(subject)
	if u == nil || !app.preAuthorized(u) {
		// Unknown users get the same answer as unapproved ones.
		return tokenResponse{}, errNotApproved
	}
	lc := newLoginContext(r, FlowJWTBearer)
	lc.app = app
	if !u.IsActive {
		s.recordLogin(u, lc, StatusUserInactive)
		return tokenResponse{}, errInactiveUser
	}
	if s.checkRateLimit(u) {
		s.recordLogin(u, lc, StatusRateExceeded)
		return tokenResponse{}, errRateLimit
	}
	attempt := s.recordLogin(u, lc, StatusSuccess)
	se := s.newSession(u, app, iss, app.scopes(), "", attempt)
	// The doc's JWT response shows no signature (no client secret is
	// involved); issued_at is kept as the other flows send it (uncertain).
	return s.tokenFor(se, u, ""), nil
}
