// Package streamtest starts the real components the stream's tests run
// against: versitygw (S3, posix backend on a temp dir), kfake (Kafka protocol
// over TCP, in process) and a fresh PostgreSQL database with the warehouse
// migrations applied. A component that cannot start fails the test loudly:
// these tests never skip.
package streamtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/segmentio/kafka-go"
	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/acme/pipeline/internal/devstack"
	"github.com/acme/pipeline/lake"
	"github.com/acme/pipeline/warehouse"
)

// S3 is a running versitygw.
type S3 struct {
	Endpoint, AccessKeyID, SecretAccessKey string
	Dir                                    string // the posix backend's root
	// Metadata keeps the posix backend's object metadata (extended
	// attributes). Without it versitygw answers every multipart upload's
	// completion with 400 InvalidPart, and iceberg-go uploads data files
	// over 8 MiB in parts (StartS3WithMetadata).
	Metadata bool
	cmd      *exec.Cmd
}

// LakeConfig returns a lake.Config for bucket on this store.
func (s *S3) LakeConfig(bucket string) lake.Config {
	return lake.Config{Endpoint: s.Endpoint, Region: "us-east-1", AccessKeyID: s.AccessKeyID,
		SecretAccessKey: s.SecretAccessKey, Bucket: bucket, PathStyle: true}
}

// Stop kills the gateway (to simulate an S3 outage); Start brings it back on
// the same port and directory.
func (s *S3) Stop() {
	if s.cmd != nil && s.cmd.Process != nil {
		_ = s.cmd.Process.Kill()
		_ = s.cmd.Wait()
		s.cmd = nil
	}
}

// Start starts the gateway again after Stop.
func (s *S3) Start(t testing.TB) {
	t.Helper()
	u, _ := url.Parse(s.Endpoint)
	bin := filepath.Join(ModuleRoot(t), "bin", "versitygw")
	args := []string{"--port", u.Host, "--quiet", "posix"}
	if !s.Metadata {
		args = append(args, "--nometa")
	}
	cmd := exec.Command(bin, append(args, s.Dir)...)
	// The keys in the environment, as pipeline dev passes them: not on a
	// command line that ps shows.
	cmd.Env = append(os.Environ(), "ROOT_ACCESS_KEY_ID="+s.AccessKeyID, "ROOT_SECRET_ACCESS_KEY="+s.SecretAccessKey)
	log, err := os.Create(filepath.Join(filepath.Dir(s.Dir), "versitygw.log"))
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Start(); err != nil {
		t.Fatalf("start versitygw (%s): %v", bin, err)
	}
	s.cmd = cmd
	if err := devstack.WaitPort(context.Background(), u.Host, 30*time.Second); err != nil {
		s.Stop()
		b, _ := os.ReadFile(log.Name())
		t.Fatalf("versitygw did not start: %v\n%s", err, b)
	}
}

// StartS3 starts versitygw on a free loopback port with its posix backend on
// a temp dir, and stops it when the test ends.
func StartS3(t testing.TB) *S3 { return startS3(t, false) }

// StartS3WithMetadata is StartS3 with the backend's object metadata kept,
// which multipart uploads need.
func StartS3WithMetadata(t testing.TB) *S3 { return startS3(t, true) }

func startS3(t testing.TB, metadata bool) *S3 {
	t.Helper()
	root := t.TempDir()
	s := &S3{
		Metadata:        metadata,
		Endpoint:        "http://127.0.0.1:" + strconv.Itoa(FreePort(t)),
		AccessKeyID:     "test" + randHex(4),
		SecretAccessKey: randHex(16),
		Dir:             filepath.Join(root, "s3"),
	}
	if err := os.MkdirAll(s.Dir, 0o755); err != nil {
		t.Fatal(err)
	}
	s.Start(t)
	t.Cleanup(s.Stop)
	return s
}

// Lake starts versitygw and returns a lake.Store on a fresh private bucket.
func Lake(t testing.TB) (*lake.Store, *S3) {
	t.Helper()
	s3 := StartS3WithMetadata(t) // silver.events' writes may be multipart
	st, err := lake.New(s3.LakeConfig("datalake"))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := st.EnsureBucket(ctx); err != nil {
		t.Fatal(err)
	}
	return st, s3
}

// Kafka starts an in-process kfake broker, listening on loopback TCP, with
// topic created with partitions partitions.
func Kafka(t testing.TB, topic string, partitions int32) (*kfake.Cluster, []string) {
	t.Helper()
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(partitions, topic))
	if err != nil {
		t.Fatalf("start kfake: %v", err)
	}
	t.Cleanup(c.Close)
	return c, c.ListenAddrs()
}

