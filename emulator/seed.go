package emulator

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"
)

// Seed is the JSON description of an org the emulator starts from. See
// README.md in this directory for the format.
type Seed struct {
	Org   Org    `json:"org"`
	Users []User `json:"users"`
	// RefreshTokens are pre-issued refresh tokens, so the refresh flow can
	// be exercised without a browser-based flow.
	RefreshTokens []SeedRefreshToken `json:"refreshTokens,omitempty"`
	// LoginHistory rows exist before the server serves its first login
	// (times given with "ago" count back from when the server starts).
	LoginHistory []SeedLogin `json:"loginHistory,omitempty"`
}

// SeedRefreshToken is a refresh token granted to a user through an app.
type SeedRefreshToken struct {
	ClientID string `json:"clientId"`
	Username string `json:"username"`
	Token    string `json:"token"`
}

// UnmarshalJSON defaults isActive to true: a seed lists active users
// unless it says otherwise.
func (u *User) UnmarshalJSON(data []byte) error {
	type plain User
	aux := struct {
		*plain
		IsActive *bool `json:"isActive"`
	}{plain: (*plain)(u)}
	if err := json.Unmarshal(data, &aux); err != nil {
		return err
	}
	u.IsActive = aux.IsActive == nil || *aux.IsActive
	return nil
}

// LoadSeed reads and validates a JSON seed file.
func LoadSeed(path string) (*Seed, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var s Seed
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&s); err != nil {
		return nil, fmt.Errorf("seed %s: %w", path, err)
	}
	if err := s.validate(); err != nil {
		return nil, fmt.Errorf("seed %s: %w", path, err)
	}
	return &s, nil
}

// validate checks the seed and normalises ids to 18 characters.
func (s *Seed) validate() error {
	var errs []error
	if s.Org.ID == "" {
		s.Org.ID = newID("00D")
	}
	id, err := normalizeID(s.Org.ID, "00D", "org")
	errs = append(errs, err)
	s.Org.ID = id
	if err := validateRanges(s.Org.TrustedIPRanges); err != nil {
		errs = append(errs, fmt.Errorf("org trustedIpRanges: %w", err))
	}
	p := s.Org.PasswordPolicy
	if p.Complexity < 0 || p.Complexity > 4 {
		errs = append(errs, fmt.Errorf("passwordPolicy.complexity must be 0-4"))
	}
	profiles := map[string]bool{}
	for i := range s.Org.Profiles {
		pr := &s.Org.Profiles[i]
		if pr.Name == "" {
			errs = append(errs, fmt.Errorf("profile %d has no name", i))
		}
		profiles[strings.ToLower(pr.Name)] = true
		if pr.ID == "" {
			pr.ID = newID("00e")
		}
		if pr.ID, err = normalizeID(pr.ID, "00e", "profile"); err != nil {
			errs = append(errs, err)
		}
		if err := validateRanges(pr.LoginIPRanges); err != nil {
			errs = append(errs, fmt.Errorf("profile %q loginIpRanges: %w", pr.Name, err))
		}
	}
	usernames := map[string]bool{}
	for i := range s.Users {
		u := &s.Users[i]
		key := strings.ToLower(u.Username)
		switch {
		case u.Username == "":
			errs = append(errs, fmt.Errorf("user %d has no username", i))
		case usernames[key]:
			errs = append(errs, fmt.Errorf("duplicate user %q", u.Username))
		}
		usernames[key] = true
		if !profiles[strings.ToLower(u.Profile)] {
			errs = append(errs, fmt.Errorf("user %q: unknown profile %q", u.Username, u.Profile))
		}
		if u.ID == "" {
			u.ID = newID("005")
		}
		if u.ID, err = normalizeID(u.ID, "005", "user"); err != nil {
			errs = append(errs, err)
		}
		if u.SecurityToken == "" {
			u.SecurityToken = randomString(25)
		}
	}
	errs = append(errs, validateApps(s.Org.ConnectedApps)...)
	for i := range s.Org.ConnectedApps {
		a := &s.Org.ConnectedApps[i]
		for _, p := range a.PreAuthorizedProfiles {
			if !profiles[strings.ToLower(p)] {
				errs = append(errs, fmt.Errorf("connected app %q: unknown pre-authorized profile %q", a.Name, p))
			}
		}
		if a.CertificatePEM != "" {
			if _, err := parsePublicKeyPEM(a.CertificatePEM); err != nil {
				errs = append(errs, fmt.Errorf("connected app %q certificate: %w", a.Name, err))
			}
		}
		if a.RunAsUser != "" && !usernames[strings.ToLower(a.RunAsUser)] {
			errs = append(errs, fmt.Errorf("connected app %q: unknown runAsUser %q", a.Name, a.RunAsUser))
		}
	}
	errs = append(errs, s.validatePermissions()...)
	for i, l := range s.LoginHistory {
		errs = append(errs, validateSeedLogin(i, l, usernames))
	}
	for _, rt := range s.RefreshTokens {
		if !usernames[strings.ToLower(rt.Username)] || rt.Token == "" {
			errs = append(errs, fmt.Errorf("refresh token for %q: unknown user or empty token", rt.Username))
		}
	}
	return errors.Join(errs...)
}

