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
//
//	go test -count=1 -run TestKubernetes ./tests/ ./cmd/pipeline/

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"maps"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

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

func TestKubernetesKustomization(t *testing.T) {
	docs := k8sReadFile(t, "kustomization.yaml")
	if len(docs) != 1 {
		t.Fatalf("kustomization.yaml: want one document, got %d", len(docs))
	}
	k := docs[0].obj
	if got := k8sStr(k, "kind"); got != "Kustomization" {
		t.Errorf("kustomization.yaml: kind %q, want Kustomization", got)
	}
	if got := k8sStr(k, "namespace"); got != "pipeline" {
		t.Errorf("kustomization.yaml: namespace %q, want pipeline", got)
	}
	listed := k8sStrings(k, "resources")
	files := k8sManifestFiles(t)
	for _, r := range listed {
		if !slices.Contains(files, r) {
			t.Errorf("kustomization.yaml lists %q, which is not a manifest in %s", r, k8sDirRel)
		}
	}
	for _, f := range files {
		if !slices.Contains(listed, f) {
			t.Errorf("%s/%s is not listed in kustomization.yaml resources", k8sDirRel, f)
		}
	}
	if len(k8sUnique(listed)) != len(listed) {
		t.Errorf("kustomization.yaml lists a file twice: %v", listed)
	}
	// configMapGenerator: every file it reads is in the directory (kustomize
	// refuses paths outside it), and the blueprint's ConfigMap is there.
	gens := k8sConfigMapGenerators(t)
	for name, keys := range gens {
		for key, file := range keys {
			if strings.Contains(file, "..") || filepath.IsAbs(file) {
				t.Errorf("kustomization.yaml configMapGenerator %s: file %q is outside %s (kustomize's load restrictor refuses it)", name, file, k8sDirRel)
				continue
			}
			if _, err := os.Stat(filepath.Join(moduleRoot, k8sDirRel, file)); err != nil {
				t.Errorf("kustomization.yaml configMapGenerator %s: key %s: %v", name, key, err)
			}
		}
	}
	if gens[k8sBlueprintConfigMap][k8sBlueprintKey] != k8sBlueprintKey {
		t.Errorf("kustomization.yaml: no configMapGenerator %s with file %s (got %v)", k8sBlueprintConfigMap, k8sBlueprintKey, gens[k8sBlueprintConfigMap])
	}
	// With or without generatorOptions.disableNameSuffixHash, the Job names
	// the generator's name: kustomize rewrites a configMap volume's reference
	// to the hashed name (TestKubernetesProvisionJob).
	// The Namespace it sets is one of its own resources.
	ns := k8sFind(t, k8sDocs(t), "Namespace", "")
	if ns.name() != k8sStr(k, "namespace") {
		t.Errorf("Namespace %q in %s, kustomization.yaml namespace %q", ns.name(), ns.file, k8sStr(k, "namespace"))
	}

	// The image name the manifests use is rewritten by `images:`, and it is
	// the repository docker-compose.yml builds.
	dep := k8sAll(k8sDocs(t), "Deployment")
	if len(dep) == 0 {
		t.Fatal("no Deployment")
	}
	image := k8sStr(k8sContainers(dep[0])[0], "image")
	repo, _, _ := strings.Cut(image, ":")
	var rewritten bool
	for _, im := range k8sList(k, "images") {
		if k8sStr(im, "name") == repo {
			rewritten = true
			if k8sStr(im, "newName") == "" && k8sStr(im, "newTag") == "" && k8sStr(im, "digest") == "" {
				t.Errorf("kustomization.yaml images: %s has no newName, newTag or digest", repo)
			}
		}
	}
	if !rewritten {
		t.Errorf("kustomization.yaml images: no entry for %q, the manifests' image", repo)
	}
	if composeImage := k8sComposeImage(t); composeImage != "" {
		crepo, _, _ := strings.Cut(composeImage, ":")
		if crepo != repo {
			t.Errorf("manifests use image %q, docker-compose.yml builds %q", image, composeImage)
		}
	}
}

// k8sComposeImage is the image docker-compose.yml's api service builds.
func k8sComposeImage(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(moduleRoot, "docker-compose.yml"))
	if err != nil {
		t.Fatal(err)
	}
	var c map[string]any
	if err := yaml.Unmarshal(b, &c); err != nil {
		t.Fatalf("docker-compose.yml: %v", err)
	}
	return k8sStr(c, "services", "api", "image")
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

