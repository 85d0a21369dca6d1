package warehouse

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"testing"
	"time"

	"github.com/acme/pipeline/event"
)

// TestIncarnations walks a topic through its records: adopted at first
// sight, an id learned later, a new incarnation started by the operator
// (offsets moved to the retired one, loads of the old one refused), and the
// refusals that protect it.
func TestIncarnations(t *testing.T) {
	ctx := context.Background()
	reset(t)
	const topic = "incarnations"
	const id1, id2 = "AAAAAAAAAAAAAAAAAAAAAA", "BBBBBBBBBBBBBBBBBBBBBB"

	if _, ok, err := store.CurrentIncarnation(ctx, topic); ok || err != nil {
		t.Fatalf("before adoption: %v %v", ok, err)
	}
	// First sight, on a broker without topic ids; a second adoption (another
	// shard) finds it.
	first, err := store.AdoptIncarnation(ctx, topic, "")
	if err != nil || first.Number != 1 || first.TopicID != "" || !first.Current() {
		t.Fatalf("adopt: %+v %v", first, err)
	}
	if again, err := store.AdoptIncarnation(ctx, topic, id2); err != nil || again.Number != 1 || again.TopicID != "" {
		t.Fatalf("adopt again: %+v %v", again, err)
	}
	// The brokers report ids now: incarnation 1 learns its id, once.
	if ok, err := store.LearnTopicID(ctx, topic, 1, id1); !ok || err != nil {
		t.Fatalf("learn id: %v %v", ok, err)
	}
	if ok, err := store.LearnTopicID(ctx, topic, 1, id2); ok || err != nil {
		t.Fatalf("an id is never replaced: %v %v", ok, err)
	}

	load := func(inc int, offsets map[int32]int64) error {
		_, err := store.LoadLive(ctx, LoadInput{Topic: topic, Incarnation: inc, Offsets: offsets})
		return err
	}
	if err := load(1, map[int32]int64{0: 40, 1: 25}); err != nil {
		t.Fatal(err)
	}
	refusals := []struct {
		name string
		in   NewIncarnationInput
	}{
		{"another incarnation than the current", NewIncarnationInput{Topic: topic, Retiring: 2, TopicID: id2}},
		{"the topic was not recreated", NewIncarnationInput{Topic: topic, Retiring: 1, TopicID: id1}},
		{"a topic never adopted", NewIncarnationInput{Topic: "nope", Retiring: 1, TopicID: id2}},
	}
	for _, r := range refusals {
		var ie *InputError
		if _, _, err := store.StartIncarnation(ctx, r.in); !errors.As(err, &ie) {
			t.Errorf("%s: %v, want an InputError", r.name, err)
		}
	}

	retired, started, err := store.StartIncarnation(ctx, NewIncarnationInput{Topic: topic, Retiring: 1, TopicID: id2, By: "test"})
	if err != nil {
		t.Fatal(err)
	}
	if retired.Number != 1 || retired.Current() || retired.RetiredBy != "test" || !maps.Equal(retired.FinalOffsets, map[int32]int64{0: 40, 1: 25}) {
		t.Fatalf("retired %+v", retired)
	}
	if started.Number != 2 || started.TopicID != id2 || !started.Current() {
		t.Fatalf("started %+v", started)
	}
	if stored, err := store.StreamOffsets(ctx, topic); err != nil || len(stored) != 0 {
		t.Fatalf("stored offsets after a new incarnation: %v %v (want none: it starts from the earliest)", stored, err)
	}
	if err := load(1, map[int32]int64{0: 41}); !errors.Is(err, ErrNotCurrentIncarnation) {
		t.Fatalf("a load of the retired incarnation: %v", err)
	}
	if err := load(2, map[int32]int64{0: 5}); err != nil {
		t.Fatal(err)
	}
	if got := query(t, `SELECT partition, next_offset, incarnation FROM pipeline.stream_offsets WHERE topic = $1`, topic); !slices.Equal(got, []string{"0 | 5 | 2"}) {
		t.Fatalf("stream offsets %v", got)
	}
	u, err := store.IncarnationUsage(ctx, retired)
	if err != nil || !maps.Equal(u.Offsets, retired.FinalOffsets) {
		t.Fatalf("usage of the retired incarnation: %+v %v", u, err)
	}
	all, err := store.Incarnations(ctx, topic)
	if err != nil || len(all) != 2 || all[0].Number != 1 || all[1].Number != 2 {
		t.Fatalf("incarnations %+v %v", all, err)
	}
}

// TestStartIncarnationWaitsForLoads: a live load of the current
// incarnation in flight holds it; starting a new one waits for the load's
// commit and takes its offsets as the final ones.
func TestStartIncarnationWaitsForLoads(t *testing.T) {
	ctx := context.Background()
	reset(t)
	const topic = "incarnation-race"
	if _, err := store.AdoptIncarnation(ctx, topic, "CCCCCCCCCCCCCCCCCCCCCC"); err != nil {
		t.Fatal(err)
	}
	tx, err := store.Pool().Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(ctx)
	if err := lockCurrentIncarnation(ctx, tx, topic, 1); err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(ctx, `INSERT INTO pipeline.stream_offsets (topic, partition, next_offset) VALUES ($1, 0, 77)`, topic); err != nil {
		t.Fatal(err)
	}
	type result struct {
		retired Incarnation
		err     error
	}
	done := make(chan result, 1)
	go func() {
		r, _, err := store.StartIncarnation(ctx, NewIncarnationInput{Topic: topic, Retiring: 1, TopicID: "DDDDDDDDDDDDDDDDDDDDDD"})
		done <- result{r, err}
	}()
	select {
	case r := <-done:
		t.Fatalf("started a new incarnation under a load in flight: %+v", r)
	case <-time.After(300 * time.Millisecond):
	}
	if err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	r := <-done
	if r.err != nil || r.retired.FinalOffsets[0] != 77 {
		t.Fatalf("retired %+v, %v; want the load's offset 77 as final", r.retired, r.err)
	}
}

