package sfapi

import (
	"bytes"
	"context"
	"encoding/xml"
	"net/http"
	"strings"
	"unicode/utf8"
)

// SOAP partner API (urn:partner.soap.sforce.com): login, changeOwnPassword
// and logout. Envelopes are built with encoding/xml so every value is
// escaped.

const (
	soapEnvNS     = "http://schemas.xmlsoap.org/soap/envelope/"
	soapPartnerNS = "urn:partner.soap.sforce.com"
)

// The element names carry their prefixes literally; encoding/xml writes
// them as given, and the namespaces are declared on the envelope.
type soapRequestEnvelope struct {
	XMLName xml.Name           `xml:"soapenv:Envelope"`
	EnvNS   string             `xml:"xmlns:soapenv,attr"`
	UrnNS   string             `xml:"xmlns:urn,attr"`
	Header  *soapRequestHeader `xml:"soapenv:Header,omitempty"`
	Body    soapRequestBody    `xml:"soapenv:Body"`
}

type soapRequestHeader struct {
	SessionHeader soapSessionHeader `xml:"urn:SessionHeader"`
}

type soapSessionHeader struct {
	SessionID string `xml:"urn:sessionId"`
}

type soapRequestBody struct {
	Content any
}

type soapLoginRequest struct {
	XMLName  xml.Name `xml:"urn:login"`
	Username string   `xml:"urn:username"`
	Password string   `xml:"urn:password"`
}

type soapChangeOwnPasswordRequest struct {
	XMLName     xml.Name `xml:"urn:changeOwnPassword"`
	OldPassword string   `xml:"urn:oldPassword"`
	NewPassword string   `xml:"urn:newPassword"`
}

type soapLogoutRequest struct {
	XMLName xml.Name `xml:"urn:logout"`
}

// Response side: names match by local name whatever the prefix.
type soapResponseEnvelope struct {
	Body struct {
		Fault         *soapFault `xml:"Fault"`
		LoginResponse *struct {
			Result soapLoginResult `xml:"result"`
		} `xml:"loginResponse"`
		ChangeOwnPasswordResponse *struct{} `xml:"changeOwnPasswordResponse"`
		LogoutResponse            *struct{} `xml:"logoutResponse"`
	} `xml:"Body"`
}

type soapFault struct {
	FaultCode   string `xml:"faultcode"`
	FaultString string `xml:"faultstring"`
	Detail      struct {
		Faults []struct {
			ExceptionCode    string `xml:"exceptionCode"`
			ExceptionMessage string `xml:"exceptionMessage"`
		} `xml:",any"`
	} `xml:"detail"`
}

type soapLoginResult struct {
	MetadataServerURL string `xml:"metadataServerUrl"`
	PasswordExpired   bool   `xml:"passwordExpired"`
	Sandbox           bool   `xml:"sandbox"`
	ServerURL         string `xml:"serverUrl"`
	SessionID         string `xml:"sessionId"`
	UserID            string `xml:"userId"`
	UserInfo          struct {
		OrganizationID      string `xml:"organizationId"`
		SessionSecondsValid int    `xml:"sessionSecondsValid"`
		UserName            string `xml:"userName"`
		UserEmail           string `xml:"userEmail"`
		UserID              string `xml:"userId"`
	} `xml:"userInfo"`
}

// xmlCarries reports whether s survives an XML 1.0 document unchanged;
// encoding/xml would silently replace other characters, and a password
// changed that way would no longer match the one the caller keeps.
func xmlCarries(s string) bool {
	if !utf8.ValidString(s) {
		return false
	}
	for _, r := range s {
		switch {
		case r == '\t', r == '\n', r == '\r':
		case r >= 0x20 && r <= 0xD7FF, r >= 0xE000 && r <= 0xFFFD, r >= 0x10000 && r <= 0x10FFFF:
		default:
			return false
		}
	}
	return true
}

func (c *Client) soapURL(base, version string) string {
	return strings.TrimRight(base, "/") + "/services/Soap/u/" + version
}

// soapCall posts one envelope and returns the parsed answer, or a *Error for
// a fault, a transport failure or an unreadable answer.
func (c *Client) soapCall(ctx context.Context, op, endpoint, sessionID string, content any) (*soapResponseEnvelope, *Error) {
	env := soapRequestEnvelope{
		EnvNS: soapEnvNS,
		UrnNS: soapPartnerNS,
		Body:  soapRequestBody{Content: content},
	}
	if sessionID != "" {
		env.Header = &soapRequestHeader{SessionHeader: soapSessionHeader{SessionID: sessionID}}
	}
	var buf bytes.Buffer
	buf.WriteString(xml.Header)
	if err := xml.NewEncoder(&buf).Encode(env); err != nil {
		return nil, &Error{Op: op, Message: "cannot encode SOAP request", Kind: KindOther}
	}
	header := http.Header{
		"Content-Type": {"text/xml; charset=utf-8"},
		"Soapaction":   {`""`},
		"Accept":       {"text/xml"},
	}
	resp, herr := c.do(ctx, op, http.MethodPost, endpoint, header, buf.Bytes())
	if herr != nil {
		return nil, herr
	}
	return parseSOAPResponse(op, resp.status, resp.body)
}

// parseSOAPResponse reads a partner API answer. Salesforce sends faults as
// HTTP 500; a 5xx without a readable fault (a proxy, an outage page) is
// transient.
func parseSOAPResponse(op string, status int, body []byte) (*soapResponseEnvelope, *Error) {
	var env soapResponseEnvelope
	perr := xml.Unmarshal(body, &env)
	if perr == nil && env.Body.Fault != nil {
		return nil, soapFaultError(op, status, env.Body.Fault)
	}
	if status < 200 || status > 299 {
		return nil, httpStatusError(op, status)
	}
	if perr != nil {
		return nil, &Error{Op: op, Message: "unreadable SOAP response", HTTPStatus: status, Kind: KindOther}
	}
	return &env, nil
}

