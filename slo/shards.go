package slo

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/acme/pipeline/warehouse"
)

// StreamRunning is the fourth measurement: the stream's shards that are not
// running. It is not a ratio with an error budget: a failed or terminated
// shard loads nothing until someone starts it again, so its alert pages at
// the first bad measurement and resolves at the first good one.
const StreamRunning = "stream_running"

// ShardLister reads the stream's shards of a topic (internal/shards reads
// them from Temporal).
type ShardLister interface {
	List(ctx context.Context, topic string) ([]warehouse.StreamShard, error)
}

// restartHint tells the reader of a page how to start stopped shards again.
const restartHint = "start them again with `pipeline provision` (they resume from pipeline.stream_offsets; `temporal workflow show -w ID` has the history)"

// streamRunning measures the shards and records them for /status. ok is
// false when they could not be read (Temporal unreachable): the other SLOs
// are still measured, and this one waits for the next evaluation.
func (e *Evaluator) streamRunning(ctx context.Context, c Config, at time.Time) (m warehouse.Measurement, ok bool, err error) {
	if e.cfg.Shards == nil {
		return m, false, nil
	}
	ss, lerr := e.cfg.Shards.List(ctx, c.Topic)
	if lerr != nil {
		e.cfg.Log.Warn("could not read the stream's shards from Temporal; stream_running not measured this time", "topic", c.Topic, "error", lerr)
		return m, false, nil
	}
	if err := e.cfg.Store.RecordStreamShards(ctx, c.Topic, ss, at); err != nil {
		return m, false, err
	}
	return shardsMeasurement(c.Topic, ss, at), true, nil
}

// shardsMeasurement counts the stopped shards and names each one, with its
// reason, in the detail.
func shardsMeasurement(topic string, ss []warehouse.StreamShard, at time.Time) warehouse.Measurement {
	m := warehouse.Measurement{SLO: StreamRunning, MeasuredAt: at, Objective: 0}
	if len(ss) == 0 {
		m.Value = 1
		m.Detail = fmt.Sprintf("no StreamCompaction workflow of topic %s: the stream was never started; start it with `pipeline provision`", topic)
		return m
	}
	var stopped []string
	for _, s := range ss {
		if !s.Stopped() {
			continue
		}
		d := fmt.Sprintf("shard %d of %d (%s) %s", s.Shard, s.Shards, s.WorkflowID, s.State)
		if !s.Since.IsZero() {
			d += " at " + s.Since.UTC().Format(time.RFC3339)
		}
		if s.Reason != "" {
			d += ": " + s.Reason
		}
		stopped = append(stopped, d)
	}
	m.Value = float64(len(stopped))
	m.Good = len(stopped) == 0
	if m.Good {
		m.Detail = fmt.Sprintf("all %d shards of topic %s running", len(ss), topic)
	} else {
		m.Detail = strings.Join(stopped, "; ") + "; " + restartHint
	}
	return m
}

// decideNow is the stream_running policy: page while the latest
// measurement is bad, resolve when it is good.
func decideNow(ms []warehouse.Measurement) Decision {
	if len(ms) == 0 {
		return Decision{}
	}
	latest := ms[len(ms)-1]
	if latest.Good {
		return Decision{Recovered: true}
	}
	return Decision{Fire: true, Policy: Policy{Severity: "page"}, BurnShort: 1, BurnLong: 1}
}
