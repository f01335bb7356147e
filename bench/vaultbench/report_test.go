package main

import (
	"encoding/xml"
	"errors"
	"io"
	"strings"
	"testing"
	"time"
)

// These tests cover the arithmetic and parsing the report rests on; the
// driver itself needs a Vault server and runs only through make bench.

func TestSplitCallsCountsWholeCallsPerRotationAndReportsTheRest(t *testing.T) {
	per, rest, rt := splitCalls(map[string]int{"rest.password": 1000, "soap.login": 2000, "oauth.token": 1, "rest.query": 1003}, 1000)
	if rt != 4 {
		t.Errorf("round trips = %d, want 4 (password 1 + login 2 + query 1)", rt)
	}
	if per["soap.login"] != 2 || per["oauth.token"] != 0 || per["rest.query"] != 1 {
		t.Errorf("per rotation = %v", per)
	}
	if len(rest) != 2 || rest["oauth.token"] != 1 || rest["rest.query"] != 3 {
		t.Errorf("uncounted = %v, want oauth.token 1 and rest.query 3", rest)
	}
}

func TestRotationBound(t *testing.T) {
	// 3 round trips x 50ms x 1000 accounts / 16 at once = 9.375s.
	if got, want := rotationBound(3000, 50*time.Millisecond, 16), 9375*time.Millisecond; got != want {
		t.Errorf("bound = %s, want %s", got, want)
	}
	// The one admin login of the mount counts too: 3001 calls.
	if got, want := rotationBound(3001, 50*time.Millisecond, 16), 9378125*time.Microsecond; got != want {
		t.Errorf("bound = %s, want %s", got, want)
	}
	// 3001 calls at 250 per second take 12.004s.
	if got, want := rateBound(3001, 250), 12004*time.Millisecond; got != want {
		t.Errorf("rate bound = %s, want %s", got, want)
	}
	if rateBound(3001, 0) != 0 {
		t.Error("no rate, no rate bound")
	}
}

func TestMaxInWindow(t *testing.T) {
	base := time.Unix(1000, 0)
	at := func(ms ...int) []time.Time {
		var out []time.Time
		for _, m := range ms {
			out = append(out, base.Add(time.Duration(m)*time.Millisecond))
		}
		return out
	}
	for _, c := range []struct {
		times []time.Time
		want  int
	}{
		{nil, 0},
		{at(0), 1},
		// 0..999 fit in one second; 1000 starts the next.
		{at(0, 500, 999, 1000), 3},
		{at(1000, 0, 1500, 1600, 1999), 4},
	} {
		if got := maxInWindow(c.times, time.Second); got != c.want {
			t.Errorf("maxInWindow(%v) = %d, want %d", c.times, got, c.want)
		}
	}
}

func TestParseQueueLine(t *testing.T) {
	line := `2025-11-30T06:10:00.123Z [INFO]  secrets.vault-plugin-secrets-salesforce.vault-plugin-secrets-salesforce_3c4d: rotation queue initialized: scheduled_accounts=10000 timestamp=2025-11-30T06:10:00.120Z`
	at, n, ok := parseQueueLine(line)
	// The plugin's timestamp, not Vault's copy of the line.
	if !ok || n != 10000 || !at.Equal(time.Date(2025, 11, 30, 6, 10, 0, 120e6, time.UTC)) {
		t.Errorf("parseQueueLine = %s %d %v", at, n, ok)
	}
	if _, _, ok := parseQueueLine(`2025-11-30T06:10:00.123Z [INFO]  core: mount tuning complete`); ok {
		t.Error("an unrelated line was taken for the queue line")
	}
	at, n, ok = parseQueueLine(`2025-11-30T06:10:00.123+0100 [INFO]  x: rotation queue initialized`)
	if !ok || n != -1 || !at.Equal(time.Date(2025, 11, 30, 5, 10, 0, 123e6, time.UTC)) {
		t.Errorf("a line without scheduled_accounts or plugin timestamp: %s %d %v", at, n, ok)
	}
}

func TestQuantile(t *testing.T) {
	var d []time.Duration
	for i := 100; i >= 1; i-- {
		d = append(d, time.Duration(i))
	}
	if q := quantile(d, 0.5); q != 50 {
		t.Errorf("p50 = %d, want 50", q)
	}
	if q := quantile(d, 0.99); q != 99 {
		t.Errorf("p99 = %d, want 99", q)
	}
	if d[0] != 100 {
		t.Error("quantile sorted its input in place")
	}
}

func samples(rates ...float64) []sample {
	var out []sample
	for _, r := range rates {
		out = append(out, sample{N: int(r), Elapsed: time.Second})
	}
	return out
}

func TestPairRatioIsOverAllRounds(t *testing.T) {
	p := pairResult{A: samples(100, 300), B: samples(200, 200)}
	if r := p.Ratio(); r != 1 {
		t.Errorf("ratio = %v, want 1 (400 vs 400 reads in 2s each)", r)
	}
	if rr := p.roundRatios(); len(rr) != 2 || rr[0] != 0.5 || rr[1] != 1.5 {
		t.Errorf("round ratios = %v", rr)
	}
}

func TestSVGChartIsWellFormedAndEscapesLabels(t *testing.T) {
	svg := svgChart([]pairResult{{
		Pair: readPair{ALabel: "salesforce creds/<name>", BLabel: "noop entry"},
		A:    samples(700), B: samples(1000),
	}}, "Reads & ratios")
	dec := xml.NewDecoder(strings.NewReader(svg))
	for {
		_, err := dec.Token()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("not well-formed XML: %v\n%s", err, svg)
		}
	}
	for _, want := range []string{"creds/&lt;name&gt;", "0.70x", ">700<", ">1000<"} {
		if !strings.Contains(svg, want) {
			t.Errorf("chart lacks %q", want)
		}
	}
}

func TestParsePhasesAndKV(t *testing.T) {
	p, err := parsePhases("reads, scale")
	if err != nil || !p["reads"] || !p["scale"] || p["rotation"] {
		t.Errorf("parsePhases = %v %v", p, err)
	}
	if _, err := parsePhases("read"); err == nil {
		t.Error("an unknown phase was accepted")
	}
	kv, err := parseKV("a=1, b=x=y")
	if err != nil || kv["a"] != "1" || kv["b"] != "x=y" {
		t.Errorf("parseKV = %v %v", kv, err)
	}
	if _, err := parseKV("novalue"); err == nil {
		t.Error("a pair without = was accepted")
	}
}

func TestLastLineNamesTheCause(t *testing.T) {
	msg := "Error making API request.\n\nURL: PUT http://127.0.0.1:1/v1/sf-scale/accounts/a\nCode: 500. Errors:\n\n* 1 error occurred:\n\t* rpc error: code = Canceled desc = context canceled\n\n"
	if got := lastLine(msg); got != "rpc error: code = Canceled desc = context canceled" {
		t.Errorf("lastLine = %q", got)
	}
}
