package workflows

import (
	"testing"

	"go.temporal.io/sdk/worker"
)

// Real Backfill histories, recorded with `temporal workflow show -o json`
// under `pipeline dev` (see the README's Backfills section):
//   - backfill_two_days.json: two days, silver, gold and marts, paused and
//     resumed while the live stream loaded late events of those days;
//   - backfill_conflict.json: a backfill refused because another held a day.
//
// A change to Backfill that would make a running backfill fail after a
// worker upgrade fails here with a nondeterminism error.
var backfillHistories = []string{"testdata/backfill_two_days.json", "testdata/backfill_conflict.json"}

func TestBackfillReplay(t *testing.T) {
	for _, file := range backfillHistories {
		t.Run(file, func(t *testing.T) {
			r := worker.NewWorkflowReplayer()
			r.RegisterWorkflow(Backfill)
			if err := r.ReplayWorkflowHistoryFromJSONFile(nil, file); err != nil {
				t.Fatal(err)
			}
		})
	}
}
