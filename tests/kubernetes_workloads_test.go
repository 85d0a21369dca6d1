package tests

// Checks of the Deployments and of the worker: see kubernetes_test.go for
// the whole list.

import (
	"net"
	"strconv"
	"strings"
	"testing"
)

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
