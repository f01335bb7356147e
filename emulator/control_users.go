package emulator

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
)

// controlUserInfo is a user as the control API shows it: what an admin
// sees on the user's Setup page (no password, no token).
type controlUserInfo struct {
	ID                  string   `json:"id"`
	Username            string   `json:"username"`
	Profile             string   `json:"profile"`
	IsActive            bool     `json:"isActive"`
	IsPasswordLocked    bool     `json:"isPasswordLocked"`
	PermissionSets      []string `json:"permissionSets"`
	PermissionSetGroups []string `json:"permissionSetGroups"`
}

// userInfo describes u. Caller holds s.mu.
func (s *Server) userInfo(u *User) controlUserInfo {
	return controlUserInfo{ID: u.ID, Username: u.Username, Profile: u.Profile, IsActive: u.IsActive,
		IsPasswordLocked: s.locked(u),
		PermissionSets:   append([]string{}, u.PermissionSets...), PermissionSetGroups: append([]string{}, u.PermissionSetGroups...)}
}

var (
	errNoSuchUser          = errors.New("no such user")
	errNoSuchPermissionSet = errors.New("no such permission set or permission set group")
	errNotAssigned         = errors.New("the permission set is not assigned to this user")
)

// AssignPermissionSet assigns a permission set or a permission set group
// (looked up by name, sets first) to the user; assigning twice is a no-op.
func (s *Server) AssignPermissionSet(username, name string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.assign(username, name, true)
}

// UnassignPermissionSet removes a permission set or group assignment.
func (s *Server) UnassignPermissionSet(username, name string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.assign(username, name, false)
}

// assign adds or removes an assignment. Caller holds s.mu.
func (s *Server) assign(username, name string, add bool) error {
	u := s.users[strings.ToLower(username)]
	if u == nil {
		return errNoSuchUser
	}
	list := &u.PermissionSets
	canonical := ""
	if ps := s.org.permissionSet(name); ps != nil {
		canonical = ps.Name
	} else if g := s.org.permissionSetGroup(name); g != nil {
		list, canonical = &u.PermissionSetGroups, g.Name
	} else {
		return errNoSuchPermissionSet
	}
	for i, n := range *list {
		if strings.EqualFold(n, canonical) {
			if !add {
				*list = append((*list)[:i:i], (*list)[i+1:]...)
			}
			return nil
		}
	}
	if !add {
		return errNotAssigned
	}
	*list = append(*list, canonical)
	return nil
}

func (s *Server) handleGetUser(username string) handlerFunc {
	return func(w *recorder, _ *http.Request, _ []byte) {
		s.mu.Lock()
		u := s.users[strings.ToLower(username)]
		var info controlUserInfo
		if u != nil {
			info = s.userInfo(u)
		}
		s.mu.Unlock()
		if u == nil {
			writeControlError(w, http.StatusNotFound, errNoSuchUser.Error())
			return
		}
		w.username = info.Username
		writeJSON(w, http.StatusOK, info)
	}
}

// decodeControlJSON reads a JSON object body, refusing unknown fields.
func decodeControlJSON(w http.ResponseWriter, r *http.Request, v any) error {
	data, err := io.ReadAll(http.MaxBytesReader(w, r.Body, controlBodyLimit))
	if err != nil {
		return errors.New("body too large")
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("expected a JSON object: %v", err)
	}
	return nil
}

// handlePatchUser is an admin editing the user in Setup: {"profile": …}
// and/or {"isActive": …}.
func (s *Server) handlePatchUser(username string) handlerFunc {
	return func(w *recorder, r *http.Request, _ []byte) {
		var body struct {
			Profile  *string `json:"profile"`
			IsActive *bool   `json:"isActive"`
		}
		if err := decodeControlJSON(w, r, &body); err != nil {
			writeControlError(w, http.StatusBadRequest, err.Error()+` (fields: "profile", "isActive")`)
			return
		}
		s.mu.Lock()
		defer s.mu.Unlock()
		u := s.users[strings.ToLower(username)]
		if u == nil {
			writeControlError(w, http.StatusNotFound, errNoSuchUser.Error())
			return
		}
		w.username = u.Username
		if body.Profile != nil {
			p := s.org.profile(*body.Profile)
			if p == nil {
				writeControlError(w, http.StatusBadRequest, "no such profile")
				return
			}
			u.Profile = p.Name
		}
		if body.IsActive != nil {
			u.IsActive = *body.IsActive
		}
		writeJSON(w, http.StatusOK, s.userInfo(u))
	}
}

// handleAssignPermissionSet: PUT assigns, DELETE removes.
func (s *Server) handleAssignPermissionSet(username, name string, add bool) handlerFunc {
	return func(w *recorder, _ *http.Request, _ []byte) {
		s.mu.Lock()
		defer s.mu.Unlock()
		if err := s.assign(username, name, add); err != nil {
			writeControlError(w, http.StatusNotFound, err.Error())
			return
		}
		u := s.users[strings.ToLower(username)]
		w.username = u.Username
		writeJSON(w, http.StatusOK, s.userInfo(u))
	}
}
