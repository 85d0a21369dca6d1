package tests

// Checks of docker-compose.yml, the Dockerfile and deploy/otel-collector.yaml.
// Docker cannot run here, so these tests read the files: every service the
// README names exists, the ports are the contract's, the pipeline's own
// services use only the contract's variables and point them at services that
// exist, depends_on targets exist, and the build context has a Dockerfile
// that builds ./cmd/pipeline statically.
//
//	go test ./tests -run Compose

import (
	"bufio"
	"bytes"
	"fmt"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

// repoRoot is the module root: the directory above this file's.
func repoRoot(t *testing.T) string {
	t.Helper()
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		t.Fatal("cannot locate compose_test.go")
	}
	return filepath.Dir(filepath.Dir(file))
}

// composeFile is the part of the Compose specification these tests read.
type composeFile struct {
	Name     string                    `yaml:"name"`
	Services map[string]composeService `yaml:"services"`
	Volumes  map[string]any            `yaml:"volumes"`
	Networks map[string]any            `yaml:"networks"`
}

type composeService struct {
	Image       string          `yaml:"image"`
	Build       composeBuild    `yaml:"build"`
	Command     yaml.Node       `yaml:"command"`
	Entrypoint  yaml.Node       `yaml:"entrypoint"`
	Environment composeEnv      `yaml:"environment"`
	Ports       []composePort   `yaml:"ports"`
	Expose      []string        `yaml:"expose"`
	DependsOn   composeDepends  `yaml:"depends_on"`
	Volumes     []composeVolume `yaml:"volumes"`
	Healthcheck *yaml.Node      `yaml:"healthcheck"`
	Restart     string          `yaml:"restart"`
}

// composeBuild is `build: DIR` or `build: {context: DIR, dockerfile: FILE}`.
type composeBuild struct {
	Set        bool
	Context    string
	Dockerfile string
}

func (b *composeBuild) UnmarshalYAML(n *yaml.Node) error {
	b.Set = true
	if n.Kind == yaml.ScalarNode {
		b.Context = n.Value
		return nil
	}
	var v struct {
		Context    string `yaml:"context"`
		Dockerfile string `yaml:"dockerfile"`
	}
	if err := n.Decode(&v); err != nil {
		return err
	}
	b.Context, b.Dockerfile = v.Context, v.Dockerfile
	return nil
}

// composeEnv is `environment:` as a map or as a list of NAME=VALUE.
type composeEnv map[string]string

func (e *composeEnv) UnmarshalYAML(n *yaml.Node) error {
	*e = composeEnv{}
	switch n.Kind {
	case yaml.MappingNode:
		var m map[string]*string
		if err := n.Decode(&m); err != nil {
			return err
		}
		for k, v := range m {
			if v == nil {
				(*e)[k] = ""
			} else {
				(*e)[k] = *v
			}
		}
	case yaml.SequenceNode:
		var l []string
		if err := n.Decode(&l); err != nil {
			return err
		}
		for _, kv := range l {
			k, v, _ := strings.Cut(kv, "=")
			(*e)[k] = v
		}
	default:
		return fmt.Errorf("line %d: environment must be a map or a list", n.Line)
	}
	return nil
}

// composePort is a short-syntax ("8233:8080", "127.0.0.1:5432:5432/tcp") or
// long-syntax ({target: 8080, published: "8233"}) port mapping.
type composePort struct {
	Published string
	Target    string
}

func (p *composePort) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind == yaml.ScalarNode {
		s, _, _ := strings.Cut(n.Value, "/")
		parts := strings.Split(s, ":")
		p.Target = parts[len(parts)-1]
		if len(parts) >= 2 {
			p.Published = parts[len(parts)-2]
		}
		return nil
	}
	var v struct {
		Target    string `yaml:"target"`
		Published string `yaml:"published"`
	}
	if err := n.Decode(&v); err != nil {
		return err
	}
	p.Target, p.Published = v.Target, v.Published
	return nil
}

