package emulator

import (
	"bytes"
	"encoding/xml"
	"net/http"
	"strconv"
	"strings"
)

// xmlNode is a namespace-blind XML tree: clients use every prefix
// imaginable (urn:, ns1:, none), so only local names matter.
type xmlNode struct {
	XMLName  xml.Name
	Content  string    `xml:",chardata"`
	Children []xmlNode `xml:",any"`
}

func (n *xmlNode) child(local string) *xmlNode {
	if n == nil {
		return nil
	}
	for i := range n.Children {
		if n.Children[i].XMLName.Local == local {
			return &n.Children[i]
		}
	}
	return nil
}

func (n *xmlNode) text(local string) string {
	if c := n.child(local); c != nil {
		return c.Content
	}
	return ""
}

type soapRequest struct {
	version   float64
	op        *xmlNode
	sessionID string
	// client is the CallOptions client name, shown as the login's
	// Application in Login History.
	client string
}

// soapRoute parses the envelope and names the endpoint after the operation.
func (s *Server) soapRoute(r *http.Request, body []byte) (string, handlerFunc) {
	var env xmlNode
	if err := xml.NewDecoder(bytes.NewReader(body)).Decode(&env); err != nil || env.XMLName.Local != "Envelope" {
		return "soap.invalid", func(w *recorder, _ *http.Request, _ []byte) {
			writeSOAPFault(w, soapClientFault("Unable to parse the SOAP envelope"))
		}
	}
	bodyNode := env.child("Body")
	if bodyNode == nil || len(bodyNode.Children) == 0 {
		return "soap.invalid", func(w *recorder, _ *http.Request, _ []byte) {
			writeSOAPFault(w, soapClientFault("Missing SOAP Body"))
		}
	}
	req := &soapRequest{op: &bodyNode.Children[0]}
	req.sessionID = strings.TrimSpace(env.child("Header").child("SessionHeader").text("sessionId"))
	req.client = strings.TrimSpace(env.child("Header").child("CallOptions").text("client"))
	// /services/Soap/u/{version}[/{orgId}]
	rest := strings.TrimPrefix(r.URL.Path, "/services/Soap/u/")
	vs, _, _ := strings.Cut(rest, "/")
	v, err := strconv.ParseFloat(vs, 64)
	if err != nil || v < 31 || v > latestAPIVersion {
		return soapEndpoint(req.op.XMLName.Local), func(w *recorder, r *http.Request, _ []byte) {
			if err == nil && v < 31 && req.op.XMLName.Local == "login" {
				// A login() on a retired version is refused before the
				// password is checked; Login History shows it as
				// LOGIN_ERROR_API_TOO_OLD.
				s.recordRefusedSOAPLogin(w, r, req, vs)
			}
			writeSOAPFault(w, soapFault{"UNSUPPORTED_API_VERSION", msgRetiredAPIVersion, "UnexpectedErrorFault"})
		}
	}
	req.version = v
	var h func(w *recorder, r *http.Request, req *soapRequest)
	name := req.op.XMLName.Local
	switch name {
	case "login":
		h = s.soapLogin
	case "setPassword":
		h = s.soapSetPassword
	case "resetPassword":
		h = s.soapResetPassword
	case "changeOwnPassword":
		if v >= 40 { // first in the v40.0 partner WSDL
			h = s.soapChangeOwnPassword
		}
	case "logout":
		h = s.soapLogout
	case "getUserInfo":
		h = s.soapGetUserInfo
	}
	if h == nil {
		return "soap.other", func(w *recorder, _ *http.Request, _ []byte) {
			writeSOAPFault(w, soapClientFault("No operation available for request {urn:partner.soap.sforce.com}"+name+", please check the WSDL for the service."))
		}
	}
	return soapEndpoint(name), func(w *recorder, r *http.Request, _ []byte) { h(w, r, req) }
}

// soapEndpoint names the counter of an operation; unknown names share
// "soap.other" so clients cannot grow the counter map.
func soapEndpoint(op string) string {
	switch op {
	case "login", "setPassword", "resetPassword", "changeOwnPassword", "logout", "getUserInfo":
		return "soap." + op
	}
	return "soap.other"
}

