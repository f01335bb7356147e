package emulator

import (
	"fmt"
	"net"
	"strings"
	"time"
)

// Org holds the org-wide settings and metadata (profiles, connected apps).
// Tests change it through (*Server).SetOrg.
type Org struct {
	// ID is the org id; 15 or 18 characters, starting with 00D.
	ID   string `json:"id"`
	Name string `json:"name"`
	// TrustedIPRanges (Setup > Network Access) exempt callers from the
	// security token. Each entry is a CIDR ("10.0.0.0/8"), a single IP, or
	// a "start-end" range.
	TrustedIPRanges []string       `json:"trustedIpRanges,omitempty"`
	PasswordPolicy  PasswordPolicy `json:"passwordPolicy"`
	// SessionTimeoutMinutes is the session inactivity timeout (default 120).
	SessionTimeoutMinutes int `json:"sessionTimeoutMinutes,omitempty"`
	// SOAPLoginDisabled turns off SOAP login() ("Enable SOAP API login()"
	// unchecked), the default for orgs created Winter '26 or later.
	SOAPLoginDisabled bool `json:"soapLoginDisabled,omitempty"`
	// BlockUsernamePasswordFlow blocks the OAuth username-password flow,
	// the default for orgs created Summer '23 or later.
	BlockUsernamePasswordFlow bool `json:"blockUsernamePasswordFlow,omitempty"`
	// ReuseSessions makes a login return the user's existing live session
	// for the same app and scope instead of a new one, as measured for JWT
	// bearer mints [3p] (and reported for SOAP logins). Revoking or logging
	// out then ends the session for every holder. Off in DefaultSeed.
	ReuseSessions bool `json:"reuseSessions,omitempty"`
	// EnforceUseAnyAPIAuth makes SOAP login() require the profile's
	// "Use Any API Auth" permission (Profile.UseAnyAPIAuth), as Salesforce
	// does from API v67.0 and in orgs created Winter '26 or later. The
	// emulator refuses login() from v65.0 on anyway, so this flag, not the
	// version, switches the check on.
	EnforceUseAnyAPIAuth bool `json:"enforceUseAnyApiAuth,omitempty"`
	// LoginRateLimitPerHour caps logins per user per rolling hour (default 3600).
	LoginRateLimitPerHour int `json:"loginRateLimitPerHour,omitempty"`
	// JWTMaxLifetimeSeconds caps how far ahead a JWT bearer assertion's exp
	// may be (default 180: the documented "within 3 minutes"). Public
	// reports suggest real orgs accept 300; tests can raise it.
	JWTMaxLifetimeSeconds int `json:"jwtMaxLifetimeSeconds,omitempty"`
	// EnableClientSecretInRESTAPIAccess is "Allow access to External Client
	// App consumer secrets via REST API"
	// (ExternalClientAppSettings.enableClientSecretInRestApiAccess): needed
	// to read a consumer secret and to stage, rotate or delete credentials
	// through Connect REST.
	EnableClientSecretInRESTAPIAccess bool `json:"enableClientSecretInRestApiAccess,omitempty"`
	// StageOverRotated lets POST …/staged replace a Rotated or Expired
	// credential in the staged slot (what Infisical's rotation relies on).
	// Off (default): the slot must be empty, as sfdx-hardis states ("It must
	// be deleted before new credentials can be staged"). Undocumented
	// either way.
	StageOverRotated bool `json:"stageOverRotated,omitempty"`
	// StagedIDFollowsCredential: a staged credential keeps its id when a
	// rotation promotes it and when a later one demotes it (Infisical
	// deletes by the id it saw when staging). Off (default): the id belongs
	// to the slot's record, whose key and secret swap with the primary's on
	// rotation, so after a rotation that id names the demoted, Rotated
	// credential. Undocumented either way.
	StagedIDFollowsCredential bool `json:"stagedIdFollowsCredential,omitempty"`
	// DailyAPIRequests is the DailyApiRequests Max of /limits (default 15000).
	DailyAPIRequests int       `json:"dailyApiRequests,omitempty"`
	Profiles         []Profile `json:"profiles"`
	// PermissionSets and PermissionSetGroups grant permissions on top of
	// profiles (users[].permissionSets / permissionSetGroups assign them).
	PermissionSets      []PermissionSet      `json:"permissionSets,omitempty"`
	PermissionSetGroups []PermissionSetGroup `json:"permissionSetGroups,omitempty"`
	ConnectedApps       []ConnectedApp       `json:"connectedApps"`
	// Records are extra rows for simple SOQL queries, by sObject type
	// (e.g. "Account": [{"Id":"001...","Name":"Acme"}]).
	Records map[string][]map[string]any `json:"records,omitempty"`
}

