package activities

import (
	"context"
	"errors"
	"fmt"
	"time"

	"go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"
)

// The Provisioner's last steps: the marts' zone and the Lane's schedules.

// ScheduleInput describes a schedule of the Lane: the nightly aggregation
// (daily at Hour) or the marts refresher (every Every). All fields are
// required except Zone, and Hour when Every is set.
type ScheduleInput struct {
	ID        string `json:"id"`         // schedule id, "nightly-aggregation"
	Workflow  string `json:"workflow"`   // workflow type, "NightlyAggregation"
	TaskQueue string `json:"task_queue"` // "batch-jobs"
	Hour      int    `json:"hour"`       // hour of the day it runs, in Zone
	// Every, when set, runs the workflow at this interval instead of daily
	// at Hour.
	Every time.Duration `json:"every,omitempty"`
	// Zone is the IANA zone of Hour and of the day aggregated, passed to the
	// workflow as its "zone". Default UTC.
	Zone string `json:"zone,omitempty"`
	// CatchupWindow is how late a missed run may still start (after the
	// server was down).
	CatchupWindow time.Duration `json:"catchup_window"`
}

// ScheduleResult says whether the schedule was created, or changed to
// follow Zone, or already existed as it should.
type ScheduleResult struct {
	ID      string `json:"id"`
	Created bool   `json:"created"`
	Updated bool   `json:"updated,omitempty"`
}

// EnsureSchedule creates the schedule if it is absent: daily at Hour:00 in
// Zone (or every Every), the workflow on TaskQueue with {"zone": Zone} as
// its input, overlap policy skip, the given catch-up window. An existing
// schedule is left as it is, except a daily one in another zone: its zone
// and input follow Zone, so the nightly run cuts days as the marts do.
func (p *Provisioner) EnsureSchedule(ctx context.Context, in ScheduleInput) (ScheduleResult, error) {
	res := ScheduleResult{ID: in.ID}
	if in.ID == "" || in.Workflow == "" || in.TaskQueue == "" || in.Every < 0 || (in.Every == 0 && (in.Hour < 0 || in.Hour > 23)) || in.CatchupWindow <= 0 {
		return res, temporal.NewNonRetryableApplicationError(fmt.Sprintf("schedule %q: incomplete input %+v", in.ID, in), ErrTypeInvalid, nil)
	}
	args := map[string]any{}
	if in.Zone != "" {
		args["zone"] = in.Zone
	}
	sc := p.cfg.Temporal.ScheduleClient()
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
			Comment: fmt.Sprintf("daily at %02d:00, aggregates the previous day", in.Hour),
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

// MartZoneInput is the zone to record. Zone empty keeps the recorded one.
type MartZoneInput struct {
	Zone string `json:"zone,omitempty"` // IANA name
}

// RecordMartZone records the zone the marts' days are cut in
// (pipeline.settings), for every path that builds marts (nightly,
// refresher, backfill, `pipeline aggregate`), and returns the zone in
// force, which the nightly schedule then gets. Days built in another zone
// become pending, and the refresher rebuilds them.
func (p *Provisioner) RecordMartZone(ctx context.Context, in MartZoneInput) (MartZoneResult, error) {
	zone, err := p.cfg.Store.SetMartZone(ctx, in.Zone)
	if err != nil {
		return MartZoneResult{}, martError("record the mart zone", err)
	}
	return MartZoneResult{Zone: zone}, nil
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
