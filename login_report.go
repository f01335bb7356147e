package salesforce

import (
	"fmt"
	"math"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/vault-salesforce/vault-plugin-secrets-salesforce/sfapi"
)

// The login-method migration report: which login methods the users the
// engine manages used (from LoginHistory), which of them Salesforce
// retires and when, and the OAuth role that replaces them today.

// Salesforce retires SOAP login() in API versions 31.0 to 64.0 with the
// Summer '27 release (knowledge article 005132110); from API 65.0 on it is
// not available at all. Salesforce announces the release, not a date:
// production instances move to a release over several weekends in May and
// June. soapLoginRetirement is the second Saturday of June 2027, roughly
// the last of those weekends, so the report counts down to an approximate
// date and says so.
var soapLoginRetirement = time.Date(2027, time.June, 12, 0, 0, 0, 0, time.UTC)

const (
	soapLoginRetirementRelease = "Summer '27"
	// soapLoginFirstVersion: login() below API 31.0 is already retired.
	soapLoginFirstVersion = 31.0
	// soapLoginLastVersion: login() is not available from API 65.0 on.
	soapLoginLastVersion = 64.0
)

// Login method kinds of the report.
const (
	methodSOAPLogin         = "soap_login"
	methodUsernamePassword  = "oauth_username_password"
	methodClientCredentials = "oauth_client_credentials"
	methodJWTBearer         = "oauth_jwt_bearer"
	methodRefreshToken      = "oauth_refresh_token"
	methodOAuthOther        = "oauth_other"
	methodOther             = "other"
)

var methodLabels = map[string]string{
	methodSOAPLogin:         "SOAP login()",
	methodUsernamePassword:  "OAuth username-password flow",
	methodClientCredentials: "OAuth client credentials flow",
	methodJWTBearer:         "OAuth JWT bearer flow (no subtype)",
	methodRefreshToken:      "OAuth refresh token flow",
	methodOAuthOther:        "other OAuth flow",
	methodOther:             "other login",
}

// Verdicts on a login method.
const (
	verdictUnavailable = "unavailable" // fails already
	verdictRetiring    = "retiring"    // stops working on a known date
	verdictDeprecated  = "deprecated"  // blocked by default, going away, no date
	verdictOK          = "ok"
)

// classifyLogin names a row's login method. LoginType and LoginSubType
// values are compared case-insensitively: Salesforce's casing varies.
func classifyLogin(r sfapi.LoginRecord) string {
	sub := strings.ToLower(strings.ReplaceAll(r.LoginSubType, " ", ""))
	lt := strings.ToLower(r.LoginType)
	switch {
	case strings.HasPrefix(sub, "soapapilogin"),
		(lt == "other apex api" || lt == "partner product") && strings.HasPrefix(strings.ToLower(r.APIType), "soap"):
		return methodSOAPLogin
	case sub == "oauthusernamepassword" || sub == "oauthusername-password":
		return methodUsernamePassword
	case sub == "oauthclientcredentials":
		return methodClientCredentials
	case sub == "oauthrefreshtoken":
		return methodRefreshToken
	case lt == "remote access 2.0" && sub == "":
		// No subtype is documented for the JWT bearer flow.
		return methodJWTBearer
	case strings.HasPrefix(lt, "remote access"):
		return methodOAuthOther
	}
	return methodOther
}

// methodVerdict says what becomes of a login method and when.
func methodVerdict(method, apiVersion string, now time.Time) (verdict string, stops time.Time, note string) {
	switch method {
	case methodSOAPLogin:
		v, err := strconv.ParseFloat(apiVersion, 64)
		switch {
		case err == nil && v > soapLoginLastVersion:
			return verdictUnavailable, now, "SOAP login() is not available from API 65.0: these logins fail already"
		case err == nil && v < soapLoginFirstVersion:
			return verdictUnavailable, now, "API versions below 31.0 are retired: these logins fail already"
		}
		return verdictRetiring, soapLoginRetirement, fmt.Sprintf("Salesforce retires SOAP login() in API 31.0 to 64.0 with %s "+
			"(it announces the release, not a date; %s is approximate)", soapLoginRetirementRelease, soapLoginRetirement.Format(time.DateOnly))
	case methodUsernamePassword:
		return verdictDeprecated, time.Time{}, "blocked by default in orgs created since Summer '23 and being deprecated by Salesforce; no date announced"
	}
	return verdictOK, time.Time{}, ""
}

