// Package worker runs the Temporal workers of the pipeline: task queue
// `pipeline` (live stream) and `batch-jobs` (the blueprint's lane: backfills
// and nightly aggregations, at most `prefetch` activities at once).
package worker

import (
	"context"
	"crypto/tls"
	"fmt"
	"log/slog"
	"time"

	"go.temporal.io/sdk/client"
	temporalotel "go.temporal.io/sdk/contrib/opentelemetry"
	"go.temporal.io/sdk/interceptor"
	sdklog "go.temporal.io/sdk/log"
	"go.temporal.io/sdk/worker"

	"github.com/acme/pipeline/activities"
	"github.com/acme/pipeline/warehouse"
	"github.com/acme/pipeline/workflows"
)

// Config holds the clients the worker's activities use. Client and Store are required.
type Config struct {
	Client client.Client
	Store  *warehouse.Store
	// BatchConcurrency bounds concurrent activities on batch-jobs (the lane's
	// prefetch). Default 5.
	BatchConcurrency int
	Log              *slog.Logger
	// Provisioner, when set, runs the Provision workflow and its activities
	// on batch-jobs (activities.NewProvisioner builds it).
	Provisioner *activities.Provisioner
	// Backfiller, when set, runs the Backfill workflow and its activities on
	// batch-jobs (activities.NewBackfiller builds it).
	Backfiller *activities.Backfiller
	// Stream, when set, runs the StreamCompaction workflow and its
	// activities on task queue pipeline (activities.NewActivities builds it).
	Stream *activities.Activities
	// Monitor, when set, runs the SLOMonitor workflow and its activity on
	// batch-jobs.
	Monitor *activities.Monitor
	// StreamOnly skips batch-jobs: the process polls task queue pipeline
	// alone (`pipeline worker --task-queues pipeline`), e.g. to size stream
	// and batch workers apart.
	StreamOnly bool
}

// DialConfig says where Dial connects and how. Address and Namespace are
// required; the zero TLS and Credentials are plaintext without
// authentication (the local dev server).
type DialConfig struct {
	Address, Namespace string
	// TLS, when set, secures the connection (mTLS with a client
	// certificate in it). config.Config.TemporalTLS builds it.
	TLS *tls.Config
	// Credentials, when set, authenticate every call, e.g.
	// client.NewAPIKeyStaticCredentials for a Temporal Cloud API key (which
	// needs TLS too). config.Config.TemporalCredentials builds it.
	Credentials client.Credentials
}

// Dial connects to Temporal with the process's structured logger and the
// OpenTelemetry tracing interceptor: workflow and activity spans join the
// traces of their callers (through the Temporal headers), and an activity's
// context carries its span, so spans the activity starts are its children.
// The interceptor uses the global TracerProvider, so spans are exported
// once telemetry.Setup has run (before or after Dial).
func Dial(dc DialConfig, log *slog.Logger) (client.Client, error) {
	// The default Tracer is taken from the global provider, which delegates
	// to the one Setup installs; the default propagator (W3C trace context
	// and baggage) is the one every Temporal SDK speaks.
	tracing, err := temporalotel.NewTracingInterceptor(temporalotel.TracerOptions{})
	if err != nil {
		return nil, fmt.Errorf("temporal tracing interceptor: %w", err)
	}
	c, err := client.Dial(client.Options{
		HostPort:          dc.Address,
		Namespace:         dc.Namespace,
		Credentials:       dc.Credentials,
		ConnectionOptions: client.ConnectionOptions{TLS: dc.TLS},
		Logger:            sdklog.NewStructuredLogger(log.With("component", "temporal")),
		Interceptors:      []interceptor.ClientInterceptor{tracing},
	})
	if err != nil {
		security := "plaintext"
		switch {
		case dc.TLS != nil && dc.Credentials != nil:
			security = "TLS, API key"
		case dc.TLS != nil && len(dc.TLS.Certificates) > 0:
			security = "mTLS"
		case dc.TLS != nil:
			security = "TLS"
		case dc.Credentials != nil:
			security = "API key"
		}
		return nil, fmt.Errorf("connect to Temporal at %s (namespace %s, %s): %w", dc.Address, dc.Namespace, security, err)
	}
	return c, nil
}

// StopTimeout is how long a stopping worker lets its running activities
// finish (a stream cycle ends within its flush wait; a backfill day
// checkpoints through its heartbeat) before cancelling them. Deployments
// give the process a grace period above it (deploy/kubernetes: 60 s).
const StopTimeout = 30 * time.Second

// Run registers every workflow and activity and polls both task queues until
// ctx is done.
func Run(ctx context.Context, cfg Config) error {
	if cfg.Client == nil || cfg.Store == nil {
		return fmt.Errorf("worker: Client and Store are required")
	}
	if cfg.BatchConcurrency <= 0 {
		cfg.BatchConcurrency = 5
	}
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	failures, err := newFailureInterceptor()
	if err != nil {
		return err
	}
	if cfg.StreamOnly && cfg.Stream == nil {
		return fmt.Errorf("worker: StreamOnly without Stream polls no task queue")
	}
	if !cfg.StreamOnly {
		stop, err := runBatch(cfg, failures)
		if err != nil {
			return err
		}
		defer stop()
	}
	if cfg.Stream != nil {
		stream := worker.New(cfg.Client, workflows.StreamQueue, worker.Options{
			Interceptors:      []interceptor.WorkerInterceptor{failures},
			WorkerStopTimeout: StopTimeout,
		})
		stream.RegisterWorkflow(workflows.StreamCompaction)
		stream.RegisterActivity(cfg.Stream)
		if err := stream.Start(); err != nil {
			return fmt.Errorf("start worker on %s: %w", workflows.StreamQueue, err)
		}
		defer stream.Stop()
		cfg.Log.Info("worker polling", "task_queue", workflows.StreamQueue)
	}
	<-ctx.Done()
	return nil
}

// runBatch starts the worker of task queue batch-jobs.
func runBatch(cfg Config, failures interceptor.WorkerInterceptor) (stop func(), err error) {
	batch := worker.New(cfg.Client, workflows.BatchQueue, worker.Options{
		MaxConcurrentActivityExecutionSize: cfg.BatchConcurrency,
		Interceptors:                       []interceptor.WorkerInterceptor{failures},
		WorkerStopTimeout:                  StopTimeout,
	})
	batch.RegisterWorkflow(workflows.NightlyAggregation)
	batch.RegisterWorkflow(workflows.RefreshMarts)
	batch.RegisterActivity(&activities.Marts{Store: cfg.Store})
	if err := activities.RegisterMartMetrics(cfg.Store); err != nil {
		return nil, fmt.Errorf("mart metrics: %w", err)
	}
	if cfg.Provisioner != nil {
		batch.RegisterWorkflow(workflows.Provision)
		batch.RegisterActivity(cfg.Provisioner)
	}
	if cfg.Backfiller != nil {
		batch.RegisterWorkflow(workflows.Backfill)
		batch.RegisterActivity(cfg.Backfiller)
	}
	if cfg.Monitor != nil {
		batch.RegisterWorkflow(workflows.SLOMonitor)
		batch.RegisterActivity(cfg.Monitor)
	}

	if err := batch.Start(); err != nil {
		return nil, fmt.Errorf("start worker on %s: %w", workflows.BatchQueue, err)
	}
	cfg.Log.Info("worker polling", "task_queue", workflows.BatchQueue, "max_concurrent_activities", cfg.BatchConcurrency)
	return batch.Stop, nil
}
