package tests

import (
	"context"
	"encoding/json"
	"go/ast"
	"go/parser"
	"go/token"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/prometheus/otlptranslator"
	otelprom "go.opentelemetry.io/otel/exporters/prometheus"
	"go.opentelemetry.io/otel/metric"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"gopkg.in/yaml.v3"
)

// instrumentSources are the files that create the pipeline's OTel
// instruments. The deploy tests read the instrument names, kinds and units
// from them, so a renamed instrument breaks the alerts' test, not production.
var instrumentSources = []string{
	"ingest/metrics.go",                // pipeline.api.*    (served by the API)
	"activities/stream_metrics.go",     // pipeline.stream.* (served by the worker)
	"activities/backfill.go",           // pipeline.backfill.* (served by the worker)
	"activities/silver_maintenance.go", // pipeline.silver.maintenance.* (served by the worker)
	"slo/metrics.go",                   // pipeline.slo.*, pipeline.gold.freshness (served by the worker)
	"worker/failures.go",               // pipeline.activity.* (served by the worker)
}

// notExported are series Prometheus makes itself, not the pipeline.
var notExported = map[string]bool{"up": true}

type instrument struct{ kind, name, unit string }

// sourceInstruments parses the Go files and returns every call of the form
// m.<Kind>("name", ..., metric.WithUnit("u")) on an OTel Meter.
func sourceInstruments(t *testing.T) []instrument {
	t.Helper()
	kinds := map[string]bool{
		"Int64Counter": true, "Float64Counter": true, "Int64UpDownCounter": true, "Float64UpDownCounter": true,
		"Int64Histogram": true, "Float64Histogram": true, "Int64Gauge": true, "Float64Gauge": true,
		"Int64ObservableCounter": true, "Float64ObservableCounter": true, "Int64ObservableGauge": true,
		"Float64ObservableGauge": true, "Int64ObservableUpDownCounter": true, "Float64ObservableUpDownCounter": true,
	}
	var out []instrument
	for _, rel := range instrumentSources {
		f, err := parser.ParseFile(token.NewFileSet(), filepath.Join(moduleRoot, rel), nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		ast.Inspect(f, func(n ast.Node) bool {
			call, ok := n.(*ast.CallExpr)
			if !ok {
				return true
			}
			sel, ok := call.Fun.(*ast.SelectorExpr)
			if !ok || !kinds[sel.Sel.Name] || len(call.Args) == 0 {
				return true
			}
			lit, ok := call.Args[0].(*ast.BasicLit)
			if !ok || lit.Kind != token.STRING {
				return true
			}
			in := instrument{kind: sel.Sel.Name}
			in.name, _ = strconv.Unquote(lit.Value)
			for _, a := range call.Args[1:] {
				if c, ok := a.(*ast.CallExpr); ok {
					if s, ok := c.Fun.(*ast.SelectorExpr); ok && s.Sel.Name == "WithUnit" && len(c.Args) == 1 {
						if l, ok := c.Args[0].(*ast.BasicLit); ok {
							in.unit, _ = strconv.Unquote(l.Value)
						}
					}
				}
			}
			out = append(out, in)
			return true
		})
	}
	if len(out) == 0 {
		t.Fatal("no instruments found in", instrumentSources)
	}
	return out
}

// exportedMetricNames registers the code's instruments on a MeterProvider
// with the same Prometheus exporter options as internal/telemetry.Setup,
// records one value on each, scrapes the handler and returns the names of
// the series (histograms give _bucket, _sum and _count).
func exportedMetricNames(t *testing.T) map[string]bool {
	t.Helper()
	ctx := context.Background()
	reg := prometheus.NewRegistry()
	exp, err := otelprom.New(otelprom.WithRegisterer(reg),
		otelprom.WithTranslationStrategy(otlptranslator.UnderscoreEscapingWithSuffixes)) // as in internal/telemetry
	if err != nil {
		t.Fatal(err)
	}
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(exp))
	defer mp.Shutdown(ctx)
	m := mp.Meter("deploy-test")
	for _, in := range sourceInstruments(t) {
		u := metric.WithUnit(in.unit)
		var err error
		switch in.kind {
		case "Int64Counter":
			var i metric.Int64Counter
			if i, err = m.Int64Counter(in.name, u); err == nil {
				i.Add(ctx, 1)
			}
		case "Float64Counter":
			var i metric.Float64Counter
			if i, err = m.Float64Counter(in.name, u); err == nil {
				i.Add(ctx, 1)
			}
		case "Int64Histogram":
			var i metric.Int64Histogram
			if i, err = m.Int64Histogram(in.name, u); err == nil {
				i.Record(ctx, 1)
			}
		case "Float64Histogram":
			var i metric.Float64Histogram
			if i, err = m.Float64Histogram(in.name, u); err == nil {
				i.Record(ctx, 1)
			}
		case "Int64Gauge":
			var i metric.Int64Gauge
			if i, err = m.Int64Gauge(in.name, u); err == nil {
				i.Record(ctx, 1)
			}
		case "Float64Gauge":
			var i metric.Float64Gauge
			if i, err = m.Float64Gauge(in.name, u); err == nil {
				i.Record(ctx, 1)
			}
		case "Int64UpDownCounter":
			var i metric.Int64UpDownCounter
			if i, err = m.Int64UpDownCounter(in.name, u); err == nil {
				i.Add(ctx, 1)
			}
		case "Float64UpDownCounter":
			var i metric.Float64UpDownCounter
			if i, err = m.Float64UpDownCounter(in.name, u); err == nil {
				i.Add(ctx, 1)
			}
		// Observable instruments report from a callback at each collection.
		case "Int64ObservableCounter":
			_, err = m.Int64ObservableCounter(in.name, u, metric.WithInt64Callback(observeInt64))
		case "Int64ObservableGauge":
			_, err = m.Int64ObservableGauge(in.name, u, metric.WithInt64Callback(observeInt64))
		case "Int64ObservableUpDownCounter":
			_, err = m.Int64ObservableUpDownCounter(in.name, u, metric.WithInt64Callback(observeInt64))
		case "Float64ObservableCounter":
			_, err = m.Float64ObservableCounter(in.name, u, metric.WithFloat64Callback(observeFloat64))
		case "Float64ObservableGauge":
			_, err = m.Float64ObservableGauge(in.name, u, metric.WithFloat64Callback(observeFloat64))
		case "Float64ObservableUpDownCounter":
			_, err = m.Float64ObservableUpDownCounter(in.name, u, metric.WithFloat64Callback(observeFloat64))
		default:
			t.Fatalf("instrument %s %q: kind not handled by this test; add it", in.kind, in.name)
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	rec := httptest.NewRecorder()
	promhttp.HandlerFor(reg, promhttp.HandlerOpts{}).ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	names := map[string]bool{}
	for _, line := range strings.Split(rec.Body.String(), "\n") {
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		name := line[:strings.IndexAny(line, "{ ")]
		if strings.HasPrefix(name, "pipeline_") {
			names[name] = true
		}
	}
	if len(names) == 0 {
		t.Fatalf("no pipeline_ series scraped:\n%s", rec.Body.String())
	}
	return names
}

func observeInt64(_ context.Context, o metric.Int64Observer) error     { o.Observe(1); return nil }
func observeFloat64(_ context.Context, o metric.Float64Observer) error { o.Observe(1); return nil }

var (
	promqlString  = regexp.MustCompile(`"(?:[^"\\]|\\.)*"`)
	promqlMatcher = regexp.MustCompile(`\{[^}]*\}`)
	promqlRange   = regexp.MustCompile(`\[[^\]]*\]`)
	promqlGroup   = regexp.MustCompile(`\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)`)
	promqlIdent   = regexp.MustCompile(`(?:^|[^A-Za-z0-9_:.])([A-Za-z_:][A-Za-z0-9_:]*)(\s*\()?`)
	promqlWords   = map[string]bool{"and": true, "or": true, "unless": true, "bool": true, "offset": true,
		"by": true, "without": true, "on": true, "ignoring": true, "group_left": true, "group_right": true, "inf": true, "nan": true}
)

// promqlMetrics returns the metric names a PromQL expression selects: the
// identifiers left once strings, label matchers, ranges, grouping clauses
// and function calls are taken out. Grafana's $__rate_interval and friends
// are ranges; $variables in matchers go with the matchers.
func promqlMetrics(expr string) []string {
	e := promqlString.ReplaceAllString(expr, `""`)
	e = promqlMatcher.ReplaceAllString(e, " ")
	e = promqlRange.ReplaceAllString(e, " ")
	e = promqlGroup.ReplaceAllString(e, " ")
	e = regexp.MustCompile(`\$\w+`).ReplaceAllString(e, " ")
	e = strings.ReplaceAll(e, "(", "( ") // a call's "(" is not left to start the next name
	var out []string
	// The identifier must not follow a digit or dot, so 1e3 and 5m are numbers, not names.
	for _, m := range promqlIdent.FindAllStringSubmatch(e, -1) {
		if m[2] != "" || promqlWords[strings.ToLower(m[1])] {
			continue // a function or aggregation, or a keyword
		}
		out = append(out, m[1])
	}
	return out
}

func TestDeployPromQLMetrics(t *testing.T) {
	for _, tc := range []struct {
		expr string
		want []string
	}{
		{`sum by (topic) (rate(pipeline_stream_records_total{outcome="quarantined"}[5m])) / sum(rate(a_total[1h])) > 0.01`,
			[]string{"pipeline_stream_records_total", "a_total"}},
		{`histogram_quantile(0.99, sum by (le) (rate(x_bucket{job=~"$job"}[$__rate_interval])))`, []string{"x_bucket"}},
		{`max by (topic, partition) (lag) > 1000 and deriv(lag[10m]) > 0`, []string{"lag", "lag"}},
		{`max(lag)`, []string{"lag"}},
		{`up{job="pipeline-api"} == 0`, []string{"up"}},
		{`rate(a_total[5m] offset 5m) > 1e3 * 14.4`, []string{"a_total"}},
	} {
		if got := promqlMetrics(tc.expr); !slices.Equal(got, tc.want) {
			t.Errorf("promqlMetrics(%q) = %q, want %q", tc.expr, got, tc.want)
		}
	}
}

type alertRule struct {
	Alert       string            `yaml:"alert"`
	Record      string            `yaml:"record"`
	Expr        string            `yaml:"expr"`
	For         string            `yaml:"for"`
	Labels      map[string]string `yaml:"labels"`
	Annotations map[string]string `yaml:"annotations"`
}

func readAlertRules(t *testing.T) []alertRule {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(moduleRoot, "deploy/prometheus/alerts.yml"))
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Groups []struct {
			Name     string      `yaml:"name"`
			Interval string      `yaml:"interval"`
			Rules    []alertRule `yaml:"rules"`
		} `yaml:"groups"`
	}
	dec := yaml.NewDecoder(strings.NewReader(string(b)))
	dec.KnownFields(true)
	if err := dec.Decode(&doc); err != nil {
		t.Fatalf("alerts.yml: %v", err)
	}
	var rules []alertRule
	for _, g := range doc.Groups {
		if g.Name == "" || len(g.Rules) == 0 {
			t.Errorf("alerts.yml: group %q: want a name and rules", g.Name)
		}
		rules = append(rules, g.Rules...)
	}
	if len(rules) == 0 {
		t.Fatal("alerts.yml: no rules")
	}
	return rules
}

