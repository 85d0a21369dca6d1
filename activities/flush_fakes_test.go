package activities

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/acme/pipeline/event"
	"github.com/acme/pipeline/internal/kafkaread"
	"github.com/acme/pipeline/lake"
	"github.com/acme/pipeline/warehouse"
)

// In-memory fakes of the interfaces of stream_deps.go, for the unit tests of
// the flush (flush_unit_test.go): each keeps what the real component would
// hold, as plainly as the flush needs it, and counts the calls the tests
// reason about. Hour compaction's methods are not faked: the fakes embed
// those interfaces as nil, so a flush that called one would panic.

// fakeEntry is one offset of a fake partition: a record, or (control) what
// read_committed consumes without returning it, a transaction marker or an
// aborted record.
type fakeEntry struct {
	value   []byte
	control bool
}

// fakePartition is a partition's log from its earliest retained offset.
type fakePartition struct {
	first int64
	log   []fakeEntry
}

func (p *fakePartition) end() int64 { return p.first + int64(len(p.log)) }

// fakeKafka is one topic, read as kafkaread.Client reads it.
type fakeKafka struct {
	mu      sync.Mutex
	id      kafkaread.TopicID
	parts   map[int32]*fakePartition
	reads   map[int32]int // Read calls per partition
	commits []map[int32]int64
}

func newFakeKafka() *fakeKafka {
	return &fakeKafka{id: kafkaread.TopicID{1, 2, 3}, parts: map[int32]*fakePartition{}, reads: map[int32]int{}}
}

// recordTime is the Kafka timestamp of a fake record at offset.
func recordTime(offset int64) time.Time {
	return unitHour.Add(time.Hour + time.Duration(offset)*time.Second)
}

func (k *fakeKafka) Read(_ context.Context, req kafkaread.ReadRequest) (kafkaread.Batch, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.reads[req.Partition]++
	p, ok := k.parts[req.Partition]
	if !ok {
		return kafkaread.Batch{}, fmt.Errorf("fake kafka: no partition %d", req.Partition)
	}
	if req.Offset < p.first || req.Offset > p.end() {
		return kafkaread.Batch{Next: req.Offset}, &kafkaread.OutOfRangeError{Topic: req.Topic, Partition: req.Partition, Offset: req.Offset}
	}
	b := kafkaread.Batch{Next: req.Offset, HighWatermark: p.end(), Fetches: 1}
	for o := req.Offset; o < p.end() && len(b.Records) < req.MaxRecords; o++ {
		if e := p.log[o-p.first]; !e.control {
			b.Records = append(b.Records, lake.Record{Partition: req.Partition, Offset: o, Time: recordTime(o), Value: e.value})
		}
		b.Next = o + 1
	}
	return b, nil
}

func (k *fakeKafka) Bounds(_ context.Context, _ string, partitions []int32) (map[int32]kafkaread.Bounds, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	out := map[int32]kafkaread.Bounds{}
	for _, p := range partitions {
		fp, ok := k.parts[p]
		if !ok {
			return nil, fmt.Errorf("fake kafka: no partition %d", p)
		}
		out[p] = kafkaread.Bounds{First: fp.first, Next: fp.end()}
	}
	return out, nil
}

func (k *fakeKafka) Partitions(context.Context, string) ([]int32, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	return slices.Sorted(maps.Keys(k.parts)), nil
}

func (k *fakeKafka) TopicID(context.Context, string) (kafkaread.TopicID, error) { return k.id, nil }

func (k *fakeKafka) Commit(_ context.Context, _, _ string, offsets map[int32]int64) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.commits = append(k.commits, maps.Clone(offsets))
	return nil
}

// fakeLake is a bucket in memory.
type fakeLake struct {
	fileStore // nil: only hour compaction streams files

	mu      sync.Mutex
	objects map[string][]byte
}

func (l *fakeLake) Put(_ context.Context, key string, body []byte, _ string) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.objects[key] = slices.Clone(body)
	return nil
}

func (l *fakeLake) Get(_ context.Context, key string) ([]byte, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	b, ok := l.objects[key]
	if !ok {
		return nil, fmt.Errorf("get %s: %w", key, lake.ErrNotFound)
	}
	return slices.Clone(b), nil
}

func (l *fakeLake) Delete(_ context.Context, keys ...string) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, k := range keys {
		delete(l.objects, k)
	}
	return nil
}

// keys returns the keys under prefix, sorted.
func (l *fakeLake) keys(prefix string) []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []string
	for k := range l.objects {
		if strings.HasPrefix(k, prefix) {
			out = append(out, k)
		}
	}
	slices.Sort(out)
	return out
}

// bronzeSlot is the key of pipeline.bronze_objects.
type bronzeSlot struct {
	incarnation int
	partition   int32
	offset      int64
}