func TestKubernetesDeployments(t *testing.T) {
	docs := k8sDocs(t)
	configMaps := map[string]bool{}
	for _, d := range k8sAll(docs, "ConfigMap") {
		configMaps[d.name()] = true
	}
	secrets := map[string]bool{}
	for _, d := range k8sAll(docs, "Secret") {
		secrets[d.name()] = true
	}
	deployments := k8sAll(docs, "Deployment")
	var images []string
	for _, d := range deployments {
		t.Run(d.name(), func(t *testing.T) {
			sel := k8sMap(d.obj, "spec", "selector", "matchLabels")
			labels := k8sMap(d.obj, "spec", "template", "metadata", "labels")
			if len(sel) == 0 {
				t.Errorf("%s: empty spec.selector.matchLabels", d)
			}
			for k, v := range sel {
				if labels[k] != v {
					t.Errorf("%s: selector %s=%v does not match template label %v", d, k, v, labels[k])
				}
			}
			pod := k8sMap(d.obj, "spec", "template", "spec")
			if bad := k8sUnknownKeys(pod, k8sPodKeys); len(bad) > 0 {
				t.Errorf("%s: unknown pod spec keys %v", d, bad)
			}
			if k8sGet(pod, "securityContext", "runAsNonRoot") != true {
				t.Errorf("%s: pod securityContext.runAsNonRoot is not true", d)
			}
			// The image's USER is `nonroot:nonroot`, a name: the kubelet
			// refuses runAsNonRoot unless a numeric runAsUser is given.
			if uid, ok := k8sInt(pod, "securityContext", "runAsUser"); !ok || uid == 0 {
				t.Errorf("%s: pod securityContext.runAsUser must be a non-zero UID (the image's USER is a name), got %v", d, k8sGet(pod, "securityContext", "runAsUser"))
			}
			volumes := map[string]bool{}
			for _, v := range k8sList(pod, "volumes") {
				volumes[k8sStr(v, "name")] = true
			}
			containers := k8sContainers(d)
			if len(containers) == 0 {
				t.Fatalf("%s: no containers", d)
			}
			for _, c := range containers {
				name := k8sStr(c, "name")
				if bad := k8sUnknownKeys(c, k8sContainerKeys); len(bad) > 0 {
					t.Errorf("%s container %s: unknown keys %v", d, name, bad)
				}
				for _, p := range []string{"readinessProbe", "livenessProbe", "startupProbe"} {
					if probe := k8sMap(c, p); probe != nil {
						if bad := k8sUnknownKeys(probe, k8sProbeKeys); len(bad) > 0 {
							t.Errorf("%s container %s: %s: unknown keys %v", d, name, p, bad)
						}
					}
				}
				image := k8sStr(c, "image")
				if image == "" {
					t.Errorf("%s container %s: no image", d, name)
				}
				images = append(images, image)
				if k8sGet(c, "securityContext", "readOnlyRootFilesystem") != true {
					t.Errorf("%s container %s: securityContext.readOnlyRootFilesystem is not true", d, name)
				}
				if k8sGet(c, "securityContext", "allowPrivilegeEscalation") != false {
					t.Errorf("%s container %s: securityContext.allowPrivilegeEscalation is not false", d, name)
				}
				for _, r := range []string{"cpu", "memory"} {
					if k8sGet(c, "resources", "requests", r) == nil {
						t.Errorf("%s container %s: no resources.requests.%s", d, name, r)
					}
				}
				if k8sGet(c, "resources", "limits", "memory") == nil {
					t.Errorf("%s container %s: no resources.limits.memory", d, name)
				}
				for _, m := range k8sList(c, "volumeMounts") {
					if !volumes[k8sStr(m, "name")] {
						t.Errorf("%s container %s: volumeMount %q has no volume", d, name, k8sStr(m, "name"))
					}
				}

				// args: the subcommand and its flags are checked against the
				// real flag sets by cmd/pipeline's TestDeployArgs.
				if len(k8sStrings(c, "args")) == 0 {
					t.Errorf("%s container %s: no args (the image's default CMD is `api`)", d, name)
				}

				// envFrom names objects defined here.
				for _, ef := range k8sList(c, "envFrom") {
					if n := k8sStr(ef, "configMapRef", "name"); n != "" && !configMaps[n] {
						t.Errorf("%s container %s: envFrom ConfigMap %q is not defined in %s", d, name, n, k8sDirRel)
					}
					if n := k8sStr(ef, "secretRef", "name"); n != "" && !secrets[n] {
						t.Errorf("%s container %s: envFrom Secret %q is not defined in %s", d, name, n, k8sDirRel)
					}
				}
			}
		})
	}
	if len(deployments) != 2 {
		t.Errorf("%s: %d Deployments, want 2 (api and worker)", k8sDirRel, len(deployments))
	}
	if len(k8sUnique(images)) != 1 {
		t.Errorf("the Deployments use different images: %v", images)
	}
}

// k8sFlagValue returns the value of --name in args ("--name v" or "--name=v").
func k8sFlagValue(args []string, name string) (string, bool) {
	for i, a := range args {
		f := strings.TrimLeft(a, "-")
		if f == name && strings.HasPrefix(a, "-") && i+1 < len(args) {
			return args[i+1], true
		}
		if v, ok := strings.CutPrefix(f, name+"="); ok && strings.HasPrefix(a, "-") {
			return v, true
		}
	}
	return "", false
}

// k8sContainerPort resolves a probe's or Service's port (a name or a number)
// against the container's ports.
func k8sContainerPort(c map[string]any, port any) (int, string, bool) {
	for _, p := range k8sList(c, "ports") {
		n, _ := k8sInt(p, "containerPort")
		name := k8sStr(p, "name")
		switch v := port.(type) {
		case string:
			if v == name {
				return n, name, true
			}
		case int:
			if v == n {
				return n, name, true
			}
		}
	}
	return 0, "", false
}

