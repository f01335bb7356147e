package emulator

import (
	"crypto/sha256"
	"fmt"
	"regexp"
	"sort"
	"strings"
)

// PermissionSet grants user permissions on top of the profile.
type PermissionSet struct {
	ID    string `json:"id,omitempty"` // 0PS…
	Name  string `json:"name"`         // API name
	Label string `json:"label,omitempty"`
	// Permissions are user permission API names without the "Permissions"
	// prefix of their PermissionSet field: ManageUsers,
	// ExternalClientAppDeveloper, ViewClientSecret, …
	Permissions []string `json:"permissions,omitempty"`
}

// PermissionSetGroup bundles permission sets; assigning it grants them all.
type PermissionSetGroup struct {
	ID             string   `json:"id,omitempty"` // 0PG…
	Name           string   `json:"name"`         // DeveloperName
	Label          string   `json:"label,omitempty"`
	PermissionSets []string `json:"permissionSets"` // names
}

// Permission API names the emulator checks.
const (
	PermManageUsers                = "ManageUsers"
	PermResetPasswords             = "ResetPasswords"
	PermAPIEnabled                 = "ApiEnabled"
	PermUseAnyAPIAuth              = "UseAnyApiAuth"
	PermPasswordNeverExpires       = "PasswordNeverExpires"
	PermCustomizeApplication       = "CustomizeApplication"
	PermMonitorLoginHistory        = "MonitorLoginHistory"
	PermExternalClientAppDeveloper = "ExternalClientAppDeveloper"
	PermExternalClientAppViewer    = "ExternalClientAppViewer"
	PermExternalClientAppAdmin     = "ExternalClientAppAdmin"
	PermViewClientSecret           = "ViewClientSecret"
)

// knownPermissions become PermissionSet.Permissions<Name> fields, with any
// other name the org uses.
var knownPermissions = []string{
	PermAPIEnabled, "ApiUserOnly", PermCustomizeApplication, PermExternalClientAppAdmin,
	PermExternalClientAppDeveloper, PermExternalClientAppViewer, "ModifyAllData", PermManageUsers,
	PermMonitorLoginHistory, PermPasswordNeverExpires, PermResetPasswords, PermUseAnyAPIAuth,
	"ViewAllData", PermViewClientSecret, "ViewSetup",
}

