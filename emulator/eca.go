package emulator

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"regexp"
	"strings"
	"time"
)

// App kinds. Connected apps are the legacy kind (no new ones from Spring
// '26); External Client Apps (ECAs) replace them.
const (
	KindConnectedApp      = "connectedApp"
	KindExternalClientApp = "externalClientApp"
)

// Staged credential states (Connect REST "App Oauth Staged Credentials").
const (
	StateActive  = "Active"
	StateRotated = "Rotated"
	StateExpired = "Expired"
)

// stagedValidity: "Staged credentials are valid for 30 days unless they're
// deleted before then"; a rotated-out credential keeps working 30 days.
const stagedValidity = 30 * 24 * time.Hour

// Consumer is one OAuth consumer of an app: a client id (consumer key)
// and secret. An ECA may have several.
type Consumer struct {
	// ConsumerID is the OAuth consumer id (888…), generated when omitted.
	ConsumerID   string `json:"consumerId,omitempty"`
	ClientID     string `json:"clientId"`
	ClientSecret string `json:"clientSecret"`
	// Staged is the consumer's staged credential slot (ECAs only): a new
	// key and secret waiting to be promoted, or the previous ones after a
	// rotation.
	Staged *StagedCredential `json:"staged,omitempty"`
	// primaryID is the primary credential's id when credentials keep their
	// ids through rotations (Org.StagedIDFollowsCredential).
	primaryID string
}

// StagedCredential is the credential in a consumer's staged slot.
type StagedCredential struct {
	// ID identifies it on the wire. Its key prefix is not documented;
	// the emulator uses 0xS. Clients should treat it as opaque.
	ID           string `json:"id"`
	ClientID     string `json:"clientId"`
	ClientSecret string `json:"clientSecret"`
	// State is Active (staged) or Rotated (the previous primary after a
	// rotation); it reads Expired once ExpirationDate has passed.
	State          string    `json:"state"`
	CreatedBy      string    `json:"createdBy,omitempty"` // user id
	CreatedDate    time.Time `json:"createdDate"`
	ExpirationDate time.Time `json:"expirationDate"`
}

// stateAt is the state as of now.
func (c *StagedCredential) stateAt(now time.Time) string {
	if c.State == StateExpired || !now.Before(c.ExpirationDate) {
		return StateExpired
	}
	return c.State
}

func (a *ConnectedApp) isECA() bool { return a.Kind == KindExternalClientApp }

// consumers lists the app's consumers, the first one embedded in the app.
func (a *ConnectedApp) consumers() []*Consumer {
	out := []*Consumer{&a.Consumer}
	for i := range a.MoreConsumers {
		out = append(out, &a.MoreConsumers[i])
	}
	return out
}

// appCredential is a client id the token endpoint accepts, with the app
// and the matching secret.
type appCredential struct {
	app      *ConnectedApp
	consumer *Consumer
	secret   string
}

// credentialFor finds the app by any client id that authenticates: a
// consumer's primary key, or a staged key that is Active or Rotated and
// not expired (both sets work in parallel during a rotation). Caller
// holds s.mu.
func (s *Server) credentialFor(clientID string) *appCredential {
	if clientID == "" {
		return nil
	}
	now := s.clock()
	for i := range s.org.ConnectedApps {
		app := &s.org.ConnectedApps[i]
		for _, c := range app.consumers() {
			if c.ClientID == clientID {
				return &appCredential{app, c, c.ClientSecret}
			}
			if st := c.Staged; st != nil && st.ClientID == clientID {
				if state := st.stateAt(now); state == StateActive || state == StateRotated {
					return &appCredential{app, c, st.ClientSecret}
				}
			}
		}
	}
	return nil
}

// appByID finds an app by its identifier (15 or 18 characters). Caller
// holds s.mu.
func (s *Server) appByID(id string) *ConnectedApp {
	if !looksLikeID(id) {
		return nil
	}
	for i := range s.org.ConnectedApps {
		if id15(s.org.ConnectedApps[i].ID) == id15(id) {
			return &s.org.ConnectedApps[i]
		}
	}
	return nil
}

