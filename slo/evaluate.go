package slo

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/acme/pipeline/internal/kafkaread"
	"github.com/acme/pipeline/warehouse"
)

// EvaluatorConfig holds the evaluator's clients.
type EvaluatorConfig struct {
	Store *warehouse.Store // required
	// Kafka measures the records waiting in the topic; nil: not measured
	// (freshness then relies on the loads alone).
	Kafka *kafkaread.Client
	// Webhook, when set, receives every alert as it opens and resolves
	// (POST, JSON; see Notification). PIPELINE_ALERT_WEBHOOK.
	Webhook string
	// Shards reads the stream's shards for the stream_running SLO; nil: not
	// measured.
	Shards ShardLister
	// StatusURL is put in notifications so that people find /status.
	StatusURL string
	HTTP      *http.Client // default: 10s timeout
	Log       *slog.Logger
}

// Evaluator measures the SLOs and opens and resolves alerts.
type Evaluator struct {
	cfg EvaluatorConfig
}

// NewEvaluator checks cfg and registers the SLO metrics.
func NewEvaluator(cfg EvaluatorConfig) (*Evaluator, error) {
	if cfg.Store == nil {
		return nil, fmt.Errorf("slo: EvaluatorConfig.Store is required")
	}
	if cfg.HTTP == nil {
		cfg.HTTP = &http.Client{Timeout: 10 * time.Second}
	}
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	if err := registerMetrics(cfg.Store); err != nil {
		return nil, err
	}
	return &Evaluator{cfg: cfg}, nil
}

// Result is one evaluation.
type Result struct {
	At           time.Time               `json:"at"`
	Measurements []warehouse.Measurement `json:"measurements"`
	Opened       []warehouse.Alert       `json:"opened,omitempty"`
	Resolved     []warehouse.Alert       `json:"resolved,omitempty"`
	Open         []warehouse.Alert       `json:"open,omitempty"`
	Pruned       int64                   `json:"pruned,omitempty"`
}

// Evaluate measures every SLO at at, stores the measurements (a rerun for
// the same at keeps the first), applies the alert policies and prunes what
// is older than the retention. at comes from the workflow, so a retried
// activity measures the same moment.
func (e *Evaluator) Evaluate(ctx context.Context, c Config, at time.Time) (Result, error) {
	if err := c.Validate(); err != nil {
		return Result{}, err
	}
	c = c.Defaults()
	at = at.UTC().Truncate(time.Second)
	res := Result{At: at}
	fresh, err := e.freshness(ctx, c, at)
	if err != nil {
		return res, err
	}
	complete, errRate, err := e.completeness(ctx, c, at)
	if err != nil {
		return res, err
	}
	res.Measurements = []warehouse.Measurement{fresh, complete, errRate}
	running, ok, err := e.streamRunning(ctx, c, at)
	if err != nil {
		return res, err
	}
	if ok {
		res.Measurements = append(res.Measurements, running)
	}
	if err := e.cfg.Store.RecordMeasurements(ctx, res.Measurements); err != nil {
		return res, err
	}
	if c.Alerts {
		if err := e.alert(ctx, c, at, &res); err != nil {
			return res, err
		}
	}
	if res.Open, err = e.cfg.Store.OpenAlerts(ctx); err != nil {
		return res, err
	}
	if res.Pruned, err = e.cfg.Store.PruneMonitoring(ctx, at.Add(-time.Duration(c.RetentionDays)*24*time.Hour)); err != nil {
		return res, err
	}
	return res, nil
}

// waitingRecord is the oldest record of a partition that gold does not
// have yet.
type waitingRecord struct {
	Partition int32
	Offset    int64 // the next offset to load: where data stopped
	Since     time.Time
	Lag       int64
}

// waiting reads, for every partition behind, the Kafka timestamp of the
// record at its stored offset; oldest first.
func (e *Evaluator) waiting(ctx context.Context, topic string) ([]waitingRecord, error) {
	if e.cfg.Kafka == nil {
		return nil, nil
	}
	stored, err := e.cfg.Store.StreamOffsets(ctx, topic)
	if err != nil {
		return nil, err
	}
	positions, err := e.cfg.Kafka.Positions(ctx, topic, stored)
	if err != nil {
		return nil, fmt.Errorf("slo: positions in %s: %w", topic, err)
	}
	var out []waitingRecord
	for _, pos := range positions {
		next := max(pos.Next, pos.First) // retention may have deleted the stored offset
		if pos.End <= next {
			continue
		}
		batch, err := e.cfg.Kafka.Read(ctx, kafkaread.ReadRequest{Topic: topic, Partition: pos.Partition, Offset: next, MaxRecords: 1, Wait: 2 * time.Second})
		if err != nil {
			return nil, fmt.Errorf("slo: record at %s partition %d offset %d: %w", topic, pos.Partition, next, err)
		}
		w := waitingRecord{Partition: pos.Partition, Offset: next, Lag: pos.End - next}
		if len(batch.Records) > 0 {
			w.Since = batch.Records[0].Time.UTC()
		}
		out = append(out, w)
	}
	slices.SortFunc(out, func(a, b waitingRecord) int { return a.Since.Compare(b.Since) })
	return out, nil
}