// daysLeft counts whole days from now until t, never below 0.
func daysLeft(now, t time.Time) int {
	if !t.After(now) {
		return 0
	}
	return int(math.Ceil(t.Sub(now).Hours() / 24))
}

// reportUser is one user the engine manages and where it uses it.
type reportUser struct {
	username  string
	userID    string
	managedAs []string
	// accounts stores the user; rotatedAt is when Vault last rotated each.
	accounts  []string
	rotatedAt map[string]time.Time
	// jwtRoles and ccRoles already serve OAuth tokens for the user.
	jwtRoles, ccRoles []string
	// runAs: the user the config app's client credentials flow logs in as.
	runAs bool
	admin bool
}

// methodGroup sums up the rows of one user and login method.
type methodGroup struct {
	method, loginType, loginSubType, apiType, apiVersion, application string
	logins, failed                                                    int
	first, last                                                       time.Time
	sourceIPs                                                         map[string]bool
	failures                                                          map[string]bool
}

func groupKey(method string, r sfapi.LoginRecord) string {
	return strings.Join([]string{method, r.LoginType, r.LoginSubType, r.APIType, r.APIVersion, r.Application}, "\x00")
}

func loginSucceeded(r sfapi.LoginRecord) bool { return strings.EqualFold(r.Status, "Success") }

// groupLogins groups one user's rows by login method, API version and
// application, most used first.
func groupLogins(rows []sfapi.LoginRecord) []*methodGroup {
	byKey := map[string]*methodGroup{}
	var out []*methodGroup
	for _, r := range rows {
		method := classifyLogin(r)
		k := groupKey(method, r)
		g := byKey[k]
		if g == nil {
			g = &methodGroup{method: method, loginType: r.LoginType, loginSubType: r.LoginSubType, apiType: r.APIType,
				apiVersion: r.APIVersion, application: r.Application, sourceIPs: map[string]bool{}, failures: map[string]bool{}}
			byKey[k] = g
			out = append(out, g)
		}
		g.logins++
		if !loginSucceeded(r) {
			g.failed++
			g.failures[r.Status] = true
		}
		if g.first.IsZero() || r.LoginTime.Before(g.first) {
			g.first = r.LoginTime
		}
		if r.LoginTime.After(g.last) {
			g.last = r.LoginTime
		}
		if r.SourceIP != "" {
			g.sourceIPs[r.SourceIP] = true
		}
	}
	// The most urgent first: what fails or retires on a date, then what
	// is deprecated, then the rest; the latest used first within each.
	sort.SliceStable(out, func(i, j int) bool {
		if ui, uj := urgency(out[i].method), urgency(out[j].method); ui != uj {
			return ui < uj
		}
		return out[i].last.After(out[j].last)
	})
	return out
}

func urgency(method string) int {
	switch method {
	case methodSOAPLogin:
		return 0
	case methodUsernamePassword:
		return 1
	}
	return 2
}

// roleNameCleaner keeps what a role name may hold.
var roleNameCleaner = regexp.MustCompile(`[^A-Za-z0-9_.-]+`)

// suggestedRoleName derives a role name from the account (or username).
func suggestedRoleName(u *reportUser, suffix string, taken map[string]bool) string {
	base := strings.Split(u.username, "@")[0]
	if len(u.accounts) > 0 {
		base = u.accounts[0]
	}
	base = strings.Trim(roleNameCleaner.ReplaceAllString(base, "-"), "-.")
	if base == "" {
		base = "user"
	}
	name := base + "-" + suffix
	for i := 2; taken[name]; i++ {
		name = fmt.Sprintf("%s-%s%d", base, suffix, i)
	}
	return name
}

// replacement is the OAuth role the engine can serve today instead of a
// password login: an existing role, or the command that writes one.
func replacement(u *reportUser, mount string, taken map[string]bool) (command, note string) {
	switch {
	case u.admin:
		return fmt.Sprintf("vault write %sconfig grant_type=jwt_bearer", mount),
			"The config's admin user: let the engine itself log in with JWT bearer (config/jwt-key's key or config's private_key, its certificate uploaded to the app)."
	case len(u.jwtRoles) > 0:
		return fmt.Sprintf("vault read %stoken/%s", mount, u.jwtRoles[0]),
			fmt.Sprintf("roles/%s already serves JWT bearer tokens for this user: move the integration to it.", u.jwtRoles[0])
	case u.runAs && len(u.ccRoles) > 0:
		return fmt.Sprintf("vault read %stoken/%s", mount, u.ccRoles[0]),
			fmt.Sprintf("roles/%s already serves client-credentials tokens of the app's run-as user, this user.", u.ccRoles[0])
	case u.runAs:
		return fmt.Sprintf("vault write %sroles/%s grant_type=client_credentials", mount, suggestedRoleName(u, "cc", taken)),
			"This user is the app's run-as user: the client credentials flow logs in as it, with no password."
	}
	command = fmt.Sprintf("vault write %sroles/%s grant_type=jwt_bearer username=%s", mount, suggestedRoleName(u, "jwt", taken), u.username)
	return command, "The user's profile (or the user) must be pre-authorised in the app."
}

