// Package worker runs the Temporal workers of the pipeline: task queue
// `pipeline` (live stream) and `batch-jobs` (the blueprint's lane: backfills
// and nightly aggregations, at most `prefetch` activities at once).
package worker

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/interceptor"
	"go.temporal.io/sdk/worker"

	"github.com/acme/pipeline/activities"
	"github.com/acme/pipeline/starter"
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
	// activities on task queue pipeline (activities.NewStream builds it).
	Stream *activities.Stream
	// Monitor, when set, runs the SLOMonitor workflow and its activity on
	// batch-jobs.
	Monitor *activities.Monitor
	// SilverMaintainer, when set, runs the SilverMaintenance workflow and
	// its activities on batch-jobs.
	SilverMaintainer *activities.SilverMaintainer
	// StreamOnly skips batch-jobs: the process polls task queue pipeline
	// alone (`pipeline worker --task-queues pipeline`), e.g. to size stream
	// and batch workers apart.
	StreamOnly bool
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
		// Provision's last steps start schedules, the stream and the SLO
		// monitor through the starter's activities.
		ens, err := starter.NewEnsurer(cfg.Client)
		if err != nil {
			return nil, err
		}
		batch.RegisterActivity(ens)
	}
	if cfg.Backfiller != nil {
		batch.RegisterWorkflow(workflows.Backfill)
		batch.RegisterActivity(cfg.Backfiller)
	}
	if cfg.SilverMaintainer != nil {
		batch.RegisterWorkflow(workflows.SilverMaintenance)
		batch.RegisterActivity(cfg.SilverMaintainer)
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