func soapFaultError(op string, status int, f *soapFault) *Error {
	code, msg := "", ""
	for _, d := range f.Detail.Faults {
		if d.ExceptionCode != "" {
			code, msg = strings.TrimSpace(d.ExceptionCode), strings.TrimSpace(d.ExceptionMessage)
			break
		}
	}
	if code == "" {
		// faultcode is a QName such as sf:INVALID_LOGIN or soapenv:Client.
		code = strings.TrimSpace(f.FaultCode)
		if i := strings.LastIndexByte(code, ':'); i >= 0 {
			code = code[i+1:]
		}
	}
	if msg == "" {
		msg = strings.TrimSpace(f.FaultString)
		msg = strings.TrimSpace(strings.TrimPrefix(msg, code+":"))
	}
	kind := kindForSalesforceCode(code)
	if kind == KindOther && status >= 500 && (code == "Server" || code == "") {
		// A generic server fault carries no Salesforce code: an outage.
		kind = KindTransient
	}
	return &Error{Op: op, Code: code, Message: msg, HTTPStatus: status, Kind: kind}
}

// SOAPLogin calls login() with the SOAP API version for login.
func (c *Client) SOAPLogin(ctx context.Context, username, passwordWithToken string) (s *Session, err error) {
	const op = "soap login"
	defer scrubSecrets(&err, passwordWithToken)
	if !xmlCarries(username) || !xmlCarries(passwordWithToken) {
		return nil, &Error{Op: op, Message: "username or password holds characters SOAP cannot carry", Kind: KindCredentials}
	}
	env, serr := c.soapCall(ctx, op, c.soapURL(c.cfg.LoginURL, c.cfg.SOAPAPIVersion), "",
		soapLoginRequest{Username: username, Password: passwordWithToken})
	if serr != nil {
		return nil, serr
	}
	if env.Body.LoginResponse == nil {
		return nil, &Error{Op: op, Message: "SOAP response without loginResponse", Kind: KindOther}
	}
	return c.sessionFromLoginResult(op, &env.Body.LoginResponse.Result)
}

func (c *Client) sessionFromLoginResult(op string, r *soapLoginResult) (*Session, error) {
	if r.SessionID == "" || r.ServerURL == "" {
		return nil, &Error{Op: op, Message: "login result without sessionId or serverUrl", Kind: KindOther}
	}
	base, err := c.checkInstance(op, r.ServerURL)
	if err != nil {
		return nil, err
	}
	userID := r.UserID
	if userID == "" {
		userID = r.UserInfo.UserID
	}
	return &Session{
		AccessToken:     r.SessionID,
		InstanceURL:     base,
		UserID:          idOrEmpty(userID),
		OrgID:           idOrEmpty(r.UserInfo.OrganizationID),
		PasswordExpired: r.PasswordExpired,
		SecondsValid:    r.UserInfo.SessionSecondsValid,
	}, nil
}

// idOrEmpty keeps a Salesforce id and drops anything else: ids are stored
// on accounts and go into REST paths, and callers look the user up by
// username when the login did not name it.
func idOrEmpty(id string) string {
	id = strings.TrimSpace(id)
	if !sfIDPattern.MatchString(id) {
		return ""
	}
	return id
}

// ChangeOwnPassword calls changeOwnPassword() on the session's instance.
func (c *Client) ChangeOwnPassword(ctx context.Context, own *Session, oldPassword, newPassword string) (err error) {
	const op = "soap change own password"
	defer scrubSecrets(&err, oldPassword, newPassword, sessionSecret(own))
	if e := checkClientSession(op, own); e != nil {
		return e
	}
	if !xmlCarries(oldPassword) || !xmlCarries(newPassword) {
		return &Error{Op: op, Message: "password holds characters SOAP cannot carry", Kind: KindPassword}
	}
	base, ierr := c.instanceBase(op, own)
	if ierr != nil {
		return ierr
	}
	env, serr := c.soapCall(ctx, op, c.soapURL(base, c.cfg.APIVersion), own.AccessToken,
		soapChangeOwnPasswordRequest{OldPassword: oldPassword, NewPassword: newPassword})
	if serr != nil {
		return serr
	}
	if env.Body.ChangeOwnPasswordResponse == nil {
		return &Error{Op: op, Message: "SOAP response without changeOwnPasswordResponse", Kind: KindOther}
	}
	return nil
}

// Logout calls logout() on the session's instance. Salesforce may share one
// session among logins of the same user, so callers should only log out
// sessions nobody else uses.
func (c *Client) Logout(ctx context.Context, s *Session) (err error) {
	const op = "soap logout"
	defer scrubSecrets(&err, sessionSecret(s))
	if e := checkClientSession(op, s); e != nil {
		return e
	}
	base, ierr := c.instanceBase(op, s)
	if ierr != nil {
		return ierr
	}
	env, serr := c.soapCall(ctx, op, c.soapURL(base, c.cfg.APIVersion), s.AccessToken, soapLogoutRequest{})
	if serr != nil {
		return serr
	}
	if env.Body.LogoutResponse == nil {
		return &Error{Op: op, Message: "SOAP response without logoutResponse", Kind: KindOther}
	}
	return nil
}

func sessionSecret(s *Session) string {
	if s == nil {
		return ""
	}
	return s.AccessToken
}
