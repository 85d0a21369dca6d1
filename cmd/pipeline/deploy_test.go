package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/acme/pipeline/internal/config"
)

// errParsed ends a subcommand right after its flags are parsed.
var errParsed = errors.New("parsed")

// parsedFlags runs a subcommand with args up to its flag parsing (see
// afterParse) and returns its flag set, or the error parsing gave.
func parsedFlags(t *testing.T, name string, args []string) (*flag.FlagSet, error) {
	t.Helper()
	var fs *flag.FlagSet
	afterParse = func(f *flag.FlagSet) error { fs = f; return errParsed }
	defer func() { afterParse = nil }()
	for _, c := range commands {
		if c.name != name {
			continue
		}
		err := c.run(context.Background(), args)
		if !errors.Is(err, errParsed) {
			return nil, err
		}
		return fs, nil
	}
	return nil, fmt.Errorf("no subcommand %q", name)
}

// TestCommandNeeds checks that every subcommand config.CommandNeeds lists
// (ValidateFor and the manifests' tests read it) is one that takes the
// shared settings.
func TestCommandNeeds(t *testing.T) {
	for name := range config.CommandNeeds {
		fs, err := parsedFlags(t, name, nil)
		if err != nil {
			t.Errorf("config.CommandNeeds lists %q: %v", name, err)
			continue
		}
		if fs.Lookup("temporal-address") == nil {
			t.Errorf("config.CommandNeeds lists %q, which does not take the shared settings", name)
		}
	}
}

// deployed is one process the deployment files start: where, and its
// arguments (the subcommand first).
type deployed struct {
	where string
	args  []string
}

// kubernetesArgs are the containers' arguments in deploy/kubernetes: the
// first container of every Deployment and Job.
func kubernetesArgs(t *testing.T) []deployed {
	t.Helper()
	files, err := filepath.Glob(filepath.Join("..", "..", "deploy", "kubernetes", "*.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var out []deployed
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		dec := yaml.NewDecoder(bytes.NewReader(b))
		for {
			var doc struct {
				Kind     string
				Metadata struct{ Name string }
				Spec     struct {
					Template struct {
						Spec struct {
							Containers []struct{ Args []string }
						}
					}
				}
			}
			if err := dec.Decode(&doc); errors.Is(err, io.EOF) {
				break
			} else if err != nil {
				t.Fatalf("%s: %v", f, err)
			}
			if cs := doc.Spec.Template.Spec.Containers; (doc.Kind == "Deployment" || doc.Kind == "Job") && len(cs) > 0 {
				out = append(out, deployed{fmt.Sprintf("%s: %s %s", filepath.Base(f), doc.Kind, doc.Metadata.Name), cs[0].Args})
			}
		}
	}
	if len(out) == 0 {
		t.Fatal("deploy/kubernetes: no Deployment or Job")
	}
	return out
}

// composeArgs are the commands of docker-compose.yml's services that run the
// pipeline's image.
func composeArgs(t *testing.T) []deployed {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", "docker-compose.yml"))
	if err != nil {
		t.Fatal(err)
	}
	var c struct {
		Services map[string]struct {
			Image   string
			Build   any
			Command []string
		}
	}
	if err := yaml.Unmarshal(b, &c); err != nil {
		t.Fatalf("docker-compose.yml: %v", err)
	}
	images := map[string]bool{}
	for _, s := range c.Services {
		if s.Build != nil {
			images[s.Image] = true
		}
	}
	var out []deployed
	for name, s := range c.Services {
		if images[s.Image] {
			out = append(out, deployed{"docker-compose.yml: service " + name, s.Command})
		}
	}
	if len(out) == 0 {
		t.Fatal("docker-compose.yml: no service runs the pipeline's image")
	}
	return out
}

// TestDeployArgs parses the arguments every deployment file gives the
// binary with the subcommand's own flag set: a renamed or misspelt flag, a
// bad value or a stray argument fails here rather than in a crash-looping
// pod. provision takes exactly one blueprint file, the others none.
func TestDeployArgs(t *testing.T) {
	for _, d := range append(kubernetesArgs(t), composeArgs(t)...) {
		t.Run(d.where, func(t *testing.T) {
			if len(d.args) == 0 {
				t.Fatal("no arguments: the image's default command would run")
			}
			fs, err := parsedFlags(t, d.args[0], d.args[1:])
			if err != nil {
				t.Fatalf("args %q: %v", d.args, err)
			}
			want := 0
			if d.args[0] == "provision" {
				want = 1
			}
			// Parsing stops at the first argument that is no flag: a flag
			// after the file would count as a second file.
			if fs.NArg() != want {
				t.Errorf("args %q: %d arguments after the flags (%q), want %d", d.args, fs.NArg(), fs.Args(), want)
			}
		})
	}
}
