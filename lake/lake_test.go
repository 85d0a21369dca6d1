package lake_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"slices"
	"testing"
	"time"

	"github.com/acme/pipeline/event"
	"github.com/acme/pipeline/internal/streamtest"
	"github.com/acme/pipeline/lake"
)

func TestKeys(t *testing.T) {
	at := time.Date(2026, 11, 24, 14, 5, 9, 0, time.FixedZone("x", 3600)) // 13:05 UTC
	tests := []struct {
		name, got, want string
		info            lake.KeyInfo
	}{
		{"bronze", lake.BronzeKey("events", 1, 3, 1000, 1999, at),
			"bronze/events/dt=2026-11-24/hour=13/events-p03-000000001000-000000001999.ndjson",
			lake.KeyInfo{Layer: "bronze", Hour: time.Date(2026, 11, 24, 13, 0, 0, 0, time.UTC), Topic: "events", Incarnation: 1, Partition: 3, First: 1000, Last: 1999}},
		{"quarantine, topic with dashes", lake.QuarantineKey("my-events", 0, 12, 0, 0, at),
			"quarantine/events/dt=2026-11-24/hour=13/my-events-p12-000000000000-000000000000.ndjson",
			lake.KeyInfo{Layer: "quarantine", Hour: time.Date(2026, 11, 24, 13, 0, 0, 0, time.UTC), Topic: "my-events", Incarnation: 1, Partition: 12}},
		{"gold refused", lake.GoldRefusedKey("events", 1, 3, 1000, 1999, at),
			"quarantine/events/dt=2026-11-24/hour=13/events-p03-000000001000-000000001999.gold-refused.ndjson",
			lake.KeyInfo{Layer: "quarantine", Hour: time.Date(2026, 11, 24, 13, 0, 0, 0, time.UTC), Topic: "events", Incarnation: 1, Partition: 3, First: 1000, Last: 1999, GoldRefused: true}},
		{"silver", lake.SilverKey(at, 1, 0, 5, 99),
			"silver/events/dt=2026-11-24/hour=13/p00-000000000005-000000000099.parquet",
			lake.KeyInfo{Layer: "silver", Hour: time.Date(2026, 11, 24, 13, 0, 0, 0, time.UTC), Incarnation: 1, Partition: 0, First: 5, Last: 99}},
		{"merged by hour compaction", lake.MergedSilverKey(at, 1, 3, 0, 99999, 2, sha256.Sum256([]byte("file"))),
			"silver/events/dt=2026-11-24/hour=13/p03-000000000000-000000099999-" + sum8("file") + "-g2.parquet",
			lake.KeyInfo{Layer: "silver", Hour: time.Date(2026, 11, 24, 13, 0, 0, 0, time.UTC), Incarnation: 1, Partition: 3, Last: 99999, Generation: 2, Sum: sum8("file")}},
		{"rebuild", lake.RebuildSilverKey(at, 1, 7, 10, 20, 42),
			"silver/events/dt=2026-11-24/hour=13/p07-000000000010-000000000020-r42.parquet",
			lake.KeyInfo{Layer: "silver", Hour: time.Date(2026, 11, 24, 13, 0, 0, 0, time.UTC), Incarnation: 1, Partition: 7, First: 10, Last: 20, Rebuild: 42}},
		{"old compacted or backfill", lake.CompactedSilverKey(at, 1, 0, 9, 1000),
			"silver/events/dt=2026-11-24/hour=13/p01-000000000000-000000000009-g1000.parquet",
			lake.KeyInfo{Layer: "silver", Hour: time.Date(2026, 11, 24, 13, 0, 0, 0, time.UTC), Incarnation: 1, Partition: 1, Last: 9, Generation: 1000}},
		// A topic deleted and created again: its keys never take the old one's.
		{"bronze, incarnation 2", lake.BronzeKey("events", 2, 3, 1000, 1999, at),
			"bronze/events/dt=2026-11-24/hour=13/events-p03-000000001000-000000001999-i2.ndjson",
			lake.KeyInfo{Layer: "bronze", Hour: time.Date(2026, 11, 24, 13, 0, 0, 0, time.UTC), Topic: "events", Incarnation: 2, Partition: 3, First: 1000, Last: 1999}},
		{"gold refused, incarnation 3, topic with dashes", lake.GoldRefusedKey("my-events", 3, 3, 0, 9, at),
			"quarantine/events/dt=2026-11-24/hour=13/my-events-p03-000000000000-000000000009-i3.gold-refused.ndjson",
			lake.KeyInfo{Layer: "quarantine", Hour: time.Date(2026, 11, 24, 13, 0, 0, 0, time.UTC), Topic: "my-events", Incarnation: 3, Partition: 3, Last: 9, GoldRefused: true}},
		{"silver, incarnation 2", lake.SilverKey(at, 2, 0, 5, 99),
			"silver/events/dt=2026-11-24/hour=13/p00-000000000005-000000000099-i2.parquet",
			lake.KeyInfo{Layer: "silver", Hour: time.Date(2026, 11, 24, 13, 0, 0, 0, time.UTC), Incarnation: 2, Partition: 0, First: 5, Last: 99}},
		{"merged, incarnation 2", lake.MergedSilverKey(at, 2, 3, 0, 99999, 2, sha256.Sum256([]byte("file"))),
			"silver/events/dt=2026-11-24/hour=13/p03-000000000000-000000099999-i2-" + sum8("file") + "-g2.parquet",
			lake.KeyInfo{Layer: "silver", Hour: time.Date(2026, 11, 24, 13, 0, 0, 0, time.UTC), Incarnation: 2, Partition: 3, Last: 99999, Generation: 2, Sum: sum8("file")}},
		{"rebuild, incarnation 12", lake.RebuildSilverKey(at, 12, 7, 10, 20, 42),
			"silver/events/dt=2026-11-24/hour=13/p07-000000000010-000000000020-i12-r42.parquet",
			lake.KeyInfo{Layer: "silver", Hour: time.Date(2026, 11, 24, 13, 0, 0, 0, time.UTC), Incarnation: 12, Partition: 7, First: 10, Last: 20, Rebuild: 42}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.got != tt.want {
				t.Fatalf("key\n got %s\nwant %s", tt.got, tt.want)
			}
			info, err := lake.ParseKey(tt.got)
			if err != nil {
				t.Fatal(err)
			}
			if info != tt.info {
				t.Fatalf("ParseKey = %+v, want %+v", info, tt.info)
			}
		})
	}
	for _, bad := range []string{"gold/x", "silver/events/dt=2026-11-24/hour=13/p00-5.parquet",
		"silver/events/dt=2026-11-24/hour=25/p00-1-2.parquet", "bronze/events/dt=2026-11-24/hour=13/p00-1-2.ndjson",
		"silver/events/dt=2026-11-24/hour=13/p00-9-2.parquet",
		"silver/events/dt=2026-11-24/hour=13/p00-1-2-r0.parquet",
		"silver/events/dt=2026-11-24/hour=13/p00-1-2-rx.parquet",
		"silver/events/dt=2026-11-24/hour=13/p00-1-2-x1.parquet",
		"silver/events/dt=2026-11-24/hour=13/p00-1-2-0123456789abcdef-r1.parquet",
		"silver/events/dt=2026-11-24/hour=13/p00-1-2-0123456789abcdeg-g1.parquet",
		"silver/events/dt=2026-11-24/hour=13/p00-1-2-0123456789ABCDEF-g1.parquet",
		"silver/events/dt=2026-11-24/hour=13/p00-1-2-01234567-g1.parquet",
		"silver/events/dt=2026-11-24/hour=13/p00-1-2-0123456789abcdef-g0.parquet",
		"silver/events/dt=2026-11-24/hour=13/p00-1-2-i1.parquet",
		"silver/events/dt=2026-11-24/hour=13/p00-1-2-ix-r1.parquet",
		"silver/events/dt=2026-11-24/hour=13/p00-1-2-i2-x1.parquet",
		"silver/events/dt=2026-11-24/hour=13/p00-1-2-r1-i2.parquet",
		"bronze/events/dt=2026-11-24/hour=13/events-p00-1-2-i0.ndjson"} {
		if _, err := lake.ParseKey(bad); err == nil {
			t.Errorf("ParseKey(%q): no error", bad)
		}
	}
	if got := lake.SilverHourPrefix(at); got != "silver/events/dt=2026-11-24/hour=13/" {
		t.Errorf("SilverHourPrefix = %s", got)
	}
}

