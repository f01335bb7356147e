package emulator

import (
	"crypto/rand"
	"fmt"
	"strings"
)

const alphanumeric = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"

// randomString returns n random alphanumeric characters.
func randomString(n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic(err) // crypto/rand never fails on supported platforms
	}
	for i := range b {
		b[i] = alphanumeric[int(b[i])%len(alphanumeric)]
	}
	return string(b)
}

// id18 adds Salesforce's case-safe 3-character suffix to a 15-character id:
// one character per 5-character chunk, encoding which letters are upper case.
func id18(id string) string {
	if len(id) == 18 {
		return id
	}
	if len(id) != 15 {
		return id
	}
	const table = "ABCDEFGHIJKLMNOPQRSTUVWXYZ012345"
	var suffix strings.Builder
	for chunk := 0; chunk < 3; chunk++ {
		bits := 0
		for i := 0; i < 5; i++ {
			c := id[chunk*5+i]
			if c >= 'A' && c <= 'Z' {
				bits |= 1 << i
			}
		}
		suffix.WriteByte(table[bits])
	}
	return id + suffix.String()
}

// id15 returns the case-sensitive 15-character form of an id.
func id15(id string) string {
	if len(id) == 18 {
		return id[:15]
	}
	return id
}

// validID reports whether id looks like a Salesforce id with the given
// 3-character key prefix, in 15- or 18-character form with a correct suffix.
func validID(id, prefix string) bool {
	if len(id) != 15 && len(id) != 18 {
		return false
	}
	if !strings.HasPrefix(id, prefix) {
		return false
	}
	for _, c := range id {
		if !strings.ContainsRune(alphanumeric, c) {
			return false
		}
	}
	return len(id) == 15 || id18(id[:15]) == id
}

// newID makes a fresh 18-character id with the key prefix (e.g. "005").
func newID(prefix string) string {
	return id18(prefix + "AC" + randomString(10))
}

func normalizeID(id, prefix, what string) (string, error) {
	if !validID(id, prefix) {
		return "", fmt.Errorf("%s id %q must be a 15 or 18 character id starting with %s", what, id, prefix)
	}
	return id18(id15(id)), nil
}
