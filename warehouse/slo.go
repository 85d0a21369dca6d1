package warehouse

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
)

// RecordAccepted stores an event API process's running count of accepted
// events per received_at hour (pipeline.api_accepted). Counts only grow, so
// a late or repeated call never lowers a stored count.
func (s *Store) RecordAccepted(ctx context.Context, instance string, counts map[time.Time]int64) error {
	if len(counts) == 0 {
		return nil
	}
	hours := slices.SortedFunc(maps.Keys(counts), time.Time.Compare)
	ns := make([]int64, len(hours))
	for i, h := range hours {
		ns[i] = counts[h]
		hours[i] = h.UTC().Truncate(time.Hour)
	}
	_, err := s.pool.Exec(ctx, `INSERT INTO pipeline.api_accepted AS a (hour, instance, accepted)
		SELECT h, $1, n FROM unnest($2::timestamptz[], $3::int8[]) AS u(h, n)
		ON CONFLICT (hour, instance) DO UPDATE SET accepted = greatest(a.accepted, EXCLUDED.accepted), updated_at = now()`,
		instance, hours, ns)
	if err != nil {
		return fmt.Errorf("record accepted events of %s: %w", instance, err)
	}
	return nil
}

// HourAccounting is one arrival hour (UTC) through the layers.
type HourAccounting struct {
	Hour time.Time `json:"hour"`
	// Accepted is what the event API answered 202 for; -1 when no API
	// process recorded the hour (events written straight to the topic).
	Accepted    int64 `json:"accepted"`
	Records     int64 `json:"records"`     // consumed from Kafka into bronze (stream tally)
	Quarantined int64 `json:"quarantined"` // of Records, quarantined (stream tally)
	Cleaned     int64 `json:"cleaned"`     // of Records, cleaned into silver (stream tally)
	Inserted    int64 `json:"inserted"`    // new gold rows (stream tally)
	// QuarantineIndex counts pipeline.quarantine rows of the hour (by
	// Kafka timestamp): should equal Quarantined.
	QuarantineIndex int64 `json:"quarantine_index"`
	// Gold counts gold.events rows received in the hour, -1 when not
	// counted: should equal Inserted.
	Gold int64 `json:"gold"`
}

// Duplicates are cleaned records whose event_id was in gold already.
func (h HourAccounting) Duplicates() int64 { return h.Cleaned - h.Inserted }

// Waiting is what the API accepted that the stream has not consumed yet:
// still in Kafka, or (past the lateness) missing (0 when unknown or none).
func (h HourAccounting) Waiting() int64 {
	if h.Accepted < 0 {
		return 0
	}
	return max(0, h.Accepted-h.Records)
}