func writeSOAPResult(w http.ResponseWriter, header, body string) {
	var b strings.Builder
	b.WriteString(`<?xml version="1.0" encoding="UTF-8"?><soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" xmlns="urn:partner.soap.sforce.com" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">`)
	if header != "" {
		b.WriteString(`<soapenv:Header>` + header + `</soapenv:Header>`)
	}
	b.WriteString(`<soapenv:Body>` + body + `</soapenv:Body></soapenv:Envelope>`)
	w.Header().Set("Content-Type", "text/xml;charset=UTF-8")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write([]byte(b.String()))
}

// limitInfoHeader reports API usage, as every password call response does.
// Caller holds s.mu.
func (s *Server) limitInfoHeader() string {
	return `<LimitInfoHeader><limitInfo><current>` + strconv.Itoa(s.apiUsed) + `</current><limit>` +
		strconv.Itoa(s.org.dailyAPIRequests()) + `</limit><type>API REQUESTS</type></limitInfo></LimitInfoHeader>`
}

func el(name, value string) string { return "<" + name + ">" + xmlEscape(value) + "</" + name + ">" }

// recordRefusedSOAPLogin writes the Login History row of a login() that
// its API version refused.
func (s *Server) recordRefusedSOAPLogin(w *recorder, r *http.Request, req *soapRequest, version string) {
	username := strings.TrimSpace(req.op.text("username"))
	w.username = username
	s.mu.Lock()
	defer s.mu.Unlock()
	if u := s.userByName(username); u != nil {
		lc := newLoginContext(r, FlowSOAP)
		lc.apiVersion, lc.client = version, req.client
		s.recordLogin(u, lc, StatusAPIVersionRemoved)
	}
}

func (s *Server) soapLogin(w *recorder, r *http.Request, req *soapRequest) {
	username := strings.TrimSpace(req.op.text("username"))
	w.username = username
	ver := strconv.FormatFloat(req.version, 'f', 1, 64)
	if req.version >= 65 {
		// The same Login History status as a retired version (an
		// inference: the row's exact text for v65.0+ is not documented).
		s.recordRefusedSOAPLogin(w, r, req, ver)
		writeSOAPFault(w, soapFault{"UNSUPPORTED_API_VERSION", msgLoginUnsupported, "UnexpectedErrorFault"})
		return
	}
	s.mu.Lock()
	if s.org.SOAPLoginDisabled {
		s.mu.Unlock()
		// The exact code for a disabled login() is uncertain; INVALID_OPERATION
		// keeps it apart from wrong credentials.
		writeSOAPFault(w, soapFault{"INVALID_OPERATION", msgLoginDisabled, "UnexpectedErrorFault"})
		return
	}
	lc := newLoginContext(r, FlowSOAP)
	lc.apiVersion, lc.client = ver, req.client
	u, lerr, attempt := s.passwordLogin(lc, username, req.op.text("password"))
	var fault *soapFault
	switch lerr {
	case loginOK:
		if s.org.EnforceUseAnyAPIAuth && !s.hasPermission(u, PermUseAnyAPIAuth) {
			// Checked only once the credentials are right. The fault type
			// is uncertain; other INSUFFICIENT_ACCESS faults use
			// UnexpectedErrorFault. The Login History status is a guess.
			attempt.Status = "Failed: Use Any API Auth permission required"
			fault = &soapFault{"INSUFFICIENT_ACCESS", msgNoUseAnyAPIAuth, "UnexpectedErrorFault"}
		}
	case loginNeedsToken:
		fault = &soapFault{"LOGIN_MUST_USE_SECURITY_TOKEN", msgMustUseToken, "LoginFault"}
	case loginAPIDisabled:
		fault = &soapFault{"API_DISABLED_FOR_ORG", msgAPIDisabled, "LoginFault"}
	default:
		// Lockout, inactive users, IP restrictions and the login rate limit
		// all surface as INVALID_LOGIN; the real reason only shows in Login
		// History (uncertain for the rate limit).
		f := faultInvalidLogin()
		fault = &f
	}
	if fault != nil {
		s.mu.Unlock()
		writeSOAPFault(w, *fault)
		return
	}
	expired := s.passwordExpired(u)
	se := s.newSession(u, nil, "", "", "", attempt)
	se.passwordExpired = expired
	org15 := id15(s.org.ID)
	var b strings.Builder
	b.WriteString(`<loginResponse><result>`)
	b.WriteString(el("metadataServerUrl", s.myDomainURL+"/services/Soap/m/"+ver+"/"+org15))
	b.WriteString(el("passwordExpired", strconv.FormatBool(expired)))
	b.WriteString(el("sandbox", "false"))
	b.WriteString(el("serverUrl", s.myDomainURL+"/services/Soap/u/"+ver+"/"+org15))
	b.WriteString(el("sessionId", se.token))
	b.WriteString(el("userId", u.ID))
	b.WriteString(`<userInfo>` + s.userInfoXML(u) + `</userInfo>`)
	b.WriteString(`</result></loginResponse>`)
	s.mu.Unlock()
	writeSOAPResult(w, "", b.String())
}