// composeDepends is depends_on as a list or as a map of conditions.
type composeDepends map[string]string

func (d *composeDepends) UnmarshalYAML(n *yaml.Node) error {
	*d = composeDepends{}
	switch n.Kind {
	case yaml.SequenceNode:
		var l []string
		if err := n.Decode(&l); err != nil {
			return err
		}
		for _, s := range l {
			(*d)[s] = "service_started"
		}
	case yaml.MappingNode:
		var m map[string]struct {
			Condition string `yaml:"condition"`
		}
		if err := n.Decode(&m); err != nil {
			return err
		}
		for k, v := range m {
			c := v.Condition
			if c == "" {
				c = "service_started"
			}
			(*d)[k] = c
		}
	default:
		return fmt.Errorf("line %d: depends_on must be a list or a map", n.Line)
	}
	return nil
}

// composeVolume is a short-syntax ("SRC:DST[:ro]") or long-syntax volume.
type composeVolume struct {
	Source string
	Target string
}

func (v *composeVolume) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind == yaml.ScalarNode {
		parts := strings.Split(n.Value, ":")
		switch len(parts) {
		case 1:
			v.Target = parts[0]
		default:
			v.Source, v.Target = parts[0], parts[1]
		}
		return nil
	}
	var l struct {
		Source string `yaml:"source"`
		Target string `yaml:"target"`
	}
	if err := n.Decode(&l); err != nil {
		return err
	}
	v.Source, v.Target = l.Source, l.Target
	return nil
}

func loadCompose(t *testing.T) composeFile {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(repoRoot(t), "docker-compose.yml"))
	if err != nil {
		t.Fatal(err)
	}
	var c composeFile
	if err := yaml.Unmarshal(b, &c); err != nil {
		t.Fatalf("docker-compose.yml: %v", err)
	}
	if len(c.Services) == 0 {
		t.Fatal("docker-compose.yml: no services")
	}
	return c
}

// contractVars are the environment variables of /work/shared/CONTRACT.md
// ("Configuration"); OTEL_* is allowed by prefix.
var contractVars = []string{
	"TEMPORAL_ADDRESS", "TEMPORAL_NAMESPACE", "KAFKA_BROKERS", "S3_ENDPOINT",
	"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_REGION", "DATABASE_URL",
	"PIPELINE_API_KEYS",
}

func isContractVar(name string) bool {
	return slices.Contains(contractVars, name) || strings.HasPrefix(name, "OTEL_")
}

// pipelineServices are the services built from the repository's Dockerfile.
func pipelineServices(c composeFile) []string {
	var names []string
	for name, s := range c.Services {
		if s.Build.Set {
			names = append(names, name)
		}
	}
	slices.Sort(names)
	return names
}

// interpolate applies Compose's ${VAR:-default} and ${VAR-default} with an
// empty environment, and turns $$ into $: what the container sees when the
// user sets nothing.
var interpRe = regexp.MustCompile(`\$\{([A-Za-z_][A-Za-z0-9_]*)(?::?-([^}]*))?\}`)

func interpolate(s string) string {
	s = interpRe.ReplaceAllString(s, "$2")
	return strings.ReplaceAll(s, "$$", "$")
}

