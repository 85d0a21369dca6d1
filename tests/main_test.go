package tests

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"go.temporal.io/sdk/client"

	"github.com/acme/pipeline/internal/devstack"
	"github.com/acme/pipeline/starter"
	"github.com/acme/pipeline/worker"
)

// stack is the embedded stack every integration test in this package shares:
// a real Temporal dev server, kfake over TCP, versitygw over HTTP and
// PostgreSQL, on free loopback ports, with state in a temp dir.
var stack *devstack.Stack

// moduleRoot is the module root (bin/ holds the pinned binaries).
var moduleRoot, _ = filepath.Abs("..")

func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	dir, err := os.MkdirTemp("", "pipeline-tests-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	ports := make([]int, 4)
	for i := range ports {
		if ports[i], err = devstack.FreePort(); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
	}
	db := fmt.Sprintf("pipeline_test_%d", time.Now().UnixNano()%1_000_000_000)
	stack, err = devstack.Start(ctx, devstack.Config{
		Dir: dir, BinDir: filepath.Join(moduleRoot, "bin"),
		TemporalPort: ports[0], TemporalUIPort: ports[1], KafkaPort: ports[2], S3Port: ports[3],
		DatabaseURL: os.Getenv("DATABASE_URL"), Database: db, CreateResources: true,
		Log: slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})),
	})
	if err != nil {
		// Fail loudly: a missing component is a broken machine, not a skip.
		fmt.Fprintf(os.Stderr, "FAIL: cannot start the test stack (run `make tools`): %v\n", err)
		return 1
	}
	code := m.Run()
	if err := stack.Close(); err != nil {
		fmt.Fprintln(os.Stderr, "stop stack:", err)
	}
	if os.Getenv("DATABASE_URL") == "" {
		dropDatabase(db)
	}
	return code
}

func dropDatabase(name string) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable")
	if err != nil {
		return
	}
	defer conn.Close(ctx)
	_, _ = conn.Exec(ctx, "DROP DATABASE IF EXISTS "+pgx.Identifier{name}.Sanitize()+" WITH (FORCE)")
}

// dialTemporal connects to the stack's Temporal server; the client is closed
// when the test ends.
func dialTemporal(t *testing.T) client.Client {
	t.Helper()
	return dialTemporalAt(t, stack.TemporalAddress)
}

// dialTemporalAt connects to the Temporal server at address until the test
// ends.
func dialTemporalAt(t *testing.T, address string) client.Client {
	t.Helper()
	tc, err := starter.Dial(starter.DialConfig{Address: address, Namespace: "default"}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(tc.Close)
	return tc
}

// runWorker runs the pipeline's worker in-process with cfg until the test
// ends, and waits for it to stop before the test's other clean-ups run.
func runWorker(t *testing.T, cfg worker.Config) {
	t.Helper()
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	ctx, stop := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- worker.Run(ctx, cfg) }()
	t.Cleanup(func() {
		stop()
		if err := <-done; err != nil {
			t.Errorf("worker: %v", err)
		}
	})
}