func (e *Evaluator) freshness(ctx context.Context, c Config, at time.Time) (warehouse.Measurement, error) {
	m := warehouse.Measurement{SLO: Freshness, MeasuredAt: at, Objective: c.FreshnessObjective.Seconds()}
	lat, err := e.cfg.Store.LiveLatency(ctx, at.Add(-c.Interval), at)
	if err != nil {
		return m, err
	}
	var parts []string
	m.Value = lat.P95.Seconds()
	if lat.Loads > 0 {
		parts = append(parts, fmt.Sprintf("p95 %s (max %s) over %d live loads (%d rows)",
			lat.P95.Round(time.Millisecond), lat.Max.Round(time.Millisecond), lat.Loads, lat.Rows))
	} else {
		parts = append(parts, "no live load in the last "+c.Interval.String())
	}
	kctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	waiting, werr := e.waiting(kctx, c.Topic)
	cancel()
	switch {
	case werr != nil:
		parts = append(parts, "records waiting in Kafka unknown: "+werr.Error())
	case len(waiting) == 0:
		parts = append(parts, "nothing waiting in Kafka")
	default:
		oldest := waiting[0]
		var lag int64
		for _, w := range waiting {
			lag += w.Lag
		}
		if !oldest.Since.IsZero() {
			age := max(0, at.Sub(oldest.Since))
			m.Value = max(m.Value, age.Seconds())
			parts = append(parts, fmt.Sprintf("data stopped at partition %d offset %d: oldest waiting record arrived %s (%s ago); lag %d on %s",
				oldest.Partition, oldest.Offset, oldest.Since.Format(time.RFC3339), age.Round(time.Second), lag, partitionList(waiting)))
		}
	}
	m.Good = m.Value <= m.Objective
	m.Detail = strings.Join(parts, "; ")
	return m, nil
}

func partitionList(ws []waitingRecord) string {
	ps := make([]int, len(ws))
	for i, w := range ws {
		ps[i] = int(w.Partition)
	}
	slices.Sort(ps)
	s := make([]string, len(ps))
	for i, p := range ps {
		s[i] = fmt.Sprintf("p%d", p)
	}
	return strings.Join(s, ",")
}

// completeness judges the hours that ended more than Lateness before at;
// error_rate is over the current and the previous hour.
func (e *Evaluator) completeness(ctx context.Context, c Config, at time.Time) (complete, rate warehouse.Measurement, err error) {
	complete = warehouse.Measurement{SLO: Completeness, MeasuredAt: at, Objective: 0}
	rate = warehouse.Measurement{SLO: ErrorRate, MeasuredAt: at, Objective: c.ErrorRateObjective}
	cut := at.Add(-c.Lateness).Truncate(time.Hour) // hours before cut are judged
	from := cut.Add(-time.Duration(c.CompletenessHours) * time.Hour)
	to := at.Truncate(time.Hour).Add(time.Hour)
	hours, err := e.cfg.Store.Accounting(ctx, c.Topic, from, to, from, cut)
	if err != nil {
		return complete, rate, err
	}
	var problems []string
	var records, quarantined int64
	for _, h := range hours {
		if !h.Hour.Before(at.Truncate(time.Hour).Add(-time.Hour)) {
			records += h.Records
			quarantined += h.Quarantined
		}
		if !h.Hour.Before(cut) {
			continue
		}
		missing, where := Missing(h)
		if missing > 0 {
			complete.Value += float64(missing)
			problems = append(problems, fmt.Sprintf("hour %s: %s", h.Hour.Format("2006-01-02T15Z"), where))
		}
	}
	complete.Good = complete.Value == 0
	if complete.Good {
		complete.Detail = fmt.Sprintf("%d hours before %s complete through every layer", c.CompletenessHours, cut.Format("15:04Z"))
	} else {
		complete.Detail = strings.Join(problems, "; ")
	}
	if records > 0 {
		rate.Value = float64(quarantined) / float64(records)
	}
	rate.Good = rate.Value <= rate.Objective
	rate.Detail = fmt.Sprintf("%d of %d records quarantined since %s", quarantined, records,
		at.Truncate(time.Hour).Add(-time.Hour).Format("15:04Z"))
	return complete, rate, nil
}

// Missing compares one hour's layers and names where events are missing.
func Missing(h warehouse.HourAccounting) (int64, string) {
	var n int64
	var where []string
	if h.Accepted >= 0 && h.Records < h.Accepted {
		d := h.Accepted - h.Records
		n += d
		where = append(where, fmt.Sprintf("%d of %d accepted events not in bronze (still in Kafka, or lost there)", d, h.Accepted))
	}
	if h.QuarantineIndex < h.Quarantined {
		d := h.Quarantined - h.QuarantineIndex
		n += d
		where = append(where, fmt.Sprintf("%d quarantined records missing from pipeline.quarantine", d))
	}
	if h.Gold >= 0 && h.Gold < h.Inserted {
		d := h.Inserted - h.Gold
		n += d
		where = append(where, fmt.Sprintf("%d of %d loaded rows missing from gold.events", d, h.Inserted))
	}
	return n, strings.Join(where, ", ")
}