var permissionNameRe = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9]*$`)

// profilePermissions lists what the profile grants, its flags included.
func (p *Profile) permissions() []string {
	out := append([]string(nil), p.Permissions...)
	for name, on := range map[string]bool{PermAPIEnabled: p.APIEnabled, "ApiUserOnly": p.APIOnly,
		PermManageUsers: p.ManageUsers, PermResetPasswords: p.ResetPasswords, PermUseAnyAPIAuth: p.UseAnyAPIAuth,
		PermPasswordNeverExpires: p.PasswordNeverExpires} {
		if on {
			out = append(out, name)
		}
	}
	sort.Strings(out)
	return out
}

func (o *Org) permissionSet(name string) *PermissionSet {
	for i := range o.PermissionSets {
		if strings.EqualFold(o.PermissionSets[i].Name, name) {
			return &o.PermissionSets[i]
		}
	}
	return nil
}

func (o *Org) permissionSetGroup(name string) *PermissionSetGroup {
	for i := range o.PermissionSetGroups {
		if strings.EqualFold(o.PermissionSetGroups[i].Name, name) {
			return &o.PermissionSetGroups[i]
		}
	}
	return nil
}

// hasPermission reports whether the profile or an assigned permission set
// (directly or through a group) grants perm. Caller holds s.mu.
func (s *Server) hasPermission(u *User, perm string) bool {
	has := func(list []string) bool {
		for _, p := range list {
			if strings.EqualFold(p, perm) {
				return true
			}
		}
		return false
	}
	if p := s.org.profile(u.Profile); p != nil && has(p.permissions()) {
		return true
	}
	for _, name := range u.PermissionSets {
		if ps := s.org.permissionSet(name); ps != nil && has(ps.Permissions) {
			return true
		}
	}
	for _, name := range u.PermissionSetGroups {
		if g := s.org.permissionSetGroup(name); g != nil {
			for _, m := range g.PermissionSets {
				if ps := s.org.permissionSet(m); ps != nil && has(ps.Permissions) {
					return true
				}
			}
		}
	}
	return false
}

// apiEnabled: the "API Enabled" permission. Caller holds s.mu.
func (s *Server) apiEnabled(u *User) bool { return s.hasPermission(u, PermAPIEnabled) }

// derivedID makes a stable id from a key prefix and a seed string, for
// rows Salesforce creates implicitly (profile-owned permission sets,
// assignments).
func derivedID(prefix, seed string) string {
	sum := sha256.Sum256([]byte(seed))
	b := make([]byte, 12)
	for i := range b {
		b[i] = alphanumeric[int(sum[i])%len(alphanumeric)]
	}
	return id18(prefix + string(b))
}

// profilePermissionSetID: every profile owns a permission set
// (IsOwnedByProfile = true) that holds its permissions.
func profilePermissionSetID(p *Profile) string { return derivedID("0PS", "profile:"+p.ID) }

// groupPermissionSetID: every group has an aggregate permission set of
// Type Group; a group assignment points at it.
func groupPermissionSetID(g *PermissionSetGroup) string { return derivedID("0PS", "group:"+g.ID) }

// permissionFieldNames lists the Permissions<Name> fields. Caller holds s.mu.
func (s *Server) permissionFieldNames() []string {
	seen := map[string]bool{}
	var out []string
	add := func(names []string) {
		for _, n := range names {
			if !seen[strings.ToLower(n)] {
				seen[strings.ToLower(n)] = true
				out = append(out, n)
			}
		}
	}
	add(knownPermissions)
	for i := range s.org.Profiles {
		add(s.org.Profiles[i].Permissions)
	}
	for _, ps := range s.org.PermissionSets {
		add(ps.Permissions)
	}
	sort.Strings(out)
	return out
}

func permissionValues(values map[string]any, fields []string, granted []string) {
	on := map[string]bool{}
	for _, g := range granted {
		on[strings.ToLower(g)] = true
	}
	for _, f := range fields {
		values["Permissions"+f] = on[strings.ToLower(f)]
	}
}

// permissionSetRows: regular sets, profile-owned sets and group
// aggregates. Caller holds s.mu.
func (s *Server) permissionSetRows() []*row {
	fields := s.permissionFieldNames()
	var out []*row
	mk := func(id, name, label, typ string, profile *Profile, group *PermissionSetGroup, perms []string) *row {
		values := map[string]any{"Id": id, "Name": name, "Label": label, "Type": typ,
			"IsOwnedByProfile": profile != nil, "ProfileId": nil, "Profile": (*row)(nil), "PermissionSetGroupId": nil}
		if profile != nil {
			values["ProfileId"] = profile.ID
			values["Profile"] = s.profileRow(profile)
		}
		if group != nil {
			values["PermissionSetGroupId"] = group.ID
		}
		permissionValues(values, fields, perms)
		return &row{"PermissionSet", id, values}
	}
	for i := range s.org.PermissionSets {
		ps := &s.org.PermissionSets[i]
		out = append(out, mk(ps.ID, ps.Name, ps.label(), "Regular", nil, nil, ps.Permissions))
	}
	for i := range s.org.Profiles {
		p := &s.org.Profiles[i]
		// Name and Label of a profile's own set are generated (the exact
		// form is uncertain); IsOwnedByProfile is what tools filter on.
		out = append(out, mk(profilePermissionSetID(p), "X"+p.ID, p.ID, "Profile", p, nil, p.permissions()))
	}
	for i := range s.org.PermissionSetGroups {
		g := &s.org.PermissionSetGroups[i]
		var perms []string
		for _, m := range g.PermissionSets {
			if ps := s.org.permissionSet(m); ps != nil {
				perms = append(perms, ps.Permissions...)
			}
		}
		out = append(out, mk(groupPermissionSetID(g), g.Name, g.label(), "Group", nil, g, perms))
	}
	return out
}

func (ps *PermissionSet) label() string {
	if ps.Label != "" {
		return ps.Label
	}
	return ps.Name
}

func (g *PermissionSetGroup) label() string {
	if g.Label != "" {
		return g.Label
	}
	return g.Name
}

func (s *Server) permissionSetGroupRow(g *PermissionSetGroup) *row {
	return &row{"PermissionSetGroup", g.ID, map[string]any{"Id": g.ID, "DeveloperName": g.Name,
		"MasterLabel": g.label(), "Status": "Updated"}}
}

// permissionSetAssignmentRows: each user's profile-owned set, then its
// sets and groups. Caller holds s.mu.
func (s *Server) permissionSetAssignmentRows() []*row {
	sets := map[string]*row{}
	for _, r := range s.permissionSetRows() {
		sets[r.id] = r
	}
	var out []*row
	for _, u := range s.sortedUsers() {
		user := s.userRow(u)
		add := func(psID string, group *PermissionSetGroup) {
			id := derivedID("0Pa", u.ID+":"+psID)
			values := map[string]any{"Id": id, "AssigneeId": u.ID, "Assignee": user, "PermissionSetId": psID,
				"PermissionSet": sets[psID], "PermissionSetGroupId": nil, "PermissionSetGroup": (*row)(nil),
				"IsActive": true, "ExpirationDate": nil}
			if group != nil {
				values["PermissionSetGroupId"] = group.ID
				values["PermissionSetGroup"] = s.permissionSetGroupRow(group)
			}
			out = append(out, &row{"PermissionSetAssignment", id, values})
		}
		if p := s.org.profile(u.Profile); p != nil {
			add(profilePermissionSetID(p), nil)
		}
		for _, name := range u.PermissionSets {
			if ps := s.org.permissionSet(name); ps != nil {
				add(ps.ID, nil)
			}
		}
		for _, name := range u.PermissionSetGroups {
			if g := s.org.permissionSetGroup(name); g != nil {
				add(groupPermissionSetID(g), g)
			}
		}
	}
	return out
}

// permissionSetSchema has a Permissions<Name> field per permission the
// org knows. Caller holds s.mu.
func (s *Server) permissionSetSchema() *soqlObject {
	o := &soqlObject{name: "PermissionSet", fields: []soqlField{
		{name: "Id", typ: ftID}, {name: "Name", typ: ftString}, {name: "Label", typ: ftString},
		{name: "Type", typ: ftPicklist}, {name: "IsOwnedByProfile", typ: ftBool}, {name: "ProfileId", typ: ftID},
		{name: "PermissionSetGroupId", typ: ftID},
	}, rels: []soqlRel{{"Profile", "Profile"}}}
	for _, p := range s.permissionFieldNames() {
		o.fields = append(o.fields, soqlField{name: "Permissions" + p, typ: ftBool})
	}
	return o
}

var (
	permissionSetAssignmentSchema = &soqlObject{name: "PermissionSetAssignment", fields: []soqlField{
		{name: "Id", typ: ftID}, {name: "AssigneeId", typ: ftID}, {name: "PermissionSetId", typ: ftID},
		{name: "PermissionSetGroupId", typ: ftID}, {name: "IsActive", typ: ftBool}, {name: "ExpirationDate", typ: ftDateTime},
	}, rels: []soqlRel{{"Assignee", "User"}, {"PermissionSet", "PermissionSet"}, {"PermissionSetGroup", "PermissionSetGroup"}}}
	permissionSetGroupSchema = &soqlObject{name: "PermissionSetGroup", fields: []soqlField{
		{name: "Id", typ: ftID}, {name: "DeveloperName", typ: ftString}, {name: "MasterLabel", typ: ftString},
		{name: "Status", typ: ftPicklist},
	}}
)

// validatePermissions checks permission sets, groups and assignments and
// fills omitted ids.
func (s *Seed) validatePermissions() []error {
	var errs []error
	var err error
	checkNames := func(what string, perms []string) {
		for _, p := range perms {
			if !permissionNameRe.MatchString(p) {
				errs = append(errs, fmt.Errorf("%s: invalid permission name %q", what, p))
			}
		}
	}
	sets := map[string]bool{}
	for i := range s.Org.PermissionSets {
		ps := &s.Org.PermissionSets[i]
		key := strings.ToLower(ps.Name)
		if ps.Name == "" || sets[key] {
			errs = append(errs, fmt.Errorf("permission set %d: empty or duplicate name %q", i, ps.Name))
		}
		sets[key] = true
		if ps.ID == "" {
			ps.ID = derivedID("0PS", "set:"+ps.Name)
		}
		if ps.ID, err = normalizeID(ps.ID, "0PS", "permission set"); err != nil {
			errs = append(errs, err)
		}
		checkNames("permission set "+ps.Name, ps.Permissions)
	}
	groups := map[string]bool{}
	for i := range s.Org.PermissionSetGroups {
		g := &s.Org.PermissionSetGroups[i]
		key := strings.ToLower(g.Name)
		if g.Name == "" || groups[key] || sets[key] {
			errs = append(errs, fmt.Errorf("permission set group %d: empty or duplicate name %q", i, g.Name))
		}
		groups[key] = true
		if g.ID == "" {
			g.ID = derivedID("0PG", "group:"+g.Name)
		}
		if g.ID, err = normalizeID(g.ID, "0PG", "permission set group"); err != nil {
			errs = append(errs, err)
		}
		for _, m := range g.PermissionSets {
			if !sets[strings.ToLower(m)] {
				errs = append(errs, fmt.Errorf("permission set group %q: unknown permission set %q", g.Name, m))
			}
		}
	}
	for i := range s.Org.Profiles {
		checkNames("profile "+s.Org.Profiles[i].Name, s.Org.Profiles[i].Permissions)
	}
	for _, u := range s.Users {
		for _, n := range u.PermissionSets {
			if !sets[strings.ToLower(n)] {
				errs = append(errs, fmt.Errorf("user %q: unknown permission set %q", u.Username, n))
			}
		}
		for _, n := range u.PermissionSetGroups {
			if !groups[strings.ToLower(n)] {
				errs = append(errs, fmt.Errorf("user %q: unknown permission set group %q", u.Username, n))
			}
		}
	}
	return errs
}
