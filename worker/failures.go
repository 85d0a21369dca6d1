package worker

import (
	"context"
	"errors"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/interceptor"
	"go.temporal.io/sdk/temporal"
)

// failureInterceptor counts failed activity attempts, by activity type, task
// queue and whether Temporal will retry them (pipeline.activity.failures):
// the metric behind "inspect retries in workflow history", for alerting
// before anyone opens the history.
type failureInterceptor struct {
	interceptor.WorkerInterceptorBase
	failures, attempts metric.Int64Counter
}

func newFailureInterceptor() (*failureInterceptor, error) {
	m := otel.Meter("github.com/acme/pipeline/worker")
	f := &failureInterceptor{}
	var err error
	if f.failures, err = m.Int64Counter("pipeline.activity.failures",
		metric.WithDescription("Failed activity attempts, by activity type, task queue and retryable (false: the activity gave up)."),
		metric.WithUnit("{attempt}")); err != nil {
		return nil, err
	}
	if f.attempts, err = m.Int64Counter("pipeline.activity.attempts",
		metric.WithDescription("Activity attempts started, by activity type and task queue."),
		metric.WithUnit("{attempt}")); err != nil {
		return nil, err
	}
	return f, nil
}

func (f *failureInterceptor) InterceptActivity(ctx context.Context, next interceptor.ActivityInboundInterceptor) interceptor.ActivityInboundInterceptor {
	return &failureActivity{ActivityInboundInterceptorBase: interceptor.ActivityInboundInterceptorBase{Next: next}, f: f}
}

type failureActivity struct {
	interceptor.ActivityInboundInterceptorBase
	f *failureInterceptor
}

func (a *failureActivity) ExecuteActivity(ctx context.Context, in *interceptor.ExecuteActivityInput) (any, error) {
	info := activity.GetInfo(ctx)
	attrs := []attribute.KeyValue{attribute.String("activity_type", info.ActivityType.Name), attribute.String("task_queue", info.TaskQueue)}
	a.f.attempts.Add(ctx, 1, metric.WithAttributes(attrs...))
	res, err := a.Next.ExecuteActivity(ctx, in)
	if err != nil && !errors.Is(err, activity.ErrResultPending) {
		retryable := true
		var appErr *temporal.ApplicationError
		if errors.As(err, &appErr) && appErr.NonRetryable() {
			retryable = false
		}
		if p := info.RetryPolicy; p != nil && p.MaximumAttempts > 0 && info.Attempt >= p.MaximumAttempts {
			retryable = false
		}
		a.f.failures.Add(ctx, 1, metric.WithAttributes(append(attrs, attribute.Bool("retryable", retryable))...))
	}
	return res, err
}