// k8sListenPort checks that a listen address flag listens on every interface
// and returns its port.
func k8sListenPort(t *testing.T, what, addr string) int {
	t.Helper()
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatalf("%s %q: %v", what, addr, err)
	}
	if host != "" && host != "0.0.0.0" && host != "::" {
		t.Errorf("%s %q listens on %s only: the kubelet and the Service cannot reach it", what, addr, host)
	}
	n, err := strconv.Atoi(port)
	if err != nil {
		t.Fatalf("%s %q: port: %v", what, addr, err)
	}
	return n
}

func TestKubernetesAPI(t *testing.T) {
	docs := k8sDocs(t)
	bp := k8sSeedBlueprint(t)
	apiName, apiCfg, ok := bp.API()
	if !ok {
		t.Fatal("deploy/blueprint.json: no compute with subtipo api")
	}
	d := k8sDeployment(t, docs, "api")
	c := k8sContainers(d)[0]
	args := k8sStrings(c, "args")

	replicas, ok := k8sInt(d.obj, "spec", "replicas")
	if !ok || replicas != apiCfg.ReplicasMin {
		t.Errorf("%s: replicas %v, want %d (blueprint compute %s replicas_min)", d, k8sGet(d.obj, "spec", "replicas"), apiCfg.ReplicasMin, apiName)
	}

	addr, ok := k8sFlagValue(args, "addr")
	if !ok {
		t.Fatalf("%s: args %v have no --addr (the default 127.0.0.1:8080 is unreachable from outside the pod)", d, args)
	}
	port := k8sListenPort(t, "--addr", addr)
	if port != apiCfg.Port {
		t.Errorf("%s: --addr %s, want port %d (blueprint compute %s porta)", d, addr, apiCfg.Port, apiName)
	}
	if n, _, ok := k8sContainerPort(c, "http"); !ok || n != port {
		t.Errorf("%s: container port named http is %d (found %v), want %d, the --addr port", d, n, ok, port)
	}

	// The API serves /healthz and /readyz (ingest/server.go).
	for _, tt := range []struct{ probe, path string }{
		{"readinessProbe", "/readyz"},
		{"livenessProbe", "/healthz"},
	} {
		t.Run(tt.probe, func(t *testing.T) {
			if !k8sServes(t, "ingest", tt.path) {
				t.Fatalf("ingest does not serve GET %s", tt.path)
			}
			if got := k8sStr(c, tt.probe, "httpGet", "path"); got != tt.path {
				t.Errorf("%s: %s.httpGet.path %q, want %s", d, tt.probe, got, tt.path)
			}
			if n, _, ok := k8sContainerPort(c, k8sGet(c, tt.probe, "httpGet", "port")); !ok || n != port {
				t.Errorf("%s: %s.httpGet.port %v is not the API's port %d", d, tt.probe, k8sGet(c, tt.probe, "httpGet", "port"), port)
			}
			if s := k8sStr(c, tt.probe, "httpGet", "scheme"); s != "" && s != "HTTP" {
				t.Errorf("%s: %s scheme %s: the API speaks plain HTTP here (TLS ends at the Ingress)", d, tt.probe, s)
			}
		})
	}
	// Draining takes up to ProduceTimeout (5 s) + 30 s after SIGTERM.
	if g, ok := k8sInt(d.obj, "spec", "template", "spec", "terminationGracePeriodSeconds"); !ok || g < 35 {
		t.Errorf("%s: terminationGracePeriodSeconds %v, want at least 35 (the API drains for up to 35 s)", d, k8sGet(d.obj, "spec", "template", "spec", "terminationGracePeriodSeconds"))
	}

	labels := k8sMap(d.obj, "spec", "template", "metadata", "labels")
	matches := func(sel map[string]any) bool {
		if len(sel) == 0 {
			return false
		}
		for k, v := range sel {
			if labels[k] != v {
				return false
			}
		}
		return true
	}

	t.Run("PodDisruptionBudget", func(t *testing.T) {
		var found bool
		for _, pdb := range k8sAll(docs, "PodDisruptionBudget") {
			if !matches(k8sMap(pdb.obj, "spec", "selector", "matchLabels")) {
				continue
			}
			found = true
			if n, ok := k8sInt(pdb.obj, "spec", "minAvailable"); !ok || n != 1 {
				t.Errorf("%s: minAvailable %v, want 1", pdb, k8sGet(pdb.obj, "spec", "minAvailable"))
			}
			if n, _ := k8sInt(pdb.obj, "spec", "minAvailable"); n >= replicas {
				t.Errorf("%s: minAvailable %d blocks every eviction with %d replicas", pdb, n, replicas)
			}
		}
		if !found {
			t.Errorf("no PodDisruptionBudget selects the pods of %s", d)
		}
	})

	t.Run("Service", func(t *testing.T) {
		svc := k8sFind(t, docs, "Service", "")
		if !matches(k8sMap(svc.obj, "spec", "selector")) {
			t.Errorf("%s: selector %v does not select the pods of %s (labels %v)", svc, k8sMap(svc.obj, "spec", "selector"), d, labels)
		}
		ports := k8sList(svc.obj, "spec", "ports")
		if len(ports) != 1 {
			t.Fatalf("%s: want one port, got %v", svc, ports)
		}
		target := k8sGet(ports[0], "targetPort")
		if target == nil {
			target = k8sGet(ports[0], "port")
		}
		if n, _, ok := k8sContainerPort(c, target); !ok || n != port {
			t.Errorf("%s: targetPort %v is not the API's port %d", svc, target, port)
		}
	})
}

