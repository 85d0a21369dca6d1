package activities

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/acme/pipeline/internal/kafkaconn"
	"github.com/acme/pipeline/internal/kafkaread"
	"github.com/acme/pipeline/lake"
	"github.com/acme/pipeline/silver"
	"github.com/acme/pipeline/warehouse"
)

// DefaultGroup is the Kafka consumer group the stream commits its offsets to,
// so that standard tools show its lag.
const DefaultGroup = "pipeline-stream"

// Stream holds the clients of the live stream's activities (workflow
// StreamCompaction): StreamStart, CompactCycle and CompactHours. The worker
// builds it once with NewStream and registers it; workflows call the
// methods through a nil *Stream. Every exported method is an activity.
//
// Its clients are the interfaces of stream_deps.go, so that unit tests can
// give it in-memory fakes; NewStream gives it the real ones.
type Stream struct {
	lake  streamLake
	wh    streamWarehouse
	kafka kafkaReader
	group string
	log   *slog.Logger
	m     *streamMetrics
	// silver appends gold's loads to silver.events (silver_sync.go); nil
	// only in unit tests of the flush, which have no Iceberg table.
	silver *silverSync

	// hook, when set (tests), runs after each stage ("bronze", "silver" per
	// partition; "gold" with partition -1) and fails the activity with its
	// error: a crash at that point.
	hook func(stage string, partition int32) error
}

// StreamConfig configures NewStream.
type StreamConfig struct {
	// Lake is the S3 bucket of the lake. Required.
	Lake lake.Config
	// Brokers are the Kafka bootstrap brokers. Required.
	Brokers []string
	// Kafka is the TLS and SASL of the Kafka connections (KAFKA_TLS,
	// KAFKA_SASL_*). The zero value is plaintext without authentication.
	Kafka kafkaconn.Config
	// Warehouse is the open warehouse store (migrated). Required.
	Warehouse *warehouse.Store
	// Group is the consumer group offsets are committed to. Default
	// "pipeline-stream".
	Group string
	// Silver is the Iceberg catalog of silver.events (created by
	// provisioning). Bucket defaults to Lake's. Required: DatabaseURL.
	Silver silver.Config
	// SilverEvery is how long a cycle keeps its loads' rows before it
	// appends them to silver.events in one snapshot (also at the end of
	// every cycle). Default 5s.
	SilverEvery time.Duration
	// SilverBatchRows appends sooner once this many rows wait: it bounds
	// the rows held for silver. Default 50,000.
	SilverBatchRows int
	// SilverSweepAfter is how long a load may stay pending for silver
	// before any shard's cycle rebuilds its rows from bronze and appends
	// them (its writer died). Default 30s.
	SilverSweepAfter time.Duration
	// Log receives the activities' own log lines (Temporal's activity
	// logger gets them too). Default slog.Default().
	Log *slog.Logger
}

// NewStream validates cfg, builds the lake and Kafka clients and makes
// sure the bucket exists (private).
func NewStream(ctx context.Context, cfg StreamConfig) (*Stream, error) {
	if cfg.Warehouse == nil {
		return nil, errors.New("stream activities: Warehouse is required")
	}
	lk, err := lake.New(cfg.Lake)
	if err != nil {
		return nil, fmt.Errorf("stream activities: %w", err)
	}
	if err := lk.EnsureBucket(ctx); err != nil {
		return nil, fmt.Errorf("stream activities: %w", err)
	}
	kc, err := kafkaread.New(kafkaread.Config{Brokers: cfg.Brokers, Conn: cfg.Kafka})
	if err != nil {
		return nil, fmt.Errorf("stream activities: %w", err)
	}
	if cfg.Group == "" {
		cfg.Group = DefaultGroup
	}
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	m, err := newStreamMetrics()
	if err != nil {
		return nil, fmt.Errorf("stream activities: metrics: %w", err)
	}
	if cfg.Silver.Bucket == "" {
		cfg.Silver.Bucket = cmp.Or(cfg.Lake.Bucket, lake.DefaultBucket)
	}
	cfg.Silver.CreateCatalogTables = false // provisioning's
	cat, err := silver.Open(cfg.Silver)
	if err != nil {
		return nil, fmt.Errorf("stream activities: %w", err)
	}
	sv := &silverSync{table: cat, ledger: cfg.Warehouse, lake: lk, m: m,
		every:      cmp.Or(max(cfg.SilverEvery, 0), DefaultSilverEvery),
		batchRows:  cmp.Or(max(cfg.SilverBatchRows, 0), DefaultSilverBatchRows),
		sweepAfter: cmp.Or(max(cfg.SilverSweepAfter, 0), DefaultSilverSweepAfter)}
	return &Stream{lake: lk, wh: cfg.Warehouse, kafka: kc, group: cfg.Group,
		log: cfg.Log.With("component", "stream"), m: m, silver: sv}, nil
}
