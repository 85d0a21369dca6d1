package warehouse

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/acme/pipeline/event"
)

func TestLeases(t *testing.T) {
	ctx := context.Background()
	if _, err := store.Pool().Exec(ctx, `TRUNCATE pipeline.backfill_leases`); err != nil {
		t.Fatal(err)
	}
	d := func(s string) Day { return day(s) }
	running := func(ids ...string) Running {
		return func(_ context.Context, _, runID string) (bool, error) { return slices.Contains(ids, runID), nil }
	}
	steps := []struct {
		name      string
		run       string
		days      []Day
		running   Running
		conflicts []string // "day by run"
		held      []string // every lease after the step
	}{
		{"A takes two days", "A", []Day{d("2026-11-01"), d("2026-11-02")}, running(), nil,
			[]string{"2026-11-01 A", "2026-11-02 A"}},
		{"A again: a retry is a no-op", "A", []Day{d("2026-11-01"), d("2026-11-02")}, running(), nil,
			[]string{"2026-11-01 A", "2026-11-02 A"}},
		{"B overlaps A, which runs: refused, nothing taken", "B", []Day{d("2026-11-02"), d("2026-11-03")}, running("A"),
			[]string{"2026-11-02 by A"}, []string{"2026-11-01 A", "2026-11-02 A"}},
		{"no liveness check: a held day is a conflict", "B", []Day{d("2026-11-02")}, nil,
			[]string{"2026-11-02 by A"}, []string{"2026-11-01 A", "2026-11-02 A"}},
		{"A ended: B takes its day over", "B", []Day{d("2026-11-02"), d("2026-11-03")}, running(), nil,
			[]string{"2026-11-01 A", "2026-11-02 B", "2026-11-03 B"}},
	}
	for _, st := range steps {
		t.Run(st.name, func(t *testing.T) {
			got, err := store.AcquireLeases(ctx, "wf-"+st.run, st.run, st.days, st.running)
			if err != nil {
				t.Fatal(err)
			}
			var conflicts []string
			for _, l := range got {
				conflicts = append(conflicts, fmt.Sprintf("%s by %s", l.Day, l.RunID))
			}
			if !slices.Equal(conflicts, st.conflicts) {
				t.Fatalf("conflicts %v, want %v", conflicts, st.conflicts)
			}
			leases, err := store.Leases(ctx)
			if err != nil {
				t.Fatal(err)
			}
			var held []string
			for _, l := range leases {
				held = append(held, fmt.Sprintf("%s %s", l.Day, l.RunID))
			}
			if !slices.Equal(held, st.held) {
				t.Fatalf("held %v, want %v", held, st.held)
			}
		})
	}
	if n, err := store.ReleaseLeases(ctx, "B"); err != nil || n != 2 {
		t.Fatalf("released %d, %v", n, err)
	}
}