// PasswordPolicy mirrors Setup > Password Policies.
type PasswordPolicy struct {
	MinLength int `json:"minLength"`
	// Complexity: 0 any; 1 letters+numbers; 2 letters+numbers+special;
	// 3 numbers+upper+lower; 4 numbers+upper+lower+special.
	Complexity int `json:"complexity"`
	// History is how many previous passwords (the current one included)
	// cannot be reused.
	History int `json:"history"`
	// MaxLoginAttempts before lockout; 0 = no lockout.
	MaxLoginAttempts int `json:"maxLoginAttempts"`
	// LockoutIntervalMinutes; 0 = locked until an admin unlocks.
	LockoutIntervalMinutes int `json:"lockoutIntervalMinutes"`
	// ExpiryDays; 0 = passwords never expire.
	ExpiryDays int `json:"expiryDays"`
	// MinimumLifetime: self-service changes at most once per 24 hours.
	MinimumLifetime bool `json:"minimumLifetime,omitempty"`
	// AllowSetPasswordSelf is "Allow use of setPassword() API for
	// self-resets"; without it a user must use changeOwnPassword.
	AllowSetPasswordSelf bool `json:"allowSetPasswordSelf,omitempty"`
}

// Profile carries the permissions the emulator checks.
type Profile struct {
	ID   string `json:"id,omitempty"`
	Name string `json:"name"`
	// LoginIPRanges: when set, logins from inside need no security token
	// and logins from outside are denied.
	LoginIPRanges  []string `json:"loginIpRanges,omitempty"`
	APIEnabled     bool     `json:"apiEnabled"`
	APIOnly        bool     `json:"apiOnly,omitempty"`
	ManageUsers    bool     `json:"manageUsers,omitempty"`
	ResetPasswords bool     `json:"resetPasswords,omitempty"`
	// UseAnyAPIAuth is the "Use Any API Auth" user permission, needed for
	// SOAP login() when Org.EnforceUseAnyAPIAuth is set.
	UseAnyAPIAuth bool `json:"useAnyApiAuth,omitempty"`
	// PasswordNeverExpires exempts the profile's users from expiry.
	PasswordNeverExpires bool `json:"passwordNeverExpires,omitempty"`
	// Permissions are further user permissions by API name (as in
	// PermissionSet.Permissions), e.g. CustomizeApplication.
	Permissions []string `json:"permissions,omitempty"`
}

// ConnectedApp is an OAuth client of the org: a connected app or an
// External Client App (ECA), as Kind says.
type ConnectedApp struct {
	// Kind is KindConnectedApp (the default) or KindExternalClientApp.
	Kind string `json:"kind,omitempty"`
	// ID is the app's identifier: 0H4… for a connected app, 0xI… for an
	// ECA (Connect REST's appIdentifier). Generated when omitted.
	ID string `json:"id,omitempty"`
	// Name is the label (Login History's Application).
	Name string `json:"name"`
	// DeveloperName is the API name (default: Name with _ for anything
	// but letters and digits).
	DeveloperName string `json:"developerName,omitempty"`
	// Packaged marks an ECA installed from a package: the OAuth staged
	// credentials API serves only local ECAs.
	Packaged bool `json:"packaged,omitempty"`
	// Consumer is the app's first OAuth consumer (clientId, clientSecret,
	// consumerId, staged); MoreConsumers are further ones (ECAs only).
	Consumer
	MoreConsumers []Consumer `json:"moreConsumers,omitempty"`
	// CertificatePEM verifies JWT bearer assertions (a CERTIFICATE or a
	// PUBLIC KEY PEM block).
	CertificatePEM string `json:"certificate,omitempty"`
	// PreAuthorizedProfiles / PreAuthorizedUsers (usernames) are the
	// admin-approved users ("Admin approved users are pre-authorized").
	PreAuthorizedProfiles []string `json:"preAuthorizedProfiles,omitempty"`
	PreAuthorizedUsers    []string `json:"preAuthorizedUsers,omitempty"`
	// RunAsUser is the client credentials flow's user (a username).
	RunAsUser string `json:"runAsUser,omitempty"`
	// Scopes granted to tokens, space separated (default "api").
	Scopes string `json:"scopes,omitempty"`
	// IntrospectAllTokens lets the app introspect tokens of any app; if
	// false it may only introspect its own tokens.
	IntrospectAllTokens bool `json:"introspectAllTokens,omitempty"`
}

