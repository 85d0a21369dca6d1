package shards

import (
	"testing"

	failurepb "go.temporal.io/api/failure/v1"

	"github.com/acme/pipeline/warehouse"
)

func TestParse(t *testing.T) {
	tests := []struct {
		id, topic     string
		shard, shards int
		ok            bool
	}{
		{"stream-compaction-events-0-of-1", "events", 0, 1, true},
		{"stream-compaction-events-2-of-3", "events", 2, 3, true},
		{"stream-compaction-click-stream-1-of-4", "click-stream", 1, 4, true},
		{"stream-compaction-click-stream-1-of-4", "click", 0, 0, false},
		{"stream-compaction-events-3-of-3", "events", 0, 0, false},
		{"stream-compaction-events-01-of-3", "events", 0, 0, false},
		{"stream-compaction-events-x-of-3", "events", 0, 0, false},
		{"backfill-2026-11-01-2026-11-01", "events", 0, 0, false},
	}
	for _, tt := range tests {
		shard, shards, ok := Parse(tt.id, tt.topic)
		if shard != tt.shard || shards != tt.shards || ok != tt.ok {
			t.Errorf("Parse(%q, %q) = %d, %d, %v; want %d, %d, %v", tt.id, tt.topic, shard, shards, ok, tt.shard, tt.shards, tt.ok)
		}
		if ok && WorkflowID(tt.topic, shard, shards) != tt.id {
			t.Errorf("WorkflowID does not give %q back", tt.id)
		}
	}
}

func TestFailureText(t *testing.T) {
	chain := func(msgs ...string) *failurepb.Failure {
		var f *failurepb.Failure
		for i := len(msgs) - 1; i >= 0; i-- {
			f = &failurepb.Failure{Message: msgs[i], Cause: f}
		}
		return f
	}
	tests := []struct {
		f    *failurepb.Failure
		want string
	}{
		{nil, ""},
		{chain("boom"), "boom"},
		{chain("activity error", "topic events partition 0: next offset 12 is beyond the end (0)"),
			"activity error: topic events partition 0: next offset 12 is beyond the end (0)"},
		{chain("a", "a", "b"), "a: b"},
		{chain("a", "", "b"), "a: b"},
	}
	for _, tt := range tests {
		if got := failureText(tt.f); got != tt.want {
			t.Errorf("failureText = %q, want %q", got, tt.want)
		}
	}
}

func TestWholeCut(t *testing.T) {
	sh := func(shard, shards int) run {
		return run{StreamShard: warehouse.StreamShard{WorkflowID: WorkflowID("events", shard, shards), Shard: shard, Shards: shards, State: warehouse.ShardRunning}}
	}
	runs := func(rs ...run) map[string]run {
		m := map[string]run{}
		for _, r := range rs {
			m[r.WorkflowID] = r
		}
		return m
	}
	tests := []struct {
		name string
		runs map[string]run
		ok   bool
	}{
		{"none running", runs(), false},
		{"every shard of one cut", runs(sh(1, 3), sh(0, 3), sh(2, 3)), true},
		{"a shard missing", runs(sh(0, 3), sh(2, 3)), false},
		{"two cuts", runs(sh(0, 1), sh(0, 2), sh(1, 2)), false},
	}
	for _, tt := range tests {
		out, ok := wholeCut(tt.runs)
		if ok != tt.ok {
			t.Errorf("%s: ok %v", tt.name, ok)
		}
		for i, s := range out {
			if s.Shard != i {
				t.Errorf("%s: shard %d at %d", tt.name, s.Shard, i)
			}
		}
	}
}
