package sfapi

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// External Client App (ECA) OAuth credentials through the Connect REST
// "OAuth Staged Credentials" resources: resolve an app by developer name,
// list its consumers, and stage, promote (rotate) and delete credentials.
// The list and read resources exist from v59.0/v60.0, the staged ones from
// v65.0; the client uses Config.APIVersion for all of them, so callers
// check it first (MinStagedCredentialsVersion).

// MinStagedCredentialsVersion is the first API version with the staged
// credentials resources.
const MinStagedCredentialsVersion = 65.0

// Staged credential states as Salesforce names them.
const (
	CredentialActive  = "Active"
	CredentialRotated = "Rotated"
	CredentialExpired = "Expired"
)

// maxUsagePages bounds the walk through /apps/oauth/usage: Salesforce
// returns a nextPageUrl on every page, the last one too, and an empty page
// past the end.
const maxUsagePages = 50

// ExternalClientApp is one entry of /apps/oauth/usage.
type ExternalClientApp struct {
	// Identifier is the app's id (0xI…); the credentials resources take it.
	Identifier    string
	DeveloperName string
	Label         string
}

// AppConsumer is one OAuth consumer of an app: its id (888…) and its
// current (primary) key. Secrets are never read here.
type AppConsumer struct {
	ID   string
	Key  string
	Name string
}

// StagedCredential is the credential in a consumer's staged slot: a new
// key and secret waiting to be promoted (Active), or the previous primary
// after a rotation (Rotated), or one past its validity (Expired). Secret is
// set only by StageCredential, which needs it; listings drop it.
type StagedCredential struct {
	ID             string
	Key            string
	Secret         string
	State          string
	CreatedBy      string
	CreatedDate    time.Time
	ExpirationDate time.Time
}

// connectIDPattern is what the client accepts as an app, consumer or
// staged credential id in a URL path: Salesforce-style ids, treated as
// opaque but never allowed to change the path.
var connectIDPattern = regexp.MustCompile(`^[A-Za-z0-9]{1,40}$`)

func checkConnectID(op, what, id string) *Error {
	if !connectIDPattern.MatchString(id) {
		return &Error{Op: op, Code: "MALFORMED_ID", Message: what + " is not a Salesforce id", Kind: KindNotFound}
	}
	return nil
}

// credentialsPath is /apps/oauth/credentials/{app}/{consumer}.
func credentialsPath(appID, consumerID string) string {
	return "/apps/oauth/credentials/" + appID + "/" + consumerID
}

// FindExternalClientApp resolves an ECA's developer name (case
// insensitively, as Salesforce compares API names) to its identifier.
// A name no ECA has is a KindNotFound error.
func (c *Client) FindExternalClientApp(ctx context.Context, s *Session, developerName string) (app *ExternalClientApp, err error) {
	const op = "find external client app"
	defer scrubSecrets(&err, sessionSecret(s))
	for page := 0; page < maxUsagePages; page++ {
		q := url.Values{"page": {strconv.Itoa(page)}, "pageSize": {"100"}}
		resp, e := c.restCall(ctx, op, s, http.MethodGet, "/apps/oauth/usage", q, nil, http.StatusOK)
		if e != nil {
			return nil, e
		}
		var body struct {
			Apps []struct {
				Identifier    string `json:"identifier"`
				DeveloperName string `json:"developerName"`
				Label         string `json:"label"`
			} `json:"apps"`
			NextPageURL *string `json:"nextPageUrl"`
		}
		if json.Unmarshal(resp.body, &body) != nil {
			return nil, &Error{Op: op, Message: "unreadable app usage response", HTTPStatus: resp.status, Kind: KindOther}
		}
		for _, a := range body.Apps {
			if strings.EqualFold(a.DeveloperName, developerName) {
				return &ExternalClientApp{Identifier: a.Identifier, DeveloperName: a.DeveloperName, Label: a.Label}, nil
			}
		}
		if len(body.Apps) == 0 || body.NextPageURL == nil || *body.NextPageURL == "" {
			break
		}
	}
	return nil, &Error{Op: op, Code: "NOT_FOUND", Message: "no local external client app has the developer name " + developerName, Kind: KindNotFound}
}

// AppConsumers lists an ECA's consumers with their current keys.
func (c *Client) AppConsumers(ctx context.Context, s *Session, appID string) (consumers []AppConsumer, err error) {
	const op = "list app consumers"
	defer scrubSecrets(&err, sessionSecret(s))
	if e := checkConnectID(op, "the app identifier", appID); e != nil {
		return nil, e
	}
	resp, e := c.restCall(ctx, op, s, http.MethodGet, "/apps/oauth/credentials/"+appID, nil, nil, http.StatusOK)
	if e != nil {
		return nil, e
	}
	var body struct {
		Consumers []struct {
			ID   string `json:"id"`
			Key  string `json:"key"`
			Name string `json:"name"`
		} `json:"consumers"`
	}
	if json.Unmarshal(resp.body, &body) != nil {
		return nil, &Error{Op: op, Message: "unreadable consumer list", HTTPStatus: resp.status, Kind: KindOther}
	}
	for _, co := range body.Consumers {
		consumers = append(consumers, AppConsumer{ID: co.ID, Key: co.Key, Name: co.Name})
	}
	return consumers, nil
}