func TestComposeParses(t *testing.T) {
	root := repoRoot(t)
	b, err := os.ReadFile(filepath.Join(root, "docker-compose.yml"))
	if err != nil {
		t.Fatal(err)
	}
	// Top-level keys and service keys docker compose knows: a typo such as
	// `depend_on` is otherwise silently ignored by the decoder above.
	var raw map[string]yaml.Node
	if err := yaml.Unmarshal(b, &raw); err != nil {
		t.Fatalf("docker-compose.yml: %v", err)
	}
	topLevel := []string{"name", "services", "volumes", "networks", "configs", "secrets", "include"}
	for k := range raw {
		if !slices.Contains(topLevel, k) && !strings.HasPrefix(k, "x-") {
			t.Errorf("docker-compose.yml: unknown top-level key %q", k)
		}
	}
	if _, ok := raw["version"]; ok {
		t.Error("docker-compose.yml: `version` is obsolete in the Compose specification")
	}
	serviceKeys := []string{
		"image", "build", "command", "entrypoint", "environment", "env_file", "ports",
		"expose", "depends_on", "volumes", "healthcheck", "restart", "deploy",
		"networks", "container_name", "hostname", "working_dir", "user", "labels",
		"profiles", "stop_grace_period", "ulimits", "tmpfs", "extra_hosts", "init",
		"logging", "configs", "secrets", "platform", "pull_policy",
	}
	var services map[string]map[string]yaml.Node
	if err := servicesNode(raw).Decode(&services); err != nil {
		t.Fatalf("services: %v", err)
	}
	for name, keys := range services {
		for k := range keys {
			if !slices.Contains(serviceKeys, k) && !strings.HasPrefix(k, "x-") {
				t.Errorf("service %s: unknown key %q", name, k)
			}
		}
		if _, hasImage := keys["image"]; !hasImage {
			if _, hasBuild := keys["build"]; !hasBuild {
				t.Errorf("service %s: neither image nor build", name)
			}
		}
	}
	// Named volumes must be declared at the top level.
	c := loadCompose(t)
	for name, s := range c.Services {
		for _, v := range s.Volumes {
			if v.Source == "" || strings.HasPrefix(v.Source, ".") || strings.HasPrefix(v.Source, "/") {
				continue
			}
			if _, ok := c.Volumes[v.Source]; !ok {
				t.Errorf("service %s: volume %q is not declared under volumes:", name, v.Source)
			}
		}
	}
}

// TestComposeServicesOfReadme checks that every service the README's Docker
// Compose table names is in docker-compose.yml, and the other way round.
func TestComposeServicesOfReadme(t *testing.T) {
	c := loadCompose(t)
	named := readmeComposeServices(t)
	if len(named) == 0 {
		t.Fatal("README.md: no services found in the table of the section \"Running with Docker Compose\"")
	}
	for _, name := range named {
		if _, ok := c.Services[name]; !ok {
			t.Errorf("README.md names service %q; docker-compose.yml has no such service", name)
		}
	}
	for name := range c.Services {
		if !slices.Contains(named, name) {
			t.Errorf("docker-compose.yml has service %q; README.md's Docker Compose table does not name it", name)
		}
	}
}

// readmeComposeServices returns the backquoted names in the first column of
// the table under the heading "## Running with Docker Compose".
func readmeComposeServices(t *testing.T) []string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(repoRoot(t), "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	cell := regexp.MustCompile("^\\|\\s*`([a-z0-9-]+)`\\s*\\|")
	var names []string
	in := false
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "## ") {
			in = strings.HasPrefix(line, "## Running with Docker Compose")
			continue
		}
		if m := cell.FindStringSubmatch(line); in && m != nil {
			names = append(names, m[1])
		}
	}
	return names
}

