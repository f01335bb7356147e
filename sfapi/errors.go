package sfapi

import (
	"errors"
	"fmt"
	"net/http"
	"strings"
)

// ErrorKind sorts Salesforce failures by what a caller should do next.
type ErrorKind int

const (
	// KindOther is a failure that is neither clearly transient nor a
	// credential problem; do not retry.
	KindOther ErrorKind = iota
	// KindCredentials means the username, password, token, key or grant was
	// rejected. Never retry: each failed login brings the user closer to
	// lockout.
	KindCredentials
	// KindTransient is a network error, a 5xx, or a request limit; retry
	// with backoff.
	KindTransient
	// KindSession means the session is expired or unknown
	// (INVALID_SESSION_ID); get a new session and try once more.
	KindSession
	// KindPassword means Salesforce refused a new password
	// (INVALID_NEW_PASSWORD); never send it again. INVALID_OLD_PASSWORD is
	// KindCredentials: the stored password is wrong, not the new one.
	KindPassword
	// KindPermission means the caller lacks access (INSUFFICIENT_ACCESS,
	// API_DISABLED_FOR_ORG, unsupported flow).
	KindPermission
	// KindNotFound means the user or record does not exist.
	KindNotFound
)

// Error is a failure reported by Salesforce or on the way to it. Its text
// never holds a password, token, session id or client secret.
type Error struct {
	// Op names the call, e.g. "soap login", "oauth token", "set password".
	Op string
	// Code is Salesforce's code: INVALID_LOGIN, invalid_grant, ...; empty
	// for network failures.
	Code string
	// Message is Salesforce's message (or a description of a network
	// failure), already free of secrets.
	Message string
	// HTTPStatus is the response status, 0 when none arrived.
	HTTPStatus int
	Kind       ErrorKind
}

func (e *Error) Error() string {
	switch {
	case e.Code != "" && e.Message != "":
		return fmt.Sprintf("salesforce %s: %s: %s", e.Op, e.Code, e.Message)
	case e.Code != "":
		return fmt.Sprintf("salesforce %s: %s", e.Op, e.Code)
	default:
		return fmt.Sprintf("salesforce %s: %s", e.Op, e.Message)
	}
}

// ErrorCode returns Salesforce's code for err, or "" when err is not a
// Salesforce error.
func ErrorCode(err error) string {
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return ""
}

// KindOf returns the kind of err; KindOther for errors not from the client.
func KindOf(err error) ErrorKind {
	var e *Error
	if errors.As(err, &e) {
		return e.Kind
	}
	return KindOther
}

// IsTransient reports whether err is worth retrying with backoff.
func IsTransient(err error) bool { return KindOf(err) == KindTransient }

// IsCredentialError reports whether Salesforce rejected the credential.
func IsCredentialError(err error) bool { return KindOf(err) == KindCredentials }

// kindForSalesforceCode maps Salesforce's SOAP and REST error codes to kinds;
// KindOther means "unknown code, decide by HTTP status".
func kindForSalesforceCode(code string) ErrorKind {
	switch {
	case strings.HasPrefix(code, "LOGIN_CHALLENGE_"):
		return KindCredentials
	}
	switch code {
	// INVALID_OLD_PASSWORD says the stored password is no longer the
	// user's: it is a credential problem (drift), not a rejected new password,
	// so the same request must not be sent again.
	case "INVALID_LOGIN", "LOGIN_MUST_USE_SECURITY_TOKEN", "PASSWORD_LOCKOUT", "INACTIVE_OWNER_OR_USER",
		"INVALID_OLD_PASSWORD":
		return KindCredentials
	case "INVALID_SESSION_ID":
		return KindSession
	case "INVALID_NEW_PASSWORD":
		return KindPassword
	// INVALID_OPERATION_WITH_EXPIRED_PASSWORD is a permission problem of
	// the session (only setPassword works); callers that care read Code.
	case "INSUFFICIENT_ACCESS", "INSUFFICIENT_ACCESS_OR_READONLY", "API_DISABLED_FOR_ORG",
		"API_CURRENTLY_DISABLED", "UNSUPPORTED_API_VERSION", "INVALID_OPERATION_WITH_EXPIRED_PASSWORD",
		"FUNCTIONALITY_NOT_ENABLED", "ORG_LOCKED", "TRIAL_EXPIRED", "LOGIN_DURING_RESTRICTED_DOMAIN",
		"INVALID_SSO_GATEWAY_URL":
		return KindPermission
	// LOGIN_RATE_EXCEEDED is not in the partner WSDL enum, but if it ever
	// shows up it passes with time.
	case "REQUEST_LIMIT_EXCEEDED", "SERVER_UNAVAILABLE", "SSO_SERVICE_DOWN", "UNABLE_TO_LOCK_ROW",
		"LOGIN_RATE_EXCEEDED":
		return KindTransient
	case "NOT_FOUND", "INVALID_ID_FIELD", "MALFORMED_ID", "INVALID_CROSS_REFERENCE_KEY", "ENTITY_IS_DELETED":
		return KindNotFound
	}
	return KindOther
}

// kindForHTTPStatus classifies by HTTP status when the code says nothing.
func kindForHTTPStatus(status int) ErrorKind {
	switch {
	case status == http.StatusUnauthorized:
		return KindSession
	case status == http.StatusForbidden:
		return KindPermission
	case status == http.StatusNotFound:
		return KindNotFound
	case status == http.StatusTooManyRequests || status >= 500:
		return KindTransient
	}
	return KindOther
}

// httpStatusError describes an unexpected HTTP status without quoting the
// body, which might echo what we sent.
func httpStatusError(op string, status int) *Error {
	return &Error{
		Op:         op,
		Message:    fmt.Sprintf("unexpected HTTP status %d %s", status, http.StatusText(status)),
		HTTPStatus: status,
		Kind:       kindForHTTPStatus(status),
	}
}
