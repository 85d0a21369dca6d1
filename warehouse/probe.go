package warehouse

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/acme/pipeline/event"
)

// The probed direct path of LoadLive: when a batch may hold ids gold has
// already (a conflict on the direct path a moment ago, so clients are
// retrying or a replay is running), ask gold which of the batch's ids it
// holds, one index probe per id, and COPY the others straight in. The known
// rows are duplicates, compared with gold's row for conflicting content as
// the staged path's knownSQL does. That replaces the staged path's COPY
// into gold_stage, its join with gold.events and its row-by-row
// INSERT ... ON CONFLICT: on 200,000 realistic events with 5% of them sent
// twice (tests/benchworkers -realistic), those took 2.6 of PostgreSQL's 2.7
// CPU seconds.
//
// Only a load that races another one over the same new id (both probe it
// absent) still fails the COPY; it then takes the staged path.

// probeGoldSQL returns, of the ids in $1, those gold.events holds, with
// the content a duplicate is compared on (conflicts.go): NULL source and
// user_id are the empty strings the batch carries, occurred_at in
// microseconds.
const probeGoldSQL = `SELECT event_id, event_type, (EXTRACT(EPOCH FROM occurred_at) * 1000000)::int8,
  coalesce(user_id, ''), coalesce(source, ''), coalesce(properties::text, '')
FROM gold.events WHERE event_id = ANY($1::uuid[])`

// probeGold marks, in d, every winning row whose event_id gold.events holds
// as lost (to gold), and returns how many it marked and the conflicting
// ones among them.
func probeGold(ctx context.Context, tx pgx.Tx, rows []event.Row, d *dedup) (known int, cs []conflict, err error) {
	ids := make([][16]byte, 0, len(d.winner))
	for id := range d.winner {
		ids = append(ids, id)
	}
	q, err := tx.Query(ctx, probeGoldSQL, ids)
	if err != nil {
		return 0, nil, fmt.Errorf("probe gold.events for %d event ids: %w", len(ids), err)
	}
	var g event.Row
	_, err = pgx.ForEachRow(q, []any{&g.EventID, &g.Type, &g.OccurredAt, &g.UserID, &g.Source, &g.Properties}, func() error {
		i, ok := d.winner[g.EventID]
		if !ok || d.lost[i] {
			return nil
		}
		d.lost[i] = true
		known++
		if f := differences(&g, &rows[i]); len(f) > 0 {
			cs = append(cs, conflict{id: g.EventID, keptType: g.Type, otherType: rows[i].Type, otherSource: rows[i].Source, fields: f})
		}
		return nil
	})
	if err != nil {
		return 0, nil, fmt.Errorf("probe gold.events for %d event ids: %w", len(ids), err)
	}
	return known, cs, nil
}
