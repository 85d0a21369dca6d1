package ingest

import (
	"html/template"
	"net/http"
	"time"
)

var statusPage = template.Must(template.New("status").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Event API status</title>
<style>body{font-family:system-ui,sans-serif;margin:2rem}td,th{padding:.2rem 1rem .2rem 0;text-align:left}.bad{color:#b00}.ok{color:#070}</style>
</head><body>
<h1>Event API</h1>
<table>
<tr><th>Kafka</th><td>{{if .KafkaErr}}<span class="bad">not ready: {{.KafkaErr}}</span>{{else}}<span class="ok">ready</span>{{end}}</td></tr>
<tr><th>Topic</th><td>{{.Topic}}</td></tr>
<tr><th>Brokers</th><td>{{range $i, $b := .Brokers}}{{if $i}}, {{end}}{{$b}}{{end}}</td></tr>
<tr><th>Up since</th><td>{{.Started}} ({{.Uptime}})</td></tr>
<tr><th>Events accepted</th><td>{{.Accepted}}</td></tr>
<tr><th>Requests refused</th><td>{{.Refused}}</td></tr>
</table>
<p>Metrics: <a href="/metrics">/metrics</a> · readiness: <a href="/readyz">/readyz</a></p>
</body></html>
`))

// handleStatus is the minimal /status page served when Config.Status is nil.
func (s *Server) handleStatus(w http.ResponseWriter, r *http.Request) {
	data := struct {
		KafkaErr          error
		Topic             string
		Brokers           []string
		Started, Uptime   string
		Accepted, Refused int64
	}{
		KafkaErr: s.kafkaReady(r.Context()),
		Topic:    s.cfg.Topic,
		Brokers:  s.cfg.Brokers,
		Started:  s.started.UTC().Format(time.RFC3339),
		Uptime:   time.Since(s.started).Round(time.Second).String(),
		Accepted: s.accepted.Load(),
		Refused:  s.refused.Load(),
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	if err := statusPage.Execute(w, data); err != nil {
		s.log.Debug("status page", "error", err)
	}
}
