package main

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/acme/pipeline/tests/cluster"
)

// The one table of a run: each stage's rate beside its baseline, measured
// in the same run on the same stack, then the latencies.

// freshResult is the freshness phase: events sent at a steady rate, and
// how long each took from the API's received_at to the commit of its gold
// load (pipeline.loads.finished_at).
type freshResult struct {
	events   int64
	rate     float64 // achieved, events/s
	p50, p95 time.Duration
}

// freshness sends -fresh-rate events/s for -fresh-seconds (one -batch
// request per tick, each in its own goroutine), waits for gold to hold them
// all (have is what it held before), and reads the latencies from gold.
func freshness(ctx context.Context, conn *pgx.Conn, url, key string, have int64) (freshResult, error) {
	var res freshResult
	snd := &cluster.Sender{URL: url, Key: key, Batch: *batchSize, Inflight: 1, Realistic: *realistic}
	every := time.Duration(float64(time.Second) * float64(*batchSize) / float64(*freshRate))
	start := time.Now()
	errc := make(chan error, 1)
	sent := int64(0)
	tick := time.NewTicker(every)
	for time.Since(start) < time.Duration(*freshSecs)*time.Second {
		<-tick.C
		sent += int64(*batchSize)
		go func() {
			if err := snd.Send(ctx, *batchSize, 0); err != nil {
				select {
				case errc <- err:
				default:
				}
			}
		}()
	}
	tick.Stop()
	res.rate = float64(sent) / time.Since(start).Seconds()
	for deadline := time.Now().Add(2 * time.Minute); ; time.Sleep(100 * time.Millisecond) {
		select {
		case err := <-errc:
			return res, err
		default:
		}
		var n int64
		if err := conn.QueryRow(ctx, "SELECT count(*) FROM gold.events").Scan(&n); err != nil {
			return res, err
		}
		if n >= have+sent {
			break
		}
		if time.Now().After(deadline) {
			return res, fmt.Errorf("freshness phase: gold holds %d of %d after 2 minutes", n-have, sent)
		}
	}
	var p50, p95 float64
	err := conn.QueryRow(ctx, `SELECT count(*),
		percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM l.finished_at - e.received_at)),
		percentile_cont(0.95) WITHIN GROUP (ORDER BY extract(epoch FROM l.finished_at - e.received_at))
		FROM gold.events e JOIN pipeline.loads l USING (load_id) WHERE e.received_at >= $1`, start).Scan(&res.events, &p50, &p95)
	if err != nil {
		return res, fmt.Errorf("freshness: %w", err)
	}
	res.p50, res.p95 = time.Duration(p50*float64(time.Second)), time.Duration(p95*float64(time.Second))
	return res, nil
}

// stageTable renders the run's stages, each against its baseline.
func stageTable(r result) string {
	n := float64(r.rows)
	per := func(sec float64) float64 {
		if sec <= 0 {
			return 0
		}
		return n / sec
	}
	ratio := func(a, b float64) string {
		if a == 0 || b == 0 {
			return "–"
		}
		return fmt.Sprintf("%.2f×", a/b)
	}
	var b strings.Builder
	b.WriteString("| stage | events/s | baseline (same run) | baseline/s | ratio |\n|---|---:|---|---:|---:|\n")
	row := func(stage string, rate float64, base string, baseRate float64) {
		baseCell := "–"
		if baseRate > 0 {
			baseCell = fmt.Sprintf("%.0f", baseRate)
		}
		fmt.Fprintf(&b, "| %s | %.0f | %s | %s | %s |\n", stage, rate, base, baseCell, ratio(rate, baseRate))
	}
	row("API: first request → last 202", n/r.send.Seconds(), "kcat, acks=all, the same events", r.kcatRate)
	row("stream read (summed over partitions, its waits for new records included)", per(r.stages["read"]), "plain kafka-go reader", r.readRate)
	row("bronze: S3 object + index row (summed)", per(r.stages["bronze"]), "–", 0)
	row("clean: decode and validate (summed)", per(r.stages["clean"]), "–", 0)
	row("gold load (per flush, wall)", per(r.stages["gold"]), "psql \\copy into a copy of gold.events", r.copyRate)
	row("silver.events append (per append, beside the flushes)", per(r.stages["silver"]), "plain Parquet writer, one file, zstd", r.parquetRate)
	row("end to end: first request → last row in gold", n/r.total.Seconds(), "psql \\copy", r.copyRate)
	fmt.Fprintf(&b, "\nAPI per %d-event request: p50 %v, p99 %v.", *batchSize, r.p50.Round(time.Millisecond), r.p99.Round(time.Millisecond))
	if r.fresh.events > 0 {
		fmt.Fprintf(&b, " Freshness at %.0f events/s (%d events): p50 %v, p95 %v from received_at to the gold commit.",
			r.fresh.rate, r.fresh.events, r.fresh.p50.Round(time.Millisecond), r.fresh.p95.Round(time.Millisecond))
	}
	b.WriteString("\n")
	return b.String()
}
