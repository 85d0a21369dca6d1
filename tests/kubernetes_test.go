package tests

// Checks of deploy/kubernetes against the code and the blueprint. No cluster
// runs here, so the tests read the manifests: every document is a well-formed
// object, kustomization.yaml lists exactly the directory's manifests, the
// API's replicas, port and domain are the blueprint's, the probes hit routes
// the processes serve, the worker's autoscaling bounds are the blueprint's,
// and every environment variable is a row of internal/config's Settings,
// with the ones each process needs (config.CommandNeeds) provided and valid
// (checked by internal/config itself). The provisioning Job runs `pipeline
// provision` on the file its ConfigMap (kustomize's configMapGenerator)
// mounts, and that blueprint is a byte-identical copy of deploy/blueprint.json.
// That the containers' args are real subcommands with real flags is checked
// by cmd/pipeline's TestDeployArgs, which parses them with the flag sets.
// This file holds the helpers and the documents' check; the others are in
// kubernetes_{kustomize,workloads,api,env}_test.go.
//
//	go test -count=1 -run TestKubernetes ./tests/ ./cmd/pipeline/

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/acme/pipeline/blueprint"
	"github.com/acme/pipeline/internal/config"
)

// k8sDirRel is the manifests' directory, relative to the module root.
const k8sDirRel = "deploy/kubernetes"

// k8sDoc is one YAML document of a manifest file.
type k8sDoc struct {
	file string
	obj  map[string]any
}

func (d k8sDoc) kind() string { return k8sStr(d.obj, "kind") }

func (d k8sDoc) name() string { return k8sStr(d.obj, "metadata", "name") }

func (d k8sDoc) String() string {
	return fmt.Sprintf("%s: %s/%s", d.file, d.kind(), d.name())
}

// k8sGet walks maps by key; nil when a step is missing.
func k8sGet(v any, path ...string) any {
	for _, p := range path {
		m, ok := v.(map[string]any)
		if !ok {
			return nil
		}
		v = m[p]
	}
	return v
}

func k8sStr(v any, path ...string) string {
	s, _ := k8sGet(v, path...).(string)
	return s
}

func k8sMap(v any, path ...string) map[string]any {
	m, _ := k8sGet(v, path...).(map[string]any)
	return m
}

func k8sList(v any, path ...string) []any {
	l, _ := k8sGet(v, path...).([]any)
	return l
}

// k8sInt returns an integer field; ok is false when it is absent or not an
// integer.
func k8sInt(v any, path ...string) (int, bool) {
	i, ok := k8sGet(v, path...).(int)
	return i, ok
}

// k8sStrings returns a list of scalars as strings.
func k8sStrings(v any, path ...string) []string {
	var out []string
	for _, e := range k8sList(v, path...) {
		out = append(out, fmt.Sprint(e))
	}
	return out
}

// k8sManifestFiles are the YAML files of the directory but kustomization.yaml.
func k8sManifestFiles(t *testing.T) []string {
	t.Helper()
	entries, err := os.ReadDir(filepath.Join(moduleRoot, k8sDirRel))
	if err != nil {
		t.Fatal(err)
	}
	var files []string
	for _, e := range entries {
		n := e.Name()
		if e.IsDir() || n == "kustomization.yaml" {
			continue
		}
		if strings.HasSuffix(n, ".yaml") || strings.HasSuffix(n, ".yml") {
			files = append(files, n)
		}
	}
	return files
}

// k8sReadFile decodes every document of one file.
func k8sReadFile(t *testing.T, name string) []k8sDoc {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(moduleRoot, k8sDirRel, name))
	if err != nil {
		t.Fatal(err)
	}
	var docs []k8sDoc
	dec := yaml.NewDecoder(bytes.NewReader(b))
	for {
		var obj map[string]any
		err := dec.Decode(&obj)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if obj == nil { // an empty document between two ---
			continue
		}
		docs = append(docs, k8sDoc{file: name, obj: obj})
	}
	return docs
}

// k8sDocs are the documents of every manifest file.
func k8sDocs(t *testing.T) []k8sDoc {
	t.Helper()
	var docs []k8sDoc
	for _, f := range k8sManifestFiles(t) {
		docs = append(docs, k8sReadFile(t, f)...)
	}
	if len(docs) == 0 {
		t.Fatalf("%s: no manifests", k8sDirRel)
	}
	return docs
}

