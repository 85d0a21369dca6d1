// Command benchgold measures the gold load: warehouse.(*Store).LoadLive of N
// generated events (default 1,000,000: 70% product events, 20% payments, 10%
// audit) against `psql \copy` of the same rows from CSV files, in the same run,
// on the same server. It creates a scratch database (random name) and drops it
// at the end. Before each timed step the tables are emptied and a CHECKPOINT
// taken; each step is one transaction.
//
// Baselines:
//   - \copy into the gold tables: gold.events, gold.payments, gold.audit_log
//     (the same tables and indexes LoadLive fills, without deduplication,
//     lineage or offsets): the like-for-like baseline for the 0.8x target;
//   - \copy of the wide rows into one table without index, and with a primary
//     key and an occurred_at index (the shape STACK-FACTS measured).
//
// Measured: LoadLive of the whole batch (direct path), LoadLive when the
// batch's first id is already in gold (staged path), LoadLive in stream-sized
// batches, and ReplaceDays of the day over the loaded rows.
//
//	go run ./tests/benchgold [-rows 1000000] [-rounds 1] [-replace]
//
// The server is DATABASE_URL's, else postgres@127.0.0.1:5432. psql must be on
// PATH.
package main

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/csv"
	"encoding/hex"
	"encoding/json"
	"flag"
	"fmt"
	"log"
	mrand "math/rand/v2"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"time"

	"github.com/acme/pipeline/event"
	"github.com/acme/pipeline/tests/benchutil"
	"github.com/acme/pipeline/warehouse"
	"github.com/jackc/pgx/v5"
)

func main() {
	if err := run(context.Background()); err != nil {
		log.Fatal(err)
	}
}

