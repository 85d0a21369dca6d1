package activities

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"go.temporal.io/sdk/temporal"

	"github.com/acme/pipeline/event"
	"github.com/acme/pipeline/internal/silvertest"
	"github.com/acme/pipeline/internal/streamtest"
	"github.com/acme/pipeline/lake"
	"github.com/acme/pipeline/warehouse"
)

// TestRecreatedTopic covers issue 13 item 6 against the real components
// (kfake over TCP, versitygw, PostgreSQL): the stream loads a topic, the
// topic is deleted and created again with more records than before, so
// that its offsets overlap the old ones and run past them, and new events
// land in the same arrival hour, where the old keys would collide. The
// stream stops with a message that names the old and new topic ids and the
// command to run; it reads nothing of the new topic meanwhile. After the
// command, the stream loads exactly the new events as incarnation 2, reuses
// no bronze object of the old topic and rewrites none; the old gold rows,
// bronze and silver stay, and a backfill of the day keeps both
// incarnations apart.
func TestRecreatedTopic(t *testing.T) {
	s := newStack(t, 2)
	ctx := context.Background()
	hour := time.Now().UTC().Truncate(time.Hour).Add(-3 * time.Hour)
	in := CompactCycleInput{Topic: s.topic, MaxRecords: 20, FlushWait: 50 * time.Millisecond, MaxFlushes: 1}

	// The old topic, streamed from the start.
	oldMsgs, oldIDs := incarnationEvents(t, 60, hour)
	streamtest.Produce(t, s.brokers, s.topic, oldMsgs)
	start := s.streamStart(t, nil)
	if start.Incarnation != 1 {
		t.Fatalf("first sight of the topic: incarnation %d, want 1 (adopted)", start.Incarnation)
	}
	oldOffsets, _ := s.drain(start.Offsets, in, len(oldMsgs))
	oldID := s.strings(`SELECT topic_id FROM pipeline.topic_incarnations WHERE incarnation = 1`)
	oldBronze := s.bronzeContents(t)
	if len(oldID) != 1 || len(oldBronze) == 0 {
		t.Fatalf("incarnation 1: id %v, %d bronze objects", oldID, len(oldBronze))
	}

	// Deleted and created again, with more records than the stream's
	// offsets: the check of offsets beyond the end alone would not notice.
	streamtest.RecreateTopic(t, s.brokers, s.topic, 2)
	newMsgs, newIDs := incarnationEvents(t, 100, hour)
	streamtest.Produce(t, s.brokers, s.topic, newMsgs)
	newID, err := s.acts.kafka.TopicID(ctx, s.topic)
	if err != nil || newID.String() == oldID[0] {
		t.Fatalf("the recreated topic's id: %q %v (old %s)", newID, err, oldID[0])
	}

	// The stream stops, at its start and in a cycle of a running shard,
	// and says what the operator must decide.
	command := fmt.Sprintf("pipeline incarnation --topic %s --start-new %s", s.topic, newID)
	for name, run := range map[string]func() error{
		"stream start": func() error { _, err := s.streamStartErr(nil); return err },
		"running cycle": func() error {
			_, err := s.cycle(withOffsets(in, oldOffsets))
			return err
		},
	} {
		err := run()
		wantAppError(t, name, err, ErrTypeTopicRecreated, "topic events was deleted and created again", oldID[0], newID.String(),
			"incarnation 1", offsetsText(oldOffsets), fmt.Sprintf("%d bronze objects", len(oldBronze)), command)
		if name == "stream start" {
			t.Logf("the operator reads: %v", err)
		}
	}
	if n := s.count(`SELECT count(*) FROM pipeline.bronze_objects`); n != int64(len(oldBronze)) {
		t.Fatalf("%d bronze objects after the stop, want the old %d: the new topic was read", n, len(oldBronze))
	}

	// The operator's command: a confirmation of another topic id changes
	// nothing; the right one retires incarnation 1; running it again has
	// nothing to do.
	if _, err := StartIncarnation(ctx, s.kc, s.wh, StartIncarnationInput{Topic: s.topic, Confirm: oldID[0]}); err == nil {
		t.Fatal("started an incarnation for a topic id that is not Kafka's")
	}
	res, err := StartIncarnation(ctx, s.kc, s.wh, StartIncarnationInput{Topic: s.topic, Confirm: newID.String(), By: "test"})
	if err != nil {
		t.Fatal(err)
	}
	if res.Retired.Number != 1 || !maps.Equal(res.Retired.FinalOffsets, oldOffsets) || res.Held.BronzeObjects != int64(len(oldBronze)) ||
		res.Started.Number != 2 || res.Started.TopicID != newID.String() {
		t.Fatalf("start incarnation: %+v", res)
	}
	if _, err := StartIncarnation(ctx, s.kc, s.wh, StartIncarnationInput{Topic: s.topic, Confirm: newID.String()}); !errors.Is(err, ErrNothingToStart) {
		t.Fatalf("the command again: %v", err)
	}

	// A shard still running with the old offsets stops rather than read
	// the new topic from them; started again, shards drop carried offsets
	// of the old topic and take the new topic's earliest ones.
	_, err = s.cycle(withOffsets(in, oldOffsets))
	wantAppError(t, "stale cycle", err, ErrTypeStaleOffsets, "not those of incarnation 2", "pipeline provision")
	start = s.streamStart(t, oldOffsets)
	if start.Incarnation != 2 || !maps.Equal(start.Offsets, map[int32]int64{0: 0, 1: 0}) || start.Sources[0] != "earliest" || start.Sources[1] != "earliest" {
		t.Fatalf("stream start after the command: %+v", start)
	}

	// The stream loads exactly the new events, from new bronze objects.
	offsets, reused := start.Offsets, 0
	for i := 0; offsets[0]+offsets[1] < int64(len(newMsgs)); i++ {
		if i == 50 {
			t.Fatalf("not drained after 50 cycles: %v", offsets)
		}
		r, err := s.cycle(withOffsets(in, offsets))
		if err != nil {
			t.Fatal(err)
		}
		for _, pp := range r.Partitions {
			reused += pp.Reused
		}
		offsets = r.Offsets
	}
	if reused != 0 {
		t.Errorf("%d bronze objects reused for the new topic", reused)
	}
	for inc, want := range map[int][]string{1: oldIDs, 2: newIDs} {
		got := s.strings(`SELECT event_id::text FROM gold.events WHERE kafka_incarnation = $1 ORDER BY 1`, inc)
		if !slices.Equal(got, want) {
			t.Errorf("gold.events of incarnation %d: %d events, want exactly its %d", inc, len(got), len(want))
		}
	}
	if n := s.count(`SELECT count(*) FROM gold.events`); n != int64(len(oldIDs)+len(newIDs)) {
		t.Errorf("gold.events holds %d rows, want %d", n, len(oldIDs)+len(newIDs))
	}
	if n := s.count(`SELECT count(*) FROM pipeline.quarantine WHERE record_offset = 0 AND partition = 0`); n != 2 {
		t.Errorf("%d quarantined records at partition 0 offset 0, want one per incarnation", n)
	}
	if got := s.strings(`SELECT incarnation, partition, next_offset FROM pipeline.stream_offsets ORDER BY partition`); !slices.Equal(got,
		[]string{fmt.Sprintf("2 | 0 | %d", offsets[0]), fmt.Sprintf("2 | 1 | %d", offsets[1])}) {
		t.Errorf("stream offsets %v", got)
	}
	if bad := s.strings(`SELECT object_key FROM pipeline.bronze_objects WHERE incarnation = 2 AND object_key NOT LIKE '%-i2.ndjson'`); len(bad) > 0 {
		t.Errorf("bronze keys of incarnation 2 without -i2: %v", bad)
	}
	if after := s.bronzeContents(t); !mapsSubset(oldBronze, after) {
		t.Error("an old bronze object was rewritten or deleted")
	}

	s.checkSilver(t, len(oldIDs)+len(newIDs))

	// A backfill of the day rebuilds both incarnations' rows from their
	// own bronze objects, each replacing its own.
	s.backfillDay(t, hour)
	for inc, want := range map[int][]string{1: oldIDs, 2: newIDs} {
		got := s.strings(`SELECT event_id::text FROM gold.events WHERE kafka_incarnation = $1 ORDER BY 1`, inc)
		if !slices.Equal(got, want) {
			t.Errorf("after the backfill, gold.events of incarnation %d: %d events, want exactly its %d", inc, len(got), len(want))
		}
	}
	s.checkSilver(t, len(oldIDs)+len(newIDs))
}