// k8sFind returns the only document of a kind (and name, if not empty).
func k8sFind(t *testing.T, docs []k8sDoc, kind, name string) k8sDoc {
	t.Helper()
	var found []k8sDoc
	for _, d := range docs {
		if d.kind() == kind && (name == "" || d.name() == name) {
			found = append(found, d)
		}
	}
	if len(found) != 1 {
		t.Fatalf("want exactly one %s %q in %s, found %d: %v", kind, name, k8sDirRel, len(found), found)
	}
	return found[0]
}

func k8sAll(docs []k8sDoc, kind string) []k8sDoc {
	var out []k8sDoc
	for _, d := range docs {
		if d.kind() == kind {
			out = append(out, d)
		}
	}
	return out
}

// k8sDeployment returns the Deployment whose (first) container runs the
// subcommand.
func k8sDeployment(t *testing.T, docs []k8sDoc, subcommand string) k8sDoc {
	t.Helper()
	return k8sWorkload(t, docs, "Deployment", subcommand)
}

// k8sWorkload returns the only object of a kind with a pod template
// (Deployment, Job) whose first container runs the subcommand.
func k8sWorkload(t *testing.T, docs []k8sDoc, kind, subcommand string) k8sDoc {
	t.Helper()
	var found []k8sDoc
	for _, d := range k8sAll(docs, kind) {
		if c := k8sContainers(d); len(c) > 0 {
			if args := k8sStrings(c[0], "args"); len(args) > 0 && args[0] == subcommand {
				found = append(found, d)
			}
		}
	}
	if len(found) != 1 {
		t.Fatalf("%s: want one %s running `pipeline %s`, found %d: %v", k8sDirRel, kind, subcommand, len(found), found)
	}
	return found[0]
}

// k8sWorkloads maps the subcommands checked for their environment to the
// kind of object running them.
var k8sWorkloads = []struct{ kind, subcommand string }{
	{"Deployment", "api"},
	{"Deployment", "worker"},
	{"Job", "provision"},
}

func k8sContainers(d k8sDoc) []map[string]any {
	var out []map[string]any
	for _, c := range k8sList(d.obj, "spec", "template", "spec", "containers") {
		if m, ok := c.(map[string]any); ok {
			out = append(out, m)
		}
	}
	return out
}

func k8sSeedBlueprint(t *testing.T) *blueprint.Blueprint {
	t.Helper()
	bp, err := blueprint.Load(filepath.Join(moduleRoot, "deploy", "blueprint.json"))
	if err != nil {
		t.Fatal(err)
	}
	return bp
}

// ---------------------------------------------------------------- settings

// k8sKnown reports whether a variable is a row of config.Settings: one the
// pipeline or the OpenTelemetry SDK reads.
func k8sKnown(name string) bool {
	_, ok := config.Lookup(name)
	return ok
}

// k8sSecret reports whether a variable carries a credential, which must
// come from a Secret, never the ConfigMap or a literal.
func k8sSecret(name string) bool {
	s, ok := config.Lookup(name)
	return ok && s.Secret
}

// k8sDeployVars are the variables a deployment must provide for the parts
// in need: their defaults are loopback addresses and the like.
func k8sDeployVars(need config.Need) []string {
	var out []string
	for _, s := range config.Settings {
		if s.Deploy && s.Need&need != 0 {
			out = append(out, s.Env)
		}
	}
	return out
}

// k8sServes reports whether a package registers the route `GET path` on
// its mux, in one of its non-test files.
func k8sServes(t *testing.T, pkg, path string) bool {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(moduleRoot, pkg, "*.go"))
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		src, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if bytes.Contains(src, []byte(`Handle("GET `+path+`"`)) {
			return true
		}
	}
	return false
}

// ------------------------------------------------------------------- tests