func TestKubernetesIngress(t *testing.T) {
	docs := k8sDocs(t)
	bp := k8sSeedBlueprint(t)
	gwName, gw, ok := bp.Gateway()
	if !ok {
		t.Fatal("deploy/blueprint.json: no gateway")
	}
	ing := k8sFind(t, docs, "Ingress", "")
	svc := k8sFind(t, docs, "Service", "")
	if got := k8sStr(ing.obj, "spec", "ingressClassName"); got != "nginx" {
		t.Errorf("%s: ingressClassName %q, want nginx", ing, got)
	}
	rules := k8sList(ing.obj, "spec", "rules")
	if len(rules) != 1 {
		t.Fatalf("%s: want one rule, got %d", ing, len(rules))
	}
	if got := k8sStr(rules[0], "host"); got != gw.Domain {
		t.Errorf("%s: host %q, want %q (blueprint gateway %s dominio)", ing, got, gw.Domain, gwName)
	}
	paths := k8sList(rules[0], "http", "paths")
	if len(paths) != 1 {
		t.Fatalf("%s: want one path, got %v", ing, paths)
	}
	p := paths[0]
	if k8sStr(p, "path") != "/" || k8sStr(p, "pathType") != "Prefix" {
		t.Errorf("%s: path %q pathType %q, want / Prefix", ing, k8sStr(p, "path"), k8sStr(p, "pathType"))
	}
	if got := k8sStr(p, "backend", "service", "name"); got != svc.name() {
		t.Errorf("%s: backend service %q, want %q", ing, got, svc.name())
	}
	var portOK bool
	for _, sp := range k8sList(svc.obj, "spec", "ports") {
		if n, _ := k8sInt(p, "backend", "service", "port", "number"); (n != 0 && n == k8sGet(sp, "port")) ||
			(k8sStr(p, "backend", "service", "port", "name") != "" && k8sStr(p, "backend", "service", "port", "name") == k8sStr(sp, "name")) {
			portOK = true
		}
	}
	if !portOK {
		t.Errorf("%s: backend port %v is not a port of Service %s", ing, k8sGet(p, "backend", "service", "port"), svc.name())
	}

	tls := k8sList(ing.obj, "spec", "tls")
	if gw.TLS && len(tls) == 0 {
		t.Fatalf("%s: no tls, but blueprint gateway %s has tls true", ing, gwName)
	}
	for _, e := range tls {
		if !slices.Contains(k8sStrings(e, "hosts"), gw.Domain) {
			t.Errorf("%s: tls hosts %v do not cover %s", ing, k8sStrings(e, "hosts"), gw.Domain)
		}
		if k8sStr(e, "secretName") == "" {
			t.Errorf("%s: tls entry without secretName", ing)
		}
	}
	// The API takes bodies up to 10 MiB; ingress-nginx's default is 1 MiB.
	if got := k8sStr(ing.obj, "metadata", "annotations", "nginx.ingress.kubernetes.io/proxy-body-size"); got != "10m" {
		t.Errorf("%s: annotation nginx.ingress.kubernetes.io/proxy-body-size %q, want 10m (the API's body limit)", ing, got)
	}
}