func TestBronzeRoundTrip(t *testing.T) {
	ts := time.Date(2026, 11, 24, 14, 5, 9, 123e6, time.UTC)
	recs := []lake.Record{
		{Partition: 3, Offset: 10, Time: ts, Key: []byte("u-42"), Value: []byte(`{"event_id":"x","type":"a<b>&c","p":"line\nbreak"}`),
			Headers: []lake.Header{{Key: "traceparent", Value: []byte("00-abc-01")}}},
		{Partition: 3, Offset: 11, Time: ts, Value: []byte("not json")},
		{Partition: 3, Offset: 12, Time: ts, Key: []byte{0xff, 0}, Value: []byte{0xff, 0xfe, '{'}},
		{Partition: 3, Offset: 13, Time: ts, Key: []byte{}, Value: []byte("{\n\"multi\": \"line\"\n}")},
		{Partition: 3, Offset: 14, Time: ts, Value: []byte(` {"space":1} `)},
		{Partition: 3, Offset: 15, Time: ts, Value: []byte{}, Headers: []lake.Header{{Key: "bin", Value: []byte{0xff}}}},
		{Partition: 3, Offset: 16, Time: ts, Value: []byte(`"just a string"`)},
	}
	data := lake.EncodeBronze(recs)
	if n := bytes.Count(data, []byte("\n")); n != len(recs) {
		t.Fatalf("%d lines for %d records:\n%s", n, len(recs), data)
	}
	got, err := lake.DecodeBronze(data)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(recs) {
		t.Fatalf("got %d records", len(got))
	}
	for i := range recs {
		w, g := recs[i], got[i]
		if g.Offset != w.Offset || g.Partition != w.Partition || !g.Time.Equal(w.Time) || !bytes.Equal(g.Value, w.Value) ||
			!bytes.Equal(g.Key, w.Key) || (g.Key == nil) != (w.Key == nil) || len(g.Headers) != len(w.Headers) {
			t.Errorf("record %d:\n got %+v\nwant %+v", i, g, w)
			continue
		}
		for j := range w.Headers {
			if g.Headers[j].Key != w.Headers[j].Key || !bytes.Equal(g.Headers[j].Value, w.Headers[j].Value) {
				t.Errorf("record %d header %d: got %+v", i, j, g.Headers[j])
			}
		}
	}
	if !bytes.Contains(data, []byte(`"value":{"event_id":"x","type":"a<b>&c","p":"line\nbreak"}`)) {
		t.Errorf("a JSON value is not kept verbatim:\n%s", data)
	}

	qs := []lake.Quarantined{{Topic: "events", Record: recs[1], Reason: "event must be a JSON object",
		Errors: []lake.FieldProblem{{Message: "event must be a JSON object"}}}}
	qd, err := lake.DecodeQuarantine(lake.EncodeQuarantine(qs))
	if err != nil || len(qd) != 1 || qd[0].Reason != qs[0].Reason || qd[0].Topic != "events" ||
		!bytes.Equal(qd[0].Record.Value, recs[1].Value) || len(qd[0].Errors) != 1 {
		t.Fatalf("quarantine round trip: %+v %v", qd, err)
	}
}

