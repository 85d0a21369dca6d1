package tests

import (
	"context"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/jackc/pgx/v5"
	"github.com/segmentio/kafka-go"

	"github.com/acme/pipeline/internal/devstack"
)

// TestStackComponents checks each component from outside, over its own protocol,
// the way a user checks `pipeline dev` with kcat, the aws cli, psql and a browser.
func TestStackComponents(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	tests := []struct {
		name  string
		check func(t *testing.T)
	}{
		{"kafka topic events has 12 partitions", func(t *testing.T) {
			conn, err := kafka.DialContext(ctx, "tcp", stack.KafkaBrokers[0])
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			parts, err := conn.ReadPartitions("events")
			if err != nil {
				t.Fatal(err)
			}
			if len(parts) != 12 {
				t.Fatalf("topic events has %d partitions, want 12", len(parts))
			}
		}},
		{"creating the topic again is a no-op", func(t *testing.T) {
			if err := devstack.EnsureTopic(ctx, stack.KafkaBrokers, "events", 12, time.Hour); err != nil {
				t.Fatal(err)
			}
		}},
		{"bucket datalake is listable with the credentials", func(t *testing.T) {
			c := devstack.S3Client(stack.S3Endpoint, stack.Region, stack.AccessKeyID, stack.SecretAccessKey)
			if _, err := c.ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: aws.String("datalake")}); err != nil {
				t.Fatal(err)
			}
		}},
		{"bucket datalake refuses anonymous reads", func(t *testing.T) {
			resp, err := http.Get(stack.S3Endpoint + "/datalake/")
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusForbidden {
				t.Fatalf("anonymous list answered %s, want 403", resp.Status)
			}
		}},
		{"bucket refuses wrong credentials", func(t *testing.T) {
			c := devstack.S3Client(stack.S3Endpoint, stack.Region, stack.AccessKeyID, "wrong-secret")
			_, err := c.ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: aws.String("datalake")})
			if err == nil {
				t.Fatal("a wrong secret was accepted")
			}
		}},
		{"postgres has schemas gold and pipeline and role bi_reader", func(t *testing.T) {
			conn, err := pgx.Connect(ctx, stack.DatabaseURL)
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close(ctx)
			var n int
			if err := conn.QueryRow(ctx, `SELECT count(*) FROM pg_namespace WHERE nspname IN ('gold','pipeline')`).Scan(&n); err != nil || n != 2 {
				t.Fatalf("schemas: %d of 2, %v", n, err)
			}
			if err := conn.QueryRow(ctx, `SELECT count(*) FROM pg_roles WHERE rolname = 'bi_reader'`).Scan(&n); err != nil || n != 1 {
				t.Fatalf("role bi_reader: %d, %v", n, err)
			}
		}},
		{"temporal web UI answers", func(t *testing.T) {
			var resp *http.Response
			var err error
			for range 50 { // the UI starts a moment after the frontend
				if resp, err = http.Get(stack.TemporalUI); err == nil {
					break
				}
				time.Sleep(100 * time.Millisecond)
			}
			if err != nil {
				t.Fatal(err)
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("UI answered %s", resp.Status)
			}
		}},
		{"a second stack on the same ports is refused with a clear error", func(t *testing.T) {
			_, err := devstack.Start(ctx, devstack.Config{Dir: t.TempDir(), BinDir: moduleRoot + "/bin",
				DatabaseURL: stack.DatabaseURL, CreateResources: true, KafkaPort: portOf(t, stack.KafkaBrokers[0])})
			if err == nil || !strings.Contains(err.Error(), "is taken") {
				t.Fatalf("got %v, want a 'port is taken' error", err)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, tt.check)
	}
}

func portOf(t *testing.T, addr string) int {
	t.Helper()
	_, p, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatal(err)
	}
	port, err := strconv.Atoi(p)
	if err != nil {
		t.Fatal(err)
	}
	return port
}