func TestKubernetesWorker(t *testing.T) {
	docs := k8sDocs(t)
	bp := k8sSeedBlueprint(t)
	wName, wCfg, ok := bp.Worker()
	if !ok {
		t.Fatal("deploy/blueprint.json: no compute with subtipo worker")
	}
	d := k8sDeployment(t, docs, "worker")
	c := k8sContainers(d)[0]
	args := k8sStrings(c, "args")

	addr, ok := k8sFlagValue(args, "metrics-addr")
	if !ok {
		t.Fatalf("%s: args %v have no --metrics-addr (the default is loopback only)", d, args)
	}
	port := k8sListenPort(t, "--metrics-addr", addr)
	if _, name, ok := k8sContainerPort(c, port); !ok || name == "" {
		t.Errorf("%s: no named container port %d for --metrics-addr %s", d, port, addr)
	}
	if ann := k8sStr(d.obj, "spec", "template", "metadata", "annotations", "prometheus.io/port"); ann != "" && ann != strconv.Itoa(port) {
		t.Errorf("%s: prometheus.io/port %s, want %d", d, ann, port)
	}

	// Probes: only routes the worker serves (runWorker's mux), on its port.
	for _, probe := range []string{"readinessProbe", "livenessProbe"} {
		pr := k8sMap(c, probe)
		if pr == nil {
			t.Errorf("%s: no %s", d, probe)
			continue
		}
		var pport any
		switch {
		case k8sMap(pr, "httpGet") != nil:
			if path := k8sStr(pr, "httpGet", "path"); !k8sServes(t, "cmd/pipeline", path) {
				t.Errorf("%s: %s GET %s, but cmd/pipeline registers no route GET %s", d, probe, path, path)
			}
			pport = k8sGet(pr, "httpGet", "port")
		case k8sMap(pr, "tcpSocket") != nil:
			pport = k8sGet(pr, "tcpSocket", "port")
		default:
			t.Errorf("%s: %s is neither httpGet nor tcpSocket", d, probe)
			continue
		}
		if n, _, ok := k8sContainerPort(c, pport); !ok || n != port {
			t.Errorf("%s: %s port %v is not the metrics port %d", d, probe, pport, port)
		}
	}

	// A read-only root file system needs writable /tmp (hour compaction) and
	// --state-dir (provisioning's dev certificates).
	mounts := map[string]bool{}
	for _, m := range k8sList(c, "volumeMounts") {
		mounts[k8sStr(m, "mountPath")] = true
	}
	if !mounts["/tmp"] {
		t.Errorf("%s: /tmp is not a writable volume (hour compaction writes temporary files there)", d)
	}
	if dir, ok := k8sFlagValue(args, "state-dir"); !ok || !mounts[dir] {
		t.Errorf("%s: --state-dir %q is not a mounted volume (the default .dev is on the read-only root)", d, dir)
	}

	if g, ok := k8sInt(d.obj, "spec", "template", "spec", "terminationGracePeriodSeconds"); !ok || g < 60 {
		t.Errorf("%s: terminationGracePeriodSeconds %v, want at least 60 for activities to finish heartbeating", d, k8sGet(d.obj, "spec", "template", "spec", "terminationGracePeriodSeconds"))
	}
	if _, set := k8sInt(d.obj, "spec", "replicas"); set {
		t.Errorf("%s: spec.replicas is set; the HorizontalPodAutoscaler owns the count and every apply would reset it", d)
	}

	t.Run("HorizontalPodAutoscaler", func(t *testing.T) {
		hpa := k8sFind(t, docs, "HorizontalPodAutoscaler", "")
		if got := k8sStr(hpa.obj, "apiVersion"); got != "autoscaling/v2" {
			t.Errorf("%s: apiVersion %s, want autoscaling/v2", hpa, got)
		}
		ref := k8sMap(hpa.obj, "spec", "scaleTargetRef")
		if k8sStr(ref, "kind") != "Deployment" || k8sStr(ref, "name") != d.name() || k8sStr(ref, "apiVersion") != "apps/v1" {
			t.Errorf("%s: scaleTargetRef %v, want apps/v1 Deployment %s", hpa, ref, d.name())
		}
		for _, tt := range []struct {
			field     string
			want, bp  int
			blueprint string
		}{
			{"minReplicas", 1, wCfg.ReplicasMin, "replicas_min"},
			{"maxReplicas", 10, wCfg.ReplicasMax, "replicas_max"},
		} {
			got, ok := k8sInt(hpa.obj, "spec", tt.field)
			if !ok || got != tt.want {
				t.Errorf("%s: %s %v, want %d", hpa, tt.field, k8sGet(hpa.obj, "spec", tt.field), tt.want)
			}
			if got != tt.bp {
				t.Errorf("%s: %s %d, blueprint compute %s %s is %d", hpa, tt.field, got, wName, tt.blueprint, tt.bp)
			}
		}
		var cpu bool
		for _, m := range k8sList(hpa.obj, "spec", "metrics") {
			if k8sStr(m, "type") == "Resource" && k8sStr(m, "resource", "name") == "cpu" {
				cpu = true
				if u, ok := k8sInt(m, "resource", "target", "averageUtilization"); !ok || u <= 0 || u > 100 {
					t.Errorf("%s: cpu averageUtilization %v", hpa, k8sGet(m, "resource", "target", "averageUtilization"))
				}
			}
		}
		if !cpu {
			t.Errorf("%s: no Resource metric on cpu", hpa)
		}
		if k8sGet(c, "resources", "requests", "cpu") == nil {
			t.Errorf("%s: no cpu request: the HPA's utilisation has nothing to relate to", d)
		}
	})
}