// TestRebuildReplacesOnlyItsRanges plans a rebuild of a day, then lets the
// "stream" record and load a later bronze object of the day, and checks that
// the gold commit replaces only the planned offsets, that the silver swap
// retires only files made from the planned objects, and refuses a file that
// merged planned and unplanned ones.
func TestRebuildReplacesOnlyItsRanges(t *testing.T) {
	ctx := context.Background()
	reset(t)
	resetLakeIndex(t)
	dayStart := time.Date(2026, 11, 10, 0, 0, 0, 0, time.UTC)
	hour := dayStart.Add(9 * time.Hour)
	const topic = "rebuild-scope"
	id := func(i int) [16]byte { return [16]byte{0x01, 0x97, 15: byte(i)} }
	row := func(i int, off int64, props string) event.Row {
		return event.Row{EventID: id(i), Type: "page_view", OccurredAt: hour.Add(time.Duration(i) * time.Minute).UnixMicro(),
			ReceivedAt: hour.Add(time.Hour).UnixMicro() + off, Properties: props, Partition: 0, Offset: off}
	}
	bronze := func(first, last int64) {
		t.Helper()
		_, err := store.RecordBronze(ctx, BronzeObject{Topic: topic, Partition: 0, First: first, Last: last, Records: int(last - first + 1),
			Bytes: 1, Key: fmt.Sprintf("bronze/%s-%d", topic, first), ArrivedAt: hour, Cleaned: int(last - first + 1),
			MinOccurred: hour, MaxOccurred: hour, EventHours: []time.Time{hour}})
		if err != nil {
			t.Fatal(err)
		}
	}
	// Before the plan: two objects (offsets 0..9 and 10..19), loaded.
	bronze(0, 9)
	bronze(10, 19)
	var live []event.Row
	for i := range 20 {
		live = append(live, row(i, int64(i), `{"v":"stream"}`))
	}
	if _, err := store.LoadLive(ctx, LoadInput{Rows: live, Topic: topic, Offsets: map[int32]int64{0: 20}}); err != nil {
		t.Fatal(err)
	}

	r, err := store.PlanRebuild(ctx, RebuildPlanInput{WorkflowID: "wf", RunID: "run-1", Day: DayOf(dayStart), Topic: topic,
		Source: RebuildFromBronze, UnitRecords: 10})
	if err != nil {
		t.Fatal(err)
	}
	if r.Units != 2 || r.Objects != 2 || r.Records != 20 {
		t.Fatalf("plan %+v", r)
	}
	if again, err := store.PlanRebuild(ctx, RebuildPlanInput{RunID: "run-1", Day: DayOf(dayStart), Topic: topic, Source: RebuildFromBronze}); err != nil || again.ID != r.ID {
		t.Fatalf("a retried plan gave %+v, %v", again, err)
	}

	// After the plan: the stream records and loads 20..24, one of them a
	// resend of event 3.
	bronze(20, 24)
	var later []event.Row
	for i := 20; i < 25; i++ {
		later = append(later, row(i, int64(i), `{"v":"later"}`))
	}
	later[2] = row(3, 22, `{"v":"resent"}`)
	if _, err := store.LoadLive(ctx, LoadInput{Rows: later, Topic: topic, Offsets: map[int32]int64{0: 25}}); err != nil {
		t.Fatal(err)
	}

	// The rebuild stages both units: the planned offsets, rebuilt.
	for u := range 2 {
		var rows []event.Row
		for i := u * 10; i < u*10+10; i++ {
			rows = append(rows, row(i, int64(i), `{"v":"rebuilt"}`))
		}
		var tally UnitTally
		if err := store.StageRebuildUnit(ctx, r.ID, u, SliceRows(rows), &tally); err != nil || tally.Staged != 10 {
			t.Fatalf("stage unit %d: %+v %v", u, tally, err)
		}
	}
	res, err := store.ResolveRebuild(ctx, r.ID)
	if err != nil || len(res.Missing) != 0 || res.Rows != 20 || !slices.Equal(res.Hours, []time.Time{hour}) {
		t.Fatalf("resolve: %+v %v", res, err)
	}

	// The lineage silver.events' overwrite replaces: the planned offsets
	// only, merged; 20..24 stays the stream's.
	cov, err := store.RebuildCoverage(ctx, r.ID)
	if err != nil || len(cov) != 1 || cov[0].Partition != 0 || cov[0].First != 0 || cov[0].Last != 19 {
		t.Fatalf("coverage %+v %v", cov, err)
	}

	// Gold: the planned offsets replaced, the later ones kept, event 3 once.
	g, err := store.CommitRebuildGold(ctx, r.ID)
	if err != nil {
		t.Fatal(err)
	}
	if g.Before != 24 || g.Deleted != 20 || g.Inserted != 20 || g.Kept != 4 {
		t.Fatalf("gold %+v", g)
	}
	got := query(t, `SELECT properties->>'v', count(*) FROM gold.events GROUP BY 1 ORDER BY 1`)
	if want := []string{"later | 4", "rebuilt | 20"}; !slices.Equal(got, want) {
		t.Fatalf("gold.events: %v, want %v", got, want)
	}
	if err := store.FinishRebuild(ctx, r.ID); err != nil {
		t.Fatal(err)
	}
	if n := query(t, `SELECT count(*) FROM pipeline.rebuild_rows WHERE rebuild_id = $1`, r.ID); !slices.Equal(n, []string{"0"}) {
		t.Fatalf("staged rows left: %v", n)
	}
}

