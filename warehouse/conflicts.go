package warehouse

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math/big"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/acme/pipeline/event"
)

// Conflicting duplicates (migration 009). A record whose event_id is known
// (already in gold, or taken by an earlier record of the same batch) is a
// duplicate for gold.events, gold.payments and gold.audit_log alike: the
// record kept is the one gold.events holds, whatever the types. Most
// duplicates are client retries and carry the same content; one whose
// content differs from the record it lost to is an id reused for another
// event, usually a client bug (an id generated once per session, an order id
// used as an event id). Those are counted apart, so that the bug is seen
// rather than silently deduplicated away.
//
// The content compared is what the client sent: event_type, occurred_at,
// user_id, source and properties (as JSON values, as jsonb compares them:
// key order, white space and the spelling of a number do not count).
// received_at and the Kafka position differ on every retry and are left out.
// A record is compared with the one it lost to: within a batch, with the
// batch's winner; against gold, with the row gold.events holds.

// conflict is one conflicting duplicate met by a load.
type conflict struct {
	id                  [16]byte
	keptType, otherType string
	otherSource         string
	// fields are the content fields that differ, by their gold.events
	// column names, in the order event_type, occurred_at, user_id, source,
	// properties.
	fields []string
}

// differences lists the content fields in which other differs from kept.
func differences(kept, other *event.Row) []string {
	var f []string
	if kept.Type != other.Type {
		f = append(f, "event_type")
	}
	if kept.OccurredAt != other.OccurredAt {
		f = append(f, "occurred_at")
	}
	if kept.UserID != other.UserID {
		f = append(f, "user_id")
	}
	if kept.Source != other.Source {
		f = append(f, "source")
	}
	if !sameJSON(kept.Properties, other.Properties) {
		f = append(f, "properties")
	}
	return f
}

// batchConflicts compares every row of a batch that lost to another row with
// the same event_id with that winner.
func batchConflicts(rows []event.Row, d dedup) []conflict {
	if d.n == 0 {
		return nil
	}
	var out []conflict
	for i := range rows {
		if !d.lost[i] {
			continue
		}
		w := &rows[d.winner[rows[i].EventID]]
		if f := differences(w, &rows[i]); len(f) > 0 {
			out = append(out, conflict{id: rows[i].EventID, keptType: w.Type, otherType: rows[i].Type,
				otherSource: rows[i].Source, fields: f})
		}
	}
	return out
}

// goldConflictsSQL lists the staged rows (the batch's winners) whose
// event_id gold.events held before this load with other content, as
// moveStaged found them.
const goldConflictsSQL = `SELECT event_id, kept_type, other_type, other_source, fields
FROM gold_stage_known WHERE cardinality(fields) > 0`

