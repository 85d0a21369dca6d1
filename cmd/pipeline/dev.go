package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/acme/pipeline/blueprint"
	"github.com/acme/pipeline/internal/config"
	"github.com/acme/pipeline/internal/demo"
	"github.com/acme/pipeline/internal/devstack"
	"github.com/acme/pipeline/internal/telemetry"
	"github.com/acme/pipeline/silver"
	"github.com/acme/pipeline/starter"
	"github.com/acme/pipeline/workflows"
)

func runDev(ctx context.Context, args []string) error {
	fs := newFlagSet("dev", "[--demo] [--infra]")
	demoTraffic := fs.Bool("demo", false, "also send realistic traffic (page views, payments, audit events, 5% client retries)")
	infra := fs.Bool("infra", false, "start only the infrastructure and print export lines for separate pipeline api and pipeline worker processes")
	dir := fs.String("dir", ".dev", "state directory: Temporal's database, the broker's log, the S3 objects")
	bin := fs.String("bin", "bin", "directory holding the pinned temporal and versitygw binaries")
	bpPath := fs.String("blueprint", "deploy/blueprint.json", "the blueprint to run")
	temporalPort := fs.Int("temporal-port", 7233, "Temporal frontend port")
	uiPort := fs.Int("ui-port", 8233, "Temporal web UI port")
	kafkaPort := fs.Int("kafka-port", 9092, "Kafka broker port")
	s3Port := fs.Int("s3-port", 9000, "S3 store port")
	apiPortFlag := fs.Int("api-port", 0, "event API port (default: the blueprint's porta, 8080)")
	adminPortFlag := fs.Int("admin-port", 0, "the API's operators' listener, /status and /metrics (default: the event API port + 1)")
	if err := parse(fs, args); err != nil {
		return err
	}
	bp, err := blueprint.Load(*bpPath)
	if err != nil {
		return err
	}
	topic, partitions, retention := bp.Topic()
	bucket, _ := bp.Bucket()
	apiPort := 8080
	if _, api, ok := bp.API(); ok {
		apiPort = api.Port
	}
	if *apiPortFlag != 0 {
		apiPort = *apiPortFlag
	}
	adminPort := apiPort + 1
	if *adminPortFlag != 0 {
		adminPort = *adminPortFlag
	}
	if !*infra {
		for _, p := range []struct {
			port int
			flag string
		}{{apiPort, "--api-port"}, {adminPort, "--admin-port"}} {
			if err := devstack.CheckPortFree(p.port, p.flag); err != nil {
				return err
			}
		}
	}
	prefetch := 5
	if _, lane, ok := bp.Lane(); ok {
		prefetch = lane.Prefetch
	}

	started := time.Now()
	stack, err := devstack.Start(ctx, devstack.Config{
		Dir: *dir, BinDir: *bin,
		TemporalPort: *temporalPort, TemporalUIPort: *uiPort, KafkaPort: *kafkaPort, S3Port: *s3Port,
		DatabaseURL:     os.Getenv("DATABASE_URL"),
		AccessKeyID:     os.Getenv("AWS_ACCESS_KEY_ID"),
		SecretAccessKey: os.Getenv("AWS_SECRET_ACCESS_KEY"),
		Region:          os.Getenv("AWS_REGION"),
		Topic:           topic, Partitions: partitions, Retention: retention, Bucket: bucket,
		// With --infra no worker runs here to provision, so the stack creates
		// the resources itself; otherwise the Provision workflow does.
		CreateResources: *infra,
	})
	if err != nil {
		return err
	}
	defer func() {
		slog.Info("stopping the dev stack")
		if err := stack.Close(); err != nil {
			slog.Error("stop dev stack", "err", err)
		}
	}()

	if *infra {
		fmt.Printf("\nInfrastructure is up (%s). In another shell:\n\n", time.Since(started).Round(100*time.Millisecond))
		for _, kv := range stack.Env() {
			k, v, _ := strings.Cut(kv, "=")
			fmt.Printf("export %s=%q\n", k, v)
		}
		fmt.Printf("export PIPELINE_API_KEYS=%q\n\n%s\n%s\nCtrl-C stops everything.\n", "dev:"+devAPIKey(*dir), infraSteps, urls(stack, 0, 0))
		<-ctx.Done()
		return nil
	}

	cfg := config.Config{
		TemporalAddress: stack.TemporalAddress, TemporalNamespace: "default",
		KafkaBrokers: strings.Join(stack.KafkaBrokers, ","), S3Endpoint: stack.S3Endpoint,
		AWSAccessKeyID: stack.AccessKeyID, AWSSecretKey: stack.SecretAccessKey, AWSRegion: stack.Region,
		DatabaseURL: stack.DatabaseURL, Topic: topic, Bucket: bucket,
		APIKeys: os.Getenv("PIPELINE_API_KEYS"),
	}
	if cfg.APIKeys == "" {
		cfg.APIKeys = "dev:" + devAPIKey(*dir)
	}
	shutdown, err := telemetry.Setup(ctx, telemetry.Config{ServiceName: "pipeline-dev"})
	if err != nil {
		return err
	}
	defer shutdown(context.Background())

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	errc := make(chan error, 3)
	goRun := func(name string, fn func() error) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := fn(); err != nil && !errors.Is(err, context.Canceled) {
				errc <- fmt.Errorf("%s: %w", name, err)
				cancel()
			}
		}()
	}
	apiAddr := fmt.Sprintf("127.0.0.1:%d", apiPort)
	goRun("worker", func() error { return serveWorker(ctx, cfg, prefetch, *dir, allQueues) })
	if err := provisionDev(ctx, cfg, bp, *bpPath); err != nil {
		cancel()
		wg.Wait()
		return err
	}
	adminAddr := fmt.Sprintf("127.0.0.1:%d", adminPort)
	goRun("api", func() error { return serveAPI(ctx, cfg, apiAddr, adminAddr, "", "", false) })
	if err := devstack.WaitPort(ctx, apiAddr, 15*time.Second); err != nil {
		cancel()
		wg.Wait()
		close(errc)
		return errors.Join(err, <-errc)
	}
	_, secret, _ := strings.Cut(strings.Split(cfg.APIKeys, ",")[0], ":")
	fmt.Printf("\nThe pipeline is up (%s to ready).\n%s", time.Since(started).Round(100*time.Millisecond), urls(stack, apiPort, adminPort))
	fmt.Printf("  API key            %s  (Authorization: Bearer %s)\n\n", strings.Split(cfg.APIKeys, ",")[0], secret)
	fmt.Printf("Send an event:\n  curl -sS -H 'Authorization: Bearer %s' -H 'Content-Type: application/json' \\\n    -d '{\"type\":\"page_view\",\"occurred_at\":\"%s\",\"user_id\":\"u-42\",\"properties\":{\"path\":\"/pricing\"}}' \\\n    http://%s/v1/events\n\nCtrl-C stops everything.\n",
		secret, time.Now().UTC().Format(time.RFC3339), apiAddr)
	if *demoTraffic {
		goRun("demo", func() error {
			return demo.Run(ctx, demo.Config{URL: "http://" + apiAddr, APIKey: secret, Log: slog.Default().With("component", "demo")})
		})
	}
	<-ctx.Done()
	wg.Wait()
	close(errc)
	var errs []error
	for err := range errc {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// infraSteps are what a user runs after `pipeline dev --infra`, in order,
// each in a shell with the exported variables: without the provision step
// the API takes events that no stream consumes.
const infraSteps = `then, in order, each in its own shell with those variables:
  1. bin/pipeline worker                              # polls the task queues pipeline and batch-jobs
  2. bin/pipeline provision deploy/blueprint.json     # Provision workflow: schedules, silver.events, the stream's shards
  3. bin/pipeline api                                 # the event API on :8080
`

func urls(s *devstack.Stack, apiPort, adminPort int) string {
	var b strings.Builder
	if apiPort != 0 {
		fmt.Fprintf(&b, "  Event API          http://127.0.0.1:%d/v1/events\n", apiPort)
		fmt.Fprintf(&b, "  Status page        http://127.0.0.1:%d/status   (and /metrics: the API's operators' listener, --admin-addr)\n", adminPort)
	}
	fmt.Fprintf(&b, "  Temporal UI        %s\n", s.TemporalUI)
	fmt.Fprintf(&b, "  Temporal frontend  %s   (temporal workflow list --address %s)\n", s.TemporalAddress, s.TemporalAddress)
	fmt.Fprintf(&b, "  Kafka              %s   (kcat -b %s -L)\n", strings.Join(s.KafkaBrokers, ","), s.KafkaBrokers[0])
	fmt.Fprintf(&b, "  S3                 %s   bucket %s, key %s, secret %s\n", s.S3Endpoint, s.Bucket, s.AccessKeyID, s.SecretAccessKey)
	fmt.Fprintf(&b, "                     (AWS_ACCESS_KEY_ID=%s AWS_SECRET_ACCESS_KEY=%s aws --endpoint-url %s s3 ls s3://%s/)\n", s.AccessKeyID, s.SecretAccessKey, s.S3Endpoint, s.Bucket)
	fmt.Fprintf(&b, "  PostgreSQL         %s   (%s; psql \"%s\")\n", s.DatabaseURL, s.PostgresOrigin, s.DatabaseURL)
	fmt.Fprintf(&b, "  silver.events      Iceberg SQL catalog %q in that database (JDBC catalog: uri %s), warehouse s3://%s/\n",
		silver.CatalogName, jdbcURL(s.DatabaseURL), s.Bucket)
	fmt.Fprintf(&b, "                     (current metadata: psql \"%s\" -Atc \"SELECT metadata_location FROM iceberg_tables WHERE table_namespace = 'silver' AND table_name = 'events'\")\n", s.DatabaseURL)
	return b.String()
}

// devAPIKey returns the dev API secret kept under dir, generating it once so
// that scripts keep working across restarts.
func devAPIKey(dir string) string {
	path := filepath.Join(dir, "api-key")
	if b, err := os.ReadFile(path); err == nil && len(strings.TrimSpace(string(b))) > 0 {
		return strings.TrimSpace(string(b))
	}
	buf := make([]byte, 16)
	_, _ = rand.Read(buf)
	key := hex.EncodeToString(buf)
	_ = os.WriteFile(path, []byte(key+"\n"), 0o600)
	return key
}

// provisionDev runs the Provision workflow for the dev blueprint on the
// in-process worker, as `pipeline provision` would, and prints its summary.
func provisionDev(ctx context.Context, cfg config.Config, bp *blueprint.Blueprint, path string) error {
	raw, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	tc, err := dialTemporal(cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		return err
	}
	defer tc.Close()
	var out strings.Builder
	req := starter.ProvisionRequest{Name: bp.Name, Input: workflows.ProvisionInput{Blueprint: raw}}
	res, err := provisionAndWait(ctx, tc, req, 2*time.Minute, &out)
	if err != nil {
		fmt.Print(out.String())
		return fmt.Errorf("provision %s: %w", path, err)
	}
	fmt.Printf("\nProvisioned %s through the Provision workflow:\n%s\n%s", path, res.PlanText, res.Summary())
	return nil
}

// jdbcURL is the JDBC form of a postgres:// URL, without its password, for
// the Java engines' JDBC catalog (user and password go in their own
// settings).
func jdbcURL(dbURL string) string {
	u, err := url.Parse(dbURL)
	if err != nil {
		return dbURL
	}
	q := u.Query()
	if u.User != nil {
		q.Set("user", u.User.Username())
	}
	u.User, u.Scheme, u.RawQuery = nil, "postgresql", q.Encode()
	return "jdbc:" + u.String()
}
