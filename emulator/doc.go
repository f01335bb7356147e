// Package emulator is an emulated Salesforce org for tests and local demos:
// the SOAP partner API (login, setPassword, resetPassword,
// changeOwnPassword, logout), OAuth 2.0 (password, client credentials, JWT
// bearer and refresh token grants; revoke, introspect, userinfo, identity
// URL) and the REST password, query, UserLogin and limits resources, with
// the org rules that matter to credential rotation: security tokens that
// change on every password change and are only "emailed" (Mailbox), login
// IP ranges, password policy, lockout, login rate limit, session timeout
// and expired passwords. Fault injection and per-endpoint call counters let
// tests script failures. See README.md for the seed format.
//
// Plugin code never imports this package; only tests and
// cmd/salesforce-emulator do.
package emulator