// Notification is the webhook's JSON body.
type Notification struct {
	Status    string          `json:"status"` // firing or resolved
	Alert     warehouse.Alert `json:"alert"`
	StatusURL string          `json:"status_url,omitempty"`
}

func (e *Evaluator) alert(ctx context.Context, c Config, at time.Time, res *Result) error {
	longest := time.Duration(0)
	for _, p := range c.Policies {
		longest = max(longest, p.Long)
	}
	for _, name := range Names {
		// stream_running's policy reads the measurement of this moment only.
		from, decide := at.Add(-longest), func(ms []warehouse.Measurement) Decision { return Decide(ms, at, c) }
		if name == StreamRunning {
			from, decide = at, decideNow
		}
		ms, err := e.cfg.Store.Measurements(ctx, name, from, at)
		if err != nil {
			return err
		}
		d := decide(ms)
		switch {
		case d.Fire:
			latest := ms[len(ms)-1]
			a, opened, err := e.cfg.Store.OpenAlert(ctx, warehouse.Alert{SLO: name, Severity: d.Policy.Severity, OpenedAt: at,
				Summary:   fmt.Sprintf("SLO %s breached (value %.4g, objective %.4g): %s", name, latest.Value, latest.Objective, latest.Detail),
				BurnShort: d.BurnShort, BurnLong: d.BurnLong})
			if err != nil {
				return err
			}
			if opened {
				res.Opened = append(res.Opened, a)
				e.cfg.Log.Error("SLO alert firing", "alert_id", a.ID, "slo", name, "severity", a.Severity,
					"burn_short", d.BurnShort, "burn_long", d.BurnLong, "short_window", d.Policy.Short, "long_window", d.Policy.Long,
					"summary", a.Summary)
			}
			if a.NotifiedAt.IsZero() {
				e.notify(ctx, "firing", a, at)
			}
		case d.Recovered:
			a, resolved, err := e.cfg.Store.ResolveAlert(ctx, name, at)
			if err != nil {
				return err
			}
			if resolved {
				res.Resolved = append(res.Resolved, a)
				e.cfg.Log.Info("SLO alert resolved", "alert_id", a.ID, "slo", name, "opened_at", a.OpenedAt, "open_for", at.Sub(a.OpenedAt))
				e.notify(ctx, "resolved", a, at)
			}
		}
	}
	return nil
}

// notify posts to the webhook; a failure is recorded on the alert and
// retried at the next evaluation while the alert is firing.
func (e *Evaluator) notify(ctx context.Context, status string, a warehouse.Alert, at time.Time) {
	if e.cfg.Webhook == "" {
		return
	}
	body, _ := json.Marshal(Notification{Status: status, Alert: a, StatusURL: e.cfg.StatusURL})
	err := func() error {
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, e.cfg.Webhook, bytes.NewReader(body))
		if err != nil {
			return err
		}
		req.Header.Set("Content-Type", "application/json")
		resp, err := e.cfg.HTTP.Do(req)
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode/100 != 2 {
			return fmt.Errorf("webhook answered %s", resp.Status)
		}
		return nil
	}()
	if err != nil {
		err = redactWebhook(err, e.cfg.Webhook)
		e.cfg.Log.Warn("alert webhook failed; retried at the next evaluation while firing", "alert_id", a.ID, "status", status, "error", err)
	}
	if status == "firing" {
		if merr := e.cfg.Store.MarkNotified(ctx, a.ID, at, err); merr != nil {
			e.cfg.Log.Warn("could not record the webhook outcome", "alert_id", a.ID, "error", merr)
		}
	}
}

// redactWebhook takes the webhook's URL out of err's text: Go's HTTP errors
// quote the URL they failed on, and webhook URLs carry their secret in the
// path (Slack's /services/T…/B…/TOKEN) or the query. What stays, for the
// log line and pipeline.alerts.notify_error that /status shows, is the
// scheme and host.
func redactWebhook(err error, webhook string) error {
	if err == nil || webhook == "" {
		return err
	}
	shown := "(the webhook URL)"
	if u, perr := url.Parse(webhook); perr == nil && u.Host != "" {
		shown = u.Scheme + "://" + u.Host + "/…"
	}
	msg := err.Error()
	if u, perr := url.Parse(webhook); perr == nil {
		// The forms Go prints: as given, and re-encoded.
		msg = strings.ReplaceAll(msg, u.String(), shown)
		if u.User != nil {
			msg = strings.ReplaceAll(msg, u.Redacted(), shown)
		}
	}
	msg = strings.ReplaceAll(msg, webhook, shown)
	return errors.New(msg)
}
