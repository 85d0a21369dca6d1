package warehouse

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/acme/pipeline/event"
)

// Which mart days are stale, kept in pipeline.mart_days (migration 008).
//
// Marts are built from gold a day at a time; gold keeps changing under them
// (late events, backfills). Every transaction that writes gold rows marks
// the built days they fall in dirty, and a rebuild claims a day (clearing
// dirty) in a committed transaction of its own before it takes the snapshot
// it builds from. For a gold transaction G and a rebuild's claim C of a day
// G writes into, one of two things happens:
//   - G's mark locks the day's row first: C waits for G to commit, so the
//     snapshot taken after C includes G's rows;
//   - C locks it first: G's mark waits for C, then sets dirty on the row C
//     left, so the day stays pending whether or not the snapshot saw G.
//
// That holds only if the mark takes the row lock whatever the row holds: a
// "WHERE NOT dirty" under READ COMMITTED would skip a row that C is clearing
// (its old version still reads dirty) without waiting, and lose G. A day
// with no row yet, or whose instants change (another zone), has no row lock
// to meet on: its claim takes a table lock that waits for every transaction
// that has marked anything and holds off new marks until the row is there.

// settingMartZone is the pipeline.settings row holding the marts' zone.
const settingMartZone = "mart_zone"

// hourMicros is one hour in the µs of event.Row's timestamps.
const hourMicros = int64(time.Hour / time.Microsecond)

// markStaleSQL marks dirty every built day overlapping [h, h+1h) for an h
// of $1; $2 and $3 bound all of them, so that the index narrows the scan.
// Rows are locked in day order, so that two loads marking the same days
// cannot deadlock; the lock is taken whether or not the day is dirty.
const markStaleSQL = `WITH hit AS (
  SELECT d.day FROM pipeline.mart_days AS d
  WHERE d.starts_at < $3 AND d.ends_at > $2
    AND EXISTS (SELECT FROM unnest($1::timestamptz[]) AS h(t)
                WHERE d.starts_at < h.t + interval '1 hour' AND d.ends_at > h.t)
  ORDER BY d.day
  FOR UPDATE OF d
)
UPDATE pipeline.mart_days AS m
SET dirty = true, dirty_since = CASE WHEN m.dirty THEN m.dirty_since ELSE now() END
FROM hit WHERE m.day = hit.day`

// markStaleRangeSQL marks dirty every built day overlapping [$1, $2).
const markStaleRangeSQL = `WITH hit AS (
  SELECT d.day FROM pipeline.mart_days AS d
  WHERE d.starts_at < $2 AND d.ends_at > $1
  ORDER BY d.day
  FOR UPDATE OF d
)
UPDATE pipeline.mart_days AS m
SET dirty = true, dirty_since = CASE WHEN m.dirty THEN m.dirty_since ELSE now() END
FROM hit WHERE m.day = hit.day`

// markMartsStale marks stale, in tx, every built mart day that overlaps one
// of the UTC hours [h, h+1h): tx writes gold rows that occurred in them.
// Overlap, not equality: days in zones with :30 or :45 offsets start
// mid-hour. Call it late in tx, after the gold writes: it holds the days'
// row locks until commit.
func markMartsStale(ctx context.Context, tx pgx.Tx, hours []time.Time) error {
	if len(hours) == 0 {
		return nil
	}
	lo, hi := hours[0], hours[0]
	for _, h := range hours[1:] {
		if h.Before(lo) {
			lo = h
		}
		if h.After(hi) {
			hi = h
		}
	}
	if _, err := tx.Exec(ctx, markStaleSQL, hours, lo, hi.Add(time.Hour)); err != nil {
		return fmt.Errorf("mark marts stale: %w", err)
	}
	return nil
}

// markMartsStaleRange marks stale, in tx, every built mart day that overlaps
// [from, to): tx replaces the gold rows of that range. Like markMartsStale,
// call it late in tx.
func markMartsStaleRange(ctx context.Context, tx pgx.Tx, from, to time.Time) error {
	if !from.Before(to) {
		return nil
	}
	if _, err := tx.Exec(ctx, markStaleRangeSQL, from, to); err != nil {
		return fmt.Errorf("mark marts stale from %s to %s: %w", from.UTC().Format(time.RFC3339), to.UTC().Format(time.RFC3339), err)
	}
	return nil
}

// occurredHours returns the distinct UTC hours of the rows' occurred_at, in
// order: what markMartsStale takes for a live batch.
func occurredHours(rows []event.Row) []time.Time {
	var hs []int64
	last, have := int64(0), false
	for i := range rows {
		h := rows[i].OccurredAt / hourMicros
		if rows[i].OccurredAt < 0 && rows[i].OccurredAt%hourMicros != 0 {
			h-- // floor, before 1970
		}
		if have && h == last {
			continue // a batch is mostly runs of one hour
		}
		last, have = h, true
		hs = append(hs, h)
	}
	slices.Sort(hs)
	hs = slices.Compact(hs)
	out := make([]time.Time, len(hs))
	for i, h := range hs {
		out[i] = time.UnixMicro(h * hourMicros).UTC()
	}
	return out
}

