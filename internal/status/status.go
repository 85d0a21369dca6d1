// Package status answers "is my data fresh and complete, and if not, where is
// it stuck?" from the pipeline's own metadata: gold freshness (the newest
// event visible in gold.events), consumer lag per partition (the topic's end
// offsets against pipeline.stream_offsets), live-load throughput over the
// last hour, per-layer counts for recent hours (the lake index tables and
// gold), the last loads and backfills (pipeline.loads) and the catalog of
// provisioned resources. Snapshot gathers it; Text renders it for the
// terminal (`pipeline status`) and Handler as an HTML page (GET /status).
package status

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/acme/pipeline/internal/config"
	"github.com/acme/pipeline/internal/kafkaconn"
	"github.com/acme/pipeline/warehouse"
)

// Defaults for the zero values of Source.
const (
	DefaultTopic      = config.DefaultTopic
	DefaultStaleAfter = 2 * time.Minute
	DefaultHours      = 6
	DefaultLoads      = 10
	DefaultBackfills  = 5
	// BucketWidth and Buckets shape the throughput series: the last hour in
	// 5-minute buckets, the last bucket being the current (partial) one.
	BucketWidth = 5 * time.Minute
	Buckets     = 12
)

// Source is where a Snapshot is read from.
type Source struct {
	DB      *pgxpool.Pool    // the warehouse (schemas gold and pipeline). Required.
	Brokers []string         // Kafka bootstrap brokers; empty: lag is not measured
	Kafka   kafkaconn.Config // TLS and SASL of the Kafka connection; zero: plaintext
	Topic   string           // the event topic; default "events"

	// StaleAfter is how old the newest event in gold may be while records
	// wait in Kafka before the verdict is STALE. Default 2 minutes.
	StaleAfter time.Duration
	// Hours is how many recent hours the per-layer table covers. Default 6.
	Hours int
	// Now is the clock; default time.Now. For tests.
	Now func() time.Time
	// CacheFor is how long Handler serves one snapshot to every request.
	// Default DefaultCacheFor; negative: none is kept once taken (requests
	// that arrive while one is taken still share it).
	CacheFor time.Duration
}

// Snapshot is the pipeline's state at one moment. Times are UTC.
type Snapshot struct {
	Taken time.Time `json:"taken"`
	Topic string    `json:"topic"`
	OK    bool      `json:"ok"`
	// Verdict is one line: "OK: gold is 4s fresh, lag 0", "STALE: ...",
	// "UNKNOWN: ...".
	Verdict string `json:"verdict"`

	Freshness Freshness `json:"freshness"`

	Lag      []PartitionLag `json:"lag"`
	LagTotal int64          `json:"lag_total"`
	// KafkaError is why lag could not be measured ("" when it was).
	KafkaError string `json:"kafka_error,omitempty"`

	// Throughput is gold rows inserted by live loads per 5-minute bucket over
	// the last hour, oldest first (Buckets entries).
	Throughput      []Bucket `json:"throughput"`
	ThroughputTotal int64    `json:"throughput_total"`

	// Layers counts records per hour and layer for recent hours, newest
	// first: bronze and quarantine by arrival hour (Kafka timestamp), silver
	// and gold by event hour (occurred_at).
	Layers []HourCounts `json:"layers"`

	// SLOs are the latest measurement of each SLO; Alerts the open alerts
	// and the last resolved ones, newest first; OpenAlerts counts the open.
	SLOs       []warehouse.Measurement `json:"slos"`
	Alerts     []warehouse.Alert       `json:"alerts"`
	OpenAlerts int                     `json:"open_alerts"`
	// Arrivals follows each recent arrival hour through the layers, newest
	// first: accepted by the API, consumed into bronze, quarantined,
	// cleaned, new in gold.
	Arrivals []warehouse.HourAccounting `json:"arrivals"`
	// Silver is the Iceberg table silver.events after the pipeline's
	// latest commit to it, and the gold loads it does not hold yet
	// (silver.go).
	Silver SilverTable `json:"silver"`

	// Rebuilding are the days Backfill runs hold, in day order (rebuilding.go).
	Rebuilding []warehouse.Lease `json:"rebuilding"`
	// Conflicts are the event ids that arrived again with other content,
	// over the last ConflictWindow (conflicts.go).
	Conflicts warehouse.Conflicts `json:"conflicts"`
	// Lost are the offsets retention deleted before the stream read them,
	// over the last LostWindow, newest first; LostTotal counts their
	// records (lost.go).
	Lost      []warehouse.LostRange `json:"lost_offsets"`
	LostTotal int64                 `json:"lost_offsets_total"`
	// Shards are the stream's shards as the SLO monitor last read them
	// from Temporal (shards.go).
	Shards []warehouse.StreamShard `json:"stream_shards"`
	// Incarnations are the topic's incarnations, oldest first
	// (incarnations.go).
	Incarnations []warehouse.Incarnation `json:"topic_incarnations"`

	Loads     []Load         `json:"loads"`     // newest first
	Backfills []Load         `json:"backfills"` // newest first
	Catalog   []CatalogEntry `json:"catalog"`
	// Marts are the marts' zone and the days pending a rebuild (marts.go).
	Marts warehouse.MartStatus `json:"marts"`
}