// TestRebuildKeepsIncarnationsApart: a day holds events of two
// incarnations of a topic at the same partition and offsets. A rebuild
// planned from the first incarnation's objects replaces its rows only; one
// planned from both replaces each incarnation's rows by its own winners.
func TestRebuildKeepsIncarnationsApart(t *testing.T) {
	ctx := context.Background()
	reset(t)
	resetLakeIndex(t)
	const topic = "rebuild-incarnations"
	day := time.Date(2026, 11, 12, 0, 0, 0, 0, time.UTC)
	hour := day.Add(10 * time.Hour)
	row := func(inc, i int, v string) event.Row {
		return event.Row{EventID: [16]byte{0x01, 0x97, 14: byte(inc), 15: byte(i)}, Type: "page_view",
			OccurredAt: hour.Add(time.Duration(i) * time.Minute).UnixMicro(), ReceivedAt: hour.Add(time.Hour).UnixMicro(),
			Properties: fmt.Sprintf(`{"v":%q}`, v), Partition: 0, Offset: int64(i), Incarnation: int32(inc)}
	}
	rows := func(inc int, v string) []event.Row {
		var out []event.Row
		for i := range 10 {
			out = append(out, row(inc, i, v))
		}
		return out
	}
	bronze := func(inc int) {
		t.Helper()
		_, err := store.RecordBronze(ctx, BronzeObject{Topic: topic, Incarnation: inc, Partition: 0, First: 0, Last: 9, Records: 10,
			Bytes: 1, Key: fmt.Sprintf("bronze/%s-i%d", topic, inc), ArrivedAt: hour, Cleaned: 10,
			MinOccurred: hour, MaxOccurred: hour, EventHours: []time.Time{hour}})
		if err != nil {
			t.Fatal(err)
		}
	}
	if _, err := store.AdoptIncarnation(ctx, topic, "EEEEEEEEEEEEEEEEEEEEEE"); err != nil {
		t.Fatal(err)
	}
	bronze(1)
	if _, err := store.LoadLive(ctx, LoadInput{Rows: rows(1, "stream"), Topic: topic, Incarnation: 1, Offsets: map[int32]int64{0: 10}}); err != nil {
		t.Fatal(err)
	}
	if _, _, err := store.StartIncarnation(ctx, NewIncarnationInput{Topic: topic, Retiring: 1, TopicID: "FFFFFFFFFFFFFFFFFFFFFF"}); err != nil {
		t.Fatal(err)
	}
	rebuild := func(run string, staged []event.Row) (Rebuild, GoldReplaced) {
		t.Helper()
		r, err := store.PlanRebuild(ctx, RebuildPlanInput{WorkflowID: "wf", RunID: run, Day: DayOf(day), Topic: topic, Source: RebuildFromBronze})
		if err != nil || r.Units != 1 {
			t.Fatalf("plan: %+v %v", r, err)
		}
		var tally UnitTally
		if err := store.StageRebuildUnit(ctx, r.ID, 0, SliceRows(staged), &tally); err != nil {
			t.Fatal(err)
		}
		if _, err := store.ResolveRebuild(ctx, r.ID); err != nil {
			t.Fatal(err)
		}
		g, err := store.CommitRebuildGold(ctx, r.ID)
		if err != nil {
			t.Fatal(err)
		}
		if err := store.FinishRebuild(ctx, r.ID); err != nil {
			t.Fatal(err)
		}
		return r, g
	}

	// The new topic's records at the same offsets reach gold; their bronze
	// object is not recorded yet when the backfill plans the day (late
	// data), so the plan reads the first incarnation's object only.
	if _, err := store.LoadLive(ctx, LoadInput{Rows: rows(2, "stream"), Topic: topic, Incarnation: 2, Offsets: map[int32]int64{0: 10}}); err != nil {
		t.Fatal(err)
	}
	r, g := rebuild("run-1", rows(1, "rebuilt"))
	if r.Objects != 1 || g.Deleted != 10 || g.Inserted != 10 || g.Kept != 10 {
		t.Fatalf("rebuild of incarnation 1 only: %+v; want its 10 rows replaced and incarnation 2's 10 kept", g)
	}
	bronze(2)
	_, g = rebuild("run-2", append(rows(1, "again"), rows(2, "again")...))
	if g.Deleted != 20 || g.Inserted != 20 || g.Kept != 0 {
		t.Fatalf("rebuild of both incarnations: %+v", g)
	}
	got := query(t, `SELECT kafka_incarnation, properties->>'v', count(*), min(kafka_offset), max(kafka_offset)
		FROM gold.events GROUP BY 1, 2 ORDER BY 1, 2`)
	if want := []string{"1 | again | 10 | 0 | 9", "2 | again | 10 | 0 | 9"}; !slices.Equal(got, want) {
		t.Fatalf("gold.events %v, want %v", got, want)
	}
	var srcs int
	if err := store.Pool().QueryRow(ctx, `SELECT count(DISTINCT incarnation) FROM pipeline.rebuild_sources s
		JOIN pipeline.rebuilds r USING (rebuild_id) WHERE r.run_id = 'run-2'`).Scan(&srcs); err != nil || srcs != 2 {
		t.Fatalf("incarnations among the sources: %d %v", srcs, err)
	}
}
