package main

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/acme/pipeline/internal/config"
	"github.com/acme/pipeline/internal/status"
)

// runStatus is `pipeline status [--json]`: freshness, lag, throughput,
// per-layer counts, silver hours set aside by compaction, loads, backfills
// and catalog, read from the warehouse
// (DATABASE_URL) and Kafka (KAFKA_BROKERS). It exits non-zero when the
// verdict is not OK, so scripts can use it as a check.
func runStatus(ctx context.Context, args []string) error {
	var cfg config.Config
	fs := newFlagSet("status", "[--json] [flags]")
	cfg.Register(fs)
	asJSON := fs.Bool("json", false, "print the snapshot as JSON instead of text")
	if err := parse(fs, args); err != nil {
		return err
	}
	if err := cfg.ValidateFor("status"); err != nil {
		return err
	}
	pool, err := statusPool(ctx, cfg.DatabaseURL)
	if err != nil {
		return err
	}
	defer pool.Close()
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	snap, err := status.Source{DB: pool, Brokers: cfg.Brokers(), Kafka: cfg.Kafka, Topic: cfg.Topic}.Snapshot(ctx)
	if err != nil {
		return err
	}
	if *asJSON {
		enc := json.NewEncoder(os.Stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(snap); err != nil {
			return err
		}
	} else {
		fmt.Print(snap.Text())
	}
	if !snap.OK {
		return errSilentExit1
	}
	return nil
}

// errSilentExit1 makes main exit 1 after the output already said why.
var errSilentExit1 = fmt.Errorf("the verdict is not OK")

func statusPool(ctx context.Context, url string) (*pgxpool.Pool, error) {
	pc, err := pgxpool.ParseConfig(url)
	if err != nil {
		return nil, fmt.Errorf("DATABASE_URL: %w", err)
	}
	pc.MaxConns = 2
	pc.ConnConfig.RuntimeParams["application_name"] = "pipeline-status"
	return pgxpool.NewWithConfig(ctx, pc)
}

// apiDatabase is the event API's small pool, when a database is configured:
// it serves GET /status and stores the accepted counts of the completeness
// SLO. Nil without DATABASE_URL or when it cannot be set up (the API then
// runs alone). It connects lazily; the caller closes it.
func apiDatabase(ctx context.Context, cfg config.Config) *pgxpool.Pool {
	if cfg.DatabaseURL == "" {
		return nil
	}
	pool, err := statusPool(ctx, cfg.DatabaseURL)
	if err != nil {
		slog.Warn("GET /status shows the API only, and accepted events are not counted for the completeness SLO", "err", err)
		return nil
	}
	return pool
}

// statusHandler is the API's GET /status on pool: the pipeline's status
// page. Nil (the API's own minimal page) without a pool.
func statusHandler(pool *pgxpool.Pool, cfg config.Config) http.Handler {
	if pool == nil {
		return nil
	}
	return status.Handler(status.Source{DB: pool, Brokers: cfg.Brokers(), Kafka: cfg.Kafka, Topic: cfg.Topic})
}
