package tests

// Checks of the API's Deployment, Service, PodDisruptionBudget and
// Ingress: see kubernetes_test.go for the whole list.

import (
	"slices"
	"testing"
)

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
	// Which paths: TestKubernetesIngressPaths. Each goes to the API's Service.
	for _, p := range k8sList(rules[0], "http", "paths") {
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