// Freshness is about the newest event visible in gold.
type Freshness struct {
	// NewestReceived is the largest received_at in gold.events (when the
	// event API received the newest event); zero when gold has none.
	NewestReceived time.Time `json:"newest_received,omitzero"`
	// NewestOccurred is the largest occurred_at among the same recent rows.
	NewestOccurred time.Time `json:"newest_occurred,omitzero"`
	// Age is Taken − NewestReceived (0 when gold is empty).
	Age time.Duration `json:"age_ns"`
	// AgeSeconds is Age in whole seconds, for JSON readers.
	AgeSeconds int64 `json:"age_seconds"`
	// LastLoad is when the newest live load finished; zero when none did.
	LastLoad time.Time `json:"last_load,omitzero"`
}

// PartitionLag is one partition's position.
type PartitionLag struct {
	Partition int32 `json:"partition"`
	// End is the partition's next offset in Kafka (the high watermark).
	End int64 `json:"end"`
	// Next is the offset of the next record to load (pipeline.stream_offsets);
	// the partition's first offset when nothing was loaded yet.
	Next int64 `json:"next"`
	Lag  int64 `json:"lag"` // End − Next, never negative
	// Stored is false when pipeline.stream_offsets has no row yet.
	Stored bool `json:"stored"`
	// Updated is when a load last confirmed the offset.
	Updated time.Time `json:"updated,omitzero"`
}

// Bucket is one throughput bucket: the rows live loads inserted into gold
// in it.
type Bucket = warehouse.InsertedBucket

// HourCounts counts one hour's records per layer.
type HourCounts = warehouse.HourCounts

// Load is a row of pipeline.loads.
type Load = warehouse.LoadRow

// CatalogEntry is a provisioned resource.
type CatalogEntry struct {
	Kind      string    `json:"kind"`
	Name      string    `json:"name"`
	Status    string    `json:"status"`
	AppliedAt time.Time `json:"applied_at,omitzero"`
	Error     string    `json:"error,omitempty"`
}

func (s Source) withDefaults() Source {
	if s.Topic == "" {
		s.Topic = DefaultTopic
	}
	if s.StaleAfter <= 0 {
		s.StaleAfter = DefaultStaleAfter
	}
	if s.Hours <= 0 {
		s.Hours = DefaultHours
	}
	if s.Now == nil {
		s.Now = time.Now
	}
	return s
}

// Snapshot reads the pipeline's state. A database failure is an error; a
// Kafka failure is not (the snapshot says lag is unknown, in KafkaError and
// the verdict), so the page still shows what the warehouse knows.
func (s Source) Snapshot(ctx context.Context) (Snapshot, error) {
	if s.DB == nil {
		return Snapshot{}, errors.New("status: Source.DB is required (DATABASE_URL)")
	}
	s = s.withDefaults()
	now := s.Now().UTC()
	snap := Snapshot{Taken: now, Topic: s.Topic}

	if err := s.freshness(ctx, &snap); err != nil {
		return Snapshot{}, err
	}
	if err := s.lag(ctx, &snap); err != nil {
		return Snapshot{}, err
	}
	if err := s.throughput(ctx, &snap); err != nil {
		return Snapshot{}, err
	}
	if err := s.layers(ctx, &snap); err != nil {
		return Snapshot{}, err
	}
	var err error
	if snap.Loads, err = s.loads(ctx, "", DefaultLoads); err != nil {
		return Snapshot{}, err
	}
	if snap.Backfills, err = s.loads(ctx, "backfill", DefaultBackfills); err != nil {
		return Snapshot{}, err
	}
	if err := s.catalog(ctx, &snap); err != nil {
		return Snapshot{}, err
	}
	if err := s.marts(ctx, &snap); err != nil {
		return Snapshot{}, err
	}
	if err := s.monitoring(ctx, &snap); err != nil {
		return Snapshot{}, err
	}
	if err := s.silverTable(ctx, &snap); err != nil {
		return Snapshot{}, err
	}
	if err := s.rebuilding(ctx, &snap); err != nil {
		return Snapshot{}, err
	}
	if err := s.lostOffsets(ctx, &snap); err != nil {
		return Snapshot{}, err
	}
	if err := s.conflicts(ctx, &snap); err != nil {
		return Snapshot{}, err
	}
	if err := s.streamShards(ctx, &snap); err != nil {
		return Snapshot{}, err
	}
	if err := s.incarnations(ctx, &snap); err != nil {
		return Snapshot{}, err
	}
	snap.verdict(s.StaleAfter)
	return snap, nil
}