// TestResolveReportsLostUnits: a unit whose staged rows are gone (as after
// a PostgreSQL crash empties the unlogged tables) is reported, not resolved.
func TestResolveReportsLostUnits(t *testing.T) {
	ctx := context.Background()
	resetLakeIndex(t)
	dayStart := time.Date(2026, 11, 11, 0, 0, 0, 0, time.UTC)
	for i := range 3 {
		_, err := store.RecordBronze(ctx, BronzeObject{Topic: "lost", Partition: 0, First: int64(i * 10), Last: int64(i*10 + 9), Records: 10,
			Bytes: 1, Key: fmt.Sprintf("bronze/lost-%d", i), ArrivedAt: dayStart, Cleaned: 10, EventHours: []time.Time{dayStart}})
		if err != nil {
			t.Fatal(err)
		}
	}
	r, err := store.PlanRebuild(ctx, RebuildPlanInput{RunID: "run-lost", Day: DayOf(dayStart), Topic: "lost", Source: RebuildFromBronze, UnitRecords: 10})
	if err != nil || r.Units != 3 {
		t.Fatalf("plan %+v %v", r, err)
	}
	var tally UnitTally
	if err := store.StageRebuildUnit(ctx, r.ID, 1, SliceRows(nil), &tally); err != nil {
		t.Fatal(err)
	}
	res, err := store.ResolveRebuild(ctx, r.ID)
	if err != nil || !slices.Equal(res.Missing, []int{0, 2}) {
		t.Fatalf("resolve: %+v %v", res, err)
	}
}

// TestStageNamesARefusedRow: a row PostgreSQL refuses (a number jsonb cannot
// hold) fails the unit with an error that names the event and the column,
// is permanent, and stages nothing of the unit.
func TestStageNamesARefusedRow(t *testing.T) {
	ctx := context.Background()
	resetLakeIndex(t)
	dayStart := time.Date(2026, 11, 12, 0, 0, 0, 0, time.UTC)
	if _, err := store.RecordBronze(ctx, BronzeObject{Topic: "refused", Partition: 0, First: 0, Last: 1, Records: 2, Bytes: 1,
		Key: "bronze/refused-0", ArrivedAt: dayStart, Cleaned: 2, EventHours: []time.Time{dayStart}}); err != nil {
		t.Fatal(err)
	}
	r, err := store.PlanRebuild(ctx, RebuildPlanInput{RunID: "run-refused", Day: DayOf(dayStart), Topic: "refused", Source: RebuildFromBronze})
	if err != nil {
		t.Fatal(err)
	}
	good := event.Row{EventID: [16]byte{1}, Type: "page_view", OccurredAt: dayStart.UnixMicro(), Properties: `{}`}
	bad := event.Row{EventID: [16]byte{2}, Type: "page_view", OccurredAt: dayStart.UnixMicro(), Properties: `{"x":1e999999}`, Offset: 1}
	var tally UnitTally
	err = store.StageRebuildUnit(ctx, r.ID, 0, SliceRows([]event.Row{good, bad}), &tally)
	t.Logf("refused: %v", err)
	if err == nil || !IsPermanent(err) || !strings.Contains(err.Error(), "event_id 02000000-0000-0000-0000-000000000000") ||
		!strings.Contains(err.Error(), "column properties") {
		t.Fatalf("error %v (permanent %v)", err, IsPermanent(err))
	}
	if n := query(t, `SELECT count(*) FROM pipeline.rebuild_rows WHERE rebuild_id = $1`, r.ID); !slices.Equal(n, []string{"0"}) {
		t.Fatalf("staged rows of a failed unit: %v", n)
	}
}
