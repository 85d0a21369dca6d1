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
	tests := []struct {
		name    string
		in      NightlyAggregationInput
		now     time.Time
		wantDay string // "" means the workflow must fail with wantErr
		wantErr string
	}{
		{"explicit date", NightlyAggregationInput{Date: "2026-11-03"}, time.Date(2026, 11, 24, 2, 0, 0, 0, time.UTC), "2026-11-03", ""},
		{"schedule: previous day in UTC", NightlyAggregationInput{}, time.Date(2026, 11, 24, 2, 0, 0, 0, time.UTC), "2026-11-23", ""},
		{"schedule: previous day in Tokyo", NightlyAggregationInput{Zone: "Asia/Tokyo"}, time.Date(2026, 11, 23, 17, 0, 0, 0, time.UTC), "2026-11-23", ""},
		{"bad date", NightlyAggregationInput{Date: "2026-13-01"}, time.Now(), "", "date: \"2026-13-01\""},
		{"bad zone", NightlyAggregationInput{Zone: "Mars/Olympus"}, time.Now(), "", "zone: \"Mars/Olympus\""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var s testsuite.WorkflowTestSuite
			env := s.NewTestWorkflowEnvironment()
			env.SetStartTime(tt.now)
			var m *activities.Marts
			env.RegisterActivity(m)
			if tt.wantDay != "" {
				env.OnActivity(m.BuildMarts, mock.Anything, activities.BuildMartsInput{Day: tt.wantDay, Zone: tt.in.Zone}).
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