// TestComposePorts checks the published ports against the contract's dev
// defaults, so that the README's URLs and commands work for both.
func TestComposePorts(t *testing.T) {
	c := loadCompose(t)
	tests := []struct {
		service   string
		published string
		target    string
		what      string
	}{
		{"api", "8080", "8080", "event API"},
		{"api", "9465", "9465", "the API's status page and metrics (its operators' listener, host loopback only)"},
		{"temporal", "7233", "7233", "Temporal frontend"},
		{"temporal-ui", "8233", "8080", "Temporal web UI"},
		{"kafka", "9092", "9092", "Kafka"},
		{"s3", "9000", "9000", "S3"},
		{"postgres", "5432", "5432", "PostgreSQL"},
		{"jaeger", "16686", "16686", "trace UI"},
		{"otel-collector", "4318", "4318", "OTLP/HTTP"},
		{"otel-collector", "4317", "4317", "OTLP/gRPC"},
	}
	for _, tt := range tests {
		t.Run(tt.service+"/"+tt.published, func(t *testing.T) {
			s, ok := c.Services[tt.service]
			if !ok {
				t.Fatalf("no service %q (%s)", tt.service, tt.what)
			}
			for _, p := range s.Ports {
				if p.Published == tt.published {
					if p.Target != tt.target {
						t.Errorf("%s: host port %s maps to container port %s, want %s", tt.what, tt.published, p.Target, tt.target)
					}
					return
				}
			}
			t.Errorf("%s: service %s does not publish port %s (ports: %+v)", tt.what, tt.service, tt.published, s.Ports)
		})
	}

	// No host port is published twice.
	seen := map[string]string{}
	for name, s := range c.Services {
		for _, p := range s.Ports {
			if p.Published == "" {
				continue
			}
			if other, dup := seen[p.Published]; dup {
				t.Errorf("host port %s published by both %s and %s", p.Published, other, name)
			}
			seen[p.Published] = name
		}
	}
}

