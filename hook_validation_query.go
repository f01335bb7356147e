package salesforce

import (
	"context"
	"fmt"

	"github.com/vault-salesforce/vault-plugin-secrets-salesforce/sfapi"
)

// validationQueryHook runs the account's validation_query (SOQL the
// integration depends on) with the session of the new credential.
type validationQueryHook struct{}

func (validationQueryHook) name() string     { return "validation_query" }
func (validationQueryHook) phase() hookPhase { return afterRotation }
func (validationQueryHook) applies(r *rotationRun) bool {
	return r.acct.ValidationQuery != ""
}

func (validationQueryHook) run(ctx context.Context, r *rotationRun) error {
	if r.ownSession == nil {
		if r.acct.needsToken() {
			return fmt.Errorf("skipped until the new security token is written to accounts/%s/security-token (it runs then)", r.name)
		}
		return fmt.Errorf("skipped: no session with the new credential")
	}
	return runValidationQuery(ctx, r.client, r.ownSession, r.acct.ValidationQuery)
}

func runValidationQuery(ctx context.Context, c Client, s *sfapi.Session, soql string) error {
	if _, err := c.Query(ctx, s, soql); err != nil {
		return fmt.Errorf("validation_query failed: %w", err)
	}
	return nil
}
