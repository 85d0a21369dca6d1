package workflows

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/mock"
	"go.temporal.io/sdk/testsuite"

	"github.com/acme/pipeline/activities"
	"github.com/acme/pipeline/silver"
)

// TestSilverMaintenance runs the workflow on the test suite with the
// activities stubbed: the steps it takes in each mode, the workflow clock
// compaction gets, and a failing step that fails the run by name after its
// retries.
func TestSilverMaintenance(t *testing.T) {
	for _, tc := range []struct {
		name    string
		in      SilverMaintenanceInput
		failAt  string // activity that fails every attempt
		steps   string // activities run, in order
		wantErr string
	}{
		{name: "every 15 minutes", in: SilverMaintenanceInput{Retention: 2 * time.Hour},
			steps: "CompactSilver RewriteSilverManifests ExpireSilverSnapshots"},
		{name: "daily orphans", in: SilverMaintenanceInput{Orphans: true, OrphanAge: 48 * time.Hour},
			steps: "DeleteSilverOrphans"},
		{name: "compaction fails", failAt: "CompactSilver",
			steps: "CompactSilver CompactSilver CompactSilver CompactSilver CompactSilver", wantErr: "compact silver.events"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var s testsuite.WorkflowTestSuite
			env := s.NewTestWorkflowEnvironment()
			start := time.Date(2026, 12, 2, 10, 7, 0, 0, time.UTC)
			env.SetStartTime(start)
			var m *activities.SilverMaintainer
			env.RegisterActivity(m)
			var steps []string
			step := func(name string) error {
				steps = append(steps, name)
				if name == tc.failAt {
					return errors.New("S3 is down")
				}
				return nil
			}
			env.OnActivity(m.CompactSilver, mock.Anything, mock.Anything).Return(
				func(_ context.Context, in activities.CompactSilverInput) (activities.CompactSilverResult, error) {
					if !in.Now.Equal(start) {
						t.Errorf("compaction measured from %s, want the workflow's clock %s", in.Now, start)
					}
					return activities.CompactSilverResult{Removed: 40, Added: 2}, step("CompactSilver")
				})
			env.OnActivity(m.RewriteSilverManifests, mock.Anything, mock.Anything).Return(
				func(context.Context, activities.RewriteSilverManifestsInput) (activities.RewriteSilverManifestsResult, error) {
					return activities.RewriteSilverManifestsResult{Before: 12, After: 1}, step("RewriteSilverManifests")
				})
			env.OnActivity(m.ExpireSilverSnapshots, mock.Anything, mock.Anything).Return(
				func(_ context.Context, in activities.ExpireSilverSnapshotsInput) (silver.ExpireResult, error) {
					if in.Retention != tc.in.Retention {
						t.Errorf("retention %s, want %s", in.Retention, tc.in.Retention)
					}
					return silver.ExpireResult{Before: 300, After: 20}, step("ExpireSilverSnapshots")
				})
			env.OnActivity(m.DeleteSilverOrphans, mock.Anything, mock.Anything).Return(
				func(_ context.Context, in activities.DeleteSilverOrphansInput) (activities.DeleteSilverOrphansResult, error) {
					if in.OlderThan != tc.in.OrphanAge {
						t.Errorf("orphan age %s, want %s", in.OlderThan, tc.in.OrphanAge)
					}
					return activities.DeleteSilverOrphansResult{Files: 3}, step("DeleteSilverOrphans")
				})
			env.ExecuteWorkflow(SilverMaintenance, tc.in)
			if !env.IsWorkflowCompleted() {
				t.Fatal("workflow did not complete")
			}
			err := env.GetWorkflowError()
			if got := strings.Join(steps, " "); got != tc.steps {
				t.Fatalf("steps %q, want %q", got, tc.steps)
			}
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) || !strings.Contains(err.Error(), "S3 is down") {
					t.Fatalf("error %v, want %q with the cause", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var res SilverMaintenanceResult
			if err := env.GetWorkflowResult(&res); err != nil {
				t.Fatal(err)
			}
			if tc.in.Orphans != (res.Orphans != nil) || tc.in.Orphans == (res.Compaction != nil) {
				t.Fatalf("result %+v", res)
			}
		})
	}
}
