package benchutil

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/segmentio/kafka-go"
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