// incarnationEvents makes n page views in hour, alternately on partitions 0
// and 1, after a poison record on partition 0 (offset 0): one incarnation's
// records. It returns them with their event ids, sorted.
func incarnationEvents(t *testing.T, n int, hour time.Time) ([]streamtest.Msg, []string) {
	t.Helper()
	msgs := []streamtest.Msg{{Partition: 0, Value: streamtest.Poison(0, hour)}}
	var ids []string
	for i := range n {
		id := uuid.NewString()
		ev := event.Event{EventID: id, Type: "page_view", OccurredAt: hour.Add(time.Duration(i) * time.Second),
			ReceivedAt: time.Now().UTC(), UserID: fmt.Sprintf("u-%d", i), Properties: []byte(`{"path":"/p"}`)}
		b, err := ev.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		msgs = append(msgs, streamtest.Msg{Partition: i % 2, Value: b})
		ids = append(ids, id)
	}
	slices.Sort(ids)
	return msgs, ids
}

func (s *stack) streamStartErr(known map[int32]int64) (StreamStartResult, error) {
	var res StreamStartResult
	err := s.run(s.acts.StreamStart, StreamStartInput{Topic: s.topic, Shard: 0, Shards: 1, Known: known}, &res)
	return res, err
}

func (s *stack) streamStart(t *testing.T, known map[int32]int64) StreamStartResult {
	t.Helper()
	res, err := s.streamStartErr(known)
	if err != nil {
		t.Fatal(err)
	}
	return res
}