func run(ctx context.Context) error {
	n := flag.Int("rows", 1_000_000, "events to load")
	rounds := flag.Int("rounds", 1, "measurements of each method; medians are reported")
	replace := flag.Bool("replace", true, "also time ReplaceDays of the same rows (one day, replacing the loaded rows)")
	batch := flag.Int("batch", 5000, "also time LoadLive in batches of this many rows, as the stream loads (0: skip)")
	flag.Parse()

	server := os.Getenv("DATABASE_URL")
	if server == "" {
		server = "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable"
	}
	u, err := url.Parse(server)
	if err != nil {
		return fmt.Errorf("DATABASE_URL: %w", err)
	}
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	name := "bench_gold_" + hex.EncodeToString(b)
	u.Path = "/" + name
	dbURL := u.String()
	if err := warehouse.EnsureDatabase(ctx, dbURL); err != nil {
		return err
	}
	defer dropDatabase(server, name)

	store, err := warehouse.Open(ctx, warehouse.Config{URL: dbURL})
	if err != nil {
		return err
	}
	defer store.Close()
	if err := store.Migrate(ctx); err != nil {
		return err
	}
	staged, err := warehouse.Open(ctx, warehouse.Config{URL: dbURL})
	if err != nil {
		return err
	}
	defer staged.Close()
	db := store.Pool()
	_, err = db.Exec(ctx, `CREATE SCHEMA bench;
CREATE TABLE bench.wide (
  event_id uuid, event_type text, occurred_at timestamptz, received_at timestamptz, source text, user_id text,
  properties jsonb, amount numeric(18,6), currency text, actor text, action text, outcome text,
  kafka_partition integer, kafka_offset bigint);
CREATE TABLE bench.wide_indexed (LIKE bench.wide, PRIMARY KEY (event_id));
CREATE INDEX ON bench.wide_indexed (occurred_at);`)
	if err != nil {
		return err
	}

	day := warehouse.Day{Year: 2026, Month: 11, Day: 24}
	t0 := time.Now()
	rows := generate(*n, day)
	dir, err := os.MkdirTemp("", "benchgold")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	csvPath := filepath.Join(dir, "wide.csv")
	if err := benchutil.WriteCSV(csvPath, rows); err != nil {
		return err
	}
	goldCSV := map[string]string{}
	for _, table := range []string{"events", "payments", "audit_log"} {
		goldCSV[table] = filepath.Join(dir, table+".csv")
		if err := writeGoldCSV(goldCSV[table], table, rows); err != nil {
			return err
		}
	}
	fi, _ := os.Stat(goldCSV["events"])
	var payments, audits int
	for i := range rows {
		switch {
		case rows[i].Type[:min(8, len(rows[i].Type))] == "payment.":
			payments++
		case rows[i].Type[:min(6, len(rows[i].Type))] == "audit.":
			audits++
		}
	}
	fmt.Printf("rows %d (payments %d, audit %d), CSV %.0f MiB, generated in %.1fs; database %s\n",
		len(rows), payments, audits, float64(fi.Size())/(1<<20), time.Since(t0).Seconds(), name)

	prepare := func(sql string) error {
		if _, err := db.Exec(ctx, sql); err != nil {
			return err
		}
		_, err := db.Exec(ctx, "CHECKPOINT")
		return err
	}
	// psqlCopy runs \copy of each file into its table, in one transaction.
	psqlCopy := func(tableFile ...string) func() error {
		args := []string{"-X", "-q", "-1", "-v", "ON_ERROR_STOP=1", "-d", dbURL}
		for i := 0; i < len(tableFile); i += 2 {
			args = append(args, "-c", fmt.Sprintf(`\copy %s FROM '%s' WITH (FORMAT csv)`, tableFile[i], tableFile[i+1]))
		}
		return func() error {
			cmd := exec.CommandContext(ctx, "psql", args...)
			out, err := cmd.CombinedOutput()
			if err != nil {
				return fmt.Errorf("psql: %v: %s", err, out)
			}
			return nil
		}
	}
	type method struct {
		name   string
		reset  string
		before func() error // after reset, not timed
		run    func() error
		secs   []float64
	}
	const resetGold = "TRUNCATE gold.events, gold.payments, gold.audit_log, pipeline.loads, pipeline.stream_offsets"
	methods := []*method{
		{name: `psql \copy -> gold.events, payments, audit_log`, reset: resetGold,
			run: psqlCopy(
				"gold.events (event_id, event_type, occurred_at, received_at, source, user_id, properties, kafka_partition, kafka_offset, load_id)", goldCSV["events"],
				"gold.payments (event_id, event_type, occurred_at, received_at, source, user_id, amount, currency, is_refund, load_id)", goldCSV["payments"],
				"gold.audit_log (event_id, occurred_at, event_type, actor, action, outcome, user_id, source, properties, received_at, load_id)", goldCSV["audit_log"])},
		{name: `psql \copy -> one wide table, no index`, reset: "TRUNCATE bench.wide", run: psqlCopy("bench.wide", csvPath)},
		{name: `psql \copy -> one wide table, PK + occurred_at idx`, reset: "TRUNCATE bench.wide_indexed", run: psqlCopy("bench.wide_indexed", csvPath)},
		{name: "LoadLive (direct: no id in gold yet)", reset: resetGold, run: func() error {
			res, err := store.LoadLive(ctx, warehouse.LoadInput{Rows: rows, Sources: []string{"bench"},
				Topic: "events", Offsets: map[int32]int64{0: int64(len(rows))}})
			if err == nil && (!res.Direct || res.Inserted != int64(len(rows)) || res.Payments != int64(payments) || res.Audit != int64(audits)) {
				err = fmt.Errorf("LoadLive: %+v", res)
			}
			return err
		}},
		// The first row's id is in gold already: the direct COPY fails at once
		// and the load takes the staged path. Its own Store, so that the
		// cool-down after the conflict does not affect the other methods.
		{name: "LoadLive (staged: first id in gold already)", reset: resetGold, run: func() error {
			res, err := staged.LoadLive(ctx, warehouse.LoadInput{Rows: rows, Sources: []string{"bench"},
				Topic: "events", Offsets: map[int32]int64{0: int64(len(rows))}})
			if err == nil && (res.Direct || res.Inserted != int64(len(rows))-1) {
				err = fmt.Errorf("LoadLive: %+v", res)
			}
			return err
		}, before: func() error {
			_, err := staged.LoadLive(ctx, warehouse.LoadInput{Rows: rows[:1]})
			return err
		}},
	}
	if *batch > 0 {
		methods = append(methods, &method{name: fmt.Sprintf("LoadLive in batches of %d", *batch), reset: resetGold, run: func() error {
			for i := 0; i < len(rows); i += *batch {
				part := rows[i:min(i+*batch, len(rows))]
				if _, err := store.LoadLive(ctx, warehouse.LoadInput{Rows: part, Sources: []string{"bench"},
					Topic: "events", Offsets: map[int32]int64{0: int64(i + len(part))}}); err != nil {
					return err
				}
			}
			return nil
		}})
	}
	if *replace {
		methods = append(methods, &method{name: "ReplaceDays (day already loaded: delete + load)", run: func() error {
			res, err := store.ReplaceDays(ctx, warehouse.ReplaceInput{From: day, To: day, Rows: warehouse.SliceRows(rows)})
			if err == nil && (res.Inserted != int64(len(rows)) || res.Deleted != int64(len(rows))) {
				err = fmt.Errorf("ReplaceDays: %+v", res)
			}
			return err
		}})
	}
	for r := 0; r < *rounds; r++ {
		for _, m := range methods {
			if m.reset != "" {
				if err := prepare(m.reset); err != nil {
					return err
				}
			} else if err := prepare("SELECT 1"); err != nil {
				return err
			}
			if m.before != nil {
				if err := m.before(); err != nil {
					return err
				}
			}
			t := time.Now()
			if err := m.run(); err != nil {
				return fmt.Errorf("%s: %w", m.name, err)
			}
			m.secs = append(m.secs, time.Since(t).Seconds())
		}
	}

	median := func(v []float64) float64 {
		v = slices.Sorted(slices.Values(v))
		if len(v)%2 == 1 {
			return v[len(v)/2]
		}
		return (v[len(v)/2-1] + v[len(v)/2]) / 2
	}
	rate := func(m *method) float64 { return float64(len(rows)) / median(m.secs) }
	fmt.Printf("%-52s %9s %12s\n", "method", "seconds", "rows/s")
	for _, m := range methods {
		fmt.Printf("%-52s %9.2f %12.0f\n", m.name, median(m.secs), rate(m))
	}
	fmt.Printf("\n%-52s %9s %9s %9s\n", "ratio to \\copy into:", "gold", "wide", "wide+idx")
	for _, m := range methods[3:] {
		fmt.Printf("%-52s %9.2f %9.2f %9.2f\n", m.name, rate(m)/rate(methods[0]), rate(m)/rate(methods[1]), rate(m)/rate(methods[2]))
	}
	fmt.Println("target: LoadLive >= 0.8 x \\copy")
	return nil
}