// Accounting reads the hours [from, to) of topic, newest first. Gold rows
// are counted only for the hours in [goldFrom, goldTo), and each hour once:
// again only when the stream has loaded more of its rows since (see
// pipeline.gold_hour_counts).
func (s *Store) Accounting(ctx context.Context, topic string, from, to, goldFrom, goldTo time.Time) ([]HourAccounting, error) {
	var err error
	from, to = from.UTC().Truncate(time.Hour), to.UTC().Truncate(time.Hour)
	idx := map[time.Time]*HourAccounting{}
	var out []HourAccounting
	for h := to.Add(-time.Hour); !h.Before(from); h = h.Add(-time.Hour) {
		out = append(out, HourAccounting{Hour: h, Accepted: -1, Gold: -1})
	}
	for i := range out {
		idx[out[i].Hour] = &out[i]
	}
	scan := func(what, sql string, set func(*HourAccounting, []int64), args ...any) error {
		rows, err := s.pool.Query(ctx, sql, args...)
		if err != nil {
			return fmt.Errorf("accounting: %s: %w", what, err)
		}
		defer rows.Close()
		for rows.Next() {
			var h time.Time
			vals := make([]int64, len(rows.FieldDescriptions())-1)
			dst := []any{&h}
			for i := range vals {
				dst = append(dst, &vals[i])
			}
			if err := rows.Scan(dst...); err != nil {
				return fmt.Errorf("accounting: %s: %w", what, err)
			}
			if a := idx[h.UTC()]; a != nil {
				set(a, vals)
			}
		}
		if err := rows.Err(); err != nil {
			return fmt.Errorf("accounting: %s: %w", what, err)
		}
		return nil
	}
	if err := scan("pipeline.api_accepted", `SELECT hour, sum(accepted)::bigint FROM pipeline.api_accepted
		WHERE hour >= $1 AND hour < $2 GROUP BY hour`, func(a *HourAccounting, v []int64) { a.Accepted = v[0] }, from, to); err != nil {
		return nil, err
	}
	if err := scan("pipeline.stream_arrivals", `SELECT hour, records, quarantined, cleaned, inserted FROM pipeline.stream_arrivals
		WHERE topic = $3 AND hour >= $1 AND hour < $2`, func(a *HourAccounting, v []int64) {
		a.Records, a.Quarantined, a.Cleaned, a.Inserted = v[0], v[1], v[2], v[3]
	}, from, to, topic); err != nil {
		return nil, err
	}
	if err := scan("pipeline.quarantine", `SELECT date_trunc('hour', kafka_timestamp AT TIME ZONE 'UTC') AT TIME ZONE 'UTC', count(*)
		FROM pipeline.quarantine WHERE topic = $3 AND kafka_timestamp >= $1 AND kafka_timestamp < $2 GROUP BY 1`,
		func(a *HourAccounting, v []int64) { a.QuarantineIndex = v[0] }, from, to, topic); err != nil {
		return nil, err
	}
	for i := range out {
		h := &out[i]
		if h.Hour.Before(goldFrom.UTC().Truncate(time.Hour)) || !h.Hour.Before(goldTo.UTC().Truncate(time.Hour)) {
			continue
		}
		if h.Gold, err = s.goldOfHour(ctx, topic, h.Hour, h.Inserted); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// goldOfHour returns the gold.events rows received in hour: the stored
// count when the stream's inserted tally is what it was then and the count
// is less than an hour old (rows deleted behind the stream's back show
// within the hour), else a fresh count (one BRIN range read), stored. The
// SECURITY DEFINER function pipeline.gold_of_hour (016_process_roles) does
// it, so that the event API's role counts gold without reading it.
func (s *Store) goldOfHour(ctx context.Context, topic string, hour time.Time, inserted int64) (int64, error) {
	var gold int64
	if err := s.pool.QueryRow(ctx, `SELECT pipeline.gold_of_hour($1, $2, $3)`, topic, hour, inserted).Scan(&gold); err != nil {
		return 0, fmt.Errorf("accounting: gold.events of hour %s: %w", hour.Format(time.RFC3339), err)
	}
	return gold, nil
}

// LoadLatency summarises the live loads that finished in [from, to): how
// many, their rows, the largest per-load p95 and max of 202-to-gold
// latency.
type LoadLatency struct {
	Loads int64
	Rows  int64
	P95   time.Duration // the largest per-load p95
	Max   time.Duration
}

// LiveLatency reads LoadLatency from pipeline.loads.
func (s *Store) LiveLatency(ctx context.Context, from, to time.Time) (LoadLatency, error) {
	var l LoadLatency
	var p95, mx *int64
	err := s.pool.QueryRow(ctx, `SELECT count(*), coalesce(sum(rows_seen), 0)::bigint, max(latency_p95_ms), max(latency_max_ms)
		FROM pipeline.loads WHERE kind = 'live' AND finished_at >= $1 AND finished_at < $2 AND latency_p95_ms IS NOT NULL`,
		from, to).Scan(&l.Loads, &l.Rows, &p95, &mx)
	if err != nil {
		return l, fmt.Errorf("live load latency: %w", err)
	}
	if p95 != nil {
		l.P95 = time.Duration(*p95) * time.Millisecond
	}
	if mx != nil {
		l.Max = time.Duration(*mx) * time.Millisecond
	}
	return l, nil
}

// NewestVisible is the newest received_at a live load made visible in gold
// within the last day; zero when none.
func (s *Store) NewestVisible(ctx context.Context) (time.Time, error) {
	var t *time.Time
	if err := s.pool.QueryRow(ctx, `SELECT max(newest_received_at) FROM pipeline.loads
		WHERE kind = 'live' AND finished_at >= now() - interval '1 day'`).Scan(&t); err != nil {
		return time.Time{}, fmt.Errorf("newest event visible in gold: %w", err)
	}
	if t == nil {
		return time.Time{}, nil
	}
	return t.UTC(), nil
}

// Measurement is one SLO's value at one evaluation.
type Measurement struct {
	SLO        string    `json:"slo"`
	MeasuredAt time.Time `json:"measured_at"`
	Value      float64   `json:"value"`
	Objective  float64   `json:"objective"`
	Good       bool      `json:"good"`
	Detail     string    `json:"detail"`
}

// RecordMeasurements stores ms; a measurement already stored (a retried
// evaluation) is kept as it was.
func (s *Store) RecordMeasurements(ctx context.Context, ms []Measurement) error {
	b := &pgx.Batch{}
	for _, m := range ms {
		b.Queue(`INSERT INTO pipeline.slo_measurements (slo, measured_at, value, objective, good, detail)
			VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING`, m.SLO, m.MeasuredAt, m.Value, m.Objective, m.Good, m.Detail)
	}
	if err := s.pool.SendBatch(ctx, b).Close(); err != nil {
		return fmt.Errorf("record SLO measurements: %w", err)
	}
	return nil
}

// Measurements returns slo's measurements in [from, to], oldest first.
func (s *Store) Measurements(ctx context.Context, slo string, from, to time.Time) ([]Measurement, error) {
	rows, err := s.pool.Query(ctx, `SELECT slo, measured_at, value, objective, good, detail FROM pipeline.slo_measurements
		WHERE slo = $1 AND measured_at >= $2 AND measured_at <= $3 ORDER BY measured_at`, slo, from, to)
	if err != nil {
		return nil, fmt.Errorf("SLO measurements of %s: %w", slo, err)
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (Measurement, error) {
		var m Measurement
		err := r.Scan(&m.SLO, &m.MeasuredAt, &m.Value, &m.Objective, &m.Good, &m.Detail)
		m.MeasuredAt = m.MeasuredAt.UTC()
		return m, err
	})
}

// LatestMeasurements returns the newest measurement of each SLO taken in
// the day before at.
func (s *Store) LatestMeasurements(ctx context.Context, at time.Time) ([]Measurement, error) {
	rows, err := s.pool.Query(ctx, `SELECT DISTINCT ON (slo) slo, measured_at, value, objective, good, detail
		FROM pipeline.slo_measurements WHERE measured_at >= $1::timestamptz - interval '1 day' AND measured_at <= $1
		ORDER BY slo, measured_at DESC`, at)
	if err != nil {
		return nil, fmt.Errorf("latest SLO measurements: %w", err)
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (Measurement, error) {
		var m Measurement
		err := r.Scan(&m.SLO, &m.MeasuredAt, &m.Value, &m.Objective, &m.Good, &m.Detail)
		m.MeasuredAt = m.MeasuredAt.UTC()
		return m, err
	})
}

// Alert is a row of pipeline.alerts.
type Alert struct {
	ID          int64     `json:"alert_id"`
	SLO         string    `json:"slo"`
	Severity    string    `json:"severity"`
	OpenedAt    time.Time `json:"opened_at"`
	ResolvedAt  time.Time `json:"resolved_at,omitzero"`
	Summary     string    `json:"summary"`
	BurnShort   float64   `json:"burn_short"`
	BurnLong    float64   `json:"burn_long"`
	NotifiedAt  time.Time `json:"notified_at,omitzero"`
	NotifyError string    `json:"notify_error,omitempty"`
}

// Open reports whether the alert is still open.
func (a Alert) Open() bool { return a.ResolvedAt.IsZero() }

// OpenAlert opens an alert for a.SLO unless one is open already. opened
// reports whether this call opened it; the returned alert is the open one.
func (s *Store) OpenAlert(ctx context.Context, a Alert) (Alert, bool, error) {
	err := s.pool.QueryRow(ctx, `INSERT INTO pipeline.alerts (slo, severity, opened_at, summary, burn_short, burn_long)
		VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (slo) WHERE resolved_at IS NULL DO NOTHING RETURNING alert_id`,
		a.SLO, a.Severity, a.OpenedAt, a.Summary, a.BurnShort, a.BurnLong).Scan(&a.ID)
	if err == nil {
		return a, true, nil
	}
	if err != pgx.ErrNoRows {
		return a, false, fmt.Errorf("open alert for SLO %s: %w", a.SLO, err)
	}
	open, err := s.alerts(ctx, `slo = $1 AND resolved_at IS NULL`, 1, a.SLO)
	if err != nil || len(open) == 0 {
		return a, false, err
	}
	return open[0], false, nil
}

// ResolveAlert resolves slo's open alert, if any, and returns it.
func (s *Store) ResolveAlert(ctx context.Context, slo string, at time.Time) (Alert, bool, error) {
	var id int64
	err := s.pool.QueryRow(ctx, `UPDATE pipeline.alerts SET resolved_at = greatest($2, opened_at)
		WHERE slo = $1 AND resolved_at IS NULL RETURNING alert_id`, slo, at).Scan(&id)
	if err == pgx.ErrNoRows {
		return Alert{}, false, nil
	}
	if err != nil {
		return Alert{}, false, fmt.Errorf("resolve alert of SLO %s: %w", slo, err)
	}
	a, err := s.alerts(ctx, `alert_id = $1`, 1, id)
	if err != nil || len(a) == 0 {
		return Alert{}, false, err
	}
	return a[0], true, nil
}

// MarkNotified records the outcome of sending alert id to the webhook.
func (s *Store) MarkNotified(ctx context.Context, id int64, at time.Time, notifyErr error) error {
	var err error
	if notifyErr == nil {
		_, err = s.pool.Exec(ctx, `UPDATE pipeline.alerts SET notified_at = $2, notify_error = NULL WHERE alert_id = $1`, id, at)
	} else {
		_, err = s.pool.Exec(ctx, `UPDATE pipeline.alerts SET notify_error = $2 WHERE alert_id = $1`, id, notifyErr.Error())
	}
	if err != nil {
		return fmt.Errorf("record notification of alert %d: %w", id, err)
	}
	return nil
}

// OpenAlerts lists the open alerts, oldest first.
func (s *Store) OpenAlerts(ctx context.Context) ([]Alert, error) {
	return s.alerts(ctx, `resolved_at IS NULL`, 100)
}

// RecentAlerts lists the newest alerts, open or resolved, newest first.
func (s *Store) RecentAlerts(ctx context.Context, limit int) ([]Alert, error) {
	return s.alerts(ctx, `TRUE ORDER BY alert_id DESC`, limit)
}

// ResolvedAlerts lists the newest resolved alerts, newest first.
func (s *Store) ResolvedAlerts(ctx context.Context, limit int) ([]Alert, error) {
	return s.alerts(ctx, `resolved_at IS NOT NULL ORDER BY alert_id DESC`, limit)
}

func (s *Store) alerts(ctx context.Context, where string, limit int, args ...any) ([]Alert, error) {
	order := ""
	if !strings.Contains(where, "ORDER BY") {
		order = " ORDER BY alert_id"
	}
	args = append(args, limit)
	rows, err := s.pool.Query(ctx, fmt.Sprintf(`SELECT alert_id, slo, severity, opened_at, resolved_at, summary, burn_short, burn_long,
			notified_at, coalesce(notify_error, '') FROM pipeline.alerts WHERE %s%s LIMIT $%d`, where, order, len(args)), args...)
	if err != nil {
		return nil, fmt.Errorf("pipeline.alerts: %w", err)
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (Alert, error) {
		var a Alert
		var res, notified *time.Time
		err := r.Scan(&a.ID, &a.SLO, &a.Severity, &a.OpenedAt, &res, &a.Summary, &a.BurnShort, &a.BurnLong, &notified, &a.NotifyError)
		a.OpenedAt = a.OpenedAt.UTC()
		if res != nil {
			a.ResolvedAt = res.UTC()
		}
		if notified != nil {
			a.NotifiedAt = notified.UTC()
		}
		return a, err
	})
}

// PruneMonitoring deletes what the monitor keeps once it is older than
// before: measurements, resolved alerts and the per-hour accounting.
func (s *Store) PruneMonitoring(ctx context.Context, before time.Time) (int64, error) {
	var total int64
	for _, q := range []string{
		`DELETE FROM pipeline.slo_measurements WHERE measured_at < $1`,
		`DELETE FROM pipeline.alerts WHERE resolved_at < $1`,
		`DELETE FROM pipeline.api_accepted WHERE hour < $1`,
		`DELETE FROM pipeline.stream_arrivals WHERE hour < $1`,
		`DELETE FROM pipeline.gold_hour_counts WHERE hour < $1`,
	} {
		tag, err := s.pool.Exec(ctx, q, before)
		if err != nil {
			return total, fmt.Errorf("prune monitoring data before %s: %w", before.Format(time.RFC3339), err)
		}
		total += tag.RowsAffected()
	}
	return total, nil
}