// verdict sets OK and Verdict. STALE: records wait in Kafka and the newest
// event in gold is older than staleAfter (or gold is empty); UNKNOWN: lag
// could not be measured; OK otherwise (an idle pipeline with nothing waiting
// is OK however old its newest event).
func (snap *Snapshot) verdict(staleAfter time.Duration) {
	fresh := "gold is empty"
	if !snap.Freshness.NewestReceived.IsZero() {
		fresh = "gold is " + Age(snap.Freshness.Age) + " fresh"
	}
	switch {
	case snap.KafkaError != "":
		snap.OK = false
		snap.Verdict = fmt.Sprintf("UNKNOWN: %s, lag unknown (Kafka: %s)", fresh, snap.KafkaError)
	case snap.LagTotal > 0 && (snap.Freshness.NewestReceived.IsZero() || snap.Freshness.Age > staleAfter):
		snap.OK = false
		behind := []string{}
		for _, p := range snap.Lag {
			if p.Lag > 0 {
				at := fmt.Sprintf("p%d at offset %d", p.Partition, p.Next)
				if !p.Updated.IsZero() {
					at += " since " + p.Updated.Format("15:04:05Z")
				}
				behind = append(behind, at)
			}
		}
		if len(behind) > 3 {
			behind = append(behind[:3], fmt.Sprintf("%d more partitions", len(behind)-3))
		}
		snap.Verdict = fmt.Sprintf("STALE: %s, lag %d (data stopped in Kafka: %s)", fresh, snap.LagTotal, joinComma(behind))
	default:
		snap.OK = true
		snap.Verdict = fmt.Sprintf("OK: %s, lag %d", fresh, snap.LagTotal)
	}
	if stopped := snap.StoppedShards(); len(stopped) > 0 {
		snap.OK = false
		snap.Verdict = fmt.Sprintf("STREAM STOPPED: %s · %s", joinComma(stopped), snap.Verdict)
	}
	if snap.OpenAlerts > 0 {
		snap.OK = false
		names := []string{}
		for _, a := range snap.Alerts {
			if a.Open() {
				names = append(names, a.SLO+" ("+a.Severity+")")
			}
		}
		snap.Verdict = fmt.Sprintf("ALERT: %s open · %s", joinComma(names), snap.Verdict)
	}
}

func joinComma(s []string) string {
	out := ""
	for i, x := range s {
		if i > 0 {
			out += ", "
		}
		out += x
	}
	return out
}

// Age formats a duration for people: 4s, 3m12s, 2h5m, 3d4h.
func Age(d time.Duration) string {
	d = d.Round(time.Second)
	switch {
	case d < time.Minute:
		return fmt.Sprintf("%ds", int64(d/time.Second))
	case d < time.Hour:
		return fmt.Sprintf("%dm%02ds", int64(d/time.Minute), int64(d%time.Minute/time.Second))
	case d < 48*time.Hour:
		return fmt.Sprintf("%dh%02dm", int64(d/time.Hour), int64(d%time.Hour/time.Minute))
	default:
		return fmt.Sprintf("%dd%02dh", int64(d/(24*time.Hour)), int64(d%(24*time.Hour)/time.Hour))
	}
}

// withTable runs read on the warehouse when it has table: a section whose
// table a newer worker's migration adds stays empty (its zero value, set by
// the caller) until then, instead of failing the whole page. what names the
// section in errors.
func (s Source) withTable(ctx context.Context, table, what string, read func(*warehouse.Store) error) error {
	store := warehouse.FromPool(s.DB)
	ok, err := store.HasTable(ctx, table)
	if err != nil {
		return fmt.Errorf("status: %s: %w", what, err)
	}
	if !ok {
		return nil
	}
	if err := read(store); err != nil {
		return fmt.Errorf("status: %w", err)
	}
	return nil
}
