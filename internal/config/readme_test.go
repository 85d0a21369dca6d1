package config

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite README.md's configuration table from Settings")

// readmePath is README.md, from this package's directory.
var readmePath = filepath.Join("..", "..", "README.md")

// readmeHeader opens the configuration table, under "## Configuration".
const readmeHeader = "| variable | flag | default | meaning |\n|---|---|---|---|\n"

// markdownTable renders Settings as README.md shows them: one row each, in
// the table's order.
func markdownTable() string {
	var b strings.Builder
	b.WriteString(readmeHeader)
	code := func(s string) string { return "`" + s + "`" }
	for _, s := range Settings {
		env, fl, def := "–", "–", "unset"
		if s.Env != "" {
			env = code(s.Env)
		}
		if s.Flag != "" {
			fl = code("--" + s.Flag)
		}
		switch {
		case s.Default != "" && s.DefaultNote != "":
			def = code(s.Default) + "; " + s.DefaultNote
		case s.Default != "":
			def = code(s.Default)
		case s.DefaultNote != "":
			def = s.DefaultNote
		}
		b.WriteString("| " + env + " | " + fl + " | " + def + " | " + s.Doc + " |\n")
	}
	return b.String()
}

// readmeTable returns where the configuration table is in README.md: from
// its header to the line after its last row.
func readmeTable(t *testing.T, readme []byte) (start, end int) {
	t.Helper()
	section := bytes.Index(readme, []byte("\n## Configuration\n"))
	if section < 0 {
		t.Fatal("README.md: no section ## Configuration")
	}
	start = bytes.Index(readme[section:], []byte(readmeHeader))
	if start < 0 {
		t.Fatalf("README.md: no table %q under ## Configuration", readmeHeader)
	}
	start += section
	end = start
	for end < len(readme) && readme[end] == '|' {
		n := bytes.IndexByte(readme[end:], '\n')
		if n < 0 {
			return start, len(readme)
		}
		end += n + 1
	}
	return start, end
}

// TestReadmeTable keeps README.md's configuration table equal to Settings.
// With -update it rewrites the table instead:
//
//	go test ./internal/config -run TestReadmeTable -update
func TestReadmeTable(t *testing.T) {
	readme, err := os.ReadFile(readmePath)
	if err != nil {
		t.Fatal(err)
	}
	start, end := readmeTable(t, readme)
	want := markdownTable()
	got := string(readme[start:end])
	if got == want {
		return
	}
	if *update {
		out := append(append(append([]byte{}, readme[:start]...), want...), readme[end:]...)
		if err := os.WriteFile(readmePath, out, 0o644); err != nil {
			t.Fatal(err)
		}
		t.Logf("README.md: configuration table rewritten from Settings")
		return
	}
	gotRows, wantRows := strings.Split(got, "\n"), strings.Split(want, "\n")
	for i := 0; i < max(len(gotRows), len(wantRows)); i++ {
		var g, w string
		if i < len(gotRows) {
			g = gotRows[i]
		}
		if i < len(wantRows) {
			w = wantRows[i]
		}
		if g != w {
			t.Errorf("README.md configuration table, line %d:\n got: %s\nwant: %s", i+1, g, w)
		}
	}
	t.Errorf("README.md's configuration table differs from config.Settings: go test ./internal/config -run TestReadmeTable -update")
}
