package main

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"time"

	"github.com/acme/pipeline/activities"
	"github.com/acme/pipeline/ingest"
	"github.com/acme/pipeline/internal/config"
	"github.com/acme/pipeline/internal/telemetry"
	"github.com/acme/pipeline/lake"
	"github.com/acme/pipeline/starter"
	"github.com/acme/pipeline/warehouse"
	"github.com/acme/pipeline/worker"
	"github.com/acme/pipeline/workflows"
)

func runAPI(ctx context.Context, args []string) error {
	var cfg config.Config
	fs := newFlagSet("api", "[flags]")
	cfg.Register(fs)
	addr := fs.String("addr", "127.0.0.1:8080", "listen address (the blueprint's porta; use :8080 for every interface)")
	adminAddr := fs.String("admin-addr", DefaultAdminAddr, "the operators' listener: GET /status and GET /metrics, not served on --addr; use :9465 in a pod for Prometheus")
	profile := fs.Bool("pprof", false, "also serve Go's profiles on the operators' listener, /debug/pprof/ (CPU, heap, goroutines): keep that listener private")
	if err := parse(fs, args); err != nil {
		return err
	}
	if err := cfg.ValidateFor("api"); err != nil {
		return err
	}
	shutdown, err := telemetry.Setup(ctx, telemetry.Config{ServiceName: "pipeline-api"})
	if err != nil {
		return err
	}
	defer shutdown(context.Background())
	if *adminAddr == "" {
		return fmt.Errorf("%w: --admin-addr: required (the status page and metrics are not served on the public address)", errUsage)
	}
	return serveAPI(ctx, cfg, *addr, *adminAddr, cfg.TLSCertFile, cfg.TLSKeyFile, *profile)
}

// DefaultAdminAddr is where `pipeline api` serves /status and /metrics:
// loopback, so that they are not public unless an operator opens them.
const DefaultAdminAddr = "127.0.0.1:9465"

func serveAPI(ctx context.Context, cfg config.Config, addr, adminAddr, cert, key string, profile bool) error {
	keys, err := ingest.ParseAPIKeys(cfg.APIKeys)
	if err != nil {
		return fmt.Errorf("PIPELINE_API_KEYS: %w", err)
	}
	db := apiDatabase(ctx, cfg)
	if db != nil {
		defer db.Close()
	}
	rctx, stopRecorder := context.WithCancel(ctx)
	defer stopRecorder()
	onAccepted, flushed := acceptedRecorder(rctx, db)
	srv, err := ingest.New(ingest.Config{
		Addr: addr, AdminAddr: adminAddr, Profile: profile, Brokers: cfg.Brokers(), Kafka: cfg.Kafka, Topic: cfg.Topic, APIKeys: keys,
		TLSCertFile: cert, TLSKeyFile: key, Status: statusHandler(db, cfg), OnAccepted: onAccepted,
	}, slog.Default().With("component", "api"))
	if err != nil {
		return err
	}
	err = srv.Run(ctx)
	// The last counts are stored after the server has drained, before the
	// pool closes.
	stopRecorder()
	<-flushed
	return err
}

func runWorker(ctx context.Context, args []string) error {
	var cfg config.Config
	fs := newFlagSet("worker", "[flags]")
	cfg.Register(fs)
	prefetch := fs.Int("batch-concurrency", 5, "max concurrent activities on task queue batch-jobs (the lane's prefetch)")
	stateDir := fs.String("state-dir", ".dev", "local state: the gateway's self-signed dev certificate goes in its tls/ folder")
	metricsAddr := fs.String("metrics-addr", "127.0.0.1:9464", "where the worker serves GET /metrics (Prometheus); empty disables it")
	profile := fs.Bool("pprof", false, "also serve Go's profiles on the metrics listener, /debug/pprof/ (CPU, heap, goroutines): keep that listener private")
	queues := fs.String("task-queues", workflows.StreamQueue+","+workflows.BatchQueue, "task queues to poll, comma-separated: pipeline (the live stream), batch-jobs (backfills, aggregations, provisioning, SLOs)")
	if err := parse(fs, args); err != nil {
		return err
	}
	poll, err := parseQueues(*queues)
	if err != nil {
		return err
	}
	if err := cfg.ValidateFor("worker"); err != nil {
		return err
	}
	shutdown, err := telemetry.Setup(ctx, telemetry.Config{ServiceName: "pipeline-worker"})
	if err != nil {
		return err
	}
	defer shutdown(context.Background())
	if *metricsAddr != "" {
		ln, err := net.Listen("tcp", *metricsAddr)
		if err != nil {
			return fmt.Errorf("--metrics-addr %s: %w", *metricsAddr, err)
		}
		mux := http.NewServeMux()
		mux.Handle("GET /metrics", telemetry.MetricsHandler())
		if *profile {
			telemetry.HandleProfiles(mux)
		}
		srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
		go func() { _ = srv.Serve(ln) }()
		defer srv.Close()
		slog.Info("worker metrics", "url", "http://"+ln.Addr().String()+"/metrics")
	}
	return serveWorker(ctx, cfg, *prefetch, *stateDir, poll)
}

// queueSet is which task queues a worker process polls.
type queueSet struct{ stream, batch bool }

var allQueues = queueSet{stream: true, batch: true}

