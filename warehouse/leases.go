package warehouse

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// Lease is one day held by a Backfill run.
type Lease struct {
	Day        Day       `json:"day"`
	WorkflowID string    `json:"workflow_id"`
	RunID      string    `json:"run_id"`
	AcquiredAt time.Time `json:"acquired_at"`
}

// Running reports whether a workflow run is still running; a lease of a run
// that is not is taken over.
type Running func(ctx context.Context, workflowID, runID string) (bool, error)

// AcquireLeases takes the leases of days for one Backfill run, all or none,
// in one transaction. A day held by another run that running says is still
// running is a conflict: nothing is taken and the holders come back. Leases
// of runs that ended (completed, failed, terminated) are taken over. Taking
// what the run holds already is a no-op, so a retry is safe.
func (s *Store) AcquireLeases(ctx context.Context, workflowID, runID string, days []Day, running Running) ([]Lease, error) {
	var conflicts []Lease
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		conflicts = nil
		texts := make([]string, len(days))
		for i, d := range days {
			texts[i] = d.String()
		}
		// Lock the days (held or not) in order, so two runs asking for
		// overlapping days queue instead of both inserting.
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1, (d::date - '1970-01-01'::date))
			FROM unnest($2::text[]) AS d ORDER BY d`, lockClassLease, texts); err != nil {
			return fmt.Errorf("lock days: %w", err)
		}
		rows, err := tx.Query(ctx, `SELECT day::text, workflow_id, run_id, acquired_at FROM pipeline.backfill_leases
			WHERE day = ANY($1::date[]) AND run_id <> $2 ORDER BY day`, texts, runID)
		if err != nil {
			return err
		}
		held, err := pgx.CollectRows(rows, scanLease)
		if err != nil {
			return err
		}
		for _, l := range held {
			alive := true
			if running != nil {
				if alive, err = running(ctx, l.WorkflowID, l.RunID); err != nil {
					return fmt.Errorf("is %s (run %s), which holds %s, still running: %w", l.WorkflowID, l.RunID, l.Day, err)
				}
			}
			if alive {
				conflicts = append(conflicts, l)
			}
		}
		if len(conflicts) > 0 {
			return nil
		}
		_, err = tx.Exec(ctx, `INSERT INTO pipeline.backfill_leases (day, workflow_id, run_id)
			SELECT d::date, $2, $3 FROM unnest($1::text[]) AS d
			ON CONFLICT (day) DO UPDATE SET workflow_id = EXCLUDED.workflow_id, run_id = EXCLUDED.run_id, acquired_at = now()
			WHERE pipeline.backfill_leases.run_id <> EXCLUDED.run_id`, texts, workflowID, runID)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("backfill leases for %s: %w", workflowID, err)
	}
	return conflicts, nil
}

// ReleaseLeases gives back every day a run holds.
func (s *Store) ReleaseLeases(ctx context.Context, runID string) (int64, error) {
	tag, err := s.pool.Exec(ctx, `DELETE FROM pipeline.backfill_leases WHERE run_id = $1`, runID)
	if err != nil {
		return 0, fmt.Errorf("release backfill leases of run %s: %w", runID, err)
	}
	return tag.RowsAffected(), nil
}

// Leases lists the days held, in day order.
func (s *Store) Leases(ctx context.Context) ([]Lease, error) {
	rows, err := s.pool.Query(ctx, `SELECT day::text, workflow_id, run_id, acquired_at FROM pipeline.backfill_leases ORDER BY day`)
	if err != nil {
		return nil, fmt.Errorf("backfill leases: %w", err)
	}
	out, err := pgx.CollectRows(rows, scanLease)
	if err != nil {
		return nil, fmt.Errorf("backfill leases: %w", err)
	}
	return out, nil
}

func scanLease(r pgx.CollectableRow) (Lease, error) {
	var l Lease
	var day string
	if err := r.Scan(&day, &l.WorkflowID, &l.RunID, &l.AcquiredAt); err != nil {
		return l, err
	}
	d, err := ParseDay(day)
	l.Day = d
	return l, err
}

// lockClassLease is the first key of the advisory locks AcquireLeases takes
// per day ("leas").
const lockClassLease int32 = 0x6c656173