// appFor finds an app by identifier, developer name or a client id that
// authenticates. Caller holds s.mu.
func (s *Server) appFor(ref string) *ConnectedApp {
	if app := s.appByID(ref); app != nil {
		return app
	}
	if cred := s.credentialFor(ref); cred != nil {
		return cred.app
	}
	for i := range s.org.ConnectedApps {
		if strings.EqualFold(s.org.ConnectedApps[i].DeveloperName, ref) {
			return &s.org.ConnectedApps[i]
		}
	}
	return nil
}

// newConsumerKey looks like a Salesforce consumer key ("3MVG9…").
func newConsumerKey() string { return "3MVG9" + randomString(80) }

// newConsumerSecret looks like a Salesforce consumer secret: 64
// upper-case hex digits.
func newConsumerSecret() string {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		panic(err)
	}
	return strings.ToUpper(hex.EncodeToString(b))
}

// connectError is a Connect REST error: status, errorCode and message.
type connectError struct {
	status int
	code   string
	msg    string
}

// Which code and status Salesforce uses for these two refusals is not
// documented; INVALID_API_INPUT with 400 is the emulator's choice.
var (
	errStagedSlotTaken = &connectError{400, "INVALID_API_INPUT", "This consumer already has staged credentials. Delete them before you stage new credentials."}
	errNotActive       = &connectError{400, "INVALID_API_INPUT", "Only Active staged credentials can be rotated."}
)

// stage puts a new key and secret in the slot, valid for 30 days. The
// slot must be empty, or (Org.StageOverRotated) hold a Rotated or Expired
// credential, which the new one replaces. Caller holds s.mu.
func (s *Server) stage(c *Consumer, by *User) (*StagedCredential, *connectError) {
	now := s.clock()
	if c.Staged != nil {
		state := c.Staged.stateAt(now)
		if state == StateActive || !s.org.StageOverRotated {
			return nil, errStagedSlotTaken
		}
	}
	c.Staged = &StagedCredential{ID: newID("0xS"), ClientID: newConsumerKey(), ClientSecret: newConsumerSecret(),
		State: StateActive, CreatedBy: by.ID, CreatedDate: now, ExpirationDate: now.Add(stagedValidity)}
	return c.Staged, nil
}

// rotate promotes the Active staged credential to primary; the previous
// primary takes the slot as Rotated and keeps working for 30 days. The
// staged credential's id either stays with the slot (default: the slot's
// record swaps its key and secret with the primary) or follows the
// credential (Org.StagedIDFollowsCredential). Caller holds s.mu.
func (s *Server) rotate(c *Consumer) *connectError {
	now := s.clock()
	st := c.Staged
	if st == nil || st.stateAt(now) != StateActive {
		return errNotActive
	}
	oldKey, oldSecret := c.ClientID, c.ClientSecret
	c.ClientID, c.ClientSecret = st.ClientID, st.ClientSecret
	demoted := &StagedCredential{ID: st.ID, ClientID: oldKey, ClientSecret: oldSecret, State: StateRotated,
		CreatedBy: st.CreatedBy, CreatedDate: st.CreatedDate, ExpirationDate: now.Add(stagedValidity)}
	if s.org.StagedIDFollowsCredential {
		if c.primaryID == "" {
			c.primaryID = newID("0xS")
		}
		demoted.ID, c.primaryID = c.primaryID, st.ID
	}
	c.Staged = demoted
	return nil
}

// deleteStaged empties the slot if it holds id. Caller holds s.mu.
func (c *Consumer) deleteStaged(id string) bool {
	if c.Staged == nil || !sameID(c.Staged.ID, id) {
		return false
	}
	c.Staged = nil
	return true
}

func sameID(a, b string) bool { return looksLikeID(a) && looksLikeID(b) && id15(a) == id15(b) }

