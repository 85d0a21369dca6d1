package benchutil

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/segmentio/kafka-go"

	"github.com/acme/pipeline/event"
	"github.com/acme/pipeline/silver"
)

// The baselines the benchmarks quote beside their figures, run in the same
// process on the same machine: psql \copy of the rows gold holds, and kcat
// producing the same records.

// PsqlCopy exports gold.events to CSV in dir and loads it with psql \copy
// into a copy of the table (its indexes included), returning rows/s and
// rows. The copy is dropped afterwards.
func PsqlCopy(ctx context.Context, dbURL, dir string) (float64, int64, error) {
	file := filepath.Join(dir, "gold-events.csv")
	defer os.Remove(file)
	f, err := os.Create(file)
	if err != nil {
		return 0, 0, err
	}
	conn, err := pgx.Connect(ctx, dbURL)
	if err != nil {
		f.Close()
		return 0, 0, err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	tag, err := conn.PgConn().CopyTo(ctx, f, "COPY gold.events TO STDOUT WITH (FORMAT csv)")
	f.Close()
	if err != nil {
		return 0, 0, fmt.Errorf("export gold.events: %w", err)
	}
	if _, err := conn.Exec(ctx, "DROP TABLE IF EXISTS public.bench_copy"); err != nil {
		return 0, 0, err
	}
	if _, err := conn.Exec(ctx, "CREATE TABLE public.bench_copy (LIKE gold.events INCLUDING ALL)"); err != nil {
		return 0, 0, err
	}
	defer conn.Exec(context.WithoutCancel(ctx), "DROP TABLE IF EXISTS public.bench_copy") //nolint:errcheck // best effort
	t0 := time.Now()
	out, err := exec.CommandContext(ctx, "psql", dbURL, "-v", "ON_ERROR_STOP=1", "-c", `\copy public.bench_copy FROM '`+file+`' WITH (FORMAT csv)`).CombinedOutput()
	if err != nil {
		return 0, 0, fmt.Errorf("psql \\copy: %v\n%s", err, out)
	}
	return float64(tag.RowsAffected()) / time.Since(t0).Seconds(), tag.RowsAffected(), nil
}

// Kcat creates topic with partitions partitions and produces lines (one
// record each, NDJSON) to it with kcat, acks=all as the API produces, and
// returns records/s.
func Kcat(ctx context.Context, brokers []string, topic string, partitions int, lines [][]byte, dir string) (float64, error) {
	kc := &kafka.Client{Addr: kafka.TCP(brokers...), Timeout: 15 * time.Second}
	created, err := kc.CreateTopics(ctx, &kafka.CreateTopicsRequest{Topics: []kafka.TopicConfig{{Topic: topic, NumPartitions: partitions, ReplicationFactor: 1}}})
	if err != nil {
		return 0, fmt.Errorf("create topic %s: %w", topic, err)
	}
	if err := created.Errors[topic]; err != nil && !errors.Is(err, kafka.TopicAlreadyExists) {
		return 0, fmt.Errorf("create topic %s: %w", topic, err)
	}
	file := filepath.Join(dir, "kcat.ndjson")
	defer os.Remove(file)
	var b strings.Builder
	for _, l := range lines {
		b.Write(l)
		if len(l) == 0 || l[len(l)-1] != '\n' {
			b.WriteByte('\n')
		}
	}
	if err := os.WriteFile(file, []byte(b.String()), 0o644); err != nil {
		return 0, err
	}
	t0 := time.Now()
	out, err := exec.CommandContext(ctx, "kcat", "-P", "-b", strings.Join(brokers, ","), "-t", topic, "-X", "acks=all", "-l", file).CombinedOutput()
	if err != nil {
		return 0, fmt.Errorf("kcat: %v\n%s", err, out)
	}
	return float64(len(lines)) / time.Since(t0).Seconds(), nil
}

// PlainRead reads every record of topic's partitions 0..partitions-1 with
// plain kafka-go readers, one partition after the other, and returns
// records/s and how many it read: the baseline of the stream's Kafka stage.
func PlainRead(ctx context.Context, brokers []string, topic string, partitions int) (float64, int, error) {
	c := &kafka.Client{Addr: kafka.TCP(brokers...)}
	t0 := time.Now()
	total := 0
	for p := range partitions {
		off, err := c.ListOffsets(ctx, &kafka.ListOffsetsRequest{Topics: map[string][]kafka.OffsetRequest{topic: {kafka.LastOffsetOf(p)}}})
		if err != nil {
			return 0, total, err
		}
		end := off.Topics[topic][0].LastOffset
		r := kafka.NewReader(kafka.ReaderConfig{Brokers: brokers, Topic: topic, Partition: p, MinBytes: 1, MaxBytes: 16 << 20,
			MaxWait: 50 * time.Millisecond})
		for i := int64(0); i < end; i++ {
			if _, err := r.ReadMessage(ctx); err != nil {
				r.Close()
				return 0, total, fmt.Errorf("partition %d offset %d: %w", p, i, err)
			}
			total++
		}
		r.Close()
	}
	return float64(total) / time.Since(t0).Seconds(), total, nil
}

// StageSeconds scrapes a worker's /metrics and returns, per stage of the
// stream's flushes (read, bronze, clean, silver: summed over partitions;
// gold: per flush), the seconds pipeline_stream_stage_duration_seconds has
// summed so far.
func StageSeconds(ctx context.Context, metricsURL string) (map[string]float64, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, metricsURL, nil)
	if err != nil {
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	out := map[string]float64{}
	for _, l := range strings.Split(string(b), "\n") {
		rest, ok := strings.CutPrefix(l, "pipeline_stream_stage_duration_seconds_sum{")
		if !ok {
			continue
		}
		labels, val, ok := strings.Cut(rest, "} ")
		if !ok {
			continue
		}
		_, stage, ok := strings.Cut(labels, `stage="`)
		if !ok {
			continue
		}
		stage, _, _ = strings.Cut(stage, `"`)
		v, err := strconv.ParseFloat(strings.TrimSpace(val), 64)
		if err == nil {
			out[stage] += v
		}
	}
	return out, nil
}

// PlainParquet reads gold.events' rows and writes them as one Parquet file
// with silver.WritePlainParquet, returning rows/s of the write alone (the
// read is not timed): the baseline of the stream's silver stage.
func PlainParquet(ctx context.Context, dbURL string) (float64, error) {
	conn, err := pgx.Connect(ctx, dbURL)
	if err != nil {
		return 0, err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	q, err := conn.Query(ctx, `SELECT event_id, event_type, (extract(epoch FROM occurred_at) * 1000000)::int8,
		(extract(epoch FROM coalesce(received_at, occurred_at)) * 1000000)::int8, coalesce(source, ''), coalesce(user_id, ''),
		coalesce(properties::text, '{}'), kafka_partition, kafka_offset, kafka_incarnation FROM gold.events`)
	if err != nil {
		return 0, err
	}
	var rows []event.Row
	var r event.Row
	if _, err := pgx.ForEachRow(q, []any{&r.EventID, &r.Type, &r.OccurredAt, &r.ReceivedAt, &r.Source, &r.UserID, &r.Properties,
		&r.Partition, &r.Offset, &r.Incarnation}, func() error {
		rows = append(rows, r)
		return nil
	}); err != nil {
		return 0, err
	}
	t0 := time.Now()
	if err := silver.WritePlainParquet(io.Discard, rows); err != nil {
		return 0, err
	}
	return float64(len(rows)) / time.Since(t0).Seconds(), nil
}
