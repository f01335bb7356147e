package emulator

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"net/http"
	"strings"
	"time"
)

// controlStaged is a staged credential as the control API shows it.
type controlStaged struct {
	ID             string    `json:"id"`
	ClientID       string    `json:"clientId"`
	ClientSecret   string    `json:"clientSecret"`
	State          string    `json:"state"`
	CreatedDate    time.Time `json:"createdDate"`
	ExpirationDate time.Time `json:"expirationDate"`
}

type controlConsumer struct {
	ConsumerID   string         `json:"consumerId"`
	ClientID     string         `json:"clientId"`
	ClientSecret string         `json:"clientSecret"`
	Staged       *controlStaged `json:"staged,omitempty"`
}

// controlApp is an app as the control API shows it: what an admin sees in
// Setup, consumer secrets included (the control API serves the local
// developer only).
type controlApp struct {
	ID                    string            `json:"id"`
	Kind                  string            `json:"kind"`
	Name                  string            `json:"name"`
	DeveloperName         string            `json:"developerName"`
	Packaged              bool              `json:"packaged"`
	Consumers             []controlConsumer `json:"consumers"`
	RunAsUser             string            `json:"runAsUser,omitempty"`
	Scopes                string            `json:"scopes"`
	PreAuthorizedProfiles []string          `json:"preAuthorizedProfiles"`
	PreAuthorizedUsers    []string          `json:"preAuthorizedUsers"`
	CertificateSHA256     string            `json:"certificateFingerprintSha256,omitempty"`
}

// appView describes app. Caller holds s.mu.
func (s *Server) appView(app *ConnectedApp) controlApp {
	out := controlApp{ID: app.ID, Kind: app.Kind, Name: app.Name, DeveloperName: app.DeveloperName, Packaged: app.Packaged,
		RunAsUser: app.RunAsUser, Scopes: app.scopes(), Consumers: []controlConsumer{},
		PreAuthorizedProfiles: append([]string{}, app.PreAuthorizedProfiles...), PreAuthorizedUsers: append([]string{}, app.PreAuthorizedUsers...)}
	if block, _ := pem.Decode([]byte(app.CertificatePEM)); block != nil {
		sum := sha256.Sum256(block.Bytes)
		out.CertificateSHA256 = hex.EncodeToString(sum[:])
	}
	now := s.clock()
	for _, c := range app.consumers() {
		cc := controlConsumer{ConsumerID: c.ConsumerID, ClientID: c.ClientID, ClientSecret: c.ClientSecret}
		if st := c.Staged; st != nil {
			cc.Staged = &controlStaged{ID: st.ID, ClientID: st.ClientID, ClientSecret: st.ClientSecret, State: st.stateAt(now),
				CreatedDate: st.CreatedDate.UTC(), ExpirationDate: st.ExpirationDate.UTC()}
		}
		out.Consumers = append(out.Consumers, cc)
	}
	return out
}

func (s *Server) handleListApps(w *recorder, _ *http.Request, _ []byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := []controlApp{}
	for i := range s.org.ConnectedApps {
		out = append(out, s.appView(&s.org.ConnectedApps[i]))
	}
	writeJSON(w, http.StatusOK, out)
}

// handleGetApp: {ref} is the app's identifier, developer name or a client
// id that authenticates.
func (s *Server) handleGetApp(ref string) handlerFunc {
	return func(w *recorder, _ *http.Request, _ []byte) {
		s.mu.Lock()
		defer s.mu.Unlock()
		app := s.appFor(ref)
		if app == nil {
			writeControlError(w, http.StatusNotFound, errControlUnknownApp.Error())
			return
		}
		writeJSON(w, http.StatusOK, s.appView(app))
	}
}

