package tests

// Checks of the workloads' environment against internal/config's Settings:
// see kubernetes_test.go for the whole list.

import (
	"flag"
	"io"
	"net/url"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/acme/pipeline/internal/config"
)

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
				if ref := k8sGet(e, "valueFrom", "secretKeyRef"); ref != nil {
					if want, got := "pipeline-"+sub+"-secrets", k8sStr(e, "valueFrom", "secretKeyRef", "name"); got != want {
						t.Errorf("%s: env %s comes from Secret %s; each process reads only its own, %s", d, n, got, want)
					}
					envVals[n] = secrets[k8sStr(e, "valueFrom", "secretKeyRef", "name")][k8sStr(e, "valueFrom", "secretKeyRef", "key")]
				}
			}
			// Each process connects with its own database role
			// (016_process_roles); provisioning with the owner's.
			if dbURL, ok := envVals["DATABASE_URL"]; ok {
				user := ""
				if u, err := url.Parse(dbURL); err == nil && u.User != nil {
					user = u.User.Username()
				}
				if user != k8sDBRole[sub] {
					t.Errorf("%s: DATABASE_URL connects as %q, want %s", d, user, k8sDBRole[sub])
				}
			}
			// Least privilege: a secret reaches only the processes that use it.
			for n := range envVals {
				if k8sSecret(n) && !k8sUses(sub, n) {
					t.Errorf("%s: the secret %s reaches `pipeline %s`, which does not use it", d, n, sub)
				}
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
			// The example Secret ships placeholders, which the API refuses
			// (as it must); with the operator's values in place, the rest
			// of the configuration passes.
			if need&config.NeedAPIKeys != 0 && strings.Contains(cfg.APIKeys, "CHANGE-ME") {
				if err := cfg.Validate(need); err == nil || !strings.Contains(err.Error(), "PIPELINE_API_KEYS") {
					t.Errorf("%s: the example's placeholder API key is accepted: %v", d, err)
				}
				cfg.APIKeys = strings.ReplaceAll(cfg.APIKeys, "CHANGE-ME", "9f86d081884c7d659a2feaa0c55ad015")
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

// k8sDBRole is the database role each workload connects as.
var k8sDBRole = map[string]string{"api": "pipeline_api", "worker": "pipeline_worker", "provision": "pipeline"}

// k8sUses reports whether `pipeline sub` reads the setting env: one of the
// parts its configuration validates (config.CommandNeeds), or a use of its
// own beyond them.
func k8sUses(sub, env string) bool {
	// The API records its accepted counts in the warehouse when it can;
	// provision migrates it (the owner's role) before starting the workflow.
	extra := map[string][]string{"api": {"DATABASE_URL"}, "provision": {"DATABASE_URL"}}
	if slices.Contains(extra[sub], env) {
		return true
	}
	for _, s := range config.Settings {
		if s.Env == env {
			return s.Need&config.CommandNeeds[sub] != 0
		}
	}
	return false
}
