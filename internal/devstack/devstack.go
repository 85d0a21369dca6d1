// Package devstack brings up the embedded default: a Temporal dev server, a
// Kafka-protocol broker, an S3-compatible store and PostgreSQL, all on loopback,
// with their state under one directory so that a restart finds it again. It is
// what `pipeline dev` runs and what the integration tests start once per package,
// so that the tests exercise exactly the stack a user runs.
package devstack

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/acme/pipeline/internal/config"
)

// Config says where the stack keeps its state and which ports it takes.
// Zero values take the contract's dev defaults.
type Config struct {
	// Dir holds every component's state (default ".dev"). Tests pass a temp dir.
	Dir string
	// BinDir holds the pinned temporal and versitygw binaries (default "bin").
	BinDir string
	// Ports; 0 takes the default (7233, 8233, 9092, 9000). Tests pass free ports.
	TemporalPort, TemporalUIPort, KafkaPort, S3Port int
	// DatabaseURL, when set, is used as is; otherwise the server on
	// 127.0.0.1:5432 is used if one answers, else a private cluster under Dir/pg.
	DatabaseURL string
	// Database is the database created in the local server (default "pipeline").
	Database string
	// AccessKeyID, SecretAccessKey and Region are the S3 store's root
	// credentials; empty keys are generated and kept in Dir/s3.credentials.
	AccessKeyID, SecretAccessKey, Region string
	// Topic, Partitions and Retention describe the event topic created at start.
	Topic      string
	Partitions int
	Retention  time.Duration
	// Bucket is created private at start (default "datalake").
	Bucket string
	// CreateResources creates the topic, the bucket and the warehouse schemas
	// directly, for tests. `pipeline dev` leaves them to the Provision workflow
	// and gets only the servers (and the empty database) from the stack.
	CreateResources bool
	// SyncWrites fsyncs the broker's log per batch (slower, survives power loss).
	SyncWrites bool
	Log        *slog.Logger
}

func (c Config) withDefaults() Config {
	def := func(p *int, v int) {
		if *p == 0 {
			*p = v
		}
	}
	def(&c.TemporalPort, 7233)
	def(&c.TemporalUIPort, 8233)
	def(&c.KafkaPort, 9092)
	def(&c.S3Port, 9000)
	def(&c.Partitions, 12)
	if c.Dir == "" {
		c.Dir = ".dev"
	}
	if c.BinDir == "" {
		c.BinDir = "bin"
	}
	if c.Database == "" {
		c.Database = "pipeline"
	}
	if c.Region == "" {
		c.Region = "us-east-1"
	}
	if c.Topic == "" {
		c.Topic = config.DefaultTopic
	}
	if c.Retention == 0 {
		c.Retention = 168 * time.Hour
	}
	if c.Bucket == "" {
		c.Bucket = config.DefaultBucket
	}
	if c.Log == nil {
		c.Log = slog.Default()
	}
	return c
}

// Stack is a running embedded stack. Its fields are what clients need.
type Stack struct {
	TemporalAddress string // host:port of the frontend
	TemporalUI      string // URL of the web UI
	KafkaBrokers    []string
	S3Endpoint      string // URL
	AccessKeyID     string
	SecretAccessKey string
	Region          string
	DatabaseURL     string
	Topic, Bucket   string
	// PostgresOrigin says where PostgreSQL came from: "DATABASE_URL",
	// "local server" or "private cluster".
	PostgresOrigin string

	cfg     Config
	closers []func() error
}

// Start brings every component up, in order, and stops what it started if a
// later one fails. The caller must Close the stack.
func Start(ctx context.Context, cfg Config) (_ *Stack, err error) {
	cfg = cfg.withDefaults()
	if err := os.MkdirAll(cfg.Dir, 0o755); err != nil {
		return nil, fmt.Errorf("devstack: state dir %s: %w", cfg.Dir, err)
	}
	abs, err := filepath.Abs(cfg.Dir)
	if err != nil {
		return nil, err
	}
	cfg.Dir = abs
	s := &Stack{cfg: cfg, Topic: cfg.Topic, Bucket: cfg.Bucket, Region: cfg.Region}
	defer func() {
		if err != nil {
			s.Close()
		}
	}()
	steps := []struct {
		name string
		fn   func(context.Context) error
	}{
		{"PostgreSQL", s.startPostgres},
		{"Kafka broker", s.startKafka},
		{"S3 store", s.startS3},
		{"Temporal dev server", s.startTemporal},
	}
	for _, st := range steps {
		t0 := time.Now()
		if err := st.fn(ctx); err != nil {
			return nil, fmt.Errorf("devstack: %s: %w", st.name, err)
		}
		cfg.Log.Info("devstack: component up", "component", st.name, "took", time.Since(t0).Round(time.Millisecond))
	}
	return s, nil
}

// Close stops every component in reverse order of start.
func (s *Stack) Close() error {
	var errs []error
	for i := len(s.closers) - 1; i >= 0; i-- {
		if err := s.closers[i](); err != nil {
			errs = append(errs, err)
		}
	}
	s.closers = nil
	return errors.Join(errs...)
}

// Env returns the environment that points `pipeline api` and `pipeline worker`
// at this stack, as KEY=VALUE pairs.
func (s *Stack) Env() []string {
	brokers := ""
	for i, b := range s.KafkaBrokers {
		if i > 0 {
			brokers += ","
		}
		brokers += b
	}
	return []string{
		"TEMPORAL_ADDRESS=" + s.TemporalAddress,
		"TEMPORAL_NAMESPACE=default",
		"KAFKA_BROKERS=" + brokers,
		"S3_ENDPOINT=" + s.S3Endpoint,
		"AWS_ACCESS_KEY_ID=" + s.AccessKeyID,
		"AWS_SECRET_ACCESS_KEY=" + s.SecretAccessKey,
		"AWS_REGION=" + s.Region,
		"DATABASE_URL=" + s.DatabaseURL,
	}
}

func (s *Stack) onClose(fn func() error) { s.closers = append(s.closers, fn) }

// WaitPort polls a TCP address until it accepts connections, for at most
// timeout.
func WaitPort(ctx context.Context, addr string, timeout time.Duration) error {
	return waitPort(ctx, addr, timeout, nil)
}

// waitPort polls a TCP address until it accepts connections, giving up early
// when the process that should listen there has exited.
func waitPort(ctx context.Context, addr string, timeout time.Duration, exited <-chan struct{}) error {
	deadline := time.Now().Add(timeout)
	for {
		c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond)
		if err == nil {
			c.Close()
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("nothing listens on %s after %s", addr, timeout)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-exited:
			return fmt.Errorf("process exited before %s answered", addr)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// portFree reports whether nothing listens on addr yet.
// CheckPortFree returns an error naming flag when port is taken on
// 127.0.0.1: what `pipeline dev` checks of its own listeners before it
// starts anything, so that a taken port fails at once, not after the stack
// is up.
func CheckPortFree(port int, flag string) error {
	if addr := hostPort(port); !portFree(addr) {
		return fmt.Errorf("port %s (%s) is taken: another `pipeline dev` or another server is using it", addr, flag)
	}
	return nil
}

func portFree(addr string) bool {
	c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond)
	if err != nil {
		return true
	}
	c.Close()
	return false
}

func hostPort(port int) string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(port)) }

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// FreePort asks the kernel for a free loopback port (for tests).
func FreePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}