// Demo org values every test may rely on.
const (
	DemoOrgID        = "00D5g00000AcmeDEAR" // 18-character form of 00D5g00000AcmeD
	DemoClientID     = "3MVG9demoClientId"
	DemoClientSecret = "demo-client-secret"
	// The demo org's External Client Apps: "Vault ECA" (like the connected
	// app, for Vault's own logins) and "Acme ETL" (an application's app
	// whose consumer secret Vault rotates).
	DemoECAID           = "0xI5g000000VecAEAS"
	DemoECAClientID     = "3MVG9demoEcaClientId"
	DemoECAClientSecret = "demo-eca-client-secret"
	DemoETLAppID        = "0xI5g000000EtlAEAS"
	DemoETLClientID     = "3MVG9demoEtlClientId"
	DemoETLClientSecret = "demo-etl-client-secret"
	DemoAdminUsername   = "admin@acme.demo"
	DemoIntegUsername   = "integration@acme.demo"
	DemoTrustUsername   = "trusted@acme.demo"
	// DemoInteg2Username is interchangeable with DemoIntegUsername (same
	// profile, permission sets and group; its own password and token): the
	// second user of a blue/green pair.
	DemoInteg2Username = "integration2@acme.demo"
	// DemoMismatchUsername has the Integration profile too, but another
	// set of permission sets (one more, and no group): a pair with it must
	// be refused.
	DemoMismatchUsername = "integration3@acme.demo"
	demoAdminProfile     = "System Administrator"
	demoIntegProfile     = "Integration"
	demoTrustedProfile   = "Trusted Integration"
)

// DemoAppUsername is the user of docs/applications.md (Vault Agent and the
// example app), with the Trusted Integration profile: a user of its own lets
// that guide rotate it without breaking the other guides' demo users.
const DemoAppUsername = "app@acme.demo"

