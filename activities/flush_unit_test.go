package activities

import (
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"

	"github.com/acme/pipeline/lake"
	"github.com/acme/pipeline/warehouse"
)

// Unit tests of the flush: CompactCycle over the in-memory fakes of
// flush_fakes_test.go, run as an activity in Temporal's in-process test
// environment (no server, no network). The real-component tests
// (stream_test.go and the others) stay the integration tier.

// unitHour is the event hour of the unit tests' records.
var unitHour = time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)

const unitTopic = "events"

// unitStream is a Stream over fakes of one topic with partition 0 only.
type unitStream struct {
	t     *testing.T
	acts  *Stream
	kafka *fakeKafka
	lake  *fakeLake
	wh    *fakeWarehouse
	suite testsuite.WorkflowTestSuite
}

func newUnitStream(t *testing.T, p0 *fakePartition) *unitStream {
	t.Helper()
	m, err := newStreamMetrics()
	if err != nil {
		t.Fatal(err)
	}
	k := newFakeKafka()
	k.parts[0] = p0
	u := &unitStream{t: t, kafka: k, lake: &fakeLake{objects: map[string][]byte{}}, wh: newFakeWarehouse(unitTopic, k.id)}
	u.acts = &Stream{lake: u.lake, wh: u.wh, kafka: u.kafka, group: DefaultGroup, log: slog.New(slog.DiscardHandler), m: m}
	u.suite.SetLogger(discardLogger{})
	return u
}

// cycle runs one attempt of CompactCycle from offset from of partition 0.
func (u *unitStream) cycle(from int64, maxFlushes int) (CompactCycleResult, error) {
	env := u.suite.NewTestActivityEnvironment()
	env.RegisterActivity(u.acts)
	v, err := env.ExecuteActivity(u.acts.CompactCycle, CompactCycleInput{Topic: unitTopic, Offsets: map[int32]int64{0: from},
		MaxRecords: 100, FlushWait: time.Millisecond, MaxFlushes: maxFlushes})
	if err != nil {
		return CompactCycleResult{}, err
	}
	var res CompactCycleResult
	return res, v.Get(&res)
}

// crashOnce makes the first end of stage fail the attempt, as a worker
// crash there would.
func (u *unitStream) crashOnce(stage string) {
	crashed := false
	u.acts.hook = func(st string, _ int32) error {
		if st == stage && !crashed {
			crashed = true
			return fmt.Errorf("crash after %s", st)
		}
		return nil
	}
}

// checkLoadedOnce checks that gold holds the n events of offsets 0..n-1
// once, from exactly one load, with the offset after them stored.
func (u *unitStream) checkLoadedOnce(n int, next int64) {
	u.t.Helper()
	if u.wh.loads != 1 || len(u.wh.gold) != n {
		u.t.Errorf("gold: %d loads, %d events; want 1 load of %d", u.wh.loads, len(u.wh.gold), n)
	}
	if got := u.wh.offsets[0]; got != next {
		u.t.Errorf("stored offset %d, want %d", got, next)
	}
}

// records is n valid records, numbered from i0; markers is n offsets
// read_committed consumes without returning them.
func records(t *testing.T, i0, n int) []fakeEntry {
	out := make([]fakeEntry, n)
	for i := range out {
		out[i] = fakeEntry{value: validEvent(t, i0+i)}
	}
	return out
}

func markers(n int) []fakeEntry { return slices.Repeat([]fakeEntry{{control: true}}, n) }

// errType is the ApplicationError type of err, "" for none.
func errType(err error) string {
	var ae *temporal.ApplicationError
	if errors.As(err, &ae) {
		return ae.Type()
	}
	return ""
}

// retryable reports whether Temporal would retry err.
func retryable(err error) bool {
	var ae *temporal.ApplicationError
	return err != nil && !(errors.As(err, &ae) && ae.NonRetryable())
}

// TestFlushRetryAfterCrash: a worker crash between the bronze object and
// gold leaves the object recorded and the offset unstored; the retry (same
// input, as Temporal retries) reuses the object instead of reading Kafka
// again, and gold gets every event from one load. A crash after gold, before
// the consumer-group commit, resumes from the stored offset and loads
// nothing again (the group's commit waits for the next load).
func TestFlushRetryAfterCrash(t *testing.T) {
	for _, tc := range []struct {
		name         string
		crashAt      string
		wantReads    int   // Kafka reads of the partition, both attempts
		wantReused   int   // bronze objects the retry reused
		wantInserted int64 // rows the retry inserted
	}{
		{"after bronze", "bronze", 1, 1, 5},
		{"after gold, before the commit", "gold", 2, 0, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			u := newUnitStream(t, &fakePartition{log: records(t, 0, 5)})
			u.crashOnce(tc.crashAt)
			if _, err := u.cycle(0, 1); !retryable(err) || !strings.Contains(err.Error(), "crash after "+tc.crashAt) {
				t.Fatalf("first attempt: %v; want the crash, retryable", err)
			}
			if len(u.wh.bronze) != 1 {
				t.Fatalf("the crashed attempt recorded %d bronze objects, want 1", len(u.wh.bronze))
			}
			res, err := u.cycle(0, 1)
			if err != nil {
				t.Fatalf("retry: %v", err)
			}
			if u.kafka.reads[0] != tc.wantReads || res.Partitions[0].Reused != tc.wantReused || res.Inserted != tc.wantInserted {
				t.Errorf("retry: %d Kafka reads, %d reused, %d inserted; want %d, %d, %d",
					u.kafka.reads[0], res.Partitions[0].Reused, res.Inserted, tc.wantReads, tc.wantReused, tc.wantInserted)
			}
			if res.Offsets[0] != 5 {
				t.Errorf("retry ends at offset %d, want 5", res.Offsets[0])
			}
			u.checkLoadedOnce(5, 5)
			if b := u.lake.keys(lake.BronzePrefix); len(b) != 1 {
				t.Errorf("bucket holds bronze %v, want the one object", b)
			}
		})
	}
}

