package warehouse

import (
	"context"
	"errors"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// TestBIReader: bi_reader reads every table of gold, also ones created after
// the migration, and is refused everything else.
func TestBIReader(t *testing.T) {
	ctx := context.Background()
	admin := store.Pool()
	for _, sql := range []string{
		"CREATE TABLE gold.later_probe (x int)",
		"CREATE TABLE public.bi_probe (x int)",
	} {
		if _, err := admin.Exec(ctx, sql); err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(func() {
		_, _ = admin.Exec(ctx, "DROP TABLE IF EXISTS gold.later_probe, public.bi_probe")
	})
	conn, err := pgx.Connect(ctx, urlAs(t, testURL, "bi_reader"))
	if err != nil {
		t.Fatalf("connect as bi_reader: %v", err)
	}
	defer conn.Close(ctx)

	var goldTables []string
	rows, _ := admin.Query(ctx, "SELECT 'gold.' || tablename FROM pg_tables WHERE schemaname = 'gold' ORDER BY 1")
	goldTables, err = pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil || len(goldTables) != 7 { // six of the migration and the probe
		t.Fatalf("gold tables %v (%v)", goldTables, err)
	}
	for _, table := range goldTables {
		if _, err := conn.Exec(ctx, "SELECT * FROM "+table+" LIMIT 1"); err != nil {
			t.Errorf("bi_reader cannot read %s: %v", table, err)
		}
	}
	for _, sql := range []string{
		"SELECT * FROM pipeline.loads",
		"SELECT * FROM pipeline.stream_offsets",
		"SELECT * FROM pipeline.schema_migrations",
		"SELECT * FROM public.bi_probe",
		"INSERT INTO gold.events (event_id, event_type, occurred_at, kafka_partition, kafka_offset, load_id) VALUES (gen_random_uuid(), 'x', now(), 0, 0, 0)",
		"DELETE FROM gold.daily_revenue",
		"UPDATE gold.payments SET amount = 0",
		"TRUNCATE gold.audit_log",
		"CREATE TABLE gold.mine (x int)",
		"CREATE TEMP TABLE mine (x int)",
	} {
		_, err := conn.Exec(ctx, sql)
		var pgErr *pgconn.PgError
		if !errors.As(err, &pgErr) || pgErr.Code != "42501" {
			t.Errorf("bi_reader: %s: err = %v, want permission denied (42501)", sql, err)
		}
	}
	// A dashboard's runaway query ends.
	var timeout string
	if err := conn.QueryRow(ctx, "SHOW statement_timeout").Scan(&timeout); err != nil || timeout != "5min" {
		t.Errorf("bi_reader's statement_timeout = %q (%v), want 5min", timeout, err)
	}
}

func TestEnsureDatabase(t *testing.T) {
	ctx := context.Background()
	dbURL, drop, err := newDatabase(ctx, "wh_test_ensure") // creates it through EnsureDatabase
	if err != nil {
		t.Fatal(err)
	}
	defer drop()
	if err := EnsureDatabase(ctx, dbURL); err != nil { // exists already: fine
		t.Fatal(err)
	}
	conn, err := pgx.Connect(ctx, dbURL)
	if err != nil {
		t.Fatalf("connect to the ensured database: %v", err)
	}
	conn.Close(ctx)

	for _, tc := range []struct{ url, want string }{
		{"postgres://postgres@127.0.0.1:1/", "URL: names no database"},
		{"::not a url", "URL: not a PostgreSQL connection string"},
	} {
		if err := EnsureDatabase(ctx, tc.url); err == nil || !IsPermanent(err) || len(err.Error()) < len(tc.want) || err.Error()[:len(tc.want)] != tc.want {
			t.Errorf("EnsureDatabase(%q) = %v, want %q", tc.url, err, tc.want)
		}
	}
}

func TestOpenConfig(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		cfg  Config
		want string
	}{
		{Config{}, "URL: the PostgreSQL URL is required"},
		{Config{URL: testURL, MaxConns: -1}, "MaxConns: -1 is negative"},
	} {
		if _, err := Open(ctx, tc.cfg); err == nil || !IsPermanent(err) || err.Error()[:len(tc.want)] != tc.want {
			t.Errorf("Open(%+v) = %v, want %q", tc.cfg, err, tc.want)
		}
	}
	// A server that is not there: a retryable error naming it.
	_, err := Open(ctx, Config{URL: "postgres://postgres@127.0.0.1:1/x?connect_timeout=2"})
	if err == nil || IsPermanent(err) {
		t.Fatalf("Open of a closed port = %v, want a retryable error", err)
	}
}