// TestComposeEnvironment checks the pipeline's own services: they use only
// the contract's variables, set the ones they need, and every address points
// at a service of the file on a port that service listens on.
func TestComposeEnvironment(t *testing.T) {
	c := loadCompose(t)
	pipeline := pipelineServices(c)
	if !slices.Contains(pipeline, "api") || !slices.Contains(pipeline, "worker") {
		t.Fatalf("services built from the Dockerfile: %v; want api and worker among them", pipeline)
	}
	required := map[string][]string{
		"api": {"KAFKA_BROKERS", "PIPELINE_API_KEYS", "DATABASE_URL", "TEMPORAL_ADDRESS"},
		"worker": {"TEMPORAL_ADDRESS", "TEMPORAL_NAMESPACE", "KAFKA_BROKERS", "S3_ENDPOINT",
			"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_REGION", "DATABASE_URL"},
	}
	for _, name := range pipeline {
		s := c.Services[name]
		t.Run(name, func(t *testing.T) {
			for k := range s.Environment {
				if !isContractVar(k) {
					t.Errorf("%s: variable %s is not in the contract (use %s or OTEL_*)", name, k, strings.Join(contractVars, ", "))
				}
			}
			for _, k := range required[name] {
				if interpolate(s.Environment[k]) == "" {
					t.Errorf("%s: %s is not set", name, k)
				}
			}
			if name == "worker" && s.Environment["PIPELINE_API_KEYS"] != "" {
				t.Errorf("worker: PIPELINE_API_KEYS is the API's secret; the worker does not need it")
			}
			for _, k := range []string{"OTEL_TRACES_EXPORTER", "OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_SERVICE_NAME"} {
				if s.Environment[k] == "" {
					t.Errorf("%s: %s is not set: traces would not reach the collector", name, k)
				}
			}

			env := map[string]string{}
			for k, v := range s.Environment {
				env[k] = interpolate(v)
			}
			checks := []struct {
				variable string
				addrs    func(string) ([]string, error)
			}{
				{"TEMPORAL_ADDRESS", hostPorts},
				{"KAFKA_BROKERS", hostPorts},
				{"S3_ENDPOINT", urlHostPort},
				{"DATABASE_URL", urlHostPort},
				{"OTEL_EXPORTER_OTLP_ENDPOINT", urlHostPort},
			}
			for _, ck := range checks {
				v, ok := env[ck.variable]
				if !ok {
					continue
				}
				addrs, err := ck.addrs(v)
				if err != nil {
					t.Errorf("%s: %s=%q: %v", name, ck.variable, v, err)
					continue
				}
				for _, a := range addrs {
					host, port, _ := net.SplitHostPort(a)
					target, ok := c.Services[host]
					if !ok {
						t.Errorf("%s: %s=%q names host %q, which is no service of docker-compose.yml", name, ck.variable, v, host)
						continue
					}
					if !listensOn(target, port) {
						t.Errorf("%s: %s=%q: service %s neither publishes nor exposes port %s", name, ck.variable, v, host, port)
					}
					if !dependsOn(c, name, host) {
						t.Errorf("%s: %s points at %s, but %s does not depend_on it (directly or through another service)", name, ck.variable, host, name)
					}
				}
			}
			if u, err := url.Parse(env["DATABASE_URL"]); err == nil && u.Scheme != "postgres" && u.Scheme != "postgresql" {
				t.Errorf("%s: DATABASE_URL scheme %q, want postgres://", name, u.Scheme)
			}
		})
	}

	// Kafka clients bootstrap, then reconnect to the advertised listeners: the
	// pipeline's brokers must be advertised as such, and the host port 9092 as
	// localhost:9092 for kcat and processes on the host.
	advertised := c.Services["kafka"].Environment["KAFKA_ADVERTISED_LISTENERS"]
	for _, name := range pipeline {
		brokers, _ := hostPorts(interpolate(c.Services[name].Environment["KAFKA_BROKERS"]))
		for _, b := range brokers {
			if !strings.Contains(advertised, "://"+b) {
				t.Errorf("%s: broker %s is not among kafka's KAFKA_ADVERTISED_LISTENERS %q", name, b, advertised)
			}
		}
	}
	if !strings.Contains(advertised, "://localhost:9092") {
		t.Errorf("kafka: KAFKA_ADVERTISED_LISTENERS %q does not advertise localhost:9092 for clients on the host", advertised)
	}

	// The credentials the pipeline uses are those the stores are started
	// with, and each process has only its own: the lake's keys are the
	// worker's, and each connects with its database role
	// (016_process_roles; deploy/postgres/init-roles.sh sets the passwords).
	worker, s3, pg := c.Services["worker"], c.Services["s3"], c.Services["postgres"]
	for _, pair := range [][2]string{
		{worker.Environment["AWS_ACCESS_KEY_ID"], s3.Environment["ROOT_ACCESS_KEY_ID"]},
		{worker.Environment["AWS_SECRET_ACCESS_KEY"], s3.Environment["ROOT_SECRET_ACCESS_KEY"]},
	} {
		if interpolate(pair[0]) != interpolate(pair[1]) {
			t.Errorf("S3 credentials differ: worker %q, s3 service %q", pair[0], pair[1])
		}
	}
	roles := []struct{ service, user, password string }{
		{"api", "pipeline_api", pg.Environment["PIPELINE_API_DB_PASSWORD"]},
		{"worker", "pipeline_worker", pg.Environment["PIPELINE_WORKER_DB_PASSWORD"]},
		{"provision", interpolate(pg.Environment["POSTGRES_USER"]), pg.Environment["POSTGRES_PASSWORD"]},
	}
	for _, r := range roles {
		env := c.Services[r.service].Environment
		if r.service != "worker" && (env["AWS_ACCESS_KEY_ID"] != "" || env["AWS_SECRET_ACCESS_KEY"] != "") {
			t.Errorf("%s: has the lake's S3 keys, which only the worker uses", r.service)
		}
		u, err := url.Parse(interpolate(env["DATABASE_URL"]))
		if err != nil || u.User == nil {
			t.Errorf("%s: DATABASE_URL: %v", r.service, err)
			continue
		}
		pw, _ := u.User.Password()
		if u.User.Username() != r.user || r.password == "" || pw != interpolate(r.password) {
			t.Errorf("%s: DATABASE_URL connects as %q, want %s with the postgres service's password for it", r.service, u.User.Username(), r.user)
		}
		if db := strings.TrimPrefix(u.Path, "/"); db != interpolate(pg.Environment["POSTGRES_DB"]) {
			t.Errorf("%s: DATABASE_URL database %q, postgres service creates %q", r.service, db, pg.Environment["POSTGRES_DB"])
		}
	}
	mounted := false
	for _, v := range pg.Volumes {
		mounted = mounted || (v.Source == "./deploy/postgres/init-roles.sh" && strings.HasPrefix(v.Target, "/docker-entrypoint-initdb.d/"))
	}
	if !mounted {
		t.Errorf("postgres: deploy/postgres/init-roles.sh is not mounted in /docker-entrypoint-initdb.d: the process roles get no password")
	}
}

