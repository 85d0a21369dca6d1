package status

import (
	"context"
	"fmt"
	"time"

	"github.com/acme/pipeline/internal/kafkaread"
	"github.com/acme/pipeline/warehouse"
)

// The snapshot's readers of the pipeline's core state: freshness, lag,
// throughput, records per layer, loads and the catalog. Their queries are the
// warehouse's (warehouse/status_reads.go).

func (s Source) freshness(ctx context.Context, snap *Snapshot) error {
	store := warehouse.FromPool(s.DB)
	rec, occ, err := store.NewestGold(ctx, snap.Taken)
	if err != nil {
		return fmt.Errorf("status: %w", err)
	}
	if !rec.IsZero() {
		snap.Freshness.NewestReceived = rec
		snap.Freshness.Age = max(0, snap.Taken.Sub(rec))
		snap.Freshness.AgeSeconds = int64(snap.Freshness.Age / time.Second)
	}
	snap.Freshness.NewestOccurred = occ
	if snap.Freshness.LastLoad, err = store.LastLiveLoad(ctx); err != nil {
		return fmt.Errorf("status: %w", err)
	}
	return nil
}

func (s Source) lag(ctx context.Context, snap *Snapshot) error {
	offsets, err := warehouse.FromPool(s.DB).StoredOffsets(ctx, s.Topic)
	if err != nil {
		return fmt.Errorf("status: %w", err)
	}
	stored := map[int32]PartitionLag{}
	next := map[int32]int64{}
	for _, o := range offsets {
		stored[o.Partition] = PartitionLag{Partition: o.Partition, Next: o.Next, Updated: o.Updated}
		next[o.Partition] = o.Next
	}

	if len(s.Brokers) == 0 {
		snap.KafkaError = "no Kafka brokers configured (KAFKA_BROKERS)"
		return nil
	}
	kc, err := kafkaread.New(kafkaread.Config{Brokers: s.Brokers, ClientID: "pipeline-status", Timeout: 5 * time.Second, Conn: s.Kafka})
	if err != nil {
		snap.KafkaError = err.Error()
		return nil
	}
	defer kc.Close()
	kctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	positions, err := kc.Positions(kctx, s.Topic, next)
	if err != nil {
		snap.KafkaError = err.Error()
		return nil
	}
	for _, pos := range positions {
		pl := stored[pos.Partition]
		pl.Partition, pl.End, pl.Next, pl.Stored, pl.Lag = pos.Partition, pos.End, pos.Next, pos.Stored, pos.Lag
		snap.Lag = append(snap.Lag, pl)
		snap.LagTotal += pl.Lag
	}
	return nil
}

// bucketsStart is the start of the oldest throughput bucket: the buckets end
// with the current (partial) one.
func bucketsStart(now time.Time) time.Time {
	return now.Truncate(BucketWidth).Add(-(Buckets - 1) * BucketWidth)
}

func (s Source) throughput(ctx context.Context, snap *Snapshot) error {
	// Live loads only: a backfill rewrites whole days at once and is shown
	// under Backfills.
	var err error
	if snap.Throughput, err = warehouse.FromPool(s.DB).LiveThroughput(ctx, bucketsStart(snap.Taken), BucketWidth, Buckets); err != nil {
		return fmt.Errorf("status: %w", err)
	}
	for _, b := range snap.Throughput {
		snap.ThroughputTotal += b.Events
	}
	return nil
}

func (s Source) layers(ctx context.Context, snap *Snapshot) error {
	var err error
	if snap.Layers, err = warehouse.FromPool(s.DB).CountsByHour(ctx, s.Topic, snap.Taken.Truncate(time.Hour), s.Hours); err != nil {
		return fmt.Errorf("status: %w", err)
	}
	return nil
}

// loads reads the last limit loads of kind ("" for every kind).
func (s Source) loads(ctx context.Context, kind string, limit int) ([]Load, error) {
	ls, err := warehouse.FromPool(s.DB).RecentLoads(ctx, kind, limit)
	if err != nil {
		return nil, fmt.Errorf("status: %w", err)
	}
	return ls, nil
}

func (s Source) catalog(ctx context.Context, snap *Snapshot) error {
	rows, err := warehouse.FromPool(s.DB).Catalog(ctx)
	if err != nil {
		return fmt.Errorf("status: %w", err)
	}
	snap.Catalog = make([]CatalogEntry, 0, len(rows))
	for _, r := range rows {
		c := CatalogEntry{Kind: r.Kind, Name: r.Name, Status: r.Status, Error: r.Error}
		if r.Applied() {
			c.AppliedAt = r.AppliedAt.UTC()
		}
		snap.Catalog = append(snap.Catalog, c)
	}
	return nil
}