func rows(n int, hour time.Time) []event.Row {
	out := make([]event.Row, n)
	for i := range out {
		out[i] = event.Row{
			EventID: [16]byte{byte(i >> 16), byte(i >> 8), byte(i), 7}, Type: "payment.succeeded",
			OccurredAt: hour.Add(time.Duration(i) * time.Millisecond).UnixMicro(), ReceivedAt: hour.UnixMicro(),
			Source: "web", UserID: fmt.Sprint("u-", i%100), Properties: `{"amount":"12.50","currency":"EUR"}`,
			AmountMicros: 12_500_000, Currency: "EUR", Partition: 2, Offset: int64(i),
		}
	}
	return out
}

func TestParquetRoundTrip(t *testing.T) {
	want := rows(2500, time.Date(2026, 11, 24, 14, 0, 0, 0, time.UTC))
	data, err := lake.EncodeRows(want, 1000)
	if err != nil {
		t.Fatal(err)
	}
	got, err := lake.DecodeRows(data)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(got, want) {
		t.Fatalf("round trip differs (%d rows back)", len(got))
	}
	rr, err := lake.NewRowReader(bytes.NewReader(data), int64(len(data)))
	if err != nil {
		t.Fatal(err)
	}
	defer rr.Close()
	if rr.NumRows() != 2500 {
		t.Fatalf("NumRows %d", rr.NumRows())
	}
	empty, err := lake.EncodeRows(nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := lake.DecodeRows(empty); err != nil || len(got) != 0 {
		t.Fatalf("empty file: %v %v", got, err)
	}
}

func TestStore(t *testing.T) {
	ctx := context.Background()
	st, s3 := streamtest.Lake(t)
	if err := st.EnsureBucket(ctx); err != nil { // second time: no-op
		t.Fatal(err)
	}
	keys := []string{"bronze/events/a.ndjson", "bronze/events/b.ndjson", "silver/events/c.parquet"}
	for i, k := range keys {
		if err := st.Put(ctx, k, []byte(fmt.Sprint("body", i)), "application/x-ndjson"); err != nil {
			t.Fatal(err)
		}
	}
	b, err := st.Get(ctx, keys[1])
	if err != nil || string(b) != "body1" {
		t.Fatalf("get: %q %v", b, err)
	}
	if _, err := st.Get(ctx, "bronze/events/missing"); !errors.Is(err, lake.ErrNotFound) {
		t.Fatalf("get missing: %v", err)
	}
	objs, err := st.List(ctx, "bronze/")
	if err != nil || len(objs) != 2 || objs[0].Key != keys[0] || objs[1].Size != 5 {
		t.Fatalf("list: %+v %v", objs, err)
	}
	// A big file through PutFile and GetFile.
	f, err := os.CreateTemp(t.TempDir(), "big")
	if err != nil {
		t.Fatal(err)
	}
	big := bytes.Repeat([]byte("0123456789"), 3<<20/10)
	f.Write(big)
	if err := st.PutFile(ctx, "silver/events/big.parquet", f, lake.ParquetContentType); err != nil {
		t.Fatal(err)
	}
	f.Close()
	g, err := st.GetFile(ctx, "silver/events/big.parquet", t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	gb, _ := os.ReadFile(g.Name())
	g.Close()
	if !bytes.Equal(gb, big) {
		t.Fatal("big object differs")
	}
	if err := st.Delete(ctx, keys[0], keys[1], "bronze/events/missing"); err != nil {
		t.Fatal(err)
	}
	if err := st.Delete(ctx, keys[2]); err != nil {
		t.Fatal(err)
	}
	objs, err = st.List(ctx, "")
	if err != nil || len(objs) != 1 || objs[0].Key != "silver/events/big.parquet" {
		t.Fatalf("after delete: %+v %v", objs, err)
	}

	// An outage is an error naming the key; the store works again after it.
	s3.Stop()
	cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	err = st.Put(cctx, "bronze/events/x", []byte("x"), "")
	cancel()
	if err == nil || !bytes.Contains([]byte(err.Error()), []byte("bronze/events/x")) {
		t.Fatalf("put during outage: %v", err)
	}
	s3.Start(t)
	if err := st.Put(ctx, "bronze/events/x", []byte("x"), ""); err != nil {
		t.Fatal(err)
	}
}

// sum8 is the hex of the first 8 bytes of the SHA-256 of s.
func sum8(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:8])
}

