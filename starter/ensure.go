package starter

import (
	"context"
	"errors"
	"fmt"
	"maps"

	"go.temporal.io/api/enums/v1"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"

	"github.com/acme/pipeline/activities"
	"github.com/acme/pipeline/internal/shards"
	"github.com/acme/pipeline/slo"
	"github.com/acme/pipeline/workflows"
)

// Ensurer holds the activities by which the Provision workflow creates or
// starts what runs beside the pipeline's resources: the Lane's schedules,
// the stream's shards and the SLO monitor. Provision runs them as its last
// steps, so a crash anywhere leaves a state that the next provision
// completes; each one is idempotent. They live here because starting a
// workflow needs the workflows package, which imports activities; the
// Provision workflow calls them by name (activities.Ensure*Activity).
type Ensurer struct {
	c client.Client
}

// NewEnsurer builds the activities on a Temporal client of the namespace.
func NewEnsurer(c client.Client) (*Ensurer, error) {
	if c == nil {
		return nil, errors.New("starter: NewEnsurer needs a Temporal client")
	}
	return &Ensurer{c: c}, nil
}

// EnsureStream starts every shard of the stream that is not running and
// keeps the running ones (StartStream); a shard count that changed
// reshards.
func (e *Ensurer) EnsureStream(ctx context.Context, in activities.StreamEnsureInput) (activities.StreamEnsureResult, error) {
	if in.Topic == "" || in.Shards < 1 {
		return activities.StreamEnsureResult{}, temporal.NewNonRetryableApplicationError(
			fmt.Sprintf("stream of topic %q in %d shards: need a topic and at least one shard", in.Topic, in.Shards), activities.ErrTypeInvalid, nil)
	}
	if _, err := StartStream(ctx, e.c, workflows.StreamCompactionInput{Topic: in.Topic, Shards: in.Shards}); err != nil {
		return activities.StreamEnsureResult{}, fmt.Errorf("start the stream workflows: %w", err)
	}
	res := activities.StreamEnsureResult{}
	for i := range in.Shards {
		res.WorkflowIDs = append(res.WorkflowIDs, shards.WorkflowID(in.Topic, i, in.Shards))
	}
	return res, nil
}

// EnsureSLOMonitor starts the SLO monitor with cfg, or sends cfg to the
// running one.
func (e *Ensurer) EnsureSLOMonitor(ctx context.Context, cfg slo.Config) (string, error) {
	if err := cfg.Validate(); err != nil {
		return "", temporal.NewNonRetryableApplicationError(err.Error(), activities.ErrTypeInvalid, err)
	}
	if _, err := StartSLOMonitor(ctx, e.c, cfg); err != nil {
		return "", err
	}
	return workflows.SLOMonitorWorkflowID, nil
}

// EnsureSchedule creates the schedule if it is absent: daily at Hour:00 in
// Zone (or every Every), the workflow on TaskQueue with {"zone": Zone} as
// its input, overlap policy skip, the given catch-up window. An existing
// schedule is left as it is, except a daily one in another zone: its zone
// and input follow Zone, so the nightly run cuts days as the marts do.
func (e *Ensurer) EnsureSchedule(ctx context.Context, in activities.ScheduleInput) (activities.ScheduleResult, error) {
	res := activities.ScheduleResult{ID: in.ID}
	if in.ID == "" || in.Workflow == "" || in.TaskQueue == "" || in.Every < 0 || (in.Every == 0 && (in.Hour < 0 || in.Hour > 23)) || in.CatchupWindow <= 0 {
		return res, temporal.NewNonRetryableApplicationError(fmt.Sprintf("schedule %q: incomplete input %+v", in.ID, in), activities.ErrTypeInvalid, nil)
	}
	args := maps.Clone(in.Args)
	if args == nil {
		args = map[string]any{}
	}
	if in.Zone != "" {
		args["zone"] = in.Zone
	}
	sc := e.c.ScheduleClient()
	h := sc.GetHandle(ctx, in.ID)
	if desc, err := h.Describe(ctx); err == nil {
		if in.Every > 0 || sameZone(desc.Schedule.Spec.TimeZoneName, in.Zone) {
			return res, nil
		}
		err := h.Update(ctx, client.ScheduleUpdateOptions{DoUpdate: func(u client.ScheduleUpdateInput) (*client.ScheduleUpdate, error) {
			sched := u.Description.Schedule
			act, ok := sched.Action.(*client.ScheduleWorkflowAction)
			if !ok || sched.Spec == nil {
				return nil, fmt.Errorf("not a workflow schedule: %T", sched.Action)
			}
			sched.Spec.TimeZoneName = in.Zone
			act.Args = []any{args}
			return &client.ScheduleUpdate{Schedule: &sched}, nil
		}})
		if err != nil {
			return res, fmt.Errorf("schedule %s: set zone %s: %w", in.ID, in.Zone, err)
		}
		res.Updated = true
		return res, nil
	} else if !isNotFound(err) {
		return res, fmt.Errorf("schedule %s: describe: %w", in.ID, err)
	}
	spec := client.ScheduleSpec{TimeZoneName: in.Zone}
	if in.Every > 0 {
		spec.Intervals = []client.ScheduleIntervalSpec{{Every: in.Every}}
	} else {
		spec.Calendars = []client.ScheduleCalendarSpec{{
			Second:  []client.ScheduleRange{{Start: 0}},
			Minute:  []client.ScheduleRange{{Start: 0}},
			Hour:    []client.ScheduleRange{{Start: in.Hour}},
			Comment: fmt.Sprintf("daily at %02d:00", in.Hour),
		}}
	}
	_, err := sc.Create(ctx, client.ScheduleOptions{
		ID:   in.ID,
		Spec: spec,
		Action: &client.ScheduleWorkflowAction{
			ID:        in.ID,
			Workflow:  in.Workflow,
			Args:      []any{args},
			TaskQueue: in.TaskQueue,
		},
		Overlap:       enums.SCHEDULE_OVERLAP_POLICY_SKIP,
		CatchupWindow: in.CatchupWindow,
		Note:          "created by the Provision workflow",
	})
	if err != nil {
		if errors.Is(err, temporal.ErrScheduleAlreadyRunning) {
			return res, nil // created meanwhile
		}
		return res, fmt.Errorf("schedule %s: create: %w", in.ID, err)
	}
	res.Created = true
	return res, nil
}

// sameZone compares zone names, "" being UTC.
func sameZone(a, b string) bool {
	if a == "" {
		a = "UTC"
	}
	if b == "" {
		b = "UTC"
	}
	return a == b
}

func isNotFound(err error) bool {
	var nf *serviceerror.NotFound
	return errors.As(err, &nf)
}
