package emulator

import (
	"encoding/xml"
	"net/http"
	"strings"
)

// soapFault is a partner API fault: faultcode sf:<Code>, faultstring
// "<Code>: <Message>", and an ApiFault detail element of Kind.
type soapFault struct {
	Code    string
	Message string
	// Kind is LoginFault, InvalidIdFault, InvalidNewPasswordFault,
	// InvalidOldPasswordFault or UnexpectedErrorFault; "" for a plain
	// soapenv:Client fault without detail.
	Kind string
}

const (
	msgInvalidLogin     = "Invalid username, password, security token; or user locked out."
	msgMustUseToken     = "Invalid username, password, security token; or user locked out. Are you at a new location? When accessing Salesforce--either via a desktop client or the API--from outside of your company's trusted networks, you must add a security token to your password to log in. To get your new security token, log in to Salesforce. From your personal settings, enter Reset My Security Token in the Quick Find box, then select Reset My Security Token."
	msgAPIDisabled      = "API is not enabled for this Organization or Partner"
	msgExpiredPassword  = "The users password has expired, you must call SetPassword before attempting any other API operations"
	msgInvalidSession   = "Invalid Session ID found in SessionHeader: Illegal Session"
	msgLoginUnsupported = "login() is not available in API version 65.0 and later. Use OAuth instead."
	msgLoginDisabled    = "SOAP API login() is disabled by default in this org."
	// Wording uncertain: the reference names only the code.
	msgNoUseAnyAPIAuth   = "To use SOAP API login(), the user needs the Use Any API Auth permission."
	msgRetiredAPIVersion = "This API version is no longer supported."
)

func faultInvalidLogin() soapFault {
	return soapFault{"INVALID_LOGIN", msgInvalidLogin, "LoginFault"}
}

func faultFromAPIError(e *apiError) soapFault {
	kind := "UnexpectedErrorFault"
	switch e.Code {
	case "INVALID_NEW_PASSWORD":
		kind = "InvalidNewPasswordFault"
	case "INVALID_OLD_PASSWORD":
		kind = "InvalidOldPasswordFault"
	case "INVALID_ID_FIELD", "MALFORMED_ID":
		kind = "InvalidIdFault"
	}
	return soapFault{e.Code, e.Message, kind}
}

func soapClientFault(msg string) soapFault { return soapFault{Code: "Client", Message: msg} }

func xmlEscape(s string) string {
	var b strings.Builder
	_ = xml.EscapeText(&b, []byte(s))
	return b.String()
}

// writeSOAPFault sends the fault as HTTP 500, byte for byte in the shape
// recorded from real orgs.
func writeSOAPFault(w http.ResponseWriter, f soapFault) {
	var b strings.Builder
	b.WriteString(`<?xml version="1.0" encoding="UTF-8"?><soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" xmlns:sf="urn:fault.partner.soap.sforce.com" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"><soapenv:Body><soapenv:Fault>`)
	if f.Kind == "" {
		b.WriteString(`<faultcode>soapenv:` + f.Code + `</faultcode><faultstring>` + xmlEscape(f.Message) + `</faultstring>`)
	} else {
		msg := xmlEscape(f.Message)
		b.WriteString(`<faultcode>sf:` + f.Code + `</faultcode><faultstring>` + f.Code + `: ` + msg + `</faultstring>`)
		b.WriteString(`<detail><sf:` + f.Kind + ` xsi:type="sf:` + f.Kind + `"><sf:exceptionCode>` + f.Code +
			`</sf:exceptionCode><sf:exceptionMessage>` + msg + `</sf:exceptionMessage></sf:` + f.Kind + `></detail>`)
	}
	b.WriteString(`</soapenv:Fault></soapenv:Body></soapenv:Envelope>`)
	w.Header().Set("Content-Type", "text/xml;charset=UTF-8")
	w.WriteHeader(http.StatusInternalServerError)
	_, _ = w.Write([]byte(b.String()))
}
