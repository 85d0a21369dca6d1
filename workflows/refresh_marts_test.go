package workflows

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/mock"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"

	"github.com/acme/pipeline/activities"
)

func TestRefreshMarts(t *testing.T) {
	pending := func(days ...string) []activities.PendingMartDay {
		out := []activities.PendingMartDay{}
		for _, d := range days {
			out = append(out, activities.PendingMartDay{Day: d, Zone: "UTC", State: "dirty"})
		}
		return out
	}
	tests := []struct {
		name      string
		in        RefreshMartsInput
		wantLimit int
		pending   []activities.PendingMartDay
		total     int64
		fail      map[string]error // BuildMarts errors by day
		wantBuilt []string
		wantLeft  int64
		wantErr   string // the workflow fails naming these days
	}{
		{name: "nothing pending", wantLimit: DefaultRefreshLimit, pending: pending()},
		{name: "every pending day, in the listed order", wantLimit: DefaultRefreshLimit,
			pending: pending("2026-11-24", "2026-11-20", "2026-11-23"), total: 3,
			wantBuilt: []string{"2026-11-24", "2026-11-20", "2026-11-23"}},
		{name: "bounded: the rest is left for the next run", in: RefreshMartsInput{Limit: 2}, wantLimit: 2,
			pending: pending("2026-11-20", "2026-11-21"), total: 7,
			wantBuilt: []string{"2026-11-20", "2026-11-21"}, wantLeft: 5},
		{name: "a failing day does not stop the others", wantLimit: DefaultRefreshLimit,
			pending: pending("2026-11-20", "2026-11-21", "2026-11-22"), total: 3,
			fail:      map[string]error{"2026-11-21": temporal.NewNonRetryableApplicationError("build marts for 2026-11-21: boom", "MartFailed", nil)},
			wantBuilt: []string{"2026-11-20", "2026-11-22"}, wantErr: "2026-11-21: "},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var s testsuite.WorkflowTestSuite
			env := s.NewTestWorkflowEnvironment()
			var m *activities.Marts
			env.RegisterActivity(m)
			env.OnActivity(m.PendingMartDays, mock.Anything, activities.PendingMartDaysInput{Limit: tt.wantLimit}).
				Return(activities.PendingMartDaysResult{Days: tt.pending, Total: tt.total}, nil).Once()
			var built []string
			env.OnActivity(m.BuildMarts, mock.Anything, mock.Anything).Return(
				func(_ context.Context, in activities.BuildMartsInput) (activities.BuildMartsResult, error) {
					if in.Zone != "" {
						return activities.BuildMartsResult{}, errors.New("the refresher must build in the recorded zone")
					}
					if err := tt.fail[in.Day]; err != nil {
						return activities.BuildMartsResult{}, err
					}
					built = append(built, in.Day)
					return activities.BuildMartsResult{Day: in.Day, Zone: "UTC"}, nil
				}).Maybe()
			env.ExecuteWorkflow(RefreshMarts, tt.in)
			if !env.IsWorkflowCompleted() {
				t.Fatal("workflow did not complete")
			}
			if !slices.Equal(built, tt.wantBuilt) {
				t.Fatalf("built %v, want %v", built, tt.wantBuilt)
			}
			err := env.GetWorkflowError()
			if tt.wantErr != "" {
				var appErr *temporal.ApplicationError
				if !errors.As(err, &appErr) || !strings.Contains(appErr.Error(), tt.wantErr) {
					t.Fatalf("error %v, want one naming %q", err, tt.wantErr)
				}
				var res RefreshMartsResult
				if err := appErr.Details(&res); err != nil || len(res.Rebuilt) != len(tt.wantBuilt) || len(res.Failed) != len(tt.fail) {
					t.Fatalf("details %+v, %v", res, err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var res RefreshMartsResult
			if err := env.GetWorkflowResult(&res); err != nil {
				t.Fatal(err)
			}
			if len(res.Rebuilt) != len(tt.wantBuilt) || res.Left != tt.wantLeft {
				t.Fatalf("result %+v", res)
			}
			env.AssertExpectations(t)
		})
	}
}
