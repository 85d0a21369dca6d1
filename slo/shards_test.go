package slo

import (
	"strings"
	"testing"
	"time"

	"github.com/acme/pipeline/warehouse"
)

func TestShardsMeasurement(t *testing.T) {
	at := time.Date(2026, 12, 2, 10, 0, 0, 0, time.UTC)
	running := warehouse.StreamShard{Shard: 0, Shards: 2, WorkflowID: "stream-compaction-events-0-of-2", State: warehouse.ShardRunning}
	failed := warehouse.StreamShard{Shard: 1, Shards: 2, WorkflowID: "stream-compaction-events-1-of-2", State: "failed",
		Since: at.Add(-time.Minute), Reason: "activity error: offset beyond the end"}
	tests := []struct {
		name   string
		ss     []warehouse.StreamShard
		value  float64
		good   bool
		detail []string
	}{
		{"all running", []warehouse.StreamShard{running, running}, 0, true, []string{"all 2 shards of topic events running"}},
		{"one failed", []warehouse.StreamShard{running, failed}, 1, false,
			[]string{"shard 1 of 2 (stream-compaction-events-1-of-2) failed at 2026-12-02T09:59:00Z: activity error: offset beyond the end", "pipeline provision"}},
		{"never started", nil, 1, false, []string{"no StreamCompaction workflow of topic events", "pipeline provision"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := shardsMeasurement("events", tt.ss, at)
			if m.SLO != StreamRunning || m.Value != tt.value || m.Good != tt.good || m.Objective != 0 {
				t.Fatalf("%+v", m)
			}
			for _, d := range tt.detail {
				if !strings.Contains(m.Detail, d) {
					t.Errorf("detail %q lacks %q", m.Detail, d)
				}
			}
		})
	}
}

// TestDecideNow: the stream_running alert follows the latest measurement,
// with no error budget: one bad measurement pages.
func TestDecideNow(t *testing.T) {
	at := time.Date(2026, 12, 2, 10, 0, 0, 0, time.UTC)
	m := func(good bool, ago time.Duration) warehouse.Measurement {
		return warehouse.Measurement{SLO: StreamRunning, MeasuredAt: at.Add(-ago), Good: good}
	}
	tests := []struct {
		name      string
		ms        []warehouse.Measurement
		fire, rec bool
	}{
		{"nothing measured", nil, false, false},
		{"one bad after many good", []warehouse.Measurement{m(true, 3*time.Minute), m(true, 2*time.Minute), m(false, 0)}, true, false},
		{"good again", []warehouse.Measurement{m(false, time.Minute), m(true, 0)}, false, true},
	}
	for _, tt := range tests {
		d := decideNow(tt.ms)
		if d.Fire != tt.fire || d.Recovered != tt.rec || (d.Fire && d.Policy.Severity != "page") {
			t.Errorf("%s: %+v", tt.name, d)
		}
	}
}