// TestFlushRetryOverMarkerEdges: a recorded bronze object's range covers
// what its read consumed, so it may begin or end with offsets read_committed
// consumed without returning (transaction markers, aborted records); the
// retry after a crash between bronze and gold reuses it all the same and
// loads its records once, with the offset past the range.
func TestFlushRetryOverMarkerEdges(t *testing.T) {
	for _, tc := range []struct {
		name string
		log  []fakeEntry
		next int64
	}{
		{"commit marker last", append(records(t, 0, 4), markers(1)...), 5},
		{"aborted records first", append(markers(2), records(t, 0, 4)...), 6},
	} {
		t.Run(tc.name, func(t *testing.T) {
			u := newUnitStream(t, &fakePartition{log: tc.log})
			u.crashOnce("bronze")
			if _, err := u.cycle(0, 1); !retryable(err) {
				t.Fatalf("first attempt: %v; want the crash", err)
			}
			if _, err := u.cycle(0, 1); err != nil {
				t.Fatalf("retry: %v", err)
			}
			if u.kafka.reads[0] != 1 || u.wh.loads != 1 || u.wh.offsets[0] != tc.next {
				t.Errorf("%d Kafka reads, %d loads, offsets %v; want 1, 1, next %d", u.kafka.reads[0], u.wh.loads, u.wh.offsets, tc.next)
			}
		})
	}
}

// TestFlushOffsetsWithoutRecords: a read that consumed only what
// read_committed leaves out moves the offset with the next load (rows none)
// and writes no object; an idle partition moves nothing and loads nothing.
func TestFlushOffsetsWithoutRecords(t *testing.T) {
	for _, tc := range []struct {
		name      string
		log       []fakeEntry
		wantNext  int64
		wantLoads int
	}{
		{"markers and aborted records only", markers(3), 3, 1},
		{"idle partition", nil, 0, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			u := newUnitStream(t, &fakePartition{log: tc.log})
			res, err := u.cycle(0, 1)
			if err != nil {
				t.Fatal(err)
			}
			if res.Offsets[0] != tc.wantNext || res.Records != 0 || res.BronzeObjects != 0 || res.Inserted != 0 {
				t.Errorf("result: offset %d, %d records, %d bronze objects, %d inserted; want offset %d and nothing else",
					res.Offsets[0], res.Records, res.BronzeObjects, res.Inserted, tc.wantNext)
			}
			if len(u.lake.objects) != 0 || len(u.wh.bronze) != 0 {
				t.Errorf("bucket %v, bronze index %v: want both empty", u.lake.keys(""), u.wh.bronze)
			}
			if u.wh.loads != tc.wantLoads || u.wh.offsets[0] != tc.wantNext || len(u.kafka.commits) != tc.wantLoads {
				t.Errorf("%d loads, stored offsets %v, commits %v; want %d loads storing and committing %d",
					u.wh.loads, u.wh.offsets, u.kafka.commits, tc.wantLoads, tc.wantNext)
			}
		})
	}
}

// TestFlushOffsetsLostToRetention: a stored offset retention deleted is
// recorded as lost and skipped to the earliest retained offset (stored by
// the flush's load, with no rows; the next flush reads on); one beyond the
// partition's end stops the shard for an operator, non-retryable, with
// nothing recorded.
func TestFlushOffsetsLostToRetention(t *testing.T) {
	for _, tc := range []struct {
		name        string
		first       int64 // earliest retained offset; three records follow
		from        int64 // the shard's offset, stored with gold
		wantNext    int64
		wantLost    [][3]int64 // partition, first, last
		wantLostN   int64
		wantRecords int64
		wantErrType string
	}{
		{name: "behind the earliest retained offset", first: 5, from: 0, wantNext: 8, wantLost: [][3]int64{{0, 0, 4}}, wantLostN: 5, wantRecords: 3},
		{name: "beyond the partition's end", first: 0, from: 10, wantNext: 10, wantErrType: ErrTypeOffsetAhead},
	} {
		t.Run(tc.name, func(t *testing.T) {
			u := newUnitStream(t, &fakePartition{first: tc.first, log: records(t, 0, 3)})
			if tc.from > 0 {
				u.wh.offsets[0] = tc.from
			}
			res, err := u.cycle(tc.from, 2)
			if tc.wantErrType != "" {
				if errType(err) != tc.wantErrType || retryable(err) {
					t.Fatalf("cycle: %v; want non-retryable %s", err, tc.wantErrType)
				}
			} else if err != nil {
				t.Fatal(err)
			} else if res.Offsets[0] != tc.wantNext || res.Partitions[0].Lost != tc.wantLostN || res.Records != tc.wantRecords {
				t.Errorf("result: offset %d, %d lost, %d records; want %d, %d, %d", res.Offsets[0], res.Partitions[0].Lost,
					res.Records, tc.wantNext, tc.wantLostN, tc.wantRecords)
			}
			if !slices.Equal(u.wh.lost, tc.wantLost) || u.wh.offsets[0] != tc.wantNext || len(u.wh.gold) != int(tc.wantRecords) {
				t.Errorf("lost %v, stored offsets %v, %d in gold; want lost %v, offset %d, %d in gold",
					u.wh.lost, u.wh.offsets, len(u.wh.gold), tc.wantLost, tc.wantNext, tc.wantRecords)
			}
		})
	}
}