// staleFailure is a failed login of an account's user after Vault rotated
// its password, from an address the engine never logged in from.
type staleFailure struct {
	account   string
	rotatedAt time.Time
	row       sfapi.LoginRecord
}

// staleFailures finds, per account of u, failed logins after its last
// rotation from addresses other than engine's (the addresses of logins
// that succeeded with credentials only Vault hands out). excluded counts
// failures from those addresses.
func staleFailures(u *reportUser, rows []sfapi.LoginRecord, engine map[string]bool) (out []staleFailure, excluded int) {
	for _, name := range u.accounts {
		rotated := u.rotatedAt[name]
		if rotated.IsZero() {
			continue
		}
		own := map[string]bool{}
		for ip := range engine {
			own[ip] = true
		}
		for _, r := range rows {
			if r.LoginTime.After(rotated) && loginSucceeded(r) {
				own[r.SourceIP] = true
			}
		}
		for _, r := range rows {
			if !r.LoginTime.After(rotated) || loginSucceeded(r) {
				continue
			}
			if own[r.SourceIP] {
				excluded++
				continue
			}
			out = append(out, staleFailure{account: name, rotatedAt: rotated, row: r})
		}
	}
	return out, excluded
}

// reportInput is everything a report is built from.
type reportInput struct {
	now, since time.Time
	days       int
	mount      string
	users      []*reportUser
	rows       map[string][]sfapi.LoginRecord // by user id (15 characters)
	engineIPs  map[string]bool
	haveKey    bool
	roleNames  map[string]bool
	truncated  bool
	// hiddenOthers: rows came back only for the admin user, which happens
	// when it may see no one else's logins.
	hiddenOthers bool
	adminName    string
}

