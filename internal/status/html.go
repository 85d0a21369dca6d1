package status

import (
	"context"
	"encoding/json"
	"fmt"
	"html/template"
	"log/slog"
	"net/http"
	"strings"
	"time"
)

// Handler serves the status page: HTML (self-contained, refreshes itself
// every 10 s, throughput as an inline SVG chart), or the Snapshot as JSON
// when the request asks for it (?format=json or Accept: application/json).
// A database failure is a 503 page that says so. Every request within
// Source.CacheFor (5 s) gets the same snapshot, taken once.
func Handler(src Source) http.Handler {
	cache := &snapshotCache{take: src.Snapshot, ttl: src.CacheFor}
	if cache.ttl == 0 {
		cache.ttl = DefaultCacheFor
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), 8*time.Second)
		defer cancel()
		snap, err := cache.get(ctx)
		w.Header().Set("Cache-Control", "no-store")
		wantJSON := r.URL.Query().Get("format") == "json" || strings.Contains(r.Header.Get("Accept"), "application/json")
		if err != nil {
			slog.Debug("status page", "error", err)
			if wantJSON {
				w.Header().Set("Content-Type", "application/json")
				w.WriteHeader(http.StatusServiceUnavailable)
				_ = json.NewEncoder(w).Encode(map[string]string{"error": err.Error()})
				return
			}
			w.Header().Set("Content-Type", "text/html; charset=utf-8")
			w.WriteHeader(http.StatusServiceUnavailable)
			_ = errorPage.Execute(w, err.Error())
			return
		}
		if wantJSON {
			w.Header().Set("Content-Type", "application/json")
			enc := json.NewEncoder(w)
			enc.SetIndent("", "  ")
			_ = enc.Encode(snap)
			return
		}
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		var b strings.Builder
		if err := page.Execute(&b, snap); err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		_, _ = w.Write([]byte(b.String()))
	})
}

// Chart is the throughput chart's geometry.
type chartBar struct {
	X, Y, W, H float64
	Label      string
	Title      string
}

const chartW, chartH = 600.0, 120.0

func (s Snapshot) chart() []chartBar {
	n := len(s.Throughput)
	if n == 0 {
		return nil
	}
	var peak int64
	for _, t := range s.Throughput {
		peak = max(peak, t.Events)
	}
	slot := chartW / float64(n)
	out := make([]chartBar, n)
	for i, t := range s.Throughput {
		h := 0.0
		if peak > 0 {
			h = float64(t.Events) / float64(peak) * (chartH - 20)
		}
		if t.Events > 0 && h < 1 {
			h = 1
		}
		out[i] = chartBar{X: float64(i)*slot + 2, W: slot - 4, H: h, Y: chartH - 14 - h,
			Label: t.Start.UTC().Format("15:04"),
			Title: fmt.Sprintf("%s–%s UTC: %d events", t.Start.UTC().Format("15:04"), t.Start.Add(BucketWidth).UTC().Format("15:04"), t.Events)}
	}
	return out
}

var funcs = template.FuncMap{
	"clock": clock,
	"age":   Age,
	"hour":  func(t time.Time) string { return t.UTC().Format("2006-01-02 15:00") },
	"took": func(l Load) string {
		if l.Finished.IsZero() {
			return "running"
		}
		return l.Duration().Round(time.Millisecond).String()
	},
	"chart":  func(s Snapshot) []chartBar { return s.chart() },
	"chartW": func() float64 { return chartW },
	"chartH": func() float64 { return chartH },
	"spark": func(s Snapshot) string {
		c := make([]int64, len(s.Throughput))
		for i, t := range s.Throughput {
			c[i] = t.Events
		}
		return Sparkline(c)
	},
	"half":     func(f float64) float64 { return f / 2 },
	"sloValue": SLOValue,
	"add":      func(a, b float64) float64 { return a + b },
	"bytes":    Bytes,
}

