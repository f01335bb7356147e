package sfapi

import (
	"context"
	"encoding/json"
	"sort"
	"strings"
)

// UserAccess is what a user may do and whether it can log in: its
// profile, its permission sets and permission set groups (not the set its
// profile owns), whether it is active and whether its login is locked.
type UserAccess struct {
	UserID      string
	Username    string
	IsActive    bool
	ProfileID   string
	ProfileName string
	// PermissionSets are the API names of the sets assigned directly,
	// sorted; PermissionSetGroups the developer names of the groups.
	PermissionSets      []string
	PermissionSetGroups []string
	Locked              bool
}

// UsersAccess reads the access of the given users with an admin session:
// three queries (User with its profile, PermissionSetAssignment, UserLogin),
// whatever the number of users. The answer is keyed by the 15-character
// form of each id, as Salesforce compares them.
func (c *Client) UsersAccess(ctx context.Context, admin *Session, userIDs ...string) (out map[string]*UserAccess, err error) {
	const op = "read user access"
	defer scrubSecrets(&err, sessionSecret(admin))
	if len(userIDs) == 0 {
		return map[string]*UserAccess{}, nil
	}
	quoted := make([]string, len(userIDs))
	for i, id := range userIDs {
		if e := checkSalesforceID(op, id); e != nil {
			return nil, e
		}
		quoted[i] = soqlQuote(id)
	}
	in := "(" + strings.Join(quoted, ", ") + ")"

	out = map[string]*UserAccess{}
	users, e := c.queryRecords(ctx, op, admin, "SELECT Id, Username, IsActive, ProfileId, Profile.Name FROM User WHERE Id IN "+in)
	if e != nil {
		return nil, e
	}
	for _, raw := range users {
		var rec struct {
			ID        string `json:"Id"`
			Username  string `json:"Username"`
			IsActive  bool   `json:"IsActive"`
			ProfileID string `json:"ProfileId"`
			Profile   *struct {
				Name string `json:"Name"`
			} `json:"Profile"`
		}
		if json.Unmarshal(raw, &rec) != nil || rec.ID == "" {
			return nil, &Error{Op: op, Message: "unreadable User record", Kind: KindOther}
		}
		ua := &UserAccess{UserID: rec.ID, Username: rec.Username, IsActive: rec.IsActive, ProfileID: rec.ProfileID}
		if rec.Profile != nil {
			ua.ProfileName = rec.Profile.Name
		}
		out[id15Of(rec.ID)] = ua
	}
	for _, id := range userIDs {
		if out[id15Of(id)] == nil {
			return nil, &Error{Op: op, Code: "NOT_FOUND", Message: "no user with id " + id, Kind: KindNotFound}
		}
	}

	// The profile's own set (IsOwnedByProfile) is the profile, compared
	// above; a group's assignment names the group.
	assignments, e := c.queryRecords(ctx, op, admin, "SELECT AssigneeId, PermissionSet.Name, PermissionSetGroupId, PermissionSetGroup.DeveloperName "+
		"FROM PermissionSetAssignment WHERE AssigneeId IN "+in+" AND PermissionSet.IsOwnedByProfile = false")
	if e != nil {
		return nil, e
	}
	for _, raw := range assignments {
		var rec struct {
			AssigneeID    string `json:"AssigneeId"`
			PermissionSet *struct {
				Name string `json:"Name"`
			} `json:"PermissionSet"`
			PermissionSetGroupID string `json:"PermissionSetGroupId"`
			PermissionSetGroup   *struct {
				DeveloperName string `json:"DeveloperName"`
			} `json:"PermissionSetGroup"`
		}
		if json.Unmarshal(raw, &rec) != nil {
			return nil, &Error{Op: op, Message: "unreadable PermissionSetAssignment record", Kind: KindOther}
		}
		ua := out[id15Of(rec.AssigneeID)]
		if ua == nil {
			continue
		}
		switch {
		case rec.PermissionSetGroupID != "":
			name := rec.PermissionSetGroupID
			if rec.PermissionSetGroup != nil && rec.PermissionSetGroup.DeveloperName != "" {
				name = rec.PermissionSetGroup.DeveloperName
			}
			ua.PermissionSetGroups = append(ua.PermissionSetGroups, name)
		case rec.PermissionSet != nil && rec.PermissionSet.Name != "":
			ua.PermissionSets = append(ua.PermissionSets, rec.PermissionSet.Name)
		}
	}

	logins, e := c.queryRecords(ctx, op, admin, "SELECT UserId, IsPasswordLocked FROM UserLogin WHERE UserId IN "+in)
	if e != nil {
		return nil, e
	}
	for _, raw := range logins {
		var rec struct {
			UserID           string `json:"UserId"`
			IsPasswordLocked bool   `json:"IsPasswordLocked"`
		}
		if json.Unmarshal(raw, &rec) != nil {
			return nil, &Error{Op: op, Message: "unreadable UserLogin record", Kind: KindOther}
		}
		if ua := out[id15Of(rec.UserID)]; ua != nil {
			ua.Locked = rec.IsPasswordLocked
		}
	}
	for _, ua := range out {
		sort.Strings(ua.PermissionSets)
		sort.Strings(ua.PermissionSetGroups)
	}
	return out, nil
}

// id15Of is the case-sensitive 15-character form of a Salesforce id.
func id15Of(id string) string {
	if len(id) > 15 {
		return id[:15]
	}
	return id
}