// buildLoginReport turns the input into the response data and warnings.
func buildLoginReport(in *reportInput) (map[string]interface{}, []string) {
	var details []map[string]interface{}
	var failures []map[string]interface{}
	var warnings []string
	toMigrate, soapUsers, pwUsers := []string{}, []string{}, []string{}
	var next time.Time
	nextWhat := ""
	excludedTotal := 0
	needKey := false

	for _, u := range in.users {
		rows := in.rows[id15(u.userID)]
		groups := groupLogins(rows)
		var methods []map[string]interface{}
		var risky []string
		var deadline time.Time
		usesSOAP, usesPW := false, false
		for _, g := range groups {
			verdict, stops, note := methodVerdict(g.method, g.apiVersion, in.now)
			m := map[string]interface{}{
				"method": methodLabels[g.method], "login_type": g.loginType, "login_subtype": g.loginSubType,
				"api_type": g.apiType, "api_version": g.apiVersion, "application": g.application,
				"logins": g.logins, "failed": g.failed, "first_login": formatTime(g.first), "last_login": formatTime(g.last),
				"source_ips": sortedKeys(g.sourceIPs), "verdict": verdict,
			}
			if len(g.failures) > 0 {
				m["failure_statuses"] = sortedKeys(g.failures)
			}
			if note != "" {
				m["note"] = note
			}
			if !stops.IsZero() {
				m["stops_working"] = stops.Format(time.DateOnly)
				m["days_left"] = daysLeft(in.now, stops)
				if deadline.IsZero() || stops.Before(deadline) {
					deadline = stops
				}
			}
			methods = append(methods, m)
			if verdict == verdictOK {
				continue
			}
			usesSOAP = usesSOAP || g.method == methodSOAPLogin
			usesPW = usesPW || g.method == methodUsernamePassword
			risky = append(risky, describeGroup(g, verdict, stops, in.now))
		}
		entry := map[string]interface{}{
			"username": u.username, "user_id": u.userID, "managed_as": u.managedAs, "logins": len(rows),
			"methods": methods, "needs_migration": len(risky) > 0,
		}
		if len(risky) > 0 {
			toMigrate = append(toMigrate, u.username)
			cmd, note := replacement(u, in.mount, in.roleNames)
			needKey = needKey || strings.Contains(cmd, "jwt_bearer")
			entry["replacement"], entry["replacement_note"] = cmd, note
			if !deadline.IsZero() {
				entry["deadline"] = deadline.Format(time.DateOnly)
				entry["days_left"] = daysLeft(in.now, deadline)
				if next.IsZero() || deadline.Before(next) {
					next, nextWhat = deadline, u.username
				}
			}
			warnings = append(warnings, fmt.Sprintf("%s (%s): %s. Replace with: %s. %s",
				u.username, strings.Join(u.managedAs, ", "), strings.Join(risky, "; "), cmd, note))
		}
		if usesSOAP {
			soapUsers = append(soapUsers, u.username)
		}
		if usesPW {
			pwUsers = append(pwUsers, u.username)
		}
		details = append(details, entry)

		stale, excluded := staleFailures(u, rows, in.engineIPs)
		excludedTotal += excluded
		for _, f := range stale {
			failures = append(failures, map[string]interface{}{
				"account": f.account, "username": u.username, "rotated_at": formatTime(f.rotatedAt),
				"login_time": formatTime(f.row.LoginTime), "source_ip": f.row.SourceIP, "status": f.row.Status,
				"method": methodLabels[classifyLogin(f.row)], "application": f.row.Application,
			})
			warnings = append(warnings, fmt.Sprintf("accounts/%s (%s) was rotated at %s, and at %s a login failed from %s "+
				"(%s, %s): someone still uses a credential that was rotated away",
				f.account, u.username, formatTime(f.rotatedAt), formatTime(f.row.LoginTime), f.row.SourceIP, f.row.Status,
				methodLabels[classifyLogin(f.row)]))
		}
	}
	if needKey && !in.haveKey {
		warnings = append(warnings, fmt.Sprintf("jwt_bearer needs a signing key: vault write %sconfig/jwt-key common_name=vault, "+
			"then upload its certificate to the app (and pre-authorise the users' profiles there)", in.mount))
	}
	if in.hiddenOthers {
		warnings = append(warnings, fmt.Sprintf("Salesforce returned logins of the admin user (%s) only: without the Manage Users or "+
			"Monitor Login History permission it shows a user nothing but its own logins, so this report may miss the other users'", in.adminName))
	}
	if in.truncated {
		warnings = append(warnings, fmt.Sprintf("more than %d logins in the window: only the newest were read; shorten days", maxReportRows))
	}

	data := map[string]interface{}{
		"window_days":                  in.days,
		"window_start":                 formatTime(in.since),
		"users_checked":                len(in.users),
		"users_to_migrate":             toMigrate,
		"soap_login_users":             soapUsers,
		"username_password_flow_users": pwUsers,
		"users":                        details,
		"failed_logins_after_rotation": failures,
		"failed_logins_after_rotation_from_engine_addresses": excludedTotal,
		"truncated": in.truncated,
	}
	if details == nil {
		data["users"] = []map[string]interface{}{}
	}
	if failures == nil {
		data["failed_logins_after_rotation"] = []map[string]interface{}{}
	}
	if !next.IsZero() {
		data["next_deadline"] = next.Format(time.DateOnly)
		data["next_deadline_days_left"] = daysLeft(in.now, next)
		data["next_deadline_user"] = nextWhat
	}
	return data, warnings
}

// describeGroup is one line of a user's warning.
func describeGroup(g *methodGroup, verdict string, stops, now time.Time) string {
	what := methodLabels[g.method]
	if g.method == methodSOAPLogin && g.apiVersion != "" {
		what += " at API " + g.apiVersion
	}
	if g.application != "" && g.application != "N/A" {
		what += " via " + g.application
	}
	s := fmt.Sprintf("%s from %s (%s, last %s)", what, strings.Join(sortedKeys(g.sourceIPs), ", "), plural(g.logins, "login"), g.last.UTC().Format(time.DateOnly))
	switch verdict {
	case verdictUnavailable:
		return s + ": fails already"
	case verdictRetiring:
		return fmt.Sprintf("%s: retires with %s (about %s, %d days left)", s, soapLoginRetirementRelease, stops.Format(time.DateOnly), daysLeft(now, stops))
	default:
		return s + ": blocked by default in new orgs and being deprecated, no date announced"
	}
}

// id15 is the case-sensitive 15-character form of a Salesforce id, so 15-
// and 18-character forms of one id compare equal.
func id15(id string) string {
	if len(id) >= 15 {
		return id[:15]
	}
	return id
}

// plural is "1 login", "2 logins".
func plural(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return fmt.Sprintf("%d %ss", n, noun)
}