// wantAppError fails t unless err is a non-retryable ApplicationError of
// type typ whose message holds every fragment.
func wantAppError(t *testing.T, what string, err error, typ string, fragments ...string) {
	t.Helper()
	var ae *temporal.ApplicationError
	if !errors.As(err, &ae) || ae.Type() != typ || !ae.NonRetryable() {
		t.Fatalf("%s: %v, want a non-retryable %s", what, err, typ)
	}
	for _, f := range fragments {
		if !strings.Contains(ae.Message(), f) {
			t.Errorf("%s: the message does not say %q:\n%s", what, f, ae.Message())
		}
	}
}

// bronzeContents is the SHA-256 of every bronze object in the bucket, by key.
func (s *stack) bronzeContents(t *testing.T) map[string][32]byte {
	t.Helper()
	ctx := context.Background()
	objs, err := s.lake.List(ctx, lake.BronzePrefix)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string][32]byte{}
	for _, o := range objs {
		b, err := s.lake.Get(ctx, o.Key)
		if err != nil {
			t.Fatal(err)
		}
		out[o.Key] = sha256.Sum256(b)
	}
	return out
}

func mapsSubset[K comparable, V comparable](sub, of map[K]V) bool {
	for k, v := range sub {
		if w, ok := of[k]; !ok || w != v {
			return false
		}
	}
	return true
}

// checkSilver checks that silver.events holds distinct events, once each,
// each with the incarnation gold has for it.
func (s *stack) checkSilver(t *testing.T, distinct int) {
	t.Helper()
	gold := map[string]int32{}
	for _, r := range s.strings(`SELECT event_id::text, kafka_incarnation FROM gold.events`) {
		id, inc, _ := strings.Cut(r, " | ")
		n, _ := strconv.Atoi(inc)
		gold[id] = int32(n)
	}
	sil := silvertest.Incarnations(t, s.silverCfg)
	for id, incs := range sil {
		if len(incs) != 1 || incs[0] != gold[id] {
			t.Errorf("event %s: silver.events rows of incarnations %v, gold's is %d", id, incs, gold[id])
		}
	}
	if len(sil) != distinct {
		t.Errorf("silver.events holds %d events, want %d", len(sil), distinct)
	}
}

// backfillDay rebuilds the UTC day of hour through the backfill's
// activities (silver and gold, from bronze), as the Backfill workflow runs
// them.
func (s *stack) backfillDay(t *testing.T, hour time.Time) {
	t.Helper()
	bf, err := NewBackfiller(BackfillerConfig{Lake: s.lake, Store: s.wh, UnitRecords: 50, Silver: s.silverCfg})
	if err != nil {
		t.Fatal(err)
	}
	run := func(fn, in, out any) {
		t.Helper()
		env := s.suite.NewTestActivityEnvironment()
		env.RegisterActivity(bf)
		v, err := env.ExecuteActivity(fn, in)
		if err == nil && out != nil {
			err = v.Get(out)
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	day := hour.UTC().Format(time.DateOnly)
	var plan warehouse.Rebuild
	run(bf.PlanBackfillDay, PlanDayInput{Day: day, Topic: s.topic, Layers: []string{LayerSilver, LayerGold}}, &plan)
	for u := range plan.Units {
		run(bf.StageBackfillUnit, UnitInput{Rebuild: plan.ID, Unit: u, Day: day, Topic: s.topic, Source: plan.Source}, nil)
	}
	var resolved warehouse.Resolved
	run(bf.ResolveBackfillDay, plan.ID, &resolved)
	var g warehouse.GoldReplaced
	run(bf.CommitBackfillGold, plan.ID, &g)
	run(bf.OverwriteBackfillSilver, SilverDayInput{Rebuild: plan.ID, Topic: s.topic, Day: day, GoldLoad: g.LoadID}, nil)
	run(bf.FinishBackfillDay, FinishInput{Rebuild: plan.ID, Silver: true}, nil)
}