// userInfoXML is a GetUserInfoResult, fields in WSDL order. Caller holds s.mu.
func (s *Server) userInfoXML(u *User) string {
	profileID := ""
	if p := s.org.profile(u.Profile); p != nil {
		profileID = p.ID
	}
	var b strings.Builder
	b.WriteString(el("accessibilityMode", "false"))
	b.WriteString(el("chatterExternal", "false"))
	b.WriteString(el("currencySymbol", "$"))
	b.WriteString(el("orgAttachmentFileSizeLimit", "5242880"))
	b.WriteString(el("orgDefaultCurrencyIsoCode", "USD"))
	b.WriteString(el("orgDefaultCurrencyLocale", "en_US"))
	b.WriteString(el("orgDisallowHtmlAttachments", "false"))
	b.WriteString(el("orgHasPersonAccounts", "false"))
	b.WriteString(el("organizationId", s.org.ID))
	b.WriteString(el("organizationMultiCurrency", "false"))
	b.WriteString(el("organizationName", s.org.Name))
	b.WriteString(el("profileId", profileID))
	b.WriteString(`<roleId xsi:nil="true"/>`)
	b.WriteString(el("sessionSecondsValid", strconv.Itoa(int(s.org.sessionTimeout().Seconds()))))
	b.WriteString(`<userDefaultCurrencyIsoCode xsi:nil="true"/>`)
	b.WriteString(el("userEmail", u.Email))
	b.WriteString(el("userFullName", strings.TrimSpace(u.FirstName+" "+u.LastName)))
	b.WriteString(el("userId", u.ID))
	b.WriteString(el("userLanguage", "en_US"))
	b.WriteString(el("userLocale", "en_US"))
	b.WriteString(el("userName", u.Username))
	b.WriteString(el("userTimeZone", "America/Los_Angeles"))
	b.WriteString(el("userType", "Standard"))
	b.WriteString(el("userUiSkin", "Theme3"))
	return b.String()
}

// soapSession validates the SessionHeader. allowExpired admits sessions
// whose password has expired (setPassword, changeOwnPassword). Caller
// holds s.mu; on a fault it returns nil and the fault to send.
func (s *Server) soapSession(req *soapRequest, allowExpired bool) (*session, *User, *soapFault) {
	se, u := s.useSession(req.sessionID)
	if se == nil {
		return nil, nil, &soapFault{"INVALID_SESSION_ID", msgInvalidSession, "UnexpectedErrorFault"}
	}
	if se.passwordExpired && !allowExpired {
		return nil, nil, &soapFault{"INVALID_OPERATION_WITH_EXPIRED_PASSWORD", msgExpiredPassword, "UnexpectedErrorFault"}
	}
	if !s.apiEnabled(u) {
		return nil, nil, &soapFault{"API_DISABLED_FOR_ORG", msgAPIDisabled, "UnexpectedErrorFault"}
	}
	s.apiUsed++
	return se, u, nil
}

