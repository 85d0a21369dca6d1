package main

import (
	"context"
	"encoding/binary"
	"encoding/csv"
	"fmt"
	mrand "math/rand/v2"
	"os"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/acme/pipeline/event"
	"github.com/acme/pipeline/lake"
	"github.com/acme/pipeline/tests/benchutil"
	"github.com/acme/pipeline/warehouse"
)

// tally is what the generator knows about the day's distinct events.
type tally struct {
	records, distinct, dups, payments, captured, audit int64
	bronzeBytes                                        int64
	objects                                            int
}

var (
	pages      = []string{"/", "/pricing", "/docs", "/blog/launch", "/signup", "/checkout"}
	currencies = []string{"EUR", "USD", "GBP", "BRL", "JPY"}
	actions    = []string{"login", "logout", "role.grant", "export", "api_key.create"}
	sources    = []string{"web", "ios", "android"}
)

// writeBronze writes a day, at offsets from base, of n records as partitions × objects bronze
// objects of about -object-records records each (the size the stream
// writes), with their index rows, and the distinct events (first received
// wins, as the backfill decides) as a CSV for the \copy baseline, streamed
// object by object.
func writeBronze(ctx context.Context, lk *lake.Store, store *warehouse.Store, start time.Time, n int, base int64, csvPath string) (tally, error) {
	objects := max(1, (n+*partitions**objectRecords-1)/(*partitions**objectRecords))
	nObj := *partitions * objects
	per := n / nObj
	window := 24 * time.Hour / time.Duration(objects)
	f, err := os.Create(csvPath)
	if err != nil {
		return tally{}, err
	}
	defer f.Close()
	cw := csv.NewWriter(f)
	type job struct{ p, j, n int }
	jobs := make(chan job)
	var mu sync.Mutex
	tl := tally{objects: nObj}
	var firstErr error
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for jb := range jobs {
				rng := mrand.New(mrand.NewPCG(uint64(jb.p)+1, uint64(jb.j)+7)) // the same day every run
				t, objRows, err := writeObject(ctx, lk, store, rng, start, window, int32(jb.p), base+int64(jb.j)*1_000_000, jb.j, jb.n)
				mu.Lock()
				if err != nil && firstErr == nil {
					firstErr = err
				}
				tl.records += t.records
				tl.distinct += t.distinct
				tl.dups += t.dups
				tl.payments += t.payments
				tl.captured += t.captured
				tl.audit += t.audit
				tl.bronzeBytes += t.bronzeBytes
				if err == nil {
					if err := benchutil.AppendCSV(cw, objRows); err != nil && firstErr == nil {
						firstErr = err
					}
				}
				mu.Unlock()
			}
		})
	}
	for i := range nObj {
		k := per
		if i < n%nObj {
			k++
		}
		select {
		case jobs <- job{p: i % *partitions, j: i / *partitions, n: k}:
		case <-ctx.Done():
		}
	}
	close(jobs)
	wg.Wait()
	if firstErr != nil {
		return tl, firstErr
	}
	if ctx.Err() != nil {
		return tl, ctx.Err()
	}
	return tl, f.Close()
}

