package tests

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// TestReadmeRepositoryLayout keeps the README's repository layout equal to
// the code: every path the table names exists, and every package of the
// module is under a path the table names (the module root's own files
// aside).
func TestReadmeRepositoryLayout(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join(moduleRoot, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	_, section, ok := strings.Cut(string(raw), "## Repository layout\n")
	if !ok {
		t.Fatal("README.md has no '## Repository layout' section")
	}
	section, _, _ = strings.Cut(section, "\n## ")
	var listed []string
	cell := regexp.MustCompile("`([^`]+)`")
	for _, line := range strings.Split(section, "\n") {
		first, _, found := strings.Cut(strings.TrimPrefix(line, "| "), " |")
		if !found || !strings.HasPrefix(line, "| `") {
			continue
		}
		for _, m := range cell.FindAllStringSubmatch(first, -1) {
			p := strings.TrimSuffix(m[1], "/")
			listed = append(listed, p)
			if _, err := os.Stat(filepath.Join(moduleRoot, p)); err != nil {
				t.Errorf("the README's layout names %s, which does not exist", m[1])
			}
		}
	}
	if len(listed) == 0 {
		t.Fatal("no path found in the README's repository layout table")
	}
	cmd := exec.Command("go", "list", "-f", "{{.Dir}}", "./...")
	cmd.Dir = moduleRoot
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	for _, dir := range strings.Fields(string(out)) {
		rel, err := filepath.Rel(moduleRoot, dir)
		if err != nil || rel == "." {
			continue
		}
		covered := false
		for _, p := range listed {
			if rel == p || strings.HasPrefix(rel, p+"/") {
				covered = true
			}
		}
		if !covered {
			t.Errorf("package %s is not in the README's repository layout", rel)
		}
	}
}
