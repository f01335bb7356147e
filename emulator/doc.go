// Package emulator is an emulated Salesforce org for tests and local demos:
// the SOAP partner API (login, setPassword, resetPassword,
// changeOwnPassword, logout), OAuth 2.0 (password, client credentials, JWT
// bearer and refresh token grants; revoke, introspect, userinfo, identity
// URL), the REST password, query (a SOQL subset with relationships, date
// literals and query locators), sObject, UserLogin and limits resources,
// and the Connect REST resources of External Client App credentials
// (usage, consumers, staged credentials with rotation). It keeps Login
// History, AuthSession and OauthToken rows, profiles and permission sets,
// with the org rules that matter to credential rotation: security tokens
// that change on every password change and are only "emailed" (Mailbox),
// login IP ranges, password policy, lockout, login rate limit, session
// timeout and expired passwords. Fault injection and per-endpoint call
// counters let tests script failures; a loopback-only control API stands
// in for what an admin does in Setup. See README.md for the seed format.
//
// Plugin code never imports this package; only tests and
// cmd/salesforce-emulator do.
package emulator