// User is one org user with its credentials and login state. Tests change
// it through (*Server).SetUserState (direct writes bypass the policy).
type User struct {
	ID        string `json:"id"` // 005..., 15 or 18 characters
	Username  string `json:"username"`
	Email     string `json:"email"`
	FirstName string `json:"firstName,omitempty"`
	LastName  string `json:"lastName,omitempty"`
	Profile   string `json:"profile"` // profile name
	// PermissionSets and PermissionSetGroups assigned to the user, by name.
	PermissionSets      []string `json:"permissionSets,omitempty"`
	PermissionSetGroups []string `json:"permissionSetGroups,omitempty"`
	// IsActive defaults to true in seed files when omitted.
	IsActive      bool   `json:"isActive"`
	Password      string `json:"password"`
	SecurityToken string `json:"securityToken"`
	// PasswordExpired forces passwordExpired=true on the next login.
	PasswordExpired bool `json:"passwordExpired,omitempty"`
	// IsPasswordLocked is UserLogin.IsPasswordLocked (locked out).
	IsPasswordLocked bool `json:"isPasswordLocked,omitempty"`
	// LockedAt starts the lockout interval; zero means "until unlocked".
	LockedAt            time.Time `json:"-"`
	FailedLoginAttempts int       `json:"-"`
	// PasswordChangedAt drives expiry and the minimum lifetime.
	PasswordChangedAt time.Time `json:"-"`
	// PreviousPasswords, newest first, excluding the current one.
	PreviousPasswords []string `json:"-"`
	// UserLoginID is the id of the user's UserLogin row (060...).
	UserLoginID string `json:"-"`
	// loginTimes feeds the hourly login rate limit.
	loginTimes []time.Time
	// lastFailure is the Login History status of the last INVALID_LOGIN.
	lastFailure string
}

func (o *Org) profile(name string) *Profile {
	for i := range o.Profiles {
		if strings.EqualFold(o.Profiles[i].Name, name) {
			return &o.Profiles[i]
		}
	}
	return nil
}

func (o *Org) sessionTimeout() time.Duration {
	if o.SessionTimeoutMinutes <= 0 {
		return 2 * time.Hour
	}
	return time.Duration(o.SessionTimeoutMinutes) * time.Minute
}

func (o *Org) loginRateLimit() int {
	if o.LoginRateLimitPerHour <= 0 {
		return 3600
	}
	return o.LoginRateLimitPerHour
}

func (o *Org) jwtMaxLifetime() time.Duration {
	if o.JWTMaxLifetimeSeconds <= 0 {
		return 3 * time.Minute
	}
	return time.Duration(o.JWTMaxLifetimeSeconds) * time.Second
}

func (o *Org) dailyAPIRequests() int {
	if o.DailyAPIRequests <= 0 {
		return 15000
	}
	return o.DailyAPIRequests
}

func (a *ConnectedApp) scopes() string {
	if a == nil || a.Scopes == "" {
		return "api"
	}
	return a.Scopes
}

// preAuthorized reports whether an admin approved u for the app.
func (a *ConnectedApp) preAuthorized(u *User) bool {
	for _, p := range a.PreAuthorizedProfiles {
		if strings.EqualFold(p, u.Profile) {
			return true
		}
	}
	for _, n := range a.PreAuthorizedUsers {
		if strings.EqualFold(n, u.Username) {
			return true
		}
	}
	return false
}

// adminApprovedOnly: an app with a pre-authorised list is taken to use the
// "Admin approved users are pre-authorized" policy.
func (a *ConnectedApp) adminApprovedOnly() bool {
	return len(a.PreAuthorizedProfiles) > 0 || len(a.PreAuthorizedUsers) > 0
}

// ipInRanges reports whether ip falls in any range (CIDR, single IP or
// "start-end").
func ipInRanges(ip net.IP, ranges []string) bool {
	if ip == nil {
		return false
	}
	for _, r := range ranges {
		if ipInRange(ip, r) {
			return true
		}
	}
	return false
}

func ipInRange(ip net.IP, r string) bool {
	r = strings.TrimSpace(r)
	if _, n, err := net.ParseCIDR(r); err == nil {
		return n.Contains(ip)
	}
	if start, end, ok := strings.Cut(r, "-"); ok {
		lo, hi := net.ParseIP(strings.TrimSpace(start)), net.ParseIP(strings.TrimSpace(end))
		if lo == nil || hi == nil {
			return false
		}
		return bytesCompare(ip.To16(), lo.To16()) >= 0 && bytesCompare(ip.To16(), hi.To16()) <= 0
	}
	if one := net.ParseIP(r); one != nil {
		return one.Equal(ip)
	}
	return false
}

func bytesCompare(a, b []byte) int {
	for i := range a {
		if a[i] != b[i] {
			if a[i] < b[i] {
				return -1
			}
			return 1
		}
	}
	return 0
}

func validateRanges(ranges []string) error {
	for _, r := range ranges {
		r = strings.TrimSpace(r)
		if _, _, err := net.ParseCIDR(r); err == nil {
			continue
		}
		if start, end, ok := strings.Cut(r, "-"); ok && net.ParseIP(strings.TrimSpace(start)) != nil && net.ParseIP(strings.TrimSpace(end)) != nil {
			continue
		}
		if net.ParseIP(r) != nil {
			continue
		}
		return fmt.Errorf("invalid IP range %q", r)
	}
	return nil
}