// AppInput describes an app to create (CreateApp, POST /_emulator/apps).
type AppInput struct {
	// Kind defaults to externalClientApp: Salesforce no longer lets orgs
	// create connected apps (Spring '26).
	Kind                  string   `json:"kind,omitempty"`
	Name                  string   `json:"name"`
	DeveloperName         string   `json:"developerName,omitempty"`
	ClientID              string   `json:"clientId,omitempty"`     // generated when omitted
	ClientSecret          string   `json:"clientSecret,omitempty"` // generated when omitted
	Certificate           string   `json:"certificate,omitempty"`
	PreAuthorizedProfiles []string `json:"preAuthorizedProfiles,omitempty"`
	PreAuthorizedUsers    []string `json:"preAuthorizedUsers,omitempty"`
	RunAsUser             string   `json:"runAsUser,omitempty"`
	Scopes                string   `json:"scopes,omitempty"`
	Packaged              bool     `json:"packaged,omitempty"`
	IntrospectAllTokens   bool     `json:"introspectAllTokens,omitempty"`
}

// CreateApp adds an app to the org (as Setup would) and returns its
// identifier.
func (s *Server) CreateApp(in AppInput) (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	app, err := s.createApp(in)
	if err != nil {
		return "", err
	}
	return app.ID, nil
}

// createApp validates and appends. Caller holds s.mu.
func (s *Server) createApp(in AppInput) (*ConnectedApp, error) {
	if strings.TrimSpace(in.Name) == "" {
		return nil, errors.New("an app needs a name")
	}
	if in.Kind == "" {
		in.Kind = KindExternalClientApp
	}
	if in.ClientID == "" {
		in.ClientID = newConsumerKey()
	}
	if in.ClientSecret == "" {
		in.ClientSecret = newConsumerSecret()
	}
	app := ConnectedApp{Kind: in.Kind, Name: in.Name, DeveloperName: in.DeveloperName, Packaged: in.Packaged,
		Consumer: Consumer{ClientID: in.ClientID, ClientSecret: in.ClientSecret}, CertificatePEM: in.Certificate,
		PreAuthorizedProfiles: in.PreAuthorizedProfiles, PreAuthorizedUsers: in.PreAuthorizedUsers,
		RunAsUser: in.RunAsUser, Scopes: in.Scopes, IntrospectAllTokens: in.IntrospectAllTokens}
	if in.Kind == KindExternalClientApp {
		app.ID = newID("0xI")
	} else {
		app.ID = newID("0H4")
	}
	var errs []error
	if app.CertificatePEM != "" {
		if _, err := parsePublicKeyPEM(app.CertificatePEM); err != nil {
			errs = append(errs, errors.New("certificate: "+err.Error()))
		}
	}
	if app.RunAsUser != "" && s.userByName(app.RunAsUser) == nil {
		errs = append(errs, errors.New("unknown runAsUser "+app.RunAsUser))
	}
	for _, p := range app.PreAuthorizedProfiles {
		if s.org.profile(p) == nil {
			errs = append(errs, errors.New("unknown pre-authorized profile "+p))
		}
	}
	all := append(append([]ConnectedApp(nil), s.org.ConnectedApps...), app)
	errs = append(errs, validateApps(all)...)
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	s.org.ConnectedApps = append(s.org.ConnectedApps, all[len(all)-1])
	return &s.org.ConnectedApps[len(s.org.ConnectedApps)-1], nil
}