// stagedConflicts finds the conflicting duplicates of a live load that took
// the staged path: rows that lost within the batch (compared in Go, rows
// being the batch st was staged from), and staged rows whose id gold held
// already (compared in SQL by moveStaged, when fewer than the staged rows
// were inserted).
func stagedConflicts(ctx context.Context, tx pgx.Tx, rows []event.Row, st *copyStats, inserted int64) ([]conflict, error) {
	var out []conflict
	if len(st.Losers) > 0 {
		out = batchConflicts(rows, loseDuplicates(rows))
	}
	if st.Sent-int64(len(st.Losers)) <= inserted {
		return out, nil
	}
	q, err := tx.Query(ctx, goldConflictsSQL)
	if err != nil {
		return nil, fmt.Errorf("compare duplicates with gold.events: %w", err)
	}
	var c conflict
	_, err = pgx.ForEachRow(q, []any{&c.id, &c.keptType, &c.otherType, &c.otherSource, &c.fields}, func() error {
		out = append(out, c)
		c = conflict{}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("compare duplicates with gold.events: %w", err)
	}
	return out, nil
}

// recordConflicts notes the load's conflicting duplicates in
// pipeline.conflicting_ids, one row per id: the count grows, the types,
// source and fields are the load's last conflict of that id (one met against
// gold after those met within the batch). Ids are written in order, so that
// two loads noting the same ids cannot deadlock.
func recordConflicts(ctx context.Context, tx pgx.Tx, loadID int64, cs []conflict) error {
	if len(cs) == 0 {
		return nil
	}
	last := map[[16]byte]int{}
	times := map[[16]byte]int64{}
	for i, c := range cs {
		last[c.id] = i
		times[c.id]++
	}
	ids := make([][16]byte, 0, len(last))
	for id := range last {
		ids = append(ids, id)
	}
	slices.SortFunc(ids, func(a, b [16]byte) int { return bytes.Compare(a[:], b[:]) })
	n := len(ids)
	kept, other, source, fields, counts := make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]int64, n)
	for i, id := range ids {
		c := cs[last[id]]
		kept[i], other[i], source[i], fields[i], counts[i] = c.keptType, c.otherType, c.otherSource, strings.Join(c.fields, ","), times[id]
	}
	_, err := tx.Exec(ctx, `INSERT INTO pipeline.conflicting_ids AS c (event_id, kept_type, other_type, other_source, fields, conflicts, last_load_id)
		SELECT id, k, o, NULLIF(s, ''), string_to_array(f, ','), n, $7
		FROM unnest($1::uuid[], $2::text[], $3::text[], $4::text[], $5::text[], $6::int8[]) AS u(id, k, o, s, f, n)
		ON CONFLICT (event_id) DO UPDATE SET kept_type = EXCLUDED.kept_type, other_type = EXCLUDED.other_type,
			other_source = EXCLUDED.other_source, fields = EXCLUDED.fields, conflicts = c.conflicts + EXCLUDED.conflicts,
			last_seen = now(), last_load_id = EXCLUDED.last_load_id`,
		ids, kept, other, source, fields, counts, loadID)
	if err != nil {
		return fmt.Errorf("note %d conflicting event ids: %w", n, err)
	}
	return nil
}

// sameJSON reports whether two JSON texts hold the same value, as jsonb
// equality sees it: objects by their keys (the last of a repeated key),
// numbers by their value. An empty text is {} (as the loads store it). A
// text that is not JSON equals only itself.
func sameJSON(a, b string) bool {
	if a == b {
		return true
	}
	if a == "" {
		a = "{}"
	}
	if b == "" {
		b = "{}"
	}
	if a == b {
		return true
	}
	va, okA := decodeJSON(a)
	vb, okB := decodeJSON(b)
	return okA && okB && jsonEqual(va, vb)
}

func decodeJSON(s string) (any, bool) {
	d := json.NewDecoder(strings.NewReader(s))
	d.UseNumber()
	var v any
	if err := d.Decode(&v); err != nil || d.More() {
		return nil, false
	}
	return v, true
}

func jsonEqual(a, b any) bool {
	switch a := a.(type) {
	case map[string]any:
		b, ok := b.(map[string]any)
		if !ok || len(a) != len(b) {
			return false
		}
		for k, va := range a {
			vb, ok := b[k]
			if !ok || !jsonEqual(va, vb) {
				return false
			}
		}
		return true
	case []any:
		b, ok := b.([]any)
		if !ok || len(a) != len(b) {
			return false
		}
		for i := range a {
			if !jsonEqual(a[i], b[i]) {
				return false
			}
		}
		return true
	case json.Number:
		b, ok := b.(json.Number)
		if !ok {
			return false
		}
		if a == b {
			return true
		}
		ra, okA := new(big.Rat).SetString(string(a))
		rb, okB := new(big.Rat).SetString(string(b))
		return okA && okB && ra.Cmp(rb) == 0
	default: // string, bool, nil
		return a == b
	}
}

// Conflicts summarises the conflicting duplicates that live loads met: event
// ids that arrived again with other content.
type Conflicts struct {
	// Since is the start of the window the counts cover.
	Since time.Time `json:"since"`
	// Records counts conflicting duplicates in loads started since Since
	// (pipeline.loads.rows_conflicting).
	Records int64 `json:"records"`
	// Days splits Records by UTC day of the load, oldest first; days
	// without any are left out.
	Days []ConflictDay `json:"days"`
	// IDs counts the distinct ids among them (last met since Since).
	IDs int64 `json:"ids"`
	// Recent are the ids met most recently, newest first.
	Recent []ConflictingID `json:"recent"`
}

