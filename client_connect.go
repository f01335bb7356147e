package salesforce

import (
	"context"
	"fmt"
	"time"

	"github.com/vault-salesforce/vault-plugin-secrets-salesforce/sfapi"
)

// Capabilities of the wire client beyond the Client interface: Login
// History (the migration report) and External Client App credentials
// (client-secret rotation). They are separate interfaces so Client stays
// the small set every path needs; the engine asks for them only where it
// uses them, and sfapi.Client has both.

// loginHistoryClient reads LoginHistory and resolves usernames to ids.
type loginHistoryClient interface {
	LoginHistory(ctx context.Context, s *sfapi.Session, userIDs []string, since time.Time, limit int) ([]sfapi.LoginRecord, bool, error)
	UserIDs(ctx context.Context, s *sfapi.Session, usernames []string) (map[string]string, error)
}

// ecaClient manages an External Client App's consumer credentials through
// the OAuth Staged Credentials Connect REST API (v65.0).
type ecaClient interface {
	FindExternalClientApp(ctx context.Context, s *sfapi.Session, developerName string) (*sfapi.ExternalClientApp, error)
	AppConsumers(ctx context.Context, s *sfapi.Session, appID string) ([]sfapi.AppConsumer, error)
	StagedCredentials(ctx context.Context, s *sfapi.Session, appID, consumerID string) ([]sfapi.StagedCredential, error)
	StageCredential(ctx context.Context, s *sfapi.Session, appID, consumerID string) (*sfapi.StagedCredential, error)
	StagedSecret(ctx context.Context, s *sfapi.Session, appID, consumerID, stagedID string) (*sfapi.StagedCredential, error)
	ConsumerSecret(ctx context.Context, s *sfapi.Session, appID, consumerID string) (key, secret string, err error)
	PromoteStagedCredential(ctx context.Context, s *sfapi.Session, appID, consumerID, stagedID string) error
	DeleteStagedCredential(ctx context.Context, s *sfapi.Session, appID, consumerID, stagedID string) error
}

// clientIDer is a client that says which consumer key it authenticates
// with, so a token can be tagged with the key that minted it.
type clientIDer interface {
	ClientID() string
}

var (
	_ loginHistoryClient = (*sfapi.Client)(nil)
	_ ecaClient          = (*sfapi.Client)(nil)
	_ clientIDer         = (*sfapi.Client)(nil)
)

func asLoginHistoryClient(c Client) (loginHistoryClient, error) {
	lc, ok := c.(loginHistoryClient)
	if !ok {
		return nil, fmt.Errorf("this Salesforce client (%T) cannot read LoginHistory", c)
	}
	return lc, nil
}

func asECAClient(c Client) (ecaClient, error) {
	ec, ok := c.(ecaClient)
	if !ok {
		return nil, fmt.Errorf("this Salesforce client (%T) cannot manage External Client App credentials", c)
	}
	return ec, nil
}