func (s *Server) handleCreateApp(w *recorder, r *http.Request, _ []byte) {
	var in AppInput
	if err := decodeControlJSON(w, r, &in); err != nil {
		writeControlError(w, http.StatusBadRequest, err.Error())
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	app, err := s.createApp(in)
	if err != nil {
		writeControlError(w, http.StatusBadRequest, err.Error())
		return
	}
	writeJSON(w, http.StatusCreated, s.appView(app))
}

// OrgSettings are the org switches the control API can read and change.
type OrgSettings struct {
	EnableClientSecretInRESTAPIAccess bool `json:"enableClientSecretInRestApiAccess"`
	StageOverRotated                  bool `json:"stageOverRotated"`
	StagedIDFollowsCredential         bool `json:"stagedIdFollowsCredential"`
	BlockUsernamePasswordFlow         bool `json:"blockUsernamePasswordFlow"`
	SOAPLoginDisabled                 bool `json:"soapLoginDisabled"`
	EnforceUseAnyAPIAuth              bool `json:"enforceUseAnyApiAuth"`
}

// orgSettings reads the switches. Caller holds s.mu.
func (s *Server) orgSettings() OrgSettings {
	o := &s.org
	return OrgSettings{o.EnableClientSecretInRESTAPIAccess, o.StageOverRotated, o.StagedIDFollowsCredential,
		o.BlockUsernamePasswordFlow, o.SOAPLoginDisabled, o.EnforceUseAnyAPIAuth}
}

func (s *Server) handleGetOrg(w *recorder, _ *http.Request, _ []byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	writeJSON(w, http.StatusOK, s.orgSettings())
}

// handlePatchOrg changes the switches named in the body; the others stay.
func (s *Server) handlePatchOrg(w *recorder, r *http.Request, _ []byte) {
	var in struct {
		EnableClientSecretInRESTAPIAccess *bool `json:"enableClientSecretInRestApiAccess"`
		StageOverRotated                  *bool `json:"stageOverRotated"`
		StagedIDFollowsCredential         *bool `json:"stagedIdFollowsCredential"`
		BlockUsernamePasswordFlow         *bool `json:"blockUsernamePasswordFlow"`
		SOAPLoginDisabled                 *bool `json:"soapLoginDisabled"`
		EnforceUseAnyAPIAuth              *bool `json:"enforceUseAnyApiAuth"`
	}
	if err := decodeControlJSON(w, r, &in); err != nil {
		writeControlError(w, http.StatusBadRequest, err.Error()+" (fields: enableClientSecretInRestApiAccess, stageOverRotated, stagedIdFollowsCredential, blockUsernamePasswordFlow, soapLoginDisabled, enforceUseAnyApiAuth)")
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	o := &s.org
	for dst, src := range map[*bool]*bool{&o.EnableClientSecretInRESTAPIAccess: in.EnableClientSecretInRESTAPIAccess,
		&o.StageOverRotated: in.StageOverRotated, &o.StagedIDFollowsCredential: in.StagedIDFollowsCredential,
		&o.BlockUsernamePasswordFlow: in.BlockUsernamePasswordFlow, &o.SOAPLoginDisabled: in.SOAPLoginDisabled,
		&o.EnforceUseAnyAPIAuth: in.EnforceUseAnyAPIAuth} {
		if src != nil {
			*dst = *src
		}
	}
	writeJSON(w, http.StatusOK, s.orgSettings())
}

// AdvanceClock moves the org's clock forward by d (on top of SetClock's
// clock; a later SetClock starts afresh).
func (s *Server) AdvanceClock(d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	prev := s.clock
	s.clock = func() time.Time { return prev().Add(d) }
}

// Now is the org's current time.
func (s *Server) Now() time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.clock()
}

func (s *Server) handleGetClock(w *recorder, _ *http.Request, _ []byte) {
	writeJSON(w, http.StatusOK, map[string]time.Time{"now": s.Now().UTC()})
}

// handleAdvanceClock: {"advance": "31d"} moves time forward, for sessions,
// lockouts, password expiry and staged credentials alike.
func (s *Server) handleAdvanceClock(w *recorder, r *http.Request, _ []byte) {
	var in struct {
		Advance string `json:"advance"`
	}
	if err := decodeControlJSON(w, r, &in); err != nil {
		writeControlError(w, http.StatusBadRequest, err.Error()+` (want {"advance": "31d"})`)
		return
	}
	d, err := parseAgo(in.Advance)
	if err != nil {
		writeControlError(w, http.StatusBadRequest, "advance: "+err.Error())
		return
	}
	s.AdvanceClock(d)
	writeJSON(w, http.StatusOK, map[string]time.Time{"now": s.Now().UTC()})
}