var developerNameRe = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9_]*$`)

// defaultDeveloperName turns a label into an API name.
func defaultDeveloperName(name string) string {
	var b strings.Builder
	for _, r := range name {
		switch {
		case r < 128 && (r == '_' || (r >= 'a' && r <= 'z') || (r >= 'A' && r <= 'Z') || (r >= '0' && r <= '9')):
			b.WriteRune(r)
		default:
			b.WriteByte('_')
		}
	}
	out := strings.Trim(b.String(), "_")
	if out == "" || !developerNameRe.MatchString(out) {
		out = "App_" + out
	}
	return out
}

// normalizeApp fills an app's kind, ids and developer name and checks
// them; usernames and profiles are those of the org.
func normalizeApp(a *ConnectedApp, i int) []error {
	var errs []error
	var err error
	switch a.Kind {
	case "":
		a.Kind = KindConnectedApp
	case KindConnectedApp, KindExternalClientApp:
	default:
		errs = append(errs, fmt.Errorf("app %d: kind must be %s or %s", i, KindConnectedApp, KindExternalClientApp))
	}
	prefix := "0H4" // ConnectedApplication
	if a.isECA() {
		prefix = "0xI"
	}
	if a.ID == "" {
		a.ID = derivedID(prefix, "app:"+a.ClientID)
	}
	if a.ID, err = normalizeID(a.ID, prefix, "app "+a.Name); err != nil {
		errs = append(errs, err)
	}
	if a.DeveloperName == "" {
		a.DeveloperName = defaultDeveloperName(a.Name)
	}
	if !developerNameRe.MatchString(a.DeveloperName) {
		errs = append(errs, fmt.Errorf("app %q: developerName %q must start with a letter and hold only letters, digits and _", a.Name, a.DeveloperName))
	}
	if a.Packaged && !a.isECA() {
		errs = append(errs, fmt.Errorf("app %q: only external client apps can be packaged here", a.Name))
	}
	if len(a.MoreConsumers) > 0 && !a.isECA() {
		errs = append(errs, fmt.Errorf("app %q: only external client apps have more than one consumer", a.Name))
	}
	for j, c := range a.consumers() {
		if c.ClientID == "" {
			errs = append(errs, fmt.Errorf("app %q consumer %d has no clientId", a.Name, j))
		}
		if c.ConsumerID == "" {
			c.ConsumerID = derivedID("888", "consumer:"+a.ID+":"+c.ClientID)
		}
		if c.ConsumerID, err = normalizeID(c.ConsumerID, "888", "consumer"); err != nil {
			errs = append(errs, err)
		}
		if st := c.Staged; st != nil {
			if !a.isECA() {
				errs = append(errs, fmt.Errorf("app %q: only external client apps have staged credentials", a.Name))
			}
			if st.ID == "" {
				st.ID = derivedID("0xS", "staged:"+st.ClientID)
			}
			if !looksLikeID(st.ID) || st.ClientID == "" || st.ClientSecret == "" || st.ExpirationDate.IsZero() ||
				(st.State != StateActive && st.State != StateRotated && st.State != StateExpired) {
				errs = append(errs, fmt.Errorf("app %q consumer %d: a staged credential needs an id, clientId, clientSecret, state (Active, Rotated or Expired) and expirationDate", a.Name, j))
			}
		}
	}
	return errs
}

// validateApps checks every app and that client ids, ids and developer
// names are unique.
func validateApps(apps []ConnectedApp) []error {
	var errs []error
	keys, ids, names := map[string]bool{}, map[string]bool{}, map[string]bool{}
	for i := range apps {
		a := &apps[i]
		errs = append(errs, normalizeApp(a, i)...)
		if ids[id15(a.ID)] || names[strings.ToLower(a.DeveloperName)] {
			errs = append(errs, fmt.Errorf("app %q: duplicate id or developerName", a.Name))
		}
		ids[id15(a.ID)], names[strings.ToLower(a.DeveloperName)] = true, true
		for _, c := range a.consumers() {
			for _, k := range []string{c.ClientID, stagedKey(c)} {
				if k != "" && keys[k] {
					errs = append(errs, fmt.Errorf("app %q: client id used twice", a.Name))
				}
				keys[k] = true
			}
			if ids[id15(c.ConsumerID)] {
				errs = append(errs, fmt.Errorf("app %q: duplicate consumer id", a.Name))
			}
			ids[id15(c.ConsumerID)] = true
		}
	}
	return errs
}

func stagedKey(c *Consumer) string {
	if c.Staged == nil {
		return ""
	}
	return c.Staged.ClientID
}