// DefaultSeed returns the demo org "Acme Demo" (see the team contract).
func DefaultSeed() *Seed {
	return &Seed{
		Org: Org{
			ID:   "00D5g00000AcmeD",
			Name: "Acme Demo",
			PasswordPolicy: PasswordPolicy{
				MinLength:              8,
				Complexity:             1,
				History:                3,
				MaxLoginAttempts:       10,
				LockoutIntervalMinutes: 15,
				// Older orgs keep setPassword() self-resets allowed; tests
				// flip it to exercise the changeOwnPassword path.
				AllowSetPasswordSelf: true,
			},
			SessionTimeoutMinutes: 120,
			LoginRateLimitPerHour: 3600,
			DailyAPIRequests:      15000,
			Profiles: []Profile{
				{ID: "00e5g000000SysA", Name: demoAdminProfile, APIEnabled: true, ManageUsers: true, ResetPasswords: true, UseAnyAPIAuth: true,
					Permissions: []string{PermCustomizeApplication, PermMonitorLoginHistory, "ViewSetup"}},
				{ID: "00e5g000000IntA", Name: demoIntegProfile, APIEnabled: true, UseAnyAPIAuth: true},
				{ID: "00e5g000000TrsA", Name: demoTrustedProfile, APIEnabled: true, UseAnyAPIAuth: true, LoginIPRanges: []string{"127.0.0.0/8", "::1"}},
				{ID: "00e5g000000StdA", Name: "Standard User"},
			},
			PermissionSets: []PermissionSet{
				{ID: "0PS5g000000IapA", Name: "Integration_Base", Label: "Integration Base", Permissions: []string{"ViewSetup"}},
				{ID: "0PS5g000000IdaA", Name: "Integration_Data_Access", Label: "Integration Data Access", Permissions: []string{"ViewAllData"}},
				{ID: "0PS5g000000EcaA", Name: "ECA_Credential_Manager", Label: "ECA Credential Manager",
					Permissions: []string{PermExternalClientAppDeveloper, PermViewClientSecret}},
				{ID: "0PS5g000000RptA", Name: "Report_Builder", Label: "Report Builder", Permissions: []string{"ReportBuilder"}},
			},
			PermissionSetGroups: []PermissionSetGroup{
				{ID: "0PG5g000000IntA", Name: "Integration_Suite", Label: "Integration Suite", PermissionSets: []string{"Integration_Data_Access"}},
			},
			EnableClientSecretInRESTAPIAccess: true,
			ConnectedApps: []ConnectedApp{{
				Kind:                  KindConnectedApp,
				ID:                    "0H45g000000VltA",
				Name:                  "Vault",
				DeveloperName:         "Vault",
				Consumer:              Consumer{ConsumerID: "8885g000000VltA", ClientID: DemoClientID, ClientSecret: DemoClientSecret},
				CertificatePEM:        DemoCertificatePEM,
				PreAuthorizedProfiles: []string{demoAdminProfile, demoIntegProfile, demoTrustedProfile},
				RunAsUser:             DemoAdminUsername,
				Scopes:                "api refresh_token",
				IntrospectAllTokens:   true,
			}, {
				// The External Client App Vault can use like the connected app
				// (JWT bearer with the demo key, client credentials as admin).
				Kind:                  KindExternalClientApp,
				ID:                    DemoECAID,
				Name:                  "Vault ECA",
				DeveloperName:         "Vault_ECA",
				Consumer:              Consumer{ConsumerID: "8885g000000VecA", ClientID: DemoECAClientID, ClientSecret: DemoECAClientSecret},
				CertificatePEM:        DemoCertificatePEM,
				PreAuthorizedProfiles: []string{demoAdminProfile, demoIntegProfile, demoTrustedProfile},
				RunAsUser:             DemoAdminUsername,
				Scopes:                "api refresh_token",
			}, {
				// An application's own ECA (client credentials as the
				// integration user) whose consumer secret Vault rotates.
				Kind:                  KindExternalClientApp,
				ID:                    DemoETLAppID,
				Name:                  "Acme ETL",
				DeveloperName:         "Acme_ETL",
				Consumer:              Consumer{ConsumerID: "8885g000000EtlA", ClientID: DemoETLClientID, ClientSecret: DemoETLClientSecret},
				PreAuthorizedProfiles: []string{demoIntegProfile},
				RunAsUser:             DemoIntegUsername,
				Scopes:                "api",
			}, {
				// Installed from a package: the staged credentials API
				// refuses it.
				Kind:          KindExternalClientApp,
				ID:            "0xI5g000000PkgA",
				Name:          "Analytics Connector",
				DeveloperName: "Analytics_Connector",
				Packaged:      true,
				Consumer:      Consumer{ConsumerID: "8885g000000PkgA", ClientID: "3MVG9demoPackagedClientId", ClientSecret: "demo-packaged-client-secret"},
				Scopes:        "api",
			}},
			Records: map[string][]map[string]any{
				"Account": {{"Id": "0015g00000AcmeAAAA", "Name": "Acme Corporation"}},
			},
		},
		Users: []User{
			{ID: "0055g00000AdmnA", Username: DemoAdminUsername, Email: DemoAdminUsername, FirstName: "Ada", LastName: "Admin",
				Profile: demoAdminProfile, IsActive: true, Password: "Admin-Pass-1234", SecurityToken: "ADMINTOKEN0000000000000000",
				PermissionSets: []string{"ECA_Credential_Manager"}},
			{ID: "0055g00000IntgA", Username: DemoIntegUsername, Email: DemoIntegUsername, FirstName: "Ivy", LastName: "Integration",
				Profile: demoIntegProfile, IsActive: true, Password: "Integ-Pass-1234", SecurityToken: "INTEGTOKEN00000000000000000",
				PermissionSets: []string{"Integration_Base"}, PermissionSetGroups: []string{"Integration_Suite"}},
			{ID: "0055g00000Int2A", Username: DemoInteg2Username, Email: DemoInteg2Username, FirstName: "Iris", LastName: "Integration",
				Profile: demoIntegProfile, IsActive: true, Password: "Integ2-Pass-1234", SecurityToken: "INTEG2TOKEN000000000000000",
				PermissionSets: []string{"Integration_Base"}, PermissionSetGroups: []string{"Integration_Suite"}},
			{ID: "0055g00000Int3A", Username: DemoMismatchUsername, Email: DemoMismatchUsername, FirstName: "Ian", LastName: "Integration",
				Profile: demoIntegProfile, IsActive: true, Password: "Integ3-Pass-1234", SecurityToken: "INTEG3TOKEN000000000000000",
				PermissionSets: []string{"Integration_Base", "Report_Builder"}},
			{ID: "0055g00000TrstA", Username: DemoTrustUsername, Email: DemoTrustUsername, FirstName: "Tom", LastName: "Trusted",
				Profile: demoTrustedProfile, IsActive: true, Password: "Trusted-Pass-1234", SecurityToken: "TRUSTTOKEN000000000000000"},
			{ID: "0055g00000AppsA", Username: DemoAppUsername, Email: DemoAppUsername, FirstName: "Aria", LastName: "App",
				Profile: demoTrustedProfile, IsActive: true, Password: "App-Pass-1234", SecurityToken: "APPTOKEN00000000000000000"},
		},
		// A month of logins before the demo starts: SOAP login() at v58
		// and v64, the OAuth username-password flow, client credentials,
		// and a failed login from another address two days ago (someone
		// still holding an old password).
		LoginHistory: []SeedLogin{
			{Username: DemoIntegUsername, Ago: "29d", Flow: "soap", APIVersion: "58.0", Application: "acme-etl", SourceIP: "203.0.113.10"},
			{Username: DemoIntegUsername, Ago: "14d", Flow: "soap", APIVersion: "64.0", SourceIP: "203.0.113.10"},
			{Username: DemoInteg2Username, Ago: "9d", Flow: "soap", APIVersion: "64.0", SourceIP: "203.0.113.11"},
			{Username: DemoIntegUsername, Ago: "5d", Flow: "oauth-password", Application: "Vault", SourceIP: "198.51.100.7"},
			{Username: DemoAdminUsername, Ago: "3d", Flow: "oauth-client-credentials", Application: "Vault", SourceIP: "198.51.100.7",
				LoginURL: "acme-demo.my.salesforce.com"},
			{Username: DemoIntegUsername, Ago: "2d", Flow: "oauth-password", Application: "Vault", SourceIP: "192.0.2.44",
				Status: StatusInvalidPassword},
		},
	}
}