const css = `body{font-family:system-ui,sans-serif;margin:1.5rem 2rem;color:#222;background:#fafafa}
h1{font-size:1.4rem}h2{font-size:1.1rem;margin-top:1.8rem;border-bottom:1px solid #ddd}
table{border-collapse:collapse}td,th{padding:.2rem .9rem .2rem 0;text-align:right;font-variant-numeric:tabular-nums}
th:first-child,td:first-child{text-align:left}th{font-weight:600;color:#555}
.verdict{font-size:1.3rem;font-weight:700;padding:.6rem 1rem;border-radius:.4rem;display:inline-block}
.ok{background:#e3f6e5;color:#0a6b1d}.bad{background:#fde8e8;color:#a40e0e}.lagging{color:#a40e0e;font-weight:700}
.muted{color:#777}td.detail{text-align:left;max-width:48rem;font-size:.9rem}svg text{font-size:10px;fill:#666}svg rect.bar{fill:#3b82f6}`

var page = template.Must(template.New("status").Funcs(funcs).Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta http-equiv="refresh" content="10">
<title>{{if .OK}}OK{{else}}ALERT{{end}} · pipeline status</title>
<style>` + css + `</style>
</head><body>
<h1>Pipeline status</h1>
<p id="verdict" class="verdict {{if .OK}}ok{{else}}bad{{end}}">{{.Verdict}}</p>
<p class="muted">as of {{clock .Taken}} · topic {{.Topic}} · refreshes every 10 s · <a href="?format=json">JSON</a></p>

<h2>Alerts</h2>
{{if .Alerts}}<table id="alerts">
<tr><th>Alert</th><th>SLO</th><th>Severity</th><th>Opened</th><th>State</th><th>What broke, and where</th></tr>
{{range .Alerts}}<tr{{if .Open}} class="lagging"{{end}}><td>{{.ID}}</td><td>{{.SLO}}</td><td>{{.Severity}}</td><td>{{clock .OpenedAt}}</td><td>{{if .Open}}OPEN{{else}}resolved {{clock .ResolvedAt}}{{end}}</td><td class="detail">{{.Summary}}</td></tr>
{{end}}</table>{{else}}<p id="alerts">none</p>{{end}}

<h2>Service level objectives</h2>
{{if .SLOs}}<table id="slos">
<tr><th>SLO</th><th>Value</th><th>Objective</th><th>Met</th><th>Measured</th><th>Detail</th></tr>
{{range .SLOs}}<tr{{if not .Good}} class="lagging"{{end}}><td>{{.SLO}}</td><td>{{sloValue .SLO .Value}}</td><td>{{sloValue .SLO .Objective}}</td><td>{{if .Good}}yes{{else}}NO{{end}}</td><td>{{clock .MeasuredAt}}</td><td class="detail">{{.Detail}}</td></tr>
{{end}}</table>{{else}}<p id="slos">not measured yet (the SLOMonitor workflow starts with <code>pipeline provision</code>)</p>{{end}}

<h2>Freshness</h2>
<table id="freshness">
{{if .Freshness.NewestReceived.IsZero}}<tr><th>Newest event in gold</th><td id="freshness-age">none</td></tr>
{{else}}<tr><th>Newest event in gold</th><td id="freshness-age">{{age .Freshness.Age}} ago</td><td>received {{clock .Freshness.NewestReceived}}</td></tr>
<tr><th>Its event time</th><td></td><td>{{clock .Freshness.NewestOccurred}}</td></tr>{{end}}
<tr><th>Last live load</th><td></td><td>{{clock .Freshness.LastLoad}}</td></tr>
</table>

{{template "shards" .}}

<h2>Consumer lag</h2>
{{if .KafkaError}}<p id="lag-total" class="lagging">unknown: {{.KafkaError}}</p>
{{else}}<table id="lag">
<tr><th>Partition</th><th>End offset</th><th>Next to load</th><th>Lag</th><th>Confirmed</th></tr>
{{range .Lag}}<tr{{if .Lag}} class="lagging"{{end}}><td>{{.Partition}}</td><td>{{.End}}</td><td>{{.Next}}{{if not .Stored}}*{{end}}</td><td>{{.Lag}}</td><td>{{clock .Updated}}</td></tr>
{{end}}<tr><th>Total</th><td></td><td></td><td id="lag-total">{{.LagTotal}}</td><td></td></tr>
</table>{{end}}

<h2>Throughput: events loaded into gold, last hour</h2>
<p class="muted">{{.ThroughputTotal}} events in 5-minute buckets <span aria-hidden="true">{{spark .}}</span></p>
<svg id="throughput" xmlns="http://www.w3.org/2000/svg" width="{{chartW}}" height="{{chartH}}" viewBox="0 0 {{chartW}} {{chartH}}" role="img" aria-label="events loaded per 5 minutes">
<line x1="0" y1="{{add (chartH) -14}}" x2="{{chartW}}" y2="{{add (chartH) -14}}" stroke="#bbb"/>
{{range chart .}}<rect class="bar" x="{{.X}}" y="{{.Y}}" width="{{.W}}" height="{{.H}}"><title>{{.Title}}</title></rect>
<text x="{{add .X (half .W)}}" y="{{add (chartH) -2}}" text-anchor="middle">{{.Label}}</text>
{{end}}</svg>

<h2>Records per hour and layer</h2>
<p class="muted">bronze and quarantined by arrival hour; silver and gold by event hour (UTC)</p>
<table id="layers">
<tr><th>Hour</th><th>Bronze</th><th>Quarantined</th><th>Silver</th><th>Gold</th></tr>
{{range .Layers}}<tr><td>{{hour .Hour}}</td><td>{{.Bronze}}</td><td>{{.Quarantined}}</td><td>{{.Silver}}</td><td>{{.Gold}}</td></tr>
{{end}}</table>
{{template "silver" .}}

<h2>Completeness per arrival hour</h2>
<p class="muted">accepted by the API → consumed into bronze → quarantined + cleaned → new in gold (cleaned − new = repeated event_ids)</p>
<table id="arrivals">
<tr><th>Hour</th><th>Accepted</th><th>In bronze</th><th>Not consumed yet</th><th>Quarantined</th><th>Cleaned</th><th>New in gold</th><th>Duplicates</th></tr>
{{range .Arrivals}}<tr{{if .Waiting}} class="lagging"{{end}}><td>{{hour .Hour}}</td><td>{{if lt .Accepted 0}}-{{else}}{{.Accepted}}{{end}}</td><td>{{.Records}}</td><td>{{.Waiting}}</td><td>{{.Quarantined}}</td><td>{{.Cleaned}}</td><td>{{.Inserted}}</td><td>{{.Duplicates}}</td></tr>
{{end}}</table>
{{template "lost" .}}
{{template "incarnations" .}}
{{template "conflicts" .}}

<h2>Last loads</h2>
{{if .Loads}}<table id="loads">
<tr><th>Load</th><th>Kind</th><th>Started</th><th>Seen</th><th>Inserted</th><th>Duplicate</th><th>Objects</th><th>Took</th></tr>
{{range .Loads}}<tr><td>{{.ID}}</td><td>{{.Kind}}</td><td>{{clock .Started}}</td><td>{{.Seen}}</td><td>{{.Inserted}}</td><td>{{.Duplicate}}</td><td>{{.Sources}}</td><td>{{took .}}</td></tr>
{{end}}</table>{{else}}<p>none</p>{{end}}

{{template "rebuilding" .}}
<h2>Recent backfills</h2>
{{if .Backfills}}<table id="backfills">
<tr><th>Load</th><th>Started</th><th>Days</th><th>Deleted</th><th>Inserted</th><th>Took</th></tr>
{{range .Backfills}}<tr><td>{{.ID}}</td><td>{{clock .Started}}</td><td>{{.DayFrom}}..{{.DayTo}} {{.TimeZone}}</td><td>{{.Deleted}}</td><td>{{.Inserted}}</td><td>{{took .}}</td></tr>
{{end}}</table>{{else}}<p>none</p>{{end}}

{{template "marts" .}}
<h2>Catalog</h2>
{{if .Catalog}}<table id="catalog">
<tr><th>Kind</th><th>Name</th><th>Status</th><th>Applied</th></tr>
{{range .Catalog}}<tr><td>{{.Kind}}</td><td>{{.Name}}</td><td>{{.Status}}{{if .Error}}: {{.Error}}{{end}}</td><td>{{clock .AppliedAt}}</td></tr>
{{end}}</table>{{else}}<p>none provisioned</p>{{end}}
</body></html>
`))

var errorPage = template.Must(template.New("error").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta http-equiv="refresh" content="10">
<title>ALERT · pipeline status</title><style>` + css + `</style></head><body>
<h1>Pipeline status</h1>
<p id="verdict" class="verdict bad">UNKNOWN: the warehouse cannot be read: {{.}}</p>
</body></html>
`))