// ConsumerSecret reads the consumer's current (primary) key and secret
// (?part=keyandsecret), for a caller that lost the secret of a credential
// it promoted. It needs the View Client Secret permission and the org's
// REST access to consumer secrets.
func (c *Client) ConsumerSecret(ctx context.Context, s *Session, appID, consumerID string) (key, secret string, err error) {
	const op = "read consumer secret"
	defer scrubSecrets(&err, sessionSecret(s))
	if e := checkConnectIDs(op, appID, consumerID); e != nil {
		return "", "", e
	}
	resp, e := c.restCall(ctx, op, s, http.MethodGet, credentialsPath(appID, consumerID), url.Values{"part": {"keyandsecret"}}, nil, http.StatusOK)
	if e != nil {
		return "", "", e
	}
	var body struct {
		Key    string `json:"key"`
		Secret string `json:"secret"`
	}
	if json.Unmarshal(resp.body, &body) != nil || body.Key == "" || body.Secret == "" {
		return "", "", &Error{Op: op, Message: "unreadable consumer credentials", HTTPStatus: resp.status, Kind: KindOther}
	}
	return body.Key, body.Secret, nil
}

// stagedJSON is "App Oauth Staged Credentials".
type stagedJSON struct {
	ID             string `json:"id"`
	Key            string `json:"key"`
	Secret         string `json:"secret"`
	State          string `json:"state"`
	CreatedBy      string `json:"createdBy"`
	CreatedDate    string `json:"createdDate"`
	ExpirationDate string `json:"expirationDate"`
}

func (j stagedJSON) credential(withSecret bool) StagedCredential {
	out := StagedCredential{ID: j.ID, Key: j.Key, State: j.State, CreatedBy: j.CreatedBy,
		CreatedDate: parseSalesforceTime(j.CreatedDate), ExpirationDate: parseSalesforceTime(j.ExpirationDate)}
	if withSecret {
		out.Secret = j.Secret
	}
	return out
}

// decodeStaged reads a staged credentials collection. The shape is the one
// real clients rely on ({"stagedCredentials": [...]}); a single object or
// a bare array are accepted too, since the documentation leaves it open.
func decodeStaged(body []byte) ([]stagedJSON, bool) {
	var coll struct {
		StagedCredentials *[]stagedJSON `json:"stagedCredentials"`
	}
	if json.Unmarshal(body, &coll) == nil && coll.StagedCredentials != nil {
		return *coll.StagedCredentials, true
	}
	var arr []stagedJSON
	if json.Unmarshal(body, &arr) == nil {
		return arr, true
	}
	var one stagedJSON
	if json.Unmarshal(body, &one) == nil && one.ID != "" {
		return []stagedJSON{one}, true
	}
	return nil, false
}

// StagedCredentials lists what sits in the consumer's staged slot, without
// secrets. An empty slot is an empty list (a 404 is read as one too: a
// client reports Salesforce may answer so when nothing is staged).
func (c *Client) StagedCredentials(ctx context.Context, s *Session, appID, consumerID string) (creds []StagedCredential, err error) {
	const op = "list staged credentials"
	defer scrubSecrets(&err, sessionSecret(s))
	if e := checkConnectIDs(op, appID, consumerID); e != nil {
		return nil, e
	}
	resp, e := c.restCall(ctx, op, s, http.MethodGet, credentialsPath(appID, consumerID)+"/staged", nil, nil, http.StatusOK)
	if e != nil {
		if e.HTTPStatus == http.StatusNotFound && e.Code == "NOT_FOUND" {
			return nil, nil
		}
		return nil, e
	}
	items, ok := decodeStaged(resp.body)
	if !ok {
		return nil, &Error{Op: op, Message: "unreadable staged credentials response", HTTPStatus: resp.status, Kind: KindOther}
	}
	for _, it := range items {
		creds = append(creds, it.credential(false))
	}
	return creds, nil
}