func parseQueues(v string) (queueSet, error) {
	var q queueSet
	for _, name := range strings.Split(v, ",") {
		switch strings.TrimSpace(name) {
		case workflows.StreamQueue:
			q.stream = true
		case workflows.BatchQueue:
			q.batch = true
		case "":
		default:
			return q, fmt.Errorf("%w: --task-queues %q: unknown task queue %q (want %s and/or %s)", errUsage, v, name, workflows.StreamQueue, workflows.BatchQueue)
		}
	}
	if !q.stream && !q.batch {
		return q, fmt.Errorf("%w: --task-queues %q: names no task queue", errUsage, v)
	}
	return q, nil
}

func serveWorker(ctx context.Context, cfg config.Config, prefetch int, stateDir string, poll queueSet) error {
	store, err := warehouse.Open(ctx, warehouse.Config{URL: cfg.DatabaseURL})
	if err != nil {
		return err
	}
	defer store.Close()
	if err := awaitMigrated(ctx, store); err != nil {
		return err
	}
	tc, err := dialTemporal(cfg, slog.Default())
	if err != nil {
		return err
	}
	defer tc.Close()
	s3c, err := lake.NewS3Client(lakeConfig(cfg))
	if err != nil {
		return err
	}
	prov, err := activities.NewProvisioner(activities.ProvisionerConfig{
		Store: store, KafkaBrokers: cfg.Brokers(), KafkaConn: cfg.Kafka, S3Endpoint: cfg.S3Endpoint, StateDir: filepath.Join(stateDir, "tls"),
		TLSCertFile: cfg.TLSCertFile, TLSKeyFile: cfg.TLSKeyFile, S3: s3c,
		Silver: new(silverConfig(cfg)),
	})
	if err != nil {
		return err
	}
	bf, err := newBackfiller(cfg, store, tc)
	if err != nil {
		slog.Warn("the Backfill workflow is not served by this worker", "err", err)
	}
	var stream *activities.Stream
	if poll.stream {
		stream, err = activities.NewStream(ctx, activities.StreamConfig{
			Lake:    lakeConfig(cfg),
			Brokers: cfg.Brokers(), Kafka: cfg.Kafka, Warehouse: store, Log: slog.Default(), // NewStream adds component=stream
			Silver: silverConfig(cfg),
		})
		if err != nil {
			return err
		}
	}
	mon, err := newMonitor(cfg, store, tc)
	if err != nil {
		return err
	}
	var sm *activities.SilverMaintainer
	if poll.batch {
		if sm, err = newSilverMaintainer(cfg, store); err != nil {
			return err
		}
		defer sm.Close()
	}
	return worker.Run(ctx, worker.Config{Client: tc, Store: store, Provisioner: prov, Backfiller: bf, Stream: stream, Monitor: mon,
		SilverMaintainer: sm, BatchConcurrency: prefetch, StreamOnly: !poll.batch,
		Log: slog.Default().With("component", "worker")})
}

// newSilverMaintainer builds the SilverMaintenance activities on the lake's
// bucket.
func newSilverMaintainer(cfg config.Config, store *warehouse.Store) (*activities.SilverMaintainer, error) {
	sc := silverConfig(cfg)
	sc.Bucket = cmp.Or(cfg.Bucket, lake.DefaultBucket)
	return activities.NewSilverMaintainer(activities.SilverMaintainerConfig{Silver: sc, Store: store, Log: slog.Default()})
}

func runAggregate(ctx context.Context, args []string) error {
	var cfg config.Config
	fs := newFlagSet("aggregate", "--date YYYY-MM-DD [flags]")
	cfg.Register(fs)
	date := fs.String("date", "", "the day to aggregate, YYYY-MM-DD (required)")
	zone := fs.String("zone", "", "IANA time zone that cuts the day (default: the marts' zone, set by `pipeline provision --schedule-zone`, UTC when none)")
	if err := parse(fs, args); err != nil {
		return err
	}
	if _, err := time.Parse(time.DateOnly, *date); err != nil {
		return fmt.Errorf("%w: --date %q: want a day as YYYY-MM-DD", errUsage, *date)
	}
	if err := cfg.ValidateFor("aggregate"); err != nil {
		return err
	}
	tc, err := dialTemporal(cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		return err
	}
	defer tc.Close()
	run, err := starter.StartAggregation(ctx, tc, workflows.NightlyAggregationInput{Date: *date, Zone: *zone})
	if err != nil {
		return err
	}
	fmt.Printf("NightlyAggregation for %s started: workflow %s run %s\n", *date, run.GetID(), run.GetRunID())
	var res workflows.NightlyAggregationResult
	if err := run.Get(ctx, &res); err != nil {
		return fmt.Errorf("workflow %s: %w", run.GetID(), err)
	}
	fmt.Printf("marts for %s (%s) rebuilt: %d product metric rows, %d revenue rows, %d audit summary rows\n",
		res.Day, res.Zone, res.ProductMetrics, res.Revenue, res.AuditSummary)
	return nil
}

// awaitMigrated applies the pending migrations, or, when the worker's role
// may not (pipeline_worker), waits for the owner's role to apply them:
// on Kubernetes the worker starts before the provision Job has migrated a
// new warehouse.
func awaitMigrated(ctx context.Context, store *warehouse.Store) error {
	err := store.Migrate(ctx)
	if !errors.Is(err, warehouse.ErrNotOwner) {
		return err
	}
	var logged time.Time
	for {
		pending, total, err := store.Pending(ctx)
		if err != nil {
			return err
		}
		if pending == 0 {
			return nil
		}
		if time.Since(logged) > time.Minute {
			slog.Warn("waiting for the warehouse's owner to apply migrations: run `pipeline provision` with the owner's DATABASE_URL",
				"pending", pending, "of", total, "reason", warehouse.ErrNotOwner)
			logged = time.Now()
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(5 * time.Second):
		}
	}
}
