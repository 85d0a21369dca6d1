package warehouse

import (
	"context"
	"errors"
	"io/fs"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// TestProcessRoles: each process's role (016_process_roles) can do what
// its process does and is refused the rest. The event API's role writes its
// accepted counts and reads the status page's data, gold's through the
// SECURITY DEFINER functions only; the worker's reads and writes the data
// but may not change the schema.
func TestProcessRoles(t *testing.T) {
	ctx := context.Background()
	hour := time.Now().UTC().Truncate(time.Hour)
	cases := []struct {
		role    string
		allowed []string
		refused []string
	}{
		{role: "pipeline_api",
			allowed: []string{
				"INSERT INTO pipeline.api_accepted (hour, instance, accepted) VALUES (date_trunc('hour', now()), 'roles-test', 1) ON CONFLICT (hour, instance) DO UPDATE SET accepted = EXCLUDED.accepted",
				"SELECT count(*) FROM pipeline.loads",
				"SELECT * FROM pipeline.catalog",
				"SELECT * FROM pipeline.gold_freshness(NULL)",
				"SELECT * FROM pipeline.gold_hour_layers(now() - interval '1 day', now())",
				"SELECT pipeline.gold_of_hour('events', date_trunc('hour', now()), 0)",
			},
			refused: []string{
				"SELECT count(*) FROM gold.events",
				"SELECT * FROM gold.daily_revenue",
				"INSERT INTO gold.events (event_id, event_type, occurred_at, kafka_partition, kafka_offset, load_id) VALUES (gen_random_uuid(), 'x', now(), 0, 0, 0)",
				"DELETE FROM pipeline.api_accepted",
				"UPDATE pipeline.loads SET rows_seen = 0",
				"INSERT INTO pipeline.catalog (kind, name, config) VALUES ('lane', 'x', '{}')",
				"INSERT INTO pipeline.gold_hour_counts (topic, hour, inserted_seen, gold) VALUES ('x', now(), 0, 0)",
				"CREATE TABLE pipeline.mine (x int)",
				"CREATE TEMP TABLE mine (x int)",
			}},
		{role: "pipeline_worker",
			allowed: []string{
				"INSERT INTO gold.events (event_id, event_type, occurred_at, kafka_partition, kafka_offset, load_id) VALUES (gen_random_uuid(), 'x', now(), 0, 0, 0)",
				"DELETE FROM gold.events WHERE event_type = 'x'",
				"UPDATE pipeline.loads SET rows_seen = rows_seen",
				"UPDATE pipeline.catalog SET config = config",
				"CREATE TEMP TABLE stage (x int)",
				"LOCK TABLE pipeline.mart_days IN SHARE ROW EXCLUSIVE MODE",
				"SELECT count(*) FROM pipeline.schema_migrations",
				"SELECT * FROM pipeline.gold_freshness(NULL)",
			},
			refused: []string{
				"CREATE TABLE gold.mine (x int)",
				"CREATE TABLE public.mine (x int)",
				"ALTER TABLE gold.events ADD COLUMN x int",
				"DROP TABLE pipeline.loads",
				"INSERT INTO pipeline.schema_migrations (version, name, checksum) VALUES (999, 'x', 'x')",
				"CREATE ROLE mine",
			}},
	}
	for _, tc := range cases {
		t.Run(tc.role, func(t *testing.T) {
			conn, err := pgx.Connect(ctx, urlAs(t, testURL, tc.role))
			if err != nil {
				t.Fatalf("connect as %s: %v", tc.role, err)
			}
			defer conn.Close(ctx)
			for _, sql := range tc.allowed {
				tx, err := conn.Begin(ctx)
				if err != nil {
					t.Fatal(err)
				}
				if _, err := tx.Exec(ctx, sql); err != nil {
					t.Errorf("%s: %s: %v", tc.role, sql, err)
				}
				_ = tx.Rollback(ctx)
			}
			for _, sql := range tc.refused {
				_, err := conn.Exec(ctx, sql)
				var pgErr *pgconn.PgError
				if !errors.As(err, &pgErr) || pgErr.Code != "42501" {
					t.Errorf("%s: %s: err = %v, want permission denied (42501)", tc.role, sql, err)
				}
			}
		})
	}

	// The status page's reads, through the Store, as the API's role.
	api, err := Open(ctx, Config{URL: urlAs(t, testURL, "pipeline_api")})
	if err != nil {
		t.Fatal(err)
	}
	defer api.Close()
	if err := api.RecordAccepted(ctx, "roles-test", map[time.Time]int64{hour: 3}); err != nil {
		t.Errorf("RecordAccepted as pipeline_api: %v", err)
	}
	if _, _, err := api.NewestGold(ctx, time.Now()); err != nil {
		t.Errorf("NewestGold as pipeline_api: %v", err)
	}
	if _, err := api.CountsByHour(ctx, "events", hour, 24); err != nil {
		t.Errorf("CountsByHour as pipeline_api: %v", err)
	}
	if _, err := api.Accounting(ctx, "events", hour.Add(-3*time.Hour), hour, hour.Add(-3*time.Hour), hour); err != nil {
		t.Errorf("Accounting as pipeline_api: %v", err)
	}
}

// TestMigrateAsWorker: the worker's role finds nothing to do when the owner
// has migrated, and is told ErrNotOwner when a migration is pending.
func TestMigrateAsWorker(t *testing.T) {
	ctx := context.Background()
	worker, err := Open(ctx, Config{URL: urlAs(t, testURL, "pipeline_worker")})
	if err != nil {
		t.Fatal(err)
	}
	defer worker.Close()
	if err := worker.Migrate(ctx); err != nil {
		t.Fatalf("Migrate with nothing pending: %v", err)
	}
	sub, err := fs.Sub(migrationFiles, "migrations")
	if err != nil {
		t.Fatal(err)
	}
	ms, err := loadMigrations(sub)
	if err != nil {
		t.Fatal(err)
	}
	pending := append(ms, migration{Version: 9999, Name: "9999_pending.sql", SQL: "CREATE TABLE gold.pending (x int)", Checksum: "x"})
	_, err = migrate(ctx, worker.Pool(), pending)
	if !errors.Is(err, ErrNotOwner) {
		t.Fatalf("a pending migration as pipeline_worker: %v, want ErrNotOwner", err)
	}
	t.Logf("as pipeline_worker: %v", err)
}