// ConflictDay is one UTC day's count of conflicting duplicates.
type ConflictDay struct {
	Day     Day   `json:"day"`
	Records int64 `json:"records"`
}

// ConflictingID is a row of pipeline.conflicting_ids: an event id that
// arrived again with other content.
type ConflictingID struct {
	EventID string `json:"event_id"`
	// KeptType is the type gold holds (or the batch's winner had); OtherType
	// and OtherSource those of the latest conflicting record, which went
	// nowhere.
	KeptType    string `json:"kept_type"`
	OtherType   string `json:"other_type"`
	OtherSource string `json:"other_source,omitempty"`
	// Fields are the content fields in which it differed.
	Fields     []string  `json:"fields"`
	Conflicts  int64     `json:"conflicts"` // conflicting records with this id so far
	FirstSeen  time.Time `json:"first_seen"`
	LastSeen   time.Time `json:"last_seen"`
	LastLoadID int64     `json:"last_load_id"`
}

// ConflictingDuplicates reads the conflicting duplicates met by loads since
// since: their count, per UTC day, and the limit ids met most recently
// (none when limit is 0, as the gauge reads it). Both reads go through
// partial or small indexes: loads without a conflict are not read.
func (s *Store) ConflictingDuplicates(ctx context.Context, since time.Time, limit int) (Conflicts, error) {
	out := Conflicts{Since: since.UTC(), Days: []ConflictDay{}, Recent: []ConflictingID{}}
	rows, err := s.pool.Query(ctx, `SELECT (started_at AT TIME ZONE 'UTC')::date::text, sum(rows_conflicting)::bigint
		FROM pipeline.loads WHERE rows_conflicting > 0 AND started_at >= $1 GROUP BY 1 ORDER BY 1`, since)
	if err != nil {
		return Conflicts{}, fmt.Errorf("conflicting duplicates since %s: %w", since.UTC().Format(time.RFC3339), err)
	}
	var day string
	var n int64
	_, err = pgx.ForEachRow(rows, []any{&day, &n}, func() error {
		d, err := ParseDay(day)
		out.Days = append(out.Days, ConflictDay{Day: d, Records: n})
		out.Records += n
		return err
	})
	if err != nil {
		return Conflicts{}, fmt.Errorf("conflicting duplicates since %s: %w", since.UTC().Format(time.RFC3339), err)
	}
	if limit <= 0 {
		return out, nil
	}
	if err := s.pool.QueryRow(ctx, `SELECT count(*) FROM pipeline.conflicting_ids WHERE last_seen >= $1`, since).Scan(&out.IDs); err != nil {
		return Conflicts{}, fmt.Errorf("conflicting event ids: %w", err)
	}
	rows, err = s.pool.Query(ctx, `SELECT event_id, kept_type, other_type, coalesce(other_source, ''), fields, conflicts,
			first_seen, last_seen, last_load_id
		FROM pipeline.conflicting_ids WHERE last_seen >= $1 ORDER BY last_seen DESC, event_id LIMIT $2`, since, limit)
	if err != nil {
		return Conflicts{}, fmt.Errorf("conflicting event ids: %w", err)
	}
	var c ConflictingID
	var id [16]byte
	_, err = pgx.ForEachRow(rows, []any{&id, &c.KeptType, &c.OtherType, &c.OtherSource, &c.Fields, &c.Conflicts,
		&c.FirstSeen, &c.LastSeen, &c.LastLoadID}, func() error {
		c.EventID, c.FirstSeen, c.LastSeen = uuid.UUID(id).String(), c.FirstSeen.UTC(), c.LastSeen.UTC()
		out.Recent = append(out.Recent, c)
		c = ConflictingID{}
		return nil
	})
	if err != nil {
		return Conflicts{}, fmt.Errorf("conflicting event ids: %w", err)
	}
	return out, nil
}