// hostPorts splits a comma-separated host:port list.
func hostPorts(v string) ([]string, error) {
	var out []string
	for _, a := range strings.Split(v, ",") {
		a = strings.TrimSpace(a)
		if _, _, err := net.SplitHostPort(a); err != nil {
			return nil, err
		}
		out = append(out, a)
	}
	return out, nil
}

// urlHostPort returns a URL's host:port (the scheme's port when none is given).
func urlHostPort(v string) ([]string, error) {
	u, err := url.Parse(v)
	if err != nil {
		return nil, err
	}
	if u.Host == "" {
		return nil, fmt.Errorf("no host")
	}
	port := u.Port()
	if port == "" {
		port = map[string]string{"http": "80", "https": "443", "postgres": "5432", "postgresql": "5432"}[u.Scheme]
	}
	return []string{net.JoinHostPort(u.Hostname(), port)}, nil
}

// dependsOn reports whether service from waits for service to, directly or
// through other services.
func dependsOn(c composeFile, from, to string) bool {
	seen := map[string]bool{}
	var walk func(string) bool
	walk = func(n string) bool {
		if seen[n] {
			return false
		}
		seen[n] = true
		for d := range c.Services[n].DependsOn {
			if d == to || walk(d) {
				return true
			}
		}
		return false
	}
	return walk(from)
}

func listensOn(s composeService, port string) bool {
	for _, p := range s.Ports {
		if p.Target == port {
			return true
		}
	}
	return slices.Contains(s.Expose, port)
}

// TestComposeDependsOn checks that depends_on names services of the file,
// with a condition the target can meet.
func TestComposeDependsOn(t *testing.T) {
	c := loadCompose(t)
	for name, s := range c.Services {
		for dep, cond := range s.DependsOn {
			t.Run(name+"->"+dep, func(t *testing.T) {
				target, ok := c.Services[dep]
				if !ok {
					t.Fatalf("%s depends on %q, which is no service", name, dep)
				}
				if dep == name {
					t.Fatalf("%s depends on itself", name)
				}
				switch cond {
				case "service_started":
				case "service_healthy":
					if target.Healthcheck == nil {
						t.Errorf("%s waits for %s to be healthy, but %s has no healthcheck", name, dep, dep)
					}
				case "service_completed_successfully":
					if target.Restart != "no" {
						t.Errorf("%s waits for %s to complete, but %s has restart %q (want \"no\")", name, dep, dep, target.Restart)
					}
				default:
					t.Errorf("%s -> %s: unknown condition %q", name, dep, cond)
				}
			})
		}
	}
	// No cycles.
	state := map[string]int{} // 0 new, 1 on stack, 2 done
	var visit func(string, []string)
	visit = func(n string, path []string) {
		switch state[n] {
		case 1:
			t.Errorf("depends_on cycle: %s", strings.Join(append(path, n), " -> "))
			return
		case 2:
			return
		}
		state[n] = 1
		deps := make([]string, 0, len(c.Services[n].DependsOn))
		for d := range c.Services[n].DependsOn {
			deps = append(deps, d)
		}
		slices.Sort(deps)
		for _, d := range deps {
			if _, ok := c.Services[d]; ok {
				visit(d, append(path, n))
			}
		}
		state[n] = 2
	}
	for _, n := range slices.Sorted(mapsKeys(c.Services)) {
		visit(n, nil)
	}
}

