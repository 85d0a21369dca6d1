package tests

// Checks of deploy/kubernetes/kustomization.yaml and of the provisioning
// Job it feeds: see kubernetes_test.go for the whole list.

import (
	"bytes"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/acme/pipeline/blueprint"
)

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
