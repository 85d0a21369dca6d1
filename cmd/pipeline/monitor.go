package main

import (
	"context"
	"log/slog"
	"os"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"go.temporal.io/sdk/client"

	"github.com/acme/pipeline/activities"
	"github.com/acme/pipeline/internal/config"
	"github.com/acme/pipeline/internal/kafkaread"
	"github.com/acme/pipeline/internal/shards"
	"github.com/acme/pipeline/slo"
	"github.com/acme/pipeline/warehouse"
)

// newMonitor builds the SLOMonitor's activity. PIPELINE_ALERT_WEBHOOK, when
// set, receives every alert as it opens and resolves; PIPELINE_STATUS_URL
// is the /status link put in the notifications. tc reads the stream's
// shards from Temporal (the stream_running SLO).
func newMonitor(cfg config.Config, store *warehouse.Store, tc client.Client) (*activities.Monitor, error) {
	var kc *kafkaread.Client
	if brokers := cfg.Brokers(); len(brokers) > 0 {
		var err error
		if kc, err = kafkaread.New(kafkaread.Config{Brokers: brokers, ClientID: "pipeline-slo", Timeout: 10 * time.Second, Conn: cfg.Kafka}); err != nil {
			return nil, err
		}
	}
	lister, err := shards.NewLister(tc)
	if err != nil {
		return nil, err
	}
	ev, err := slo.NewEvaluator(slo.EvaluatorConfig{Store: store, Kafka: kc, Shards: lister,
		Webhook: os.Getenv("PIPELINE_ALERT_WEBHOOK"), StatusURL: os.Getenv("PIPELINE_STATUS_URL"),
		Log: slog.Default().With("component", "slo")})
	if err != nil {
		return nil, err
	}
	return &activities.Monitor{Eval: ev}, nil
}

// acceptedRecorder stores the API's accepted counts per hour for the
// completeness SLO through pool, every 5 s and once more when ctx ends
// (flushed is closed then); without a pool the API runs alone and
// completeness compares the stream's layers only.
func acceptedRecorder(ctx context.Context, pool *pgxpool.Pool) (add func(time.Time, int), flushed <-chan struct{}) {
	done := make(chan struct{})
	if pool == nil {
		close(done)
		return nil, done
	}
	rec := slo.NewAcceptedRecorder(warehouse.FromPool(pool), slog.Default().With("component", "api"))
	go func() {
		defer close(done)
		rec.Run(ctx, 5*time.Second)
	}()
	return rec.Add, done
}