// soapTarget resolves the userId argument. Caller holds s.mu.
func (s *Server) soapTarget(id string) (*User, *soapFault) {
	id = strings.TrimSpace(id)
	if !validID(id, "005") {
		return nil, &soapFault{"MALFORMED_ID", "bad id " + id, "InvalidIdFault"}
	}
	t := s.userByID(id)
	if t == nil {
		return nil, &soapFault{"INVALID_ID_FIELD", "invalid user id: " + id, "InvalidIdFault"}
	}
	return t, nil
}

func (s *Server) soapSetPassword(w *recorder, _ *http.Request, req *soapRequest) {
	s.mu.Lock()
	se, u, fault := s.soapSession(req, true)
	if fault == nil {
		w.username = u.Username
		var t *User
		if t, fault = s.soapTarget(req.op.text("userId")); fault == nil {
			if se.passwordExpired && t != u {
				fault = &soapFault{"INVALID_OPERATION_WITH_EXPIRED_PASSWORD", msgExpiredPassword, "UnexpectedErrorFault"}
			} else if err := s.setPassword(u, se, t, req.op.text("password")); err != nil {
				f := faultFromAPIError(err)
				fault = &f
			}
		}
	}
	header := s.limitInfoHeader()
	s.mu.Unlock()
	if fault != nil {
		writeSOAPFault(w, *fault)
		return
	}
	writeSOAPResult(w, header, `<setPasswordResponse><result/></setPasswordResponse>`)
}

func (s *Server) soapResetPassword(w *recorder, _ *http.Request, req *soapRequest) {
	s.mu.Lock()
	_, u, fault := s.soapSession(req, false)
	var pw string
	if fault == nil {
		w.username = u.Username
		var t *User
		if t, fault = s.soapTarget(req.op.text("userId")); fault == nil {
			var err *apiError
			if pw, err = s.resetPassword(u, t); err != nil {
				f := faultFromAPIError(err)
				fault = &f
			}
		}
	}
	header := s.limitInfoHeader()
	s.mu.Unlock()
	if fault != nil {
		writeSOAPFault(w, *fault)
		return
	}
	writeSOAPResult(w, header, `<resetPasswordResponse><result>`+el("password", pw)+`</result></resetPasswordResponse>`)
}

func (s *Server) soapChangeOwnPassword(w *recorder, _ *http.Request, req *soapRequest) {
	s.mu.Lock()
	_, u, fault := s.soapSession(req, true)
	if fault == nil {
		w.username = u.Username
		if err := s.changeOwnPassword(u, req.op.text("oldPassword"), req.op.text("newPassword")); err != nil {
			f := faultFromAPIError(err)
			fault = &f
		}
	}
	header := s.limitInfoHeader()
	s.mu.Unlock()
	if fault != nil {
		writeSOAPFault(w, *fault)
		return
	}
	writeSOAPResult(w, header, `<changeOwnPasswordResponse><result/></changeOwnPasswordResponse>`)
}

func (s *Server) soapLogout(w *recorder, _ *http.Request, req *soapRequest) {
	s.mu.Lock()
	se, u, fault := s.soapSession(req, false)
	if fault == nil {
		w.username = u.Username
		delete(s.sessions, se.token)
	}
	s.mu.Unlock()
	if fault != nil {
		writeSOAPFault(w, *fault)
		return
	}
	writeSOAPResult(w, "", `<logoutResponse/>`)
}

func (s *Server) soapGetUserInfo(w *recorder, _ *http.Request, req *soapRequest) {
	s.mu.Lock()
	_, u, fault := s.soapSession(req, false)
	var info string
	if fault == nil {
		w.username = u.Username
		info = s.userInfoXML(u)
	}
	s.mu.Unlock()
	if fault != nil {
		writeSOAPFault(w, *fault)
		return
	}
	writeSOAPResult(w, "", `<getUserInfoResponse><result>`+info+`</result></getUserInfoResponse>`)
}
