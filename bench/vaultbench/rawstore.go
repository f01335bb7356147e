package main

import (
	"context"
	"fmt"
	"regexp"
	"slices"
	"strings"
)

// Filling a mount with N accounts through Vault's raw storage endpoint
// (-fill raw): what the engine stored for one account written through the
// API, cloned and renamed, so the bench reaches 100,000 accounts in
// minutes.

// rawStore is a mount's storage seen through sys/raw (the dev server is
// started with raw_storage_endpoint = true).
type rawStore struct {
	e      *env
	prefix string // logical/<mount uuid>/
}

func (e *env) rawStoreOf(mount string) (*rawStore, error) {
	mounts, err := e.client.Sys().ListMounts()
	if err != nil {
		return nil, err
	}
	m, ok := mounts[mount+"/"]
	if !ok || m.UUID == "" {
		return nil, fmt.Errorf("no uuid for mount %s/", mount)
	}
	return &rawStore{e: e, prefix: "logical/" + m.UUID + "/"}, nil
}

// walk lists every key below the mount's storage.
func (r *rawStore) walk(ctx context.Context) (map[string]bool, error) {
	keys := map[string]bool{}
	var visit func(dir string) error
	visit = func(dir string) error {
		sec, err := r.e.client.Logical().ListWithContext(ctx, "sys/raw/"+r.prefix+dir)
		if err != nil {
			return fmt.Errorf("listing sys/raw/%s%s: %w", r.prefix, dir, err)
		}
		if sec == nil {
			return nil
		}
		list, _ := sec.Data["keys"].([]any)
		for _, k := range list {
			s, _ := k.(string)
			if strings.HasSuffix(s, "/") {
				if err := visit(dir + s); err != nil {
					return err
				}
				continue
			}
			keys[dir+s] = true
		}
		return nil
	}
	return keys, visit("")
}

func (r *rawStore) get(ctx context.Context, key string) (string, error) {
	sec, err := r.e.client.Logical().ReadWithContext(ctx, "sys/raw/"+r.prefix+key)
	if err != nil {
		return "", err
	}
	if sec == nil {
		return "", fmt.Errorf("sys/raw/%s%s: not found", r.prefix, key)
	}
	v, ok := sec.Data["value"].(string)
	if !ok {
		return "", fmt.Errorf("sys/raw/%s%s: no string value", r.prefix, key)
	}
	return v, nil
}

// fill clones what the engine stored for account 1 (every new key since
// before whose key or value names it) into accounts from..to, renaming it
// in keys and values. Keys the first batch created that name no account
// of the batch (for example an index keyed by a hash) cannot be cloned:
// they are reported, and -fill=api is then the honest choice.
func (r *rawStore) fill(ctx context.Context, before map[string]bool, batch, from, to, writers int) ([]string, error) {
	if from > to {
		return nil, nil
	}
	after, err := r.walk(ctx)
	if err != nil {
		return nil, err
	}
	tmplName := scaleName(1)
	type entry struct{ key, value string }
	var tmpl []entry
	var stray []string
	nameRe := regexp.MustCompile(`scale-\d{6}`)
	for k := range after {
		if before[k] {
			continue
		}
		switch {
		case strings.Contains(k, tmplName):
			v, err := r.get(ctx, k)
			if err != nil {
				return nil, err
			}
			tmpl = append(tmpl, entry{k, v})
		case nameRe.MatchString(k):
			// Another account of the first batch.
		default:
			stray = append(stray, k)
		}
	}
	if len(tmpl) == 0 {
		return nil, fmt.Errorf("raw fill: no storage key names %s; use -fill=api", tmplName)
	}
	var warnings []string
	if len(stray) > 0 {
		slices.Sort(stray)
		shown := stray[:min(len(stray), 3)]
		warnings = append(warnings, fmt.Sprintf("raw fill cloned %d key(s) per account but cannot clone %d other key(s) the first %d writes created (e.g. %s); if they are per-account, rerun with -fill=api",
			len(tmpl), len(stray), batch, strings.Join(shown, ", ")))
	}
	return warnings, r.e.eachIndex(ctx, from, to, writers, func(i int) error {
		name := scaleName(i)
		for _, t := range tmpl {
			key := strings.ReplaceAll(t.key, tmplName, name)
			value := strings.ReplaceAll(t.value, tmplName, name)
			if _, err := r.e.client.Logical().WriteWithContext(ctx, "sys/raw/"+r.prefix+key, map[string]any{"value": value}); err != nil {
				return fmt.Errorf("writing sys/raw/%s%s: %w", r.prefix, key, err)
			}
		}
		return nil
	})
}