// MartZone returns the time zone that cuts the days of the marts, as
// provisioning recorded it (SetMartZone); UTC when none was recorded. The
// nightly aggregation, the refresher, backfills and `pipeline aggregate` all
// build marts in it, so that the days of gold.daily_* never mix zones.
func (s *Store) MartZone(ctx context.Context) (*time.Location, error) {
	var name string
	err := s.pool.QueryRow(ctx, `SELECT value FROM pipeline.settings WHERE name = $1`, settingMartZone).Scan(&name)
	if errors.Is(err, pgx.ErrNoRows) {
		return time.UTC, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read the mart zone: %w", err)
	}
	loc, err := loadZone(name)
	if err != nil {
		return nil, fmt.Errorf("pipeline.settings %s: %w", settingMartZone, err)
	}
	return loc, nil
}

// SetMartZone records zone (an IANA name) as the marts' zone and returns
// the zone in force. An empty zone keeps the recorded one (UTC when none),
// so that provisioning without a zone does not undo an earlier choice. Days
// built in another zone become pending (PendingMartDays), and the
// refresher rebuilds them in the new one.
func (s *Store) SetMartZone(ctx context.Context, zone string) (string, error) {
	if zone == "" {
		loc, err := s.MartZone(ctx)
		if err != nil {
			return "", err
		}
		return loc.String(), nil
	}
	loc, err := loadZone(zone)
	if err != nil {
		return "", &InputError{Field: "zone", Msg: err.Error()}
	}
	_, err = s.pool.Exec(ctx, `INSERT INTO pipeline.settings (name, value) VALUES ($1, $2)
		ON CONFLICT (name) DO UPDATE SET value = EXCLUDED.value, updated_at = now()
		WHERE settings.value IS DISTINCT FROM EXCLUDED.value`, settingMartZone, loc.String())
	if err != nil {
		return "", fmt.Errorf("record the mart zone %s: %w", loc, err)
	}
	return loc.String(), nil
}

// loadZone loads an IANA zone, refusing "Local": the marts' days must not
// depend on the machine that builds them.
func loadZone(name string) (*time.Location, error) {
	if name == "Local" {
		return nil, errors.New(`"Local" is not allowed: name an IANA zone such as Europe/Berlin or UTC`)
	}
	loc, err := time.LoadLocation(name)
	if err != nil {
		return nil, fmt.Errorf("%q is not an IANA time zone", name)
	}
	return loc, nil
}

// MartDay is a built mart day that is pending a rebuild.
type MartDay struct {
	Day  Day    `json:"day"`
	Zone string `json:"zone"` // the zone of its latest build
	// Start and End are the day's instants in Zone.
	Start time.Time `json:"starts_at"`
	End   time.Time `json:"ends_at"`
	// State says why it is pending: "dirty" (gold changed since the latest
	// claim), "rebuilding" (claimed after its latest build: a rebuild is
	// running or died) or "zone" (built in another zone than MartZone).
	State string `json:"state"`
	// Since is when it became pending: dirty_since, the claim, or when the
	// zone was changed.
	Since     time.Time `json:"since"`
	ClaimedAt time.Time `json:"claimed_at"`
	BuiltAt   time.Time `json:"built_at,omitzero"` // zero: never completed
}

// pendingSQL lists the pending days, longest pending first, with their total.
const pendingSQL = `WITH z AS (
  SELECT coalesce((SELECT value FROM pipeline.settings WHERE name = 'mart_zone'), 'UTC') AS zone,
         coalesce((SELECT updated_at FROM pipeline.settings WHERE name = 'mart_zone'), '-infinity') AS changed
), p AS (
  SELECT d.day::text, d.zone, d.starts_at, d.ends_at, d.claimed_at, d.built_at,
    CASE WHEN d.dirty THEN 'dirty'
         WHEN d.built_at IS NULL OR d.claimed_at > d.built_at THEN 'rebuilding'
         ELSE 'zone' END AS state,
    CASE WHEN d.dirty THEN d.dirty_since
         WHEN d.built_at IS NULL OR d.claimed_at > d.built_at THEN d.claimed_at
         ELSE greatest(z.changed, d.built_at) END AS since
  FROM pipeline.mart_days AS d, z
  WHERE d.dirty OR d.built_at IS NULL OR d.claimed_at > d.built_at OR d.zone <> z.zone
)
SELECT *, count(*) OVER () FROM p ORDER BY since, day LIMIT $1`

