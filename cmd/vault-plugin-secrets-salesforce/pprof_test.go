//go:build pprof

package main

import "testing"

func TestCheckLoopbackRefusesOtherAddresses(t *testing.T) {
	for addr, ok := range map[string]bool{
		"127.0.0.1:6061": true,
		"[::1]:6061":     true,
		"localhost:6061": true,
		"0.0.0.0:6061":   false,
		":6061":          false,
		"10.0.0.1:6061":  false,
		"example.com:80": false,
		"127.0.0.1":      false,
	} {
		if err := checkLoopback(addr); (err == nil) != ok {
			t.Errorf("checkLoopback(%q) = %v, want ok=%v", addr, err, ok)
		}
	}
}
