package emulator

import (
	"net/url"
	"reflect"
	"strings"
	"testing"
)

// The shipped example seed describes the same org as DefaultSeed.
func TestDemoSeedFileMatchesDefaultSeed(t *testing.T) {
	file, err := LoadSeed("testdata/demo-org.json")
	if err != nil {
		t.Fatal(err)
	}
	def := DefaultSeed()
	if err := def.validate(); err != nil {
		t.Fatal(err)
	}
	file.RefreshTokens = nil
	if !reflect.DeepEqual(file.Users, def.Users) {
		t.Errorf("users differ:\n%+v\n%+v", file.Users, def.Users)
	}
	if !reflect.DeepEqual(file.Org.ConnectedApps, def.Org.ConnectedApps) || !reflect.DeepEqual(file.Org.PasswordPolicy, def.Org.PasswordPolicy) || file.Org.ID != DemoOrgID {
		t.Errorf("org differs")
	}
}

func TestSeedRefreshTokenWorks(t *testing.T) {
	seed, err := LoadSeed("testdata/demo-org.json")
	if err != nil {
		t.Fatal(err)
	}
	s := NewTestServer(t, seed)
	status, out := tokenRequest(t, s.LoginURL(), url.Values{"grant_type": {"refresh_token"}, "refresh_token": {"5Aep861demoRefreshTokenForIntegrationUser0000"},
		"client_id": {DemoClientID}, "client_secret": {DemoClientSecret}})
	if status != 200 || !strings.HasSuffix(out["id"].(string), s.UserID(integUser)) {
		t.Fatalf("%d %v", status, out)
	}
}

func TestSeedValidation(t *testing.T) {
	bad := DefaultSeed()
	bad.Users[0].Profile = "Nope"
	bad.Org.ID = "001notanorg0000"
	bad.Org.ConnectedApps[0].CertificatePEM = "not a pem"
	_, err := New(bad)
	if err == nil {
		t.Fatal("invalid seed accepted")
	}
	for _, want := range []string{"unknown profile", "org id", "certificate"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %q", err, want)
		}
	}
	if strings.Contains(err.Error(), "Admin-Pass-1234") {
		t.Error("seed error leaks a password")
	}
	// IsActive defaults to true when a seed file omits it.
	var u User
	if err := u.UnmarshalJSON([]byte(`{"username":"x@y.z"}`)); err != nil || !u.IsActive {
		t.Errorf("isActive default: %v %v", u.IsActive, err)
	}
}

func TestID18Checksum(t *testing.T) {
	// Published example: 001A0000006Vm9r -> 001A0000006Vm9rIAC.
	if got := id18("001A0000006Vm9r"); got != "001A0000006Vm9rIAC" {
		t.Fatalf("id18 = %s", got)
	}
	if id18("00D5g00000AcmeD") != DemoOrgID {
		t.Fatal("DemoOrgID is not the 18-char form of the demo org id")
	}
}