// StageCredential asks Salesforce for a new key and secret in the
// consumer's staged slot and returns them (the Active credential of the
// answer). POST takes no body; "{}" is sent because Salesforce reportedly
// hangs on a bodiless POST. The secret never appears in an error.
func (c *Client) StageCredential(ctx context.Context, s *Session, appID, consumerID string) (cred *StagedCredential, err error) {
	const op = "stage credential"
	defer scrubSecrets(&err, sessionSecret(s))
	if e := checkConnectIDs(op, appID, consumerID); e != nil {
		return nil, e
	}
	resp, e := c.restCall(ctx, op, s, http.MethodPost, credentialsPath(appID, consumerID)+"/staged", nil, struct{}{},
		http.StatusCreated, http.StatusOK)
	if e != nil {
		return nil, e
	}
	items, ok := decodeStaged(resp.body)
	if !ok {
		return nil, &Error{Op: op, Message: "unreadable staged credentials response", HTTPStatus: resp.status, Kind: KindOther}
	}
	for _, it := range items {
		if strings.EqualFold(it.State, CredentialActive) && it.Key != "" && it.Secret != "" {
			out := it.credential(true)
			return &out, nil
		}
	}
	return nil, &Error{Op: op, Message: "Salesforce staged a credential but its answer holds no Active key and secret", HTTPStatus: resp.status, Kind: KindOther}
}

// StagedSecret reads the key and secret of the credential in the staged
// slot with the given id (for a credential staged earlier whose secret
// the caller did not keep).
func (c *Client) StagedSecret(ctx context.Context, s *Session, appID, consumerID, stagedID string) (cred *StagedCredential, err error) {
	const op = "read staged credential"
	defer scrubSecrets(&err, sessionSecret(s))
	if e := checkConnectIDs(op, appID, consumerID); e != nil {
		return nil, e
	}
	if e := checkConnectID(op, "the staged credential id", stagedID); e != nil {
		return nil, e
	}
	resp, e := c.restCall(ctx, op, s, http.MethodGet, credentialsPath(appID, consumerID)+"/staged/"+stagedID, nil, nil, http.StatusOK)
	if e != nil {
		return nil, e
	}
	items, ok := decodeStaged(resp.body)
	if !ok || len(items) == 0 {
		return nil, &Error{Op: op, Message: "unreadable staged credential", HTTPStatus: resp.status, Kind: KindOther}
	}
	out := items[0].credential(true)
	return &out, nil
}

// PromoteStagedCredential makes the Active staged credential the primary
// one (PATCH {"command":"rotate"}); Salesforce keeps the previous primary
// in the staged slot as Rotated, still valid, for 30 days.
func (c *Client) PromoteStagedCredential(ctx context.Context, s *Session, appID, consumerID, stagedID string) (err error) {
	const op = "rotate staged credential"
	defer scrubSecrets(&err, sessionSecret(s))
	if e := checkConnectIDs(op, appID, consumerID); e != nil {
		return e
	}
	if e := checkConnectID(op, "the staged credential id", stagedID); e != nil {
		return e
	}
	payload := map[string]string{"command": "rotate"}
	if _, e := c.restCall(ctx, op, s, http.MethodPatch, credentialsPath(appID, consumerID)+"/staged/"+stagedID, nil, payload,
		http.StatusOK, http.StatusNoContent); e != nil {
		return e
	}
	return nil
}

// DeleteStagedCredential deletes the credential in the staged slot, which
// stops it from authenticating. A credential already gone (deleted, or
// removed after its validity) is not an error.
func (c *Client) DeleteStagedCredential(ctx context.Context, s *Session, appID, consumerID, stagedID string) (err error) {
	const op = "delete staged credential"
	defer scrubSecrets(&err, sessionSecret(s))
	if e := checkConnectIDs(op, appID, consumerID); e != nil {
		return e
	}
	if e := checkConnectID(op, "the staged credential id", stagedID); e != nil {
		return e
	}
	_, e := c.restCall(ctx, op, s, http.MethodDelete, credentialsPath(appID, consumerID)+"/staged/"+stagedID, nil, nil,
		http.StatusNoContent, http.StatusOK)
	if e != nil && e.HTTPStatus == http.StatusNotFound {
		return nil
	}
	if e != nil {
		return e
	}
	return nil
}

func checkConnectIDs(op, appID, consumerID string) *Error {
	if e := checkConnectID(op, "the app identifier", appID); e != nil {
		return e
	}
	return checkConnectID(op, "the consumer id", consumerID)
}

// parseSalesforceTime reads the date-times of Connect REST
// ("2026-05-04T05:31:56.000Z") and of SOQL results
// ("2026-05-01T10:00:00.000+0000"); zero when it cannot.
func parseSalesforceTime(s string) time.Time {
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05.000-0700", "2006-01-02T15:04:05-0700"} {
		if t, err := time.Parse(layout, s); err == nil {
			return t.UTC()
		}
	}
	return time.Time{}
}

// ClientID is the consumer key this client authenticates its OAuth calls
// with, so callers can tell which key minted a token.
func (c *Client) ClientID() string { return c.cfg.ClientID }