// writeObject writes one bronze object of n records of partition p, covering
// the j-th window of the day, and records it in the index.
func writeObject(ctx context.Context, lk *lake.Store, store *warehouse.Store, rng *mrand.Rand, start time.Time, window time.Duration,
	p int32, first int64, j, n int) (tally, []event.Row, error) {
	var t tally
	from := start.Add(time.Duration(j) * window)
	recs := make([]lake.Record, 0, n)
	rows := make([]event.Row, 0, n)
	hours := map[time.Time]bool{}
	var minOcc, maxOcc time.Time
	step := window / time.Duration(n+1)
	for i := range n {
		off := first + int64(i)
		if i > 0 && rng.Float64() < *dupRate {
			// A client retry: the same event again, received later.
			k := rng.IntN(len(recs))
			for recs[k].Value == nil {
				k = rng.IntN(len(recs))
			}
			recs = append(recs, lake.Record{Partition: p, Offset: off, Value: recs[k].Value})
			t.dups++
			continue
		}
		occ := from.Add(time.Duration(i+1) * step).Truncate(time.Microsecond)
		recv := occ.Add(time.Duration(rng.IntN(2000)) * time.Millisecond)
		val := genEvent(rng, occ, recv, &t)
		recs = append(recs, lake.Record{Partition: p, Offset: off, Value: val})
		ev, errs := event.Decode(val, event.Options{Now: recv.Add(time.Minute)})
		if len(errs) > 0 {
			return t, nil, fmt.Errorf("generated event does not decode: %v: %s", errs, val)
		}
		row, err := ev.ToRow(p, off)
		if err != nil {
			return t, nil, err
		}
		rows = append(rows, row)
		hours[occ.Truncate(time.Hour)] = true
		if minOcc.IsZero() || occ.Before(minOcc) {
			minOcc = occ
		}
		if occ.After(maxOcc) {
			maxOcc = occ
		}
	}
	t.records, t.distinct = int64(len(recs)), int64(len(rows))
	arrival := from.Add(window).Add(5 * time.Second)
	for i := range recs {
		recs[i].Time = arrival
	}
	last := recs[len(recs)-1].Offset
	key := lake.BronzeKey(topic, 1, p, first, last, arrival)
	data := lake.EncodeBronze(recs)
	t.bronzeBytes = int64(len(data))
	if err := lk.Put(ctx, key, data, "application/x-ndjson"); err != nil {
		return t, nil, err
	}
	eh := slices.SortedFunc(func(yield func(time.Time) bool) {
		for h := range hours {
			if !yield(h) {
				return
			}
		}
	}, func(a, b time.Time) int { return a.Compare(b) })
	_, err := store.RecordBronze(ctx, warehouse.BronzeObject{Topic: topic, Partition: p, First: first, Last: last,
		Records: len(recs), Bytes: int64(len(data)), Key: key, ArrivedAt: arrival, Cleaned: len(recs),
		MinOccurred: minOcc, MaxOccurred: maxOcc, EventHours: eh})
	return t, rows, err
}

// genEvent builds one event like internal/demo's, as the API would have
// written it to the topic (received_at set).
func genEvent(r *mrand.Rand, occ, recv time.Time, t *tally) []byte {
	var id [16]byte
	binary.BigEndian.PutUint64(id[:8], uint64(occ.UnixMilli())<<16|0x7000|r.Uint64()&0x0fff)
	binary.BigEndian.PutUint64(id[8:], r.Uint64()&0x3fffffffffffffff|0x8000000000000000)
	user := "u-" + strconv.Itoa(r.IntN(50_000))
	var typ, props string
	switch n := r.IntN(100); {
	case n < 70:
		typ = []string{"page_view", "click", "search"}[r.IntN(3)]
		props = fmt.Sprintf(`{"path":%q,"referrer":"https://www.example.com/search?q=pricing"}`, pages[r.IntN(len(pages))])
	case n < 88:
		typ = "payment.captured"
		if r.IntN(10) == 0 {
			typ = "payment.refunded"
		} else {
			t.captured++
		}
		t.payments++
		props = fmt.Sprintf(`{"amount":"%d.%02d","currency":%q,"order_id":"o-%d"}`,
			1+r.IntN(300), r.IntN(100), currencies[r.IntN(len(currencies))], r.IntN(1_000_000))
	default:
		outcome := "success"
		if r.IntN(8) == 0 {
			outcome = "denied"
		}
		typ = "audit." + []string{"auth", "admin", "data"}[r.IntN(3)]
		t.audit++
		props = fmt.Sprintf(`{"actor":%q,"action":%q,"outcome":%q}`, user, actions[r.IntN(len(actions))], outcome)
	}
	return fmt.Appendf(nil, `{"event_id":"%s","type":%q,"occurred_at":%q,"received_at":%q,"source":%q,"user_id":%q,"properties":%s}`,
		benchutil.UUIDText(id), typ, occ.UTC().Format(time.RFC3339Nano), recv.UTC().Format(time.RFC3339Nano), sources[r.IntN(3)], user, props)
}
