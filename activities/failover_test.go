package activities

import (
	"sync/atomic"
	"testing"
	"time"

	"github.com/acme/pipeline/internal/silvertest"
	"github.com/acme/pipeline/internal/streamtest"
)

// TestPostgresFailoverMidCycle is what a warehouse failover looks like from
// the stream (`ha: true`: the primary dies, a standby is promoted): every
// connection is cut in the middle of a cycle, after the bronze objects and
// before the gold load, and new ones are refused for a second. The cycle
// fails retryably; the retries, once connections are accepted again, end
// with each event once in gold and in silver.events.
func TestPostgresFailoverMidCycle(t *testing.T) {
	s := newStack(t, 3)
	hour := time.Now().UTC().Truncate(time.Hour).Add(-time.Hour)
	msgs, ex := streamtest.Mix(3000, 3, hour, 41)
	streamtest.Produce(s.t, s.brokers, s.topic, msgs)
	in := CompactCycleInput{Topic: s.topic, MaxRecords: 400, FlushWait: 50 * time.Millisecond, MaxFlushes: 2}

	var cut atomic.Bool
	s.acts.hook = func(stage string, p int32) error {
		if stage == "bronze" && p == 2 && !cut.Swap(true) {
			s.pg.refuse(true)                                          // the primary is gone, with every session
			time.AfterFunc(time.Second, func() { s.pg.refuse(false) }) // the standby takes over
		}
		return nil
	}
	offsets := startOffsets(3)
	failed := 0
	for range 30 {
		res, err := s.cycle(withOffsets(in, offsets))
		if err != nil {
			failed++
			t.Logf("cycle during the failover: %.200s", err)
			time.Sleep(300 * time.Millisecond) // Temporal's retry back-off
			continue
		}
		offsets = res.Offsets
	}
	if !cut.Load() || failed == 0 {
		t.Fatalf("the failover did not hit a cycle (cut %v, failed cycles %d)", cut.Load(), failed)
	}
	s.drain(offsets, in, len(msgs))
	streamtest.CheckGold(s.t, s.wh.Pool(), ex)
	silvertest.CheckSameAsGold(t, s.wh.Pool(), s.silverCfg, 10*time.Second)
}