func TestKubernetesEnvironment(t *testing.T) {
	docs := k8sDocs(t)

	// Values by source object.
	configMaps := map[string]map[string]string{}
	for _, d := range k8sAll(docs, "ConfigMap") {
		m := map[string]string{}
		for k, v := range k8sMap(d.obj, "data") {
			s, ok := v.(string)
			if !ok {
				t.Errorf("%s: data.%s is a %T, not a string (quote it)", d, k, v)
			}
			m[k] = s
		}
		configMaps[d.name()] = m
	}
	secrets := map[string]map[string]string{}
	for _, d := range k8sAll(docs, "Secret") {
		m := map[string]string{}
		for k, v := range k8sMap(d.obj, "stringData") {
			s, ok := v.(string)
			if !ok {
				t.Errorf("%s: stringData.%s is a %T, not a string (quote it)", d, k, v)
			}
			m[k] = s
			if !strings.Contains(s, "CHANGE-ME") {
				t.Errorf("%s: stringData.%s has no CHANGE-ME placeholder: an example Secret must not ship a usable value", d, k)
			}
		}
		if len(k8sMap(d.obj, "data")) > 0 {
			t.Errorf("%s: use stringData with placeholders, not data", d)
		}
		secrets[d.name()] = m
	}

	for name, m := range configMaps {
		t.Run("ConfigMap/"+name, func(t *testing.T) {
			for k := range m {
				if !k8sKnown(k) {
					t.Errorf("ConfigMap %s: %s is not a setting of internal/config's Settings", name, k)
				}
				if k8sSecret(k) {
					t.Errorf("ConfigMap %s: %s is a secret: put it in the Secret", name, k)
				}
			}
		})
	}
	for name, m := range secrets {
		t.Run("Secret/"+name, func(t *testing.T) {
			for k := range m {
				if !k8sKnown(k) {
					t.Errorf("Secret %s: %s is not a setting of internal/config's Settings", name, k)
				}
			}
		})
	}

	for _, w := range k8sWorkloads {
		sub := w.subcommand
		t.Run(sub, func(t *testing.T) {
			d := k8sWorkload(t, docs, w.kind, sub)
			c := k8sContainers(d)[0]
			// What the container's environment holds: envFrom, then env.
			envVals := map[string]string{}
			for _, ef := range k8sList(c, "envFrom") {
				src := configMaps[k8sStr(ef, "configMapRef", "name")]
				if n := k8sStr(ef, "secretRef", "name"); n != "" {
					src = secrets[n]
				}
				for k, v := range src {
					envVals[k] = v
				}
			}
			for _, e := range k8sList(c, "env") {
				n := k8sStr(e, "name")
				if !k8sKnown(n) {
					t.Errorf("%s: env %s is not a setting of internal/config's Settings", d, n)
				}
				if k8sSecret(n) && k8sGet(e, "valueFrom", "secretKeyRef") == nil {
					t.Errorf("%s: env %s is a secret: take it from a Secret", d, n)
				}
				envVals[n] = k8sStr(e, "value")
			}
			// TLS ends at the Ingress: with these set, the API would speak
			// HTTPS only and the HTTP probes and Service would fail.
			for _, v := range []string{"PIPELINE_TLS_CERT", "PIPELINE_TLS_KEY"} {
				if _, set := envVals[v]; set && sub == "api" {
					t.Errorf("%s: %s is set: the API would serve HTTPS only, behind an Ingress and probes speaking HTTP", d, v)
				}
			}

			// Every Deploy setting of the parts the subcommand validates is
			// provided: the defaults are loopback addresses.
			need, ok := config.CommandNeeds[sub]
			if !ok {
				t.Fatalf("config.CommandNeeds has no subcommand %s", sub)
			}
			for _, v := range k8sDeployVars(need) {
				if _, set := envVals[v]; !set { // set but empty can be deliberate; Validate judges the value
					t.Errorf("%s: %s needs %s (config.CommandNeeds); neither the ConfigMap nor the Secret provides it", d, sub, v)
				}
			}

			// And the values pass the code's own validation, exactly as
			// the process would read them (args included).
			for _, s := range config.Settings {
				v := s.Env
				if v == "" {
					continue
				}
				val, set := envVals[v]
				t.Setenv(v, val) // restored when the test ends
				if !set {
					os.Unsetenv(v) // as in the pod: a key no source provides is absent
				}
			}
			var cfg config.Config
			fs := flag.NewFlagSet(sub, flag.ContinueOnError)
			fs.SetOutput(io.Discard)
			cfg.Register(fs)
			// Only the shared flags: the subcommand's own ones are checked
			// by cmd/pipeline's TestDeployArgs.
			var shared []string
			args := k8sStrings(c, "args")[1:]
			for i := 0; i < len(args); i++ {
				f := strings.TrimLeft(args[i], "-")
				name, _, hasValue := strings.Cut(f, "=")
				if fs.Lookup(name) != nil {
					shared = append(shared, args[i])
					if !hasValue && i+1 < len(args) {
						shared = append(shared, args[i+1])
					}
				}
				if !hasValue {
					i++
				}
			}
			if err := fs.Parse(shared); err != nil {
				t.Fatalf("%s: args: %v", d, err)
			}
			if err := cfg.Validate(need); err != nil {
				t.Errorf("%s: configuration refused by internal/config: %v", d, err)
			}

			// OpenTelemetry values internal/telemetry accepts.
			if v := envVals["OTEL_TRACES_EXPORTER"]; v != "" {
				for _, e := range strings.Split(v, ",") {
					if !slices.Contains([]string{"otlp", "console", "none"}, strings.TrimSpace(e)) {
						t.Errorf("%s: OTEL_TRACES_EXPORTER=%q: internal/telemetry takes otlp, console or none", d, v)
					}
				}
			}
			for _, p := range []string{"OTEL_EXPORTER_OTLP_PROTOCOL", "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL"} {
				if v := envVals[p]; v != "" && v != "http/protobuf" {
					t.Errorf("%s: %s=%q: only http/protobuf is supported", d, p, v)
				}
			}
			if want := "pipeline-" + sub; envVals["OTEL_SERVICE_NAME"] != "" && envVals["OTEL_SERVICE_NAME"] != want {
				t.Errorf("%s: OTEL_SERVICE_NAME %q, want %q (the alerts' and dashboards' name)", d, envVals["OTEL_SERVICE_NAME"], want)
			}
		})
	}
}

// The blueprint's ConfigMap, made by kustomization.yaml's configMapGenerator
// from a copy of deploy/blueprint.json, and its one key.
const (
	k8sBlueprintConfigMap = "pipeline-blueprint"
	k8sBlueprintKey       = "blueprint.json"
)