// PendingMartDays returns up to limit days whose marts are pending a
// rebuild, longest pending first, and how many are pending in all.
func (s *Store) PendingMartDays(ctx context.Context, limit int) ([]MartDay, int64, error) {
	if limit <= 0 {
		return nil, 0, &InputError{Field: "limit", Msg: fmt.Sprintf("%d: must be positive", limit)}
	}
	rows, err := s.pool.Query(ctx, pendingSQL, limit)
	if err != nil {
		return nil, 0, fmt.Errorf("pending mart days: %w", err)
	}
	var out []MartDay
	var total int64
	var d MartDay
	var day string
	var built *time.Time
	_, err = pgx.ForEachRow(rows, []any{&day, &d.Zone, &d.Start, &d.End, &d.ClaimedAt, &built, &d.State, &d.Since, &total}, func() error {
		var err error
		if d.Day, err = ParseDay(day); err != nil {
			return err
		}
		d.BuiltAt = time.Time{}
		if built != nil {
			d.BuiltAt = built.UTC()
		}
		d.Start, d.End, d.ClaimedAt, d.Since = d.Start.UTC(), d.End.UTC(), d.ClaimedAt.UTC(), d.Since.UTC()
		out = append(out, d)
		return nil
	})
	if err != nil {
		return nil, 0, fmt.Errorf("pending mart days: %w", err)
	}
	return out, total, nil
}

// claimMartDay claims day for a rebuild on conn, in a transaction of its
// own, and returns the claim's time. The caller holds the day's advisory
// lock. A day already built over the same instants is claimed by locking
// its row; a new day, or one whose instants change (another zone), first
// takes a table lock that waits for the transactions that have marked days
// and are still open, so that none of their rows can fall outside both the
// snapshot and the dirty flag.
func claimMartDay(ctx context.Context, conn *pgx.Conn, day Day, loc *time.Location, start, end time.Time) (time.Time, error) {
	var at time.Time
	err := conn.QueryRow(ctx, `UPDATE pipeline.mart_days
		SET zone = $2, dirty = false, dirty_since = NULL, claimed_at = clock_timestamp()
		WHERE day = $1::date AND starts_at = $3 AND ends_at = $4 RETURNING claimed_at`,
		day.String(), loc.String(), start, end).Scan(&at)
	if err == nil {
		return at, nil
	}
	if !errors.Is(err, pgx.ErrNoRows) {
		return time.Time{}, fmt.Errorf("claim: %w", err)
	}
	err = pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
		// SHARE ROW EXCLUSIVE conflicts with the ROW EXCLUSIVE of every
		// transaction that ran a mark, and with itself.
		if _, err := tx.Exec(ctx, `LOCK TABLE pipeline.mart_days IN SHARE ROW EXCLUSIVE MODE`); err != nil {
			return err
		}
		return tx.QueryRow(ctx, `INSERT INTO pipeline.mart_days AS d (day, zone, starts_at, ends_at, claimed_at)
			VALUES ($1::date, $2, $3, $4, clock_timestamp())
			ON CONFLICT (day) DO UPDATE SET zone = EXCLUDED.zone, starts_at = EXCLUDED.starts_at, ends_at = EXCLUDED.ends_at,
			  dirty = false, dirty_since = NULL, claimed_at = EXCLUDED.claimed_at
			RETURNING claimed_at`, day.String(), loc.String(), start, end).Scan(&at)
	})
	if err != nil {
		return time.Time{}, fmt.Errorf("claim (new instants): %w", err)
	}
	return at, nil
}

// recordMartBuild records that the build of the claim at claimed has
// committed, with its transaction's start as built_at. A crash before this
// leaves the day pending, which only costs a rebuild.
func recordMartBuild(ctx context.Context, conn *pgx.Conn, day Day, claimed, built time.Time) error {
	_, err := conn.Exec(ctx, `UPDATE pipeline.mart_days SET built_at = $3 WHERE day = $1::date AND claimed_at = $2`,
		day.String(), claimed, built)
	if err != nil {
		return fmt.Errorf("record build: %w", err)
	}
	return nil
}

// MartStatus is the state of the marts, for /status.
type MartStatus struct {
	// Tracked is false on a database without pipeline.mart_days (not
	// migrated to this version yet); the rest is then empty.
	Tracked bool   `json:"tracked"`
	Zone    string `json:"zone"`       // the marts' zone (MartZone)
	Built   int64  `json:"built_days"` // days whose marts were built
	// Pending are the days pending a rebuild, longest pending first, at
	// most the limit asked; PendingTotal counts them all.
	Pending      []MartDay `json:"pending"`
	PendingTotal int64     `json:"pending_total"`
}

// MartStatus reads the marts' zone, how many days they hold and up to
// limit of the days pending a rebuild.
func (s *Store) MartStatus(ctx context.Context, limit int) (MartStatus, error) {
	st := MartStatus{Pending: []MartDay{}}
	if err := s.pool.QueryRow(ctx, `SELECT to_regclass('pipeline.mart_days') IS NOT NULL`).Scan(&st.Tracked); err != nil {
		return st, fmt.Errorf("mart status: %w", err)
	}
	if !st.Tracked {
		return st, nil
	}
	loc, err := s.MartZone(ctx)
	if err != nil {
		return st, err
	}
	st.Zone = loc.String()
	if err := s.pool.QueryRow(ctx, `SELECT count(*) FROM pipeline.mart_days`).Scan(&st.Built); err != nil {
		return st, fmt.Errorf("mart status: %w", err)
	}
	days, total, err := s.PendingMartDays(ctx, limit)
	if err != nil {
		return st, err
	}
	if days != nil {
		st.Pending = days
	}
	st.PendingTotal = total
	return st, nil
}
