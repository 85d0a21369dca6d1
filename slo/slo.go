// Package slo measures the pipeline's service level objectives and decides
// when they page. Three SLOs, each measured once per evaluation (the
// SLOMonitor workflow runs one a minute) and stored in
// pipeline.slo_measurements:
//
//   - freshness: seconds from the event API's 202 to the row being visible
//     in gold: the largest per-load p95 of the live loads since the last
//     evaluation, or the age of the oldest record still waiting in Kafka
//     when that is larger (a stopped stream loads nothing, so its p95 alone
//     would look fine).
//   - completeness: events missing, per arrival hour, between the layers:
//     accepted by the API = consumed from Kafka into bronze = quarantined +
//     cleaned into silver, and the stream's inserted rows = gold.events rows
//     of the hour. Only hours that ended more than the allowed lateness ago
//     count; the detail names the hour and the layer where events are
//     missing.
//   - error_rate: the quarantined share of the records that arrived in the
//     last hour.
//   - stream_running: the stream's shards (StreamCompaction workflows) that
//     are not running, read from Temporal (shards.go); it pages at the first
//     bad measurement, with no error budget.
//
// A measurement is good when its value is within the objective. Alerts
// follow the multiwindow burn-rate policy of the Google SRE workbook: the
// error budget is 1% of measurements; a page opens when the budget burns
// 14.4 times too fast over both 1h and 5m, a ticket at 6 times over 6h and
// 30m. An alert stays open, without firing again, until the short window
// of the page policy holds no bad measurement: once per incident.
package slo

import (
	"fmt"
	"time"

	"github.com/acme/pipeline/internal/config"
	"github.com/acme/pipeline/warehouse"
)

// The SLOs.
const (
	Freshness    = "freshness"
	Completeness = "completeness"
	ErrorRate    = "error_rate"
)

// Names lists the SLOs in display order.
var Names = []string{Freshness, Completeness, ErrorRate, StreamRunning}

// Config is what the monitor measures against. Zero values take the
// defaults of Defaults.
type Config struct {
	// Topic is the event topic. Default "events".
	Topic string `json:"topic,omitempty"`
	// Interval is the time between evaluations. Default 1m.
	Interval time.Duration `json:"interval,omitempty"`
	// FreshnessObjective bounds the 202-to-gold p95. Default 60s.
	FreshnessObjective time.Duration `json:"freshness_objective,omitempty"`
	// Lateness is how long after an hour ends its events may still be
	// on their way; completeness judges an hour only after it. Default 10m.
	Lateness time.Duration `json:"lateness,omitempty"`
	// CompletenessHours is how many hours before the lateness cut-off are
	// checked at each evaluation. Default 6.
	CompletenessHours int `json:"completeness_hours,omitempty"`
	// ErrorRateObjective bounds the quarantined share. Default 0.01 (1%).
	ErrorRateObjective float64 `json:"error_rate_objective,omitempty"`
	// Budget is the share of bad measurements the SLO tolerates. Default
	// 0.01 (99% of evaluations good).
	Budget float64 `json:"budget,omitempty"`
	// Policies decide when the budget burns too fast. Default: page and
	// ticket as in the package doc.
	Policies []Policy `json:"policies,omitempty"`
	// Alerts is the insight resource's alertas: false measures and stores
	// but never opens an alert.
	Alerts bool `json:"alerts"`
	// RetentionDays is the insight resource's retencao_dias: measurements,
	// resolved alerts and hourly accounting older than this are deleted.
	// Default 30.
	RetentionDays int `json:"retention_days,omitempty"`
}

// Policy is one multiwindow burn-rate alert.
type Policy struct {
	Severity string        `json:"severity"` // page or ticket
	Short    time.Duration `json:"short"`
	Long     time.Duration `json:"long"`
	Factor   float64       `json:"factor"` // burn rate that fires, over both windows
}

// DefaultPolicies are the SRE workbook's page and ticket.
var DefaultPolicies = []Policy{
	{Severity: "page", Short: 5 * time.Minute, Long: time.Hour, Factor: 14.4},
	{Severity: "ticket", Short: 30 * time.Minute, Long: 6 * time.Hour, Factor: 6},
}

// Defaults fills zero values.
func (c Config) Defaults() Config {
	if c.Topic == "" {
		c.Topic = config.DefaultTopic
	}
	if c.Interval <= 0 {
		c.Interval = time.Minute
	}
	if c.FreshnessObjective <= 0 {
		c.FreshnessObjective = time.Minute
	}
	if c.Lateness <= 0 {
		c.Lateness = 10 * time.Minute
	}
	if c.CompletenessHours <= 0 {
		c.CompletenessHours = 6
	}
	if c.ErrorRateObjective <= 0 {
		c.ErrorRateObjective = 0.01
	}
	if c.Budget <= 0 {
		c.Budget = 0.01
	}
	if len(c.Policies) == 0 {
		c.Policies = DefaultPolicies
	}
	if c.RetentionDays <= 0 {
		c.RetentionDays = 30
	}
	return c
}

// Validate names the first impossible value.
func (c Config) Validate() error {
	c = c.Defaults()
	switch {
	case c.Budget >= 1:
		return fmt.Errorf("slo: budget %v: must be below 1", c.Budget)
	case c.ErrorRateObjective >= 1:
		return fmt.Errorf("slo: error_rate_objective %v: must be below 1", c.ErrorRateObjective)
	}
	for i, p := range c.Policies {
		if p.Short <= 0 || p.Long < p.Short || p.Factor <= 0 {
			return fmt.Errorf("slo: policies[%d] (%s): want 0 < short <= long and factor > 0, got short %s long %s factor %v",
				i, p.Severity, p.Short, p.Long, p.Factor)
		}
		if p.Severity != "page" && p.Severity != "ticket" {
			return fmt.Errorf("slo: policies[%d]: severity %q: want page or ticket", i, p.Severity)
		}
	}
	return nil
}

// Burn is the burn rate of the measurements taken in (at − window, at]:
// their bad share divided by the budget. No measurement: 0.
func Burn(ms []warehouse.Measurement, at time.Time, window time.Duration, budget float64) float64 {
	var n, bad int
	for _, m := range ms {
		if m.MeasuredAt.After(at.Add(-window)) && !m.MeasuredAt.After(at) {
			n++
			if !m.Good {
				bad++
			}
		}
	}
	if n == 0 {
		return 0
	}
	return float64(bad) / float64(n) / budget
}

// Decision is what the policies say about one SLO at one moment.
type Decision struct {
	Fire      bool
	Policy    Policy
	BurnShort float64
	BurnLong  float64
	// Recovered: no policy fires and the short window of the first policy
	// holds measurements, none bad, so an open alert resolves.
	Recovered bool
}

// Decide applies the policies, most urgent first, to ms (one SLO's
// measurements, covering at least the longest window).
func Decide(ms []warehouse.Measurement, at time.Time, c Config) Decision {
	c = c.Defaults()
	var d Decision
	for _, p := range c.Policies {
		s, l := Burn(ms, at, p.Short, c.Budget), Burn(ms, at, p.Long, c.Budget)
		if s >= p.Factor && l >= p.Factor {
			d = Decision{Fire: true, Policy: p, BurnShort: s, BurnLong: l}
			break
		}
	}
	first := c.Policies[0]
	seen := false
	for _, m := range ms {
		if m.MeasuredAt.After(at.Add(-first.Short)) && !m.MeasuredAt.After(at) {
			seen = true
		}
	}
	d.Recovered = !d.Fire && seen && Burn(ms, at, first.Short, c.Budget) == 0
	return d
}