// TestSilverKeysNeverReused: the keys of different files of one hour,
// partition and range never meet, across stream cycles, compactions of
// different bytes, rebuilds and old keys.
func TestSilverKeysNeverReused(t *testing.T) {
	h := time.Date(2026, 11, 24, 14, 0, 0, 0, time.UTC)
	seen := map[string]string{}
	add := func(what, key string) {
		t.Helper()
		if other, dup := seen[key]; dup {
			t.Errorf("%s and %s share the key %s", what, other, key)
		}
		seen[key] = what
		if _, err := lake.ParseKey(key); err != nil {
			t.Errorf("%s: %v", what, err)
		}
	}
	add("stream file", lake.SilverKey(h, 1, 3, 0, 99))
	add("old compaction", lake.CompactedSilverKey(h, 3, 0, 99, 1))
	add("old backfill", lake.CompactedSilverKey(h, 3, 0, 99, 1000))
	for gen := 1; gen <= 3; gen++ {
		for _, content := range []string{"a", "b", "c"} {
			add(fmt.Sprintf("merge %d of %s", gen, content), lake.MergedSilverKey(h, 1, 3, 0, 99, gen, sha256.Sum256([]byte(content))))
		}
	}
	for r := int64(1); r <= 3; r++ {
		add(fmt.Sprintf("rebuild %d", r), lake.RebuildSilverKey(h, 1, 3, 0, 99, r))
	}
	// The same offsets of a recreated topic: other records, other keys.
	for inc := 2; inc <= 3; inc++ {
		add(fmt.Sprintf("incarnation %d stream file", inc), lake.SilverKey(h, inc, 3, 0, 99))
		add(fmt.Sprintf("incarnation %d merge", inc), lake.MergedSilverKey(h, inc, 3, 0, 99, 1, sha256.Sum256([]byte("a"))))
		add(fmt.Sprintf("incarnation %d rebuild", inc), lake.RebuildSilverKey(h, inc, 3, 0, 99, 1))
	}
	if a, b := lake.SilverKey(h, 0, 3, 0, 99), lake.SilverKey(h, 1, 3, 0, 99); a != b {
		t.Errorf("incarnation 0 and 1 are both the first: %s %s", a, b)
	}
	// The same bytes are the same key: a retried compaction rewrites its
	// own output, never another file.
	if a, b := lake.MergedSilverKey(h, 1, 3, 0, 99, 1, sha256.Sum256([]byte("a"))), lake.MergedSilverKey(h, 1, 3, 0, 99, 1, sha256.Sum256([]byte("a"))); a != b {
		t.Errorf("same content, two keys: %s %s", a, b)
	}
}

func TestCompactedSilverKey(t *testing.T) {
	h := time.Date(2026, 11, 24, 14, 0, 0, 0, time.UTC)
	k := lake.CompactedSilverKey(h, 3, 0, 99999, 2)
	if k != "silver/events/dt=2026-11-24/hour=14/p03-000000000000-000000099999-g2.parquet" {
		t.Fatal(k)
	}
	ki, err := lake.ParseKey(k)
	if err != nil || ki.Generation != 2 || ki.Last != 99999 || ki.Partition != 3 {
		t.Fatalf("%+v %v", ki, err)
	}
	if _, err := lake.ParseKey("silver/events/dt=2026-11-24/hour=14/p03-0-9-g0.parquet"); err == nil {
		t.Fatal("generation 0 accepted")
	}
}
