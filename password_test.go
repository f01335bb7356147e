package salesforce

import (
	"strings"
	"testing"
)

func TestGeneratePassword(t *testing.T) {
	seen := map[string]bool{}
	for i := 0; i < 200; i++ {
		pw, err := generatePassword(defaultPasswordLength)
		if err != nil {
			t.Fatal(err)
		}
		if len(pw) != defaultPasswordLength || seen[pw] {
			t.Fatalf("bad or repeated password of length %d", len(pw))
		}
		seen[pw] = true
		for _, class := range []string{lowerChars, upperChars, digitChars, specialChars} {
			if !strings.ContainsAny(pw, class) {
				t.Fatalf("password lacks one of %q (Salesforce complexity 4)", class)
			}
		}
	}
}