func mapsKeys[V any](m map[string]V) func(func(string) bool) {
	return func(yield func(string) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}

// TestComposeBuild checks that every build context has its Dockerfile, that
// the Dockerfile builds ./cmd/pipeline without cgo into a static image with
// entrypoint pipeline, and that api and worker run the right subcommands.
func TestComposeBuild(t *testing.T) {
	root := repoRoot(t)
	c := loadCompose(t)
	for _, name := range pipelineServices(c) {
		s := c.Services[name]
		t.Run(name, func(t *testing.T) {
			dockerfile := s.Build.Dockerfile
			if dockerfile == "" {
				dockerfile = "Dockerfile"
			}
			path := filepath.Join(root, s.Build.Context, dockerfile)
			b, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("build context %q: %v", s.Build.Context, err)
			}
			df := string(b)
			for _, want := range []struct{ re, why string }{
				{`(?m)^FROM\s+\S+\s+AS\s+\w+`, "a named build stage (multi-stage)"},
				{`CGO_ENABLED=0`, "a static build (CGO_ENABLED=0)"},
				{`go build\b[^\n]*\./cmd/pipeline`, "go build of ./cmd/pipeline"},
				{`(?m)^FROM\s+(scratch|gcr\.io/distroless/static\S*)\s*$`, "a scratch or distroless/static final stage"},
				{`(?m)^COPY\s+--from=`, "the binary copied from the build stage"},
				{`(?m)^ENTRYPOINT\s+\["[^"]*/?pipeline"\]`, "ENTRYPOINT [\".../pipeline\"]"},
			} {
				if !regexp.MustCompile(want.re).MatchString(df) {
					t.Errorf("%s: want %s (no match for %s)", path, want.why, want.re)
				}
			}
			if base := regexp.MustCompile(`(?m)^FROM\s+golang:(\S+)`).FindStringSubmatch(df); base != nil {
				if goVersion := goModVersion(t, root); !strings.HasPrefix(base[1], goVersion) {
					t.Errorf("%s: builds with golang:%s, go.mod says go %s", path, base[1], goVersion)
				}
			}
			var cmd []string
			if err := s.Command.Decode(&cmd); err != nil || len(cmd) == 0 {
				t.Fatalf("%s: command must be a list naming the subcommand: %v", name, err)
			}
			if cmd[0] != name {
				t.Errorf("%s: runs `pipeline %s`, want `pipeline %s`", name, cmd[0], name)
			}
			// `pipeline api` listens on 127.0.0.1:8080 unless told otherwise,
			// which no other container could reach.
			if name == "api" {
				i := slices.Index(cmd, "--addr")
				if i < 0 || i+1 >= len(cmd) || (cmd[i+1] != ":8080" && cmd[i+1] != "0.0.0.0:8080") {
					t.Errorf("api: command %q must listen on every interface: --addr :8080", cmd)
				}
			}
			if _, err := os.Stat(filepath.Join(root, "cmd", "pipeline")); err != nil {
				t.Logf("cmd/pipeline not there yet: %v", err)
			}
		})
	}
}