func dropDatabase(server, name string) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	conn, err := pgx.Connect(ctx, server)
	if err != nil {
		log.Printf("drop database %s: %v", name, err)
		return
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, "DROP DATABASE IF EXISTS "+pgx.Identifier{name}.Sanitize()+" WITH (FORCE)"); err != nil {
		log.Printf("drop database %s: %v", name, err)
	}
}

// generate returns n realistic events of one day: 70% product events, 20%
// payments in several currencies (a tenth of them refunds), 10% audit events;
// UUIDv7 ids in arrival order, as the event API assigns them.
func generate(n int, day warehouse.Day) []event.Row {
	rng := mrand.New(mrand.NewPCG(1, 2))
	start := day.Start(nil).UnixMicro()
	step := int64(86_400_000_000) / int64(n)
	currencies := []string{"EUR", "USD", "GBP", "JPY", "BRL", "CHF", "INR", "SEK"}
	productTypes := []string{"page_view", "page_view", "page_view", "click", "signup", "search"}
	sources := []string{"web", "ios", "android"}
	rows := make([]event.Row, n)
	for i := range rows {
		recv := start + int64(i)*step + rng.Int64N(step)
		occ := recv - rng.Int64N(5_000_000)
		if occ < start {
			occ = start
		}
		r := &rows[i]
		binary.BigEndian.PutUint64(r.EventID[:8], uint64(recv/1000)<<16|rng.Uint64()&0x0fff|0x7000)
		binary.BigEndian.PutUint64(r.EventID[8:], rng.Uint64()&0x3fffffffffffffff|0x8000000000000000)
		r.OccurredAt, r.ReceivedAt = occ, recv
		r.UserID = "u-" + strconv.Itoa(rng.IntN(50_000))
		r.Partition, r.Offset = int32(i%6), int64(i/6)
		switch k := rng.IntN(10); {
		case k < 7:
			r.Type = productTypes[rng.IntN(len(productTypes))]
			r.Source = sources[rng.IntN(len(sources))]
			r.Properties = props("path", "/p/"+strconv.Itoa(rng.IntN(5000)), "referrer", "https://www.example.com/search?q=pricing",
				"ua", "Mozilla/5.0 (X11; Linux x86_64) Firefox/140.0")
		case k < 9:
			r.Type = "payment.succeeded"
			if rng.IntN(10) == 0 {
				r.Type = "payment.refunded"
			}
			r.Source = "billing"
			r.AmountMicros = rng.Int64N(100_000) * 10_000 // up to 999.99
			r.Currency = currencies[rng.IntN(len(currencies))]
			r.Properties = props("amount", event.FormatMicros(r.AmountMicros), "currency", r.Currency, "order_id", "o-"+strconv.Itoa(i))
		default:
			r.Type = "audit.login"
			r.Source = "admin"
			r.Actor, r.Action, r.Outcome = "admin-"+strconv.Itoa(rng.IntN(50)), "login", "success"
			if rng.IntN(20) == 0 {
				r.Outcome = "failure"
			}
			r.Properties = props("actor", r.Actor, "action", r.Action, "outcome", r.Outcome, "ip", "10.0.0."+strconv.Itoa(rng.IntN(255)))
		}
	}
	return rows
}

