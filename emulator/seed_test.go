package emulator

import (
	"encoding/json"
	"fmt"
	"net/url"
	"reflect"
	"strings"
	"testing"
)

// The shipped example seed is the same org as DefaultSeed, field for field:
// `make dev` with or without EMULATOR_SEED=emulator/testdata/demo-org.json
// must behave the same.
func TestDemoSeedFileMatchesDefaultSeed(t *testing.T) {
	file, err := LoadSeed("testdata/demo-org.json")
	if err != nil {
		t.Fatal(err)
	}
	def := DefaultSeed()
	if err := def.validate(); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(file, def) {
		fileJSON, _ := json.MarshalIndent(file, "", "  ")
		defJSON, _ := json.MarshalIndent(def, "", "  ")
		t.Fatalf("testdata/demo-org.json differs from DefaultSeed (first difference near):\n%s", firstDiff(string(fileJSON), string(defJSON)))
	}
}

// firstDiff shows the first differing line of two texts, with context.
func firstDiff(a, b string) string {
	al, bl := strings.Split(a, "\n"), strings.Split(b, "\n")
	for i := 0; i < len(al) || i < len(bl); i++ {
		var x, y string
		if i < len(al) {
			x = al[i]
		}
		if i < len(bl) {
			y = bl[i]
		}
		if x != y {
			return fmt.Sprintf("line %d\n file:    %s\n default: %s", i+1, x, y)
		}
	}
	return "(same JSON: a difference in a field JSON does not show, e.g. nil vs empty)"
}

// A seed's refreshTokens are usable at once (neither demo seed has one; the
// control API issues them instead).
func TestSeedRefreshTokenWorks(t *testing.T) {
	seed := DefaultSeed()
	const token = "5Aep861seededRefreshTokenForTest0000"
	seed.RefreshTokens = []SeedRefreshToken{{ClientID: DemoClientID, Username: integUser, Token: token}}
	s := NewTestServer(t, seed)
	status, out := tokenRequest(t, s.LoginURL(), url.Values{"grant_type": {"refresh_token"}, "refresh_token": {token},
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