var durationRE = regexp.MustCompile(`^([0-9]+(ms|s|m|h|d|w|y))+$`)

func TestDeployAlertRules(t *testing.T) {
	exported := exportedMetricNames(t)
	seen := map[string]bool{}
	for _, r := range readAlertRules(t) {
		t.Run(r.Alert, func(t *testing.T) {
			for _, c := range []struct {
				field string
				ok    bool
			}{
				{"alert", r.Alert != "" && r.Record == ""},
				{"expr", strings.TrimSpace(r.Expr) != ""},
				{"for", durationRE.MatchString(r.For)},
				{"labels.severity", slices.Contains([]string{"page", "ticket", "critical", "warning", "info"}, r.Labels["severity"])},
				{"annotations.summary", r.Annotations["summary"] != ""},
				{"annotations.description", r.Annotations["description"] != ""},
				{"unique alert name", !seen[r.Alert+"/"+r.Labels["severity"]+"/"+r.Expr]},
			} {
				if !c.ok {
					t.Errorf("rule %q: missing or bad %s", r.Alert, c.field)
				}
			}
			seen[r.Alert+"/"+r.Labels["severity"]+"/"+r.Expr] = true
			names := promqlMetrics(r.Expr)
			if len(names) == 0 {
				t.Errorf("rule %q: expr selects no metric: %s", r.Alert, r.Expr)
			}
			for _, n := range names {
				if !exported[n] && !notExported[n] {
					t.Errorf("rule %q: metric %q is not exported by the code (have %v)", r.Alert, n, keys(exported))
				}
			}
		})
	}
}