func props(kv ...string) string {
	m := map[string]string{}
	for i := 0; i < len(kv); i += 2 {
		m[kv[i]] = kv[i+1]
	}
	b, _ := json.Marshal(m)
	return string(b)
}

// writeGoldCSV writes the rows of one gold table (events, payments or
// audit_log) in its column order, load_id 0, NULL for empty source and user_id.
func writeGoldCSV(path, table string, rows []event.Row) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	w := csv.NewWriter(f)
	for i := range rows {
		r := &rows[i]
		var rec []string
		id, occ, recv := benchutil.UUIDText(r.EventID), benchutil.Timestamp(r.OccurredAt), benchutil.Timestamp(r.ReceivedAt)
		part, off := strconv.Itoa(int(r.Partition)), strconv.FormatInt(r.Offset, 10)
		switch {
		case table == "events":
			rec = []string{id, r.Type, occ, recv, r.Source, r.UserID, r.Properties, part, off, "0"}
		case table == "payments" && r.Currency != "":
			rec = []string{id, r.Type, occ, recv, r.Source, r.UserID, event.FormatMicros(r.AmountMicros), r.Currency,
				strconv.FormatBool(r.Type == "payment.refunded"), "0"}
		case table == "audit_log" && r.Actor != "":
			rec = []string{id, occ, r.Type, r.Actor, r.Action, r.Outcome, r.UserID, r.Source, r.Properties, recv, "0"}
		default:
			continue
		}
		if err := w.Write(rec); err != nil {
			return err
		}
	}
	w.Flush()
	if err := w.Error(); err != nil {
		return err
	}
	return f.Close()
}
