package slo

import (
	"strings"
	"testing"
	"time"

	"github.com/acme/pipeline/warehouse"
)

// series makes one measurement per second ending at end: goods[i] is the
// measurement at end − (len−1−i) s.
func series(end time.Time, goods ...bool) []warehouse.Measurement {
	ms := make([]warehouse.Measurement, len(goods))
	for i, g := range goods {
		ms[i] = warehouse.Measurement{SLO: Freshness, MeasuredAt: end.Add(-time.Duration(len(goods)-1-i) * time.Second), Good: g}
	}
	return ms
}

func TestBurnAndDecide(t *testing.T) {
	at := time.Date(2026, 11, 24, 10, 0, 0, 0, time.UTC)
	page := Policy{Severity: "page", Short: 5 * time.Second, Long: 60 * time.Second, Factor: 14.4}
	ticket := Policy{Severity: "ticket", Short: 10 * time.Second, Long: 60 * time.Second, Factor: 6}
	cfg := Config{Policies: []Policy{page, ticket}}
	good, bad := true, false
	rep := func(v bool, n int) []bool {
		out := make([]bool, n)
		for i := range out {
			out[i] = v
		}
		return out
	}
	cat := func(parts ...[]bool) []bool {
		var out []bool
		for _, p := range parts {
			out = append(out, p...)
		}
		return out
	}
	tests := []struct {
		name      string
		goods     []bool
		fire      bool
		severity  string
		recovered bool
	}{
		{"no measurements", nil, false, "", false},
		{"all good", rep(good, 60), false, "", true},
		{"first measurement bad", []bool{bad}, true, "page", false},
		// 1 bad of 60: long burn 1.67 — a blip does not page.
		{"one blip after an hour", cat(rep(good, 59), []bool{bad}), false, "", false},
		// 9 bad of 60 = 15% → 15× over the long window, 100× over the short.
		{"nine bad minutes page", cat(rep(good, 51), rep(bad, 9)), true, "page", false},
		// 4 bad of 60, spread so the last 5 s hold one: ticket, not page.
		{"slow burn tickets", cat(rep(good, 50), []bool{bad, good, bad, good, bad, good, good, good, good, bad}), true, "ticket", false},
		{"page window clean, ticket still burning", cat(rep(bad, 20), rep(good, 5)), true, "ticket", false},
		{"recovered once no policy burns", cat(rep(bad, 20), rep(good, 10)), false, "", true},
		{"bad inside the short window is not recovered", cat(rep(bad, 20), rep(good, 4)), true, "page", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := Decide(series(at, tt.goods...), at, cfg)
			if d.Fire != tt.fire || d.Policy.Severity != tt.severity || d.Recovered != tt.recovered {
				t.Fatalf("Decide = %+v, want fire %v severity %q recovered %v", d, tt.fire, tt.severity, tt.recovered)
			}
		})
	}
}

func TestMissing(t *testing.T) {
	tests := []struct {
		name string
		h    warehouse.HourAccounting
		want int64
		say  string
	}{
		{"complete", warehouse.HourAccounting{Accepted: 10, Records: 10, Quarantined: 1, Cleaned: 9, Inserted: 8, QuarantineIndex: 1, Gold: 8}, 0, ""},
		{"other producers: no API count", warehouse.HourAccounting{Accepted: -1, Records: 10, Gold: -1}, 0, ""},
		{"more in bronze than accepted (other producers too)", warehouse.HourAccounting{Accepted: 5, Records: 10, Gold: -1}, 0, ""},
		{"stuck in Kafka", warehouse.HourAccounting{Accepted: 10, Records: 7, Gold: -1}, 3, "3 of 10 accepted events not in bronze"},
		{"quarantine index behind", warehouse.HourAccounting{Accepted: -1, Records: 5, Quarantined: 2, QuarantineIndex: 1, Gold: -1}, 1, "1 quarantined records missing from pipeline.quarantine"},
		{"gold lost rows", warehouse.HourAccounting{Accepted: -1, Records: 5, Cleaned: 5, Inserted: 5, Gold: 3}, 2, "2 of 5 loaded rows missing from gold.events"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n, where := Missing(tt.h)
			if n != tt.want || !strings.Contains(where, tt.say) {
				t.Fatalf("Missing = %d %q, want %d %q", n, where, tt.want, tt.say)
			}
		})
	}
}

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		name string
		cfg  Config
		want string
	}{
		{"defaults", Config{}, ""},
		{"budget", Config{Budget: 1}, "budget 1"},
		{"error rate", Config{ErrorRateObjective: 2}, "error_rate_objective 2"},
		{"inverted windows", Config{Policies: []Policy{{Severity: "page", Short: time.Hour, Long: time.Minute, Factor: 1}}}, "policies[0] (page)"},
		{"severity", Config{Policies: []Policy{{Severity: "sms", Short: time.Minute, Long: time.Hour, Factor: 1}}}, `severity "sms"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.cfg.Validate()
			if (err == nil) != (tt.want == "") || (err != nil && !strings.Contains(err.Error(), tt.want)) {
				t.Fatalf("Validate = %v, want %q", err, tt.want)
			}
		})
	}
}
