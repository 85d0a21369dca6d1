package workflows

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/mock"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"

	"github.com/acme/pipeline/activities"
)

func TestNightlyAggregation(t *testing.T) {
	at := func(s string) time.Time {
		v, err := time.Parse(time.RFC3339, s)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	tests := []struct {
		name     string
		in       NightlyAggregationInput
		now      time.Time
		nominal  time.Time // TemporalScheduledStartTime; zero: started by hand
		recorded string    // the zone the MartZone activity returns; "": must not be asked
		wantDay  string    // "" means the workflow must fail with wantErr
		wantZone string    // BuildMarts' zone
		wantErr  string
	}{
		{name: "explicit date", in: NightlyAggregationInput{Date: "2026-11-03"}, now: at("2026-11-24T02:00:00Z"), wantDay: "2026-11-03"},
		{name: "explicit date and zone", in: NightlyAggregationInput{Date: "2026-11-03", Zone: "Asia/Tokyo"}, now: at("2026-11-24T02:00:00Z"),
			wantDay: "2026-11-03", wantZone: "Asia/Tokyo"},
		{name: "by hand: previous day in the recorded zone (UTC)", now: at("2026-11-24T02:00:00Z"), recorded: "UTC",
			wantDay: "2026-11-23", wantZone: "UTC"},
		{name: "by hand: previous day in the recorded zone (Tokyo)", now: at("2026-11-23T16:00:00Z"), recorded: "Asia/Tokyo",
			wantDay: "2026-11-23", wantZone: "Asia/Tokyo"}, // 01:00 on the 24th in Tokyo
		{name: "schedule: previous day in Tokyo", in: NightlyAggregationInput{Zone: "Asia/Tokyo"}, now: at("2026-11-23T17:00:00Z"),
			wantDay: "2026-11-23", wantZone: "Asia/Tokyo"},
		{name: "schedule catch-up: the nominal day, not the run's", in: NightlyAggregationInput{Zone: "UTC"},
			now: at("2026-11-25T09:41:00Z"), nominal: at("2026-11-24T02:00:00Z"), wantDay: "2026-11-23", wantZone: "UTC"},
		{name: "schedule catch-up in Tokyo", in: NightlyAggregationInput{Zone: "Asia/Tokyo"},
			now: at("2026-11-24T23:30:00Z"), nominal: at("2026-11-23T17:00:00Z"), wantDay: "2026-11-23", wantZone: "Asia/Tokyo"},
		{name: "schedule catch-up, zone recorded", now: at("2026-11-26T00:00:00Z"), nominal: at("2026-11-24T02:00:00Z"),
			recorded: "Europe/Berlin", wantDay: "2026-11-23", wantZone: "Europe/Berlin"},
		{name: "bad date", in: NightlyAggregationInput{Date: "2026-13-01"}, now: time.Now(), wantErr: "date: \"2026-13-01\""},
		{name: "bad zone", in: NightlyAggregationInput{Zone: "Mars/Olympus"}, now: time.Now(), wantErr: "zone: \"Mars/Olympus\""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var s testsuite.WorkflowTestSuite
			env := s.NewTestWorkflowEnvironment()
			env.SetStartTime(tt.now)
			if !tt.nominal.IsZero() {
				if err := env.SetTypedSearchAttributesOnStart(temporal.NewSearchAttributes(scheduledStartKey.ValueSet(tt.nominal))); err != nil {
					t.Fatal(err)
				}
			}
			var m *activities.Marts
			env.RegisterActivity(m)
			if tt.recorded != "" {
				env.OnActivity(m.MartZone, mock.Anything).Return(activities.MartZoneResult{Zone: tt.recorded}, nil).Once()
			}
			if tt.wantDay != "" {
				env.OnActivity(m.BuildMarts, mock.Anything, activities.BuildMartsInput{Day: tt.wantDay, Zone: tt.wantZone}).
					Return(activities.BuildMartsResult{Day: tt.wantDay, ProductMetrics: 3}, nil).Once()
			}
			env.ExecuteWorkflow(NightlyAggregation, tt.in)
			if !env.IsWorkflowCompleted() {
				t.Fatal("workflow did not complete")
			}
			err := env.GetWorkflowError()
			if tt.wantDay == "" {
				var appErr *temporal.ApplicationError
				if !errors.As(err, &appErr) || !appErr.NonRetryable() || !contains(err.Error(), tt.wantErr) {
					t.Fatalf("error %v, want a non-retryable error naming %s", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var res NightlyAggregationResult
			if err := env.GetWorkflowResult(&res); err != nil || res.Day != tt.wantDay {
				t.Fatalf("result %+v, %v", res, err)
			}
			env.AssertExpectations(t)
		})
	}
}

func TestNightlyAggregationRetriesActivity(t *testing.T) {
	var s testsuite.WorkflowTestSuite
	env := s.NewTestWorkflowEnvironment()
	var m *activities.Marts
	env.RegisterActivity(m)
	env.OnActivity(m.BuildMarts, mock.Anything, mock.Anything).Return(activities.BuildMartsResult{}, errors.New("connection refused")).Twice()
	env.OnActivity(m.BuildMarts, mock.Anything, mock.Anything).Return(activities.BuildMartsResult{Day: "2026-11-01"}, nil).Once()
	env.ExecuteWorkflow(NightlyAggregation, NightlyAggregationInput{Date: "2026-11-01"})
	if err := env.GetWorkflowError(); err != nil {
		t.Fatalf("workflow failed despite retries: %v", err)
	}
	env.AssertExpectations(t)
}

func contains(s, sub string) bool { return strings.Contains(s, sub) }
