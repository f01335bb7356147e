package salesforce

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"math/big"
)

// Salesforce's special characters for complexity levels 2 and 4.
const (
	lowerChars   = "abcdefghijkmnopqrstuvwxyz"
	upperChars   = "ABCDEFGHJKLMNPQRSTUVWXYZ"
	digitChars   = "23456789"
	specialChars = "!#$%-_=+<>"
)

// newCandidate makes a new password from the account's (or the mount's)
// Vault password policy, or from the built-in generator, avoiding rejected
// ones. It also returns a hash that identifies the policy in the WAL.
func (b *backend) newCandidate(ctx context.Context, acct *account, rcfg *rotationConfig, rejected map[string]bool) (string, string, error) {
	policy := acct.PasswordPolicy
	if policy == "" {
		policy = rcfg.PasswordPolicy
	}
	hash := policyHash(policy, rcfg)
	for i := 0; i < 10; i++ {
		var pw string
		var err error
		if policy != "" {
			pw, err = b.System().GeneratePasswordFromPolicy(ctx, policy)
			if err != nil {
				return "", "", fmt.Errorf("generating a password from policy %q: %w", policy, err)
			}
		} else {
			pw, err = generatePassword(rcfg.PasswordLength)
			if err != nil {
				return "", "", err
			}
		}
		if !rejected[pw] {
			return pw, hash, nil
		}
	}
	return "", "", fmt.Errorf("password policy %q keeps producing passwords Salesforce already rejected", policy)
}

// policyHash fingerprints the password rules a WAL candidate was made with.
// Vault does not let a plugin read a named policy's contents, so for named
// policies it covers the name; for the built-in generator it covers the
// generator's rules.
func policyHash(policy string, rcfg *rotationConfig) string {
	var desc string
	if policy != "" {
		desc = "vault-policy:" + policy
	} else {
		desc = fmt.Sprintf("builtin:v1:length=%d:%s|%s|%s|%s", rcfg.PasswordLength, lowerChars, upperChars, digitChars, specialChars)
	}
	sum := sha256.Sum256([]byte(desc))
	return hex.EncodeToString(sum[:])
}

// generatePassword returns a random password with at least one lower- and
// upper-case letter, digit and special character, which satisfies
// Salesforce's strictest complexity level (4).
func generatePassword(length int) (string, error) {
	if length < 8 {
		length = 8
	}
	all := lowerChars + upperChars + digitChars + specialChars
	classes := []string{lowerChars, upperChars, digitChars, specialChars}
	out := make([]byte, length)
	for i := range out {
		set := all
		if i < len(classes) {
			set = classes[i]
		}
		c, err := randIndex(len(set))
		if err != nil {
			return "", err
		}
		out[i] = set[c]
	}
	// Shuffle so the guaranteed classes are not always first.
	for i := len(out) - 1; i > 0; i-- {
		j, err := randIndex(i + 1)
		if err != nil {
			return "", err
		}
		out[i], out[j] = out[j], out[i]
	}
	return string(out), nil
}

func randIndex(n int) (int, error) {
	v, err := rand.Int(rand.Reader, big.NewInt(int64(n)))
	if err != nil {
		return 0, fmt.Errorf("reading randomness: %w", err)
	}
	return int(v.Int64()), nil
}