// copySeed deep-copies a seed so that the server never shares slices or
// maps with the caller.
func copySeed(in *Seed) (*Seed, error) {
	out := *in
	out.Org.TrustedIPRanges = append([]string(nil), in.Org.TrustedIPRanges...)
	out.Org.Profiles = make([]Profile, len(in.Org.Profiles))
	for i, p := range in.Org.Profiles {
		p.LoginIPRanges = append([]string(nil), p.LoginIPRanges...)
		p.Permissions = append([]string(nil), p.Permissions...)
		out.Org.Profiles[i] = p
	}
	out.Org.PermissionSets = nil
	for _, ps := range in.Org.PermissionSets {
		ps.Permissions = append([]string(nil), ps.Permissions...)
		out.Org.PermissionSets = append(out.Org.PermissionSets, ps)
	}
	out.Org.PermissionSetGroups = nil
	for _, g := range in.Org.PermissionSetGroups {
		g.PermissionSets = append([]string(nil), g.PermissionSets...)
		out.Org.PermissionSetGroups = append(out.Org.PermissionSetGroups, g)
	}
	out.Org.ConnectedApps = make([]ConnectedApp, len(in.Org.ConnectedApps))
	for i, a := range in.Org.ConnectedApps {
		a.PreAuthorizedProfiles = append([]string(nil), a.PreAuthorizedProfiles...)
		a.PreAuthorizedUsers = append([]string(nil), a.PreAuthorizedUsers...)
		a.MoreConsumers = append([]Consumer(nil), a.MoreConsumers...)
		for _, c := range a.consumers() {
			if c.Staged != nil {
				st := *c.Staged
				c.Staged = &st
			}
		}
		out.Org.ConnectedApps[i] = a
	}
	if in.Org.Records != nil {
		data, err := json.Marshal(in.Org.Records)
		if err != nil {
			return nil, fmt.Errorf("seed records: %w", err)
		}
		out.Org.Records = nil
		if err := json.Unmarshal(data, &out.Org.Records); err != nil {
			return nil, fmt.Errorf("seed records: %w", err)
		}
	}
	out.Users = make([]User, len(in.Users))
	for i, u := range in.Users {
		u.PreviousPasswords = append([]string(nil), u.PreviousPasswords...)
		u.PermissionSets = append([]string(nil), u.PermissionSets...)
		u.PermissionSetGroups = append([]string(nil), u.PermissionSetGroups...)
		u.loginTimes = nil
		out.Users[i] = u
	}
	out.RefreshTokens = append([]SeedRefreshToken(nil), in.RefreshTokens...)
	out.LoginHistory = append([]SeedLogin(nil), in.LoginHistory...)
	return &out, nil
}