func TestDeployPrometheusConfig(t *testing.T) {
	b, err := os.ReadFile(filepath.Join(moduleRoot, "deploy/prometheus/prometheus.yml"))
	if err != nil {
		t.Fatal(err)
	}
	var cfg struct {
		RuleFiles     []string `yaml:"rule_files"`
		ScrapeConfigs []struct {
			JobName       string `yaml:"job_name"`
			MetricsPath   string `yaml:"metrics_path"`
			StaticConfigs []struct {
				Targets []string `yaml:"targets"`
			} `yaml:"static_configs"`
		} `yaml:"scrape_configs"`
	}
	if err := yaml.Unmarshal(b, &cfg); err != nil {
		t.Fatalf("prometheus.yml: %v", err)
	}
	if !slices.ContainsFunc(cfg.RuleFiles, func(f string) bool { return strings.HasSuffix(f, "alerts.yml") }) {
		t.Errorf("prometheus.yml: rule_files %q does not load alerts.yml", cfg.RuleFiles)
	}
	targets := map[string]string{}
	for _, sc := range cfg.ScrapeConfigs {
		for _, s := range sc.StaticConfigs {
			for _, tg := range s.Targets {
				targets[tg] = sc.JobName
			}
		}
		if sc.MetricsPath != "" && sc.MetricsPath != "/metrics" {
			t.Errorf("job %s: metrics_path %q, the pipeline serves /metrics", sc.JobName, sc.MetricsPath)
		}
	}
	for _, tc := range []struct{ target, job string }{
		{"api:9465", "pipeline-api"},       // cmd/pipeline/run.go runAPI: ingest serves GET /metrics on --admin-addr
		{"worker:9464", "pipeline-worker"}, // cmd/pipeline/run.go runWorker: --metrics-addr, port 9464
	} {
		if targets[tc.target] != tc.job {
			t.Errorf("prometheus.yml: target %s: job %q, want %q", tc.target, targets[tc.target], tc.job)
		}
	}
}

