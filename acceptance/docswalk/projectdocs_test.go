package docswalk

import (
	"os"
	"path/filepath"
	"testing"
)

// TestProjectDocsFollowTheConvention parses the documents the docs walk runs,
// without a Vault server, so a markup mistake (a shell block without "$ "
// prompts, a skip without a reason, a misplaced marker) shows up in a quick
// `go test ./acceptance/docswalk/` too.
func TestProjectDocsFollowTheConvention(t *testing.T) {
	root := filepath.Join("..", "..")
	docs, err := filepath.Glob(filepath.Join(root, "docs", "*.md"))
	if err != nil {
		t.Fatal(err)
	}
	docs = append([]string{filepath.Join(root, "README.md"), filepath.Join(root, "emulator", "README.md")}, docs...)
	for _, p := range docs {
		src, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		rel, _ := filepath.Rel(root, p)
		if _, err := Parse(rel, src); err != nil {
			t.Errorf("%v", err)
		}
	}
}