// fakeWarehouse is the stream's index, offsets and gold of one topic. Its
// LoadLive is one transaction: an error (loadErrs) changes nothing.
type fakeWarehouse struct {
	mu         sync.Mutex
	inc        warehouse.Incarnation
	offsets    map[int32]int64 // pipeline.stream_offsets
	lost       [][3]int64      // partition, first, last
	bronze     map[bronzeSlot]warehouse.BronzeObject
	quarantine map[[2]int64]warehouse.QuarantineEntry
	gold       map[[16]byte]event.Row
	loads      int     // committed LoadLive calls
	loadErrs   []error // returned by the next LoadLive calls, in order
	refused    []warehouse.RefusedRow
}

func newFakeWarehouse(topic string, id kafkaread.TopicID) *fakeWarehouse {
	return &fakeWarehouse{
		inc:     warehouse.Incarnation{Topic: topic, Number: 1, TopicID: id.String(), FirstSeen: unitHour},
		offsets: map[int32]int64{}, bronze: map[bronzeSlot]warehouse.BronzeObject{},
		quarantine: map[[2]int64]warehouse.QuarantineEntry{}, gold: map[[16]byte]event.Row{},
	}
}

func (w *fakeWarehouse) StreamOffsets(context.Context, string) (map[int32]int64, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return maps.Clone(w.offsets), nil
}

func (w *fakeWarehouse) RecordLostOffsets(_ context.Context, _ string, p int32, first, last int64) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.lost = append(w.lost, [3]int64{int64(p), first, last})
	return nil
}

func (w *fakeWarehouse) LoadLive(_ context.Context, in warehouse.LoadInput) (warehouse.LoadResult, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.loadErrs) > 0 {
		err := w.loadErrs[0]
		w.loadErrs = w.loadErrs[1:]
		return warehouse.LoadResult{}, err
	}
	if in.Incarnation != 0 && in.Incarnation != w.inc.Number {
		return warehouse.LoadResult{}, warehouse.ErrNotCurrentIncarnation
	}
	w.loads++
	res := warehouse.LoadResult{LoadID: int64(w.loads), Rows: int64(len(in.Rows))}
	for _, r := range in.Rows {
		if _, dup := w.gold[r.EventID]; dup {
			res.Duplicates++
			continue
		}
		w.gold[r.EventID] = r
		res.Inserted++
	}
	for p, o := range in.Offsets {
		w.offsets[p] = max(w.offsets[p], o)
	}
	return res, nil
}

func (w *fakeWarehouse) FindRefused(context.Context, []event.Row) ([]warehouse.RefusedRow, error) {
	return w.refused, nil
}

func (w *fakeWarehouse) BronzeAt(_ context.Context, _ string, inc int, p int32, offset int64) (warehouse.BronzeObject, bool, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	o, ok := w.bronze[bronzeSlot{max(inc, 1), p, offset}]
	return o, ok, nil
}

func (w *fakeWarehouse) RecordBronze(_ context.Context, o warehouse.BronzeObject) (warehouse.BronzeObject, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	slot := bronzeSlot{max(o.Incarnation, 1), o.Partition, o.First}
	if won, ok := w.bronze[slot]; ok {
		won.Reused = true
		return won, nil
	}
	w.bronze[slot] = o
	return o, nil
}

func (w *fakeWarehouse) RecordQuarantine(_ context.Context, qs []warehouse.QuarantineEntry) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, q := range qs {
		w.quarantine[[2]int64{int64(q.Partition), q.Offset}] = q
	}
	return nil
}

func (w *fakeWarehouse) CurrentIncarnation(context.Context, string) (warehouse.Incarnation, bool, error) {
	return w.inc, true, nil
}

func (w *fakeWarehouse) AdoptIncarnation(context.Context, string, string) (warehouse.Incarnation, error) {
	return w.inc, nil
}

func (w *fakeWarehouse) LearnTopicID(context.Context, string, int, string) (bool, error) {
	return true, nil
}

func (w *fakeWarehouse) IncarnationUsage(context.Context, warehouse.Incarnation) (warehouse.IncarnationUsage, error) {
	return warehouse.IncarnationUsage{}, nil
}

// validEvent is the record value of the i-th page view of a test: an event
// the cleaning rule takes, with an id of its own.
func validEvent(t testing.TB, i int) []byte {
	t.Helper()
	ev := event.Event{EventID: fmt.Sprintf("0193a0b4-6b7e-7c3a-9f1e-%012d", i+1), Type: "page_view",
		OccurredAt: unitHour.Add(time.Duration(i) * time.Second), ReceivedAt: unitHour.Add(time.Hour),
		Properties: []byte(`{"path":"/p"}`)}
	b, err := ev.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	return b
}