func TestDeployGrafanaDashboard(t *testing.T) {
	exported := exportedMetricNames(t)
	b, err := os.ReadFile(filepath.Join(moduleRoot, "deploy/grafana/pipeline-dashboard.json"))
	if err != nil {
		t.Fatal(err)
	}
	var dash struct {
		Title         string `json:"title"`
		UID           string `json:"uid"`
		SchemaVersion int    `json:"schemaVersion"`
		Panels        []struct {
			Title   string `json:"title"`
			Type    string `json:"type"`
			Targets []struct {
				Expr string `json:"expr"`
			} `json:"targets"`
		} `json:"panels"`
	}
	if err := json.Unmarshal(b, &dash); err != nil {
		t.Fatalf("pipeline-dashboard.json: %v", err)
	}
	if dash.Title == "" || dash.UID == "" || dash.SchemaVersion < 36 {
		t.Errorf("dashboard: title %q uid %q schemaVersion %d", dash.Title, dash.UID, dash.SchemaVersion)
	}
	// Each topic the issue asks for has a panel that queries its metric.
	want := map[string]string{
		"freshness":           "pipeline_stream_freshness_seconds_bucket",
		"lag per partition":   "pipeline_stream_lag",
		"records per stage":   "pipeline_stream_records_total",
		"quarantined":         "pipeline_stream_records_total",
		"api accepted":        "pipeline_api_events_accepted_total",
		"api refused":         "pipeline_api_requests_refused_total",
		"request latency p99": "pipeline_api_request_duration_seconds_bucket",
	}
	queried := map[string]bool{}
	for _, p := range dash.Panels {
		if p.Type == "row" {
			continue
		}
		if len(p.Targets) == 0 {
			t.Errorf("panel %q: no queries", p.Title)
		}
		for _, tg := range p.Targets {
			names := promqlMetrics(tg.Expr)
			if len(names) == 0 {
				t.Errorf("panel %q: query selects no metric: %q", p.Title, tg.Expr)
			}
			for _, n := range names {
				queried[n] = true
				if !exported[n] && !notExported[n] {
					t.Errorf("panel %q: metric %q is not exported by the code", p.Title, n)
				}
			}
		}
	}
	for topic, m := range want {
		if !queried[m] {
			t.Errorf("dashboard: no panel for %s queries %s", topic, m)
		}
	}
}

func keys(m map[string]bool) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}