// goModVersion returns go.mod's go directive as major.minor.
func goModVersion(t *testing.T, root string) string {
	b, err := os.ReadFile(filepath.Join(root, "go.mod"))
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^go\s+(\d+)\.(\d+)`).FindSubmatch(b)
	if m == nil {
		t.Fatal("go.mod: no go directive")
	}
	return string(m[1]) + "." + string(m[2])
}

// TestComposeMounts checks that files mounted from the repository exist and
// that the collector's configuration is consistent: its pipelines use
// defined components, it receives OTLP/HTTP on the port the pipeline sends
// to, and it exports to the trace UI's service.
func TestComposeMounts(t *testing.T) {
	root := repoRoot(t)
	c := loadCompose(t)
	for name, s := range c.Services {
		for _, v := range s.Volumes {
			if strings.HasPrefix(v.Source, "./") {
				if _, err := os.Stat(filepath.Join(root, v.Source)); err != nil {
					t.Errorf("service %s mounts %s: %v", name, v.Source, err)
				}
			}
		}
	}

	b, err := os.ReadFile(filepath.Join(root, "deploy", "otel-collector.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var cfg struct {
		Receivers  map[string]map[string]any `yaml:"receivers"`
		Processors map[string]any            `yaml:"processors"`
		Exporters  map[string]map[string]any `yaml:"exporters"`
		Extensions map[string]any            `yaml:"extensions"`
		Service    struct {
			Extensions []string `yaml:"extensions"`
			Pipelines  map[string]struct {
				Receivers  []string `yaml:"receivers"`
				Processors []string `yaml:"processors"`
				Exporters  []string `yaml:"exporters"`
			} `yaml:"pipelines"`
		} `yaml:"service"`
	}
	if err := yaml.Unmarshal(b, &cfg); err != nil {
		t.Fatalf("deploy/otel-collector.yaml: %v", err)
	}
	if _, ok := cfg.Service.Pipelines["traces"]; !ok {
		t.Error("otel-collector.yaml: no traces pipeline")
	}
	for pname, p := range cfg.Service.Pipelines {
		for _, r := range p.Receivers {
			if _, ok := cfg.Receivers[r]; !ok {
				t.Errorf("pipeline %s: receiver %q not defined", pname, r)
			}
		}
		for _, r := range p.Processors {
			if _, ok := cfg.Processors[r]; !ok {
				t.Errorf("pipeline %s: processor %q not defined", pname, r)
			}
		}
		for _, r := range p.Exporters {
			if _, ok := cfg.Exporters[r]; !ok {
				t.Errorf("pipeline %s: exporter %q not defined", pname, r)
			}
		}
	}
	for _, e := range cfg.Service.Extensions {
		if _, ok := cfg.Extensions[e]; !ok {
			t.Errorf("service: extension %q not defined", e)
		}
	}
	// OTLP/HTTP on 4318, where the pipeline sends (OTEL_EXPORTER_OTLP_ENDPOINT).
	otlp, _ := yaml.Marshal(cfg.Receivers["otlp"])
	if !strings.Contains(string(otlp), ":4318") {
		t.Errorf("otel-collector.yaml: the otlp receiver does not listen for HTTP on :4318:\n%s", otlp)
	}
	// Every exporter endpoint that names a compose service names one that
	// listens on that port.
	for ename, e := range cfg.Exporters {
		ep, _ := e["endpoint"].(string)
		if ep == "" {
			continue
		}
		if !strings.Contains(ep, "://") {
			ep = "http://" + ep
		}
		u, err := url.Parse(ep)
		if err != nil {
			t.Errorf("exporter %s: endpoint %q: %v", ename, ep, err)
			continue
		}
		s, ok := c.Services[u.Hostname()]
		if !ok {
			t.Errorf("exporter %s: endpoint host %q is no compose service", ename, u.Hostname())
			continue
		}
		if port := u.Port(); port != "" && !listensOn(s, port) {
			t.Errorf("exporter %s: service %s neither publishes nor exposes port %s", ename, u.Hostname(), port)
		}
	}
	// Prometheus scrape targets are compose services on ports they listen on.
	if prom, ok := cfg.Receivers["prometheus"]; ok {
		out, _ := yaml.Marshal(prom)
		for _, m := range regexp.MustCompile(`([a-z0-9-]+):(\d+)`).FindAllStringSubmatch(string(out), -1) {
			if s, ok := c.Services[m[1]]; ok {
				if !listensOn(s, m[2]) {
					t.Errorf("prometheus receiver scrapes %s:%s; %s does not listen there", m[1], m[2], m[1])
				}
			} else {
				t.Errorf("prometheus receiver scrapes %s:%s; no such compose service", m[1], m[2])
			}
		}
	}
}

func servicesNode(raw map[string]yaml.Node) *yaml.Node {
	n := raw["services"]
	return &n
}
