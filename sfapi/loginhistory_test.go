package sfapi

import (
	"context"
	"testing"
	"time"

	"github.com/vault-salesforce/vault-plugin-secrets-salesforce/emulator"
)

func TestClientEmulatorLoginHistory(t *testing.T) {
	emu := emulator.NewTestServer(t, emuSeed())
	c, admin := ecaAdminSession(t, emu)
	ctx := context.Background()

	// A SOAP login() now, as an integration would make it.
	mustSOAPLogin(t, newEmuClient(t, emu.LoginURL()), emulator.DemoIntegUsername, emuIntegPW+emuIntegToken)

	ids, err := c.UserIDs(ctx, admin, []string{"INTEGRATION@acme.demo", emulator.DemoAdminUsername, "nobody@acme.demo"})
	if err != nil {
		t.Fatalf("UserIDs: %v", err)
	}
	integ := ids[emulator.DemoIntegUsername]
	if len(ids) != 2 || integ == "" || integ[:15] != emu.UserID(emulator.DemoIntegUsername)[:15] {
		t.Fatalf("UserIDs = %v", ids)
	}

	since := time.Now().Add(-30 * 24 * time.Hour)
	rows, truncated, err := c.LoginHistory(ctx, admin, []string{integ}, since, 0)
	if err != nil || truncated {
		t.Fatalf("LoginHistory: %v (truncated %v)", err, truncated)
	}
	// The demo org's month of history for this user, plus the login above.
	var soap, password, failed int
	for i, r := range rows {
		if r.UserID != integ {
			t.Errorf("row of another user: %+v", r)
		}
		if r.LoginTime.Before(since) {
			t.Errorf("row before the window: %+v", r)
		}
		if i > 0 && r.LoginTime.After(rows[i-1].LoginTime) {
			t.Errorf("rows not newest first at %d", i)
		}
		switch {
		case r.LoginSubType == "SoapApiLogin" && r.LoginType == "Other Apex API" && r.APIType == "SOAP Partner":
			soap++
		case r.LoginSubType == "OauthUsernamePassword":
			password++
		}
		if r.Status != "Success" {
			failed++
		}
	}
	if soap != 3 || password != 2 || failed != 1 {
		t.Fatalf("SOAP %d (want 3), username-password %d (want 2), failed %d (want 1) in %+v", soap, password, failed, rows)
	}
	if rows[0].LoginSubType != "SoapApiLogin" || rows[0].APIVersion != "64.0" || rows[0].SourceIP != "127.0.0.1" {
		t.Errorf("newest row %+v, want the SOAP login just made", rows[0])
	}

	// A narrower window leaves the older rows out (LoginTime is
	// filterable, unlike Status or ApiType, which are grouped in code).
	recent, _, err := c.LoginHistory(ctx, admin, []string{integ}, time.Now().Add(-3*24*time.Hour), 0)
	if err != nil || len(recent) != 2 {
		t.Fatalf("last 3 days: %d rows, %v", len(recent), err)
	}
}

func TestClientEmulatorLoginHistoryPagesAndLimit(t *testing.T) {
	emu := emulator.NewTestServer(t, emuSeed())
	c, admin := ecaAdminSession(t, emu)
	ctx := context.Background()

	// More rows than one query batch (2000): the client follows
	// nextRecordsUrl.
	var rows []emulator.SeedLogin
	for i := 0; i < 2100; i++ {
		rows = append(rows, emulator.SeedLogin{Username: "integration2@acme.demo", Ago: "1h", Flow: "soap", SourceIP: "203.0.113.9"})
	}
	if _, err := emu.AddLoginHistory(rows...); err != nil {
		t.Fatal(err)
	}
	id := emu.UserID("integration2@acme.demo")
	before := emu.Calls("rest.queryMore")
	got, truncated, err := c.LoginHistory(ctx, admin, []string{id}, time.Now().Add(-2*24*time.Hour), 0)
	if err != nil || truncated || len(got) != 2100 {
		t.Fatalf("got %d rows (truncated %v): %v", len(got), truncated, err)
	}
	if emu.Calls("rest.queryMore") == before {
		t.Error("the second batch did not come from nextRecordsUrl")
	}
	got, truncated, err = c.LoginHistory(ctx, admin, []string{id}, time.Now().Add(-2*24*time.Hour), 2050)
	if err != nil || !truncated || len(got) != 2050 {
		t.Fatalf("with limit 2050: %d rows (truncated %v): %v", len(got), truncated, err)
	}

	// Ids go into SOQL: anything but an id is refused before a request.
	_, _, err = c.LoginHistory(ctx, admin, []string{"005' OR UserId != '"}, time.Now(), 0)
	wantKind(t, err, "MALFORMED_ID", KindNotFound)
}

func TestNextRecordsPath(t *testing.T) {
	for raw, want := range map[string]string{
		"/services/data/v66.0/query/01gXX-2000":                     "/query/01gXX-2000",
		"https://evil.example/services/data/v66.0/query/01gXX-2000": "",
		"/services/data/v66.0/sobjects/User":                        "",
		"/services/data/v66.0/query/../sobjects/x":                  "",
		"/services/data/v66.0/query/x?q=1":                          "",
	} {
		got, ok := nextRecordsPath(raw)
		if got != want || ok != (want != "") {
			t.Errorf("nextRecordsPath(%q) = %q, %v; want %q", raw, got, ok, want)
		}
	}
}