// k8sConfigMapGenerators returns kustomization.yaml's configMapGenerator:
// generator name → key → file (an entry `key=file`, or `file` whose key is
// its base name).
func k8sConfigMapGenerators(t *testing.T) map[string]map[string]string {
	t.Helper()
	docs := k8sReadFile(t, "kustomization.yaml")
	if len(docs) != 1 {
		t.Fatalf("kustomization.yaml: want one document, got %d", len(docs))
	}
	out := map[string]map[string]string{}
	for _, g := range k8sList(docs[0].obj, "configMapGenerator") {
		name := k8sStr(g, "name")
		if name == "" {
			t.Errorf("kustomization.yaml: configMapGenerator entry without a name: %v", g)
			continue
		}
		if _, dup := out[name]; dup {
			t.Errorf("kustomization.yaml: configMapGenerator %s twice", name)
		}
		keys := map[string]string{}
		for _, f := range k8sStrings(g, "files") {
			key, file, ok := strings.Cut(f, "=")
			if !ok {
				key, file = filepath.Base(f), f
			}
			keys[key] = file
		}
		out[name] = keys
	}
	return out
}

func TestKubernetesProvisionJob(t *testing.T) {
	docs := k8sDocs(t)
	d := k8sWorkload(t, docs, "Job", "provision")
	if d.name() != "pipeline-provision" {
		t.Errorf("%s: want the name pipeline-provision (README.md's commands use it)", d)
	}
	if got := k8sStr(d.obj, "apiVersion"); got != "batch/v1" {
		t.Errorf("%s: apiVersion %s, want batch/v1", d, got)
	}
	pod := k8sMap(d.obj, "spec", "template", "spec")
	c := k8sContainers(d)[0]
	name := k8sStr(c, "name")

	// Retries: the worker may not poll yet, and each attempt gives up after
	// --timeout. A finished Job expires.
	if n, ok := k8sInt(d.obj, "spec", "backoffLimit"); !ok || n < 3 {
		t.Errorf("%s: backoffLimit %v, want at least 3 (provision fails while no worker polls batch-jobs)", d, k8sGet(d.obj, "spec", "backoffLimit"))
	}
	if n, ok := k8sInt(d.obj, "spec", "ttlSecondsAfterFinished"); !ok || n <= 0 {
		t.Errorf("%s: ttlSecondsAfterFinished %v, want a positive number", d, k8sGet(d.obj, "spec", "ttlSecondsAfterFinished"))
	}
	rp := k8sStr(pod, "restartPolicy")
	if rp != "OnFailure" && rp != "Never" {
		t.Errorf("%s: restartPolicy %q, want OnFailure or Never (a Job refuses Always)", d, rp)
	}
	if k8sGet(d.obj, "spec", "podFailurePolicy") != nil && rp != "Never" {
		t.Errorf("%s: podFailurePolicy needs restartPolicy Never", d)
	}
	for _, r := range k8sList(d.obj, "spec", "podFailurePolicy", "rules") {
		if cn := k8sStr(r, "onExitCodes", "containerName"); cn != "" && cn != name {
			t.Errorf("%s: podFailurePolicy rule names container %q, the container is %q", d, cn, name)
		}
	}

	// Pod and container as hardened as the Deployments'.
	if bad := k8sUnknownKeys(pod, append(slices.Clone(k8sPodKeys), "restartPolicy")); len(bad) > 0 {
		t.Errorf("%s: unknown pod spec keys %v", d, bad)
	}
	if bad := k8sUnknownKeys(c, k8sContainerKeys); len(bad) > 0 {
		t.Errorf("%s container %s: unknown keys %v", d, name, bad)
	}
	worker := k8sDeployment(t, docs, "worker")
	wpod := k8sMap(worker.obj, "spec", "template", "spec")
	for _, f := range []string{"runAsNonRoot", "runAsUser", "runAsGroup"} {
		if got, want := k8sGet(pod, "securityContext", f), k8sGet(wpod, "securityContext", f); got != want || got == nil {
			t.Errorf("%s: pod securityContext.%s %v, the worker's is %v", d, f, got, want)
		}
	}
	if k8sStr(pod, "securityContext", "seccompProfile", "type") != "RuntimeDefault" {
		t.Errorf("%s: pod securityContext.seccompProfile is not RuntimeDefault", d)
	}
	if k8sGet(pod, "automountServiceAccountToken") != false {
		t.Errorf("%s: automountServiceAccountToken is not false (provision needs no Kubernetes API)", d)
	}
	if k8sGet(c, "securityContext", "readOnlyRootFilesystem") != true {
		t.Errorf("%s: securityContext.readOnlyRootFilesystem is not true", d)
	}
	if k8sGet(c, "securityContext", "allowPrivilegeEscalation") != false {
		t.Errorf("%s: securityContext.allowPrivilegeEscalation is not false", d)
	}
	if !slices.Contains(k8sStrings(c, "securityContext", "capabilities", "drop"), "ALL") {
		t.Errorf("%s: securityContext.capabilities.drop lacks ALL", d)
	}
	for _, r := range []string{"cpu", "memory"} {
		if k8sGet(c, "resources", "requests", r) == nil {
			t.Errorf("%s: no resources.requests.%s", d, r)
		}
	}
	if k8sGet(c, "resources", "limits", "memory") == nil {
		t.Errorf("%s: no resources.limits.memory", d)
	}

	// The Deployments' image, ConfigMap and Secret.
	wc := k8sContainers(worker)[0]
	if got, want := k8sStr(c, "image"), k8sStr(wc, "image"); got != want {
		t.Errorf("%s: image %q, the worker's is %q", d, got, want)
	}
	envFrom := func(c map[string]any) []string {
		var out []string
		for _, ef := range k8sList(c, "envFrom") {
			if n := k8sStr(ef, "configMapRef", "name"); n != "" {
				out = append(out, "ConfigMap/"+n)
			}
			if n := k8sStr(ef, "secretRef", "name"); n != "" {
				out = append(out, "Secret/"+n)
			}
		}
		return k8sUnique(out)
	}
	if got, want := envFrom(c), envFrom(wc); !slices.Equal(got, want) {
		t.Errorf("%s: envFrom %v, the worker's is %v", d, got, want)
	}
	// (That the environment covers provision's config.Need and passes
	// config.Validate is TestKubernetesEnvironment's.)

	// args: `provision`, flags, then the blueprint file. cmd/pipeline's
	// TestDeployArgs parses them with provision's flag set and wants exactly
	// one argument after the flags, so the file is the last one.
	args := k8sStrings(c, "args")
	if len(args) < 2 || args[0] != "provision" {
		t.Fatalf("%s: args %v, want provision first and a blueprint file last", d, args)
	}
	file := args[len(args)-1]
	if _, dry := k8sFlagValue(args, "dry-run"); dry || slices.Contains(args, "--dry-run") || slices.Contains(args, "-dry-run") {
		t.Errorf("%s: args %v: --dry-run would provision nothing", d, args)
	}
	if v, ok := k8sFlagValue(args, "timeout"); !ok {
		t.Errorf("%s: no --timeout (the default is 10m per attempt)", d)
	} else if dur, err := time.ParseDuration(v); err != nil || dur <= 0 {
		t.Errorf("%s: --timeout %q is not a positive duration (%v)", d, v, err)
	}

	// The file is in the blueprint's ConfigMap, mounted read-only.
	volumes := map[string]map[string]any{}
	for _, v := range k8sList(pod, "volumes") {
		volumes[k8sStr(v, "name")], _ = v.(map[string]any)
	}
	var mounted bool
	for _, m := range k8sList(c, "volumeMounts") {
		vname, mpath := k8sStr(m, "name"), k8sStr(m, "mountPath")
		vol, ok := volumes[vname]
		if !ok {
			t.Errorf("%s: volumeMount %q has no volume", d, vname)
			continue
		}
		rel, err := filepath.Rel(mpath, file)
		if err != nil || rel == "." || strings.HasPrefix(rel, "..") {
			continue
		}
		mounted = true
		if k8sStr(vol, "configMap", "name") != k8sBlueprintConfigMap {
			t.Errorf("%s: %s is on volume %s, not ConfigMap %s (configMapGenerator)", d, file, vname, k8sBlueprintConfigMap)
		}
		if k8sGet(m, "readOnly") != true {
			t.Errorf("%s: volumeMount %s at %s is not readOnly", d, vname, mpath)
		}
		if sp := k8sStr(m, "subPath"); sp != "" {
			t.Errorf("%s: volumeMount %s uses subPath %q, which never sees ConfigMap updates; mount the directory", d, vname, sp)
		}
		// The ConfigMap's key at that path: the key itself, or items' path.
		key := rel
		for _, it := range k8sList(vol, "configMap", "items") {
			if k8sStr(it, "path") == rel {
				key = k8sStr(it, "key")
			}
		}
		if keys := k8sConfigMapGenerators(t)[k8sBlueprintConfigMap]; keys[key] == "" {
			t.Errorf("%s: %s is key %q of ConfigMap %s, whose generator has keys %v", d, file, key, k8sBlueprintConfigMap, slices.Sorted(maps.Keys(keys)))
		}
	}
	if !mounted {
		t.Errorf("%s: the blueprint file %s is under no volumeMount", d, file)
	}

	// The copy kustomize reads is deploy/blueprint.json, byte for byte.
	t.Run("blueprint copy", func(t *testing.T) {
		src := k8sConfigMapGenerators(t)[k8sBlueprintConfigMap][k8sBlueprintKey]
		if src == "" {
			t.Fatalf("kustomization.yaml: configMapGenerator %s has no key %s", k8sBlueprintConfigMap, k8sBlueprintKey)
		}
		copyPath := filepath.Join(k8sDirRel, src)
		got, err := os.ReadFile(filepath.Join(moduleRoot, copyPath))
		if err != nil {
			t.Fatal(err)
		}
		want, err := os.ReadFile(filepath.Join(moduleRoot, "deploy", "blueprint.json"))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("%s differs from deploy/blueprint.json: the Job would provision another blueprint (cp deploy/blueprint.json %s/)", copyPath, k8sDirRel)
		}
		if _, err := blueprint.Load(filepath.Join(moduleRoot, copyPath)); err != nil {
			t.Errorf("%s: %v", copyPath, err)
		}
	})
}