// TestFlushGoldErrors: a gold load that fails with an error no record
// explains fails the cycle retryably with no offset stored or committed,
// and the retry reuses the bronze object and loads once; a load refused
// because an operator started a new incarnation meanwhile stops the shard.
func TestFlushGoldErrors(t *testing.T) {
	for _, tc := range []struct {
		name        string
		err         error
		wantMsg     string
		wantErrType string // "" for a retryable error
	}{
		{name: "connection lost", err: errors.New("conn closed"), wantMsg: "gold load of partition 0 offsets 0..4"},
		{name: "record-class error no single row explains", err: &pgconn.PgError{Code: "23514", Message: "check violated"},
			wantMsg: "gold refused the batch, but no single row of it"},
		{name: "new incarnation started meanwhile", err: fmt.Errorf("load: %w", warehouse.ErrNotCurrentIncarnation),
			wantErrType: ErrTypeStaleOffsets},
	} {
		t.Run(tc.name, func(t *testing.T) {
			u := newUnitStream(t, &fakePartition{log: records(t, 0, 5)})
			u.wh.loadErrs = []error{tc.err}
			_, err := u.cycle(0, 1)
			wantRetry := tc.wantErrType == ""
			if err == nil || !strings.Contains(err.Error(), tc.wantMsg) || retryable(err) != wantRetry || !wantRetry && errType(err) != tc.wantErrType {
				t.Fatalf("cycle: %v; want %q, error type %q (retryable when none)", err, tc.wantMsg, tc.wantErrType)
			}
			if len(u.wh.offsets) != 0 || len(u.kafka.commits) != 0 || len(u.wh.gold) != 0 {
				t.Fatalf("after the failed load: stored %v, committed %v, %d in gold; want nothing", u.wh.offsets, u.kafka.commits, len(u.wh.gold))
			}
			if tc.wantErrType != "" {
				return
			}
			res, err := u.cycle(0, 1)
			if err != nil {
				t.Fatalf("retry: %v", err)
			}
			if u.kafka.reads[0] != 1 || res.Partitions[0].Reused != 1 || res.Inserted != 5 {
				t.Errorf("retry: %d Kafka reads, %d reused, %d inserted; want 1, 1, 5", u.kafka.reads[0], res.Partitions[0].Reused, res.Inserted)
			}
			u.checkLoadedOnce(5, 5)
		})
	}
}

// discardLogger silences the test environment's log.
type discardLogger struct{}

func (discardLogger) Debug(string, ...any) {}
func (discardLogger) Info(string, ...any)  {}
func (discardLogger) Warn(string, ...any)  {}
func (discardLogger) Error(string, ...any) {}

// TestFlushRefusedRowIsQuarantined: a row gold refuses is quarantined and
// the flush's other rows load, also when the bronze range begins and ends
// at offsets read_committed consumed without returning. silver.events takes
// its rows from what gold inserted, so the refused row never reaches it.
func TestFlushRefusedRowIsQuarantined(t *testing.T) {
	for _, tc := range []struct {
		name string
		log  []fakeEntry
	}{
		{"records only", records(t, 0, 4)},
		{"markers at both ends", append(append(markers(1), records(t, 0, 4)...), markers(1)...)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			u := newUnitStream(t, &fakePartition{log: tc.log})
			u.wh.loadErrs = []error{&pgconn.PgError{Code: "23514", Message: "check violated"}}
			u.wh.refused = []warehouse.RefusedRow{{Index: 1, Code: "23514", Reason: "check violated"}}
			if _, err := u.cycle(0, 1); err != nil {
				t.Fatalf("cycle: %v", err)
			}
			if len(u.wh.quarantine) != 1 || len(u.wh.gold) != 3 || u.wh.offsets[0] != int64(len(tc.log)) {
				t.Fatalf("%d quarantined, %d in gold, offsets %v; want 1, 3, at %d", len(u.wh.quarantine), len(u.wh.gold), u.wh.offsets, len(tc.log))
			}
		})
	}
}