func TestKubernetesDocuments(t *testing.T) {
	docs := k8sDocs(t)
	seen := map[string]string{}
	for _, d := range docs {
		t.Run(d.file+"/"+d.kind()+"/"+d.name(), func(t *testing.T) {
			for _, f := range []struct{ field, val string }{
				{"apiVersion", k8sStr(d.obj, "apiVersion")},
				{"kind", d.kind()},
				{"metadata.name", d.name()},
			} {
				if f.val == "" {
					t.Errorf("%s: no %s", d.file, f.field)
				}
			}
			if ns := k8sStr(d.obj, "metadata", "namespace"); ns != "" && ns != "pipeline" {
				t.Errorf("%s: metadata.namespace %q, want none (kustomization.yaml sets pipeline)", d, ns)
			}
			key := d.kind() + "/" + d.name()
			if prev, dup := seen[key]; dup {
				t.Errorf("%s is defined in %s and %s", key, prev, d.file)
			}
			seen[key] = d.file
		})
	}
	for _, want := range []string{"Namespace", "ConfigMap", "Secret", "Deployment", "Service", "Ingress", "PodDisruptionBudget", "HorizontalPodAutoscaler", "Job"} {
		if len(k8sAll(docs, want)) == 0 {
			t.Errorf("%s: no %s", k8sDirRel, want)
		}
	}
}

// Container and pod spec keys Kubernetes knows (the ones a manifest here may
// plausibly use): a misspelt key such as `readinesProbe` is otherwise
// silently dropped by a client-side apply.
var (
	k8sContainerKeys = []string{"name", "image", "imagePullPolicy", "command", "args", "workingDir", "ports",
		"env", "envFrom", "resources", "volumeMounts", "livenessProbe", "readinessProbe", "startupProbe",
		"lifecycle", "securityContext", "terminationMessagePolicy", "terminationMessagePath"}
	k8sPodKeys = []string{"containers", "initContainers", "volumes", "securityContext", "serviceAccountName",
		"automountServiceAccountToken", "terminationGracePeriodSeconds", "topologySpreadConstraints",
		"affinity", "nodeSelector", "tolerations", "priorityClassName", "imagePullSecrets"}
	k8sProbeKeys = []string{"httpGet", "tcpSocket", "grpc", "exec", "initialDelaySeconds", "periodSeconds",
		"timeoutSeconds", "successThreshold", "failureThreshold", "terminationGracePeriodSeconds"}
)

// k8sUnique returns the distinct values of l, sorted.
func k8sUnique(l []string) []string {
	return slices.Compact(slices.Sorted(slices.Values(l)))
}

func k8sUnknownKeys(m map[string]any, known []string) []string {
	var bad []string
	for k := range m {
		if !slices.Contains(known, k) {
			bad = append(bad, k)
		}
	}
	slices.Sort(bad)
	return bad
}

// TestKubernetesZones: the plan is "Business+Resilience: multi-zona". The
// API's and the worker's pods spread over zones (then nodes), and a
// PodDisruptionBudget covers each.
func TestKubernetesZones(t *testing.T) {
	docs := k8sDocs(t)
	for _, sub := range []string{"api", "worker"} {
		d := k8sDeployment(t, docs, sub)
		name := k8sStr(d.obj, "metadata", "name")
		var keys []string
		for _, c := range k8sList(d.obj, "spec", "template", "spec", "topologySpreadConstraints") {
			if k8sStr(c, "labelSelector", "matchLabels", "app.kubernetes.io/name") == name {
				keys = append(keys, k8sStr(c, "topologyKey"))
			}
		}
		if !slices.Contains(keys, "topology.kubernetes.io/zone") || !slices.Contains(keys, "kubernetes.io/hostname") {
			t.Errorf("%s: spread over %v, want zones and nodes", d, keys)
		}
		found := false
		for _, p := range k8sAll(docs, "PodDisruptionBudget") {
			found = found || k8sStr(p.obj, "spec", "selector", "matchLabels", "app.kubernetes.io/name") == name
		}
		if !found {
			t.Errorf("%s: no PodDisruptionBudget selects %s", d, name)
		}
	}
}

// TestKubernetesIngressPaths: the Ingress routes the events and the probes,
// nothing else; the operators' pages are not on the API's public port
// either (ingest.Config.AdminAddr).
func TestKubernetesIngressPaths(t *testing.T) {
	var paths []string
	for _, ing := range k8sAll(k8sDocs(t), "Ingress") {
		for _, r := range k8sList(ing.obj, "spec", "rules") {
			for _, p := range k8sList(r, "http", "paths") {
				paths = append(paths, k8sStr(p, "pathType")+" "+k8sStr(p, "path"))
			}
		}
	}
	if want := []string{"Exact /healthz", "Exact /readyz", "Exact /v1/events"}; !slices.Equal(k8sUnique(paths), want) {
		t.Errorf("Ingress paths %v, want %v", k8sUnique(paths), want)
	}
}