// DefaultServerURL is the PostgreSQL server the tests use unless DATABASE_URL
// names another.
const DefaultServerURL = "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable"

// Database creates a fresh database (random name) on DATABASE_URL's server,
// else DefaultServerURL, applies the warehouse migrations, opens a Store on
// it, and drops it when the test ends. No server fails the test.
func Database(t testing.TB) (*warehouse.Store, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	server := os.Getenv("DATABASE_URL")
	if server == "" {
		server = DefaultServerURL
	}
	u, err := url.Parse(server)
	if err != nil || u.Scheme == "" {
		t.Fatalf("DATABASE_URL must be a postgres:// URL: %q", server)
	}
	name := "stream_test_" + randHex(6)
	u.Path = "/" + name
	dbURL := u.String()
	if err := warehouse.EnsureDatabase(ctx, dbURL); err != nil {
		t.Fatalf("these tests need PostgreSQL (DATABASE_URL or %s): %v", DefaultServerURL, err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		conn, err := pgx.Connect(ctx, server)
		if err != nil {
			t.Logf("drop database %s: %v", name, err)
			return
		}
		defer conn.Close(ctx)
		if _, err := conn.Exec(ctx, "DROP DATABASE IF EXISTS "+pgx.Identifier{name}.Sanitize()+" WITH (FORCE)"); err != nil {
			t.Logf("drop database %s: %v", name, err)
		}
	})
	st, err := warehouse.Open(ctx, warehouse.Config{URL: dbURL, MaxConns: 8})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(st.Close)
	if err := st.Migrate(ctx); err != nil {
		t.Fatalf("migrate: %v", err)
	}
	return st, dbURL
}

// FreePort asks the kernel for a free loopback port.
func FreePort(t testing.TB) int {
	t.Helper()
	port, err := devstack.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	return port
}

// ModuleRoot is the directory of go.mod, found upwards from the working
// directory.
func ModuleRoot(t testing.TB) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("go.mod not found above the working directory")
		}
		dir = parent
	}
}

func randHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// Temporal starts the pinned Temporal dev server (bin/temporal) on free
// loopback ports with its database in a temp dir, and returns the frontend
// address (host:port) and the web UI URL. It stops when the test ends.
func Temporal(t testing.TB) (address, ui string) {
	t.Helper()
	port, uiPort := FreePort(t), FreePort(t)
	dir := t.TempDir()
	bin := filepath.Join(ModuleRoot(t), "bin", "temporal")
	cmd := exec.Command(bin, "server", "start-dev", "--ip", "127.0.0.1", "--port", strconv.Itoa(port),
		"--ui-port", strconv.Itoa(uiPort), "--db-filename", filepath.Join(dir, "temporal.db"),
		"--namespace", "default", "--log-level", "warn")
	log, err := os.Create(filepath.Join(dir, "temporal.log"))
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Start(); err != nil {
		t.Fatalf("start Temporal dev server (%s): %v", bin, err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Signal(os.Interrupt)
		done := make(chan struct{})
		go func() { _ = cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
	})
	address = "127.0.0.1:" + strconv.Itoa(port)
	if err := devstack.WaitPort(context.Background(), address, 60*time.Second); err != nil {
		b, _ := os.ReadFile(log.Name())
		t.Fatalf("Temporal dev server did not start: %v\n%s", err, b)
	}
	return address, "http://127.0.0.1:" + strconv.Itoa(uiPort)
}

// RecreateTopic deletes topic and creates it again with partitions
// partitions, as an operator would: Kafka gives the new topic a new id and
// numbers its records from offset 0 again.
func RecreateTopic(t testing.TB, brokers []string, topic string, partitions int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c := &kafka.Client{Addr: kafka.TCP(brokers...), Timeout: 10 * time.Second}
	del, err := c.DeleteTopics(ctx, &kafka.DeleteTopicsRequest{Topics: []string{topic}})
	if err == nil {
		err = del.Errors[topic]
	}
	if err != nil {
		t.Fatalf("delete topic %s: %v", topic, err)
	}
	for {
		resp, err := c.CreateTopics(ctx, &kafka.CreateTopicsRequest{Topics: []kafka.TopicConfig{{
			Topic: topic, NumPartitions: partitions, ReplicationFactor: 1}}})
		if err == nil {
			err = resp.Errors[topic]
		}
		if err == nil {
			return
		}
		if !errors.Is(err, kafka.TopicAlreadyExists) || ctx.Err() != nil {
			t.Fatalf("create topic %s again: %v", topic, err)
		}
		time.Sleep(100 * time.Millisecond) // the deletion is still under way
	}
}
