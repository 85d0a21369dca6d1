package lake_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"testing"
	"time"

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
		// A topic deleted and created again: its keys never take the old one's.
		{"bronze, incarnation 2", lake.BronzeKey("events", 2, 3, 1000, 1999, at),
			"bronze/events/dt=2026-11-24/hour=13/events-p03-000000001000-000000001999-i2.ndjson",
			lake.KeyInfo{Layer: "bronze", Hour: time.Date(2026, 11, 24, 13, 0, 0, 0, time.UTC), Topic: "events", Incarnation: 2, Partition: 3, First: 1000, Last: 1999}},
		{"gold refused, incarnation 3, topic with dashes", lake.GoldRefusedKey("my-events", 3, 3, 0, 9, at),
			"quarantine/events/dt=2026-11-24/hour=13/my-events-p03-000000000000-000000000009-i3.gold-refused.ndjson",
			lake.KeyInfo{Layer: "quarantine", Hour: time.Date(2026, 11, 24, 13, 0, 0, 0, time.UTC), Topic: "my-events", Incarnation: 3, Partition: 3, Last: 9, GoldRefused: true}},
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
	for _, bad := range []string{"gold/x", "silver/events/dt=2026-11-24/hour=13/p00-5-9.parquet",
		"bronze/events/dt=2026-11-24/hour=25/events-p00-1-2.ndjson", "bronze/events/dt=2026-11-24/hour=13/events-p00-9-2.ndjson",
		"bronze/events/dt=2026-11-24/hour=13/events-p00-1-2-i0.ndjson"} {
		if _, err := lake.ParseKey(bad); err == nil {
			t.Errorf("ParseKey(%q): no error", bad)
		}
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
	if err := st.PutFile(ctx, "silver/events/big.parquet", f, "application/octet-stream"); err != nil {
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
