package warehouse

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"
)

// A topic deleted and created again under the same name starts again at
// offset 0, so an offset names a record only within one incarnation of the
// topic (migration 012). The stream's offsets, the lake's index, quarantine,
// lost offsets and gold's lineage all carry the incarnation's number; this
// file keeps the incarnations themselves.

// Incarnation is one row of pipeline.topic_incarnations.
type Incarnation struct {
	Topic  string `json:"topic"`
	Number int    `json:"incarnation"`
	// TopicID is Kafka's id of the topic in Kafka's printed form; "" when
	// the brokers did not report one (Kafka before 2.8).
	TopicID   string    `json:"topic_id,omitempty"`
	FirstSeen time.Time `json:"first_seen"`
	// RetiredAt is zero for the current incarnation.
	RetiredAt time.Time `json:"retired_at,omitzero"`
	RetiredBy string    `json:"retired_by,omitempty"`
	// FinalOffsets are the stream's offsets when it was retired.
	FinalOffsets map[int32]int64 `json:"final_offsets,omitempty"`
}

// Current reports whether the incarnation is the one the stream streams.
func (i Incarnation) Current() bool { return i.RetiredAt.IsZero() }

// ErrNotCurrentIncarnation is returned for a write of the stream's position
// in an incarnation that is no longer (or not) the topic's current one: the
// operator started a new incarnation meanwhile, and the writer holds
// offsets of the old topic.
var ErrNotCurrentIncarnation = errors.New("not the topic's current incarnation")

const incarnationColumns = `topic, incarnation, COALESCE(topic_id, ''), first_seen, retired_at, COALESCE(retired_by, ''), final_offsets`

func scanIncarnation(row pgx.Row) (Incarnation, error) {
	var in Incarnation
	var retired *time.Time
	var final []byte
	if err := row.Scan(&in.Topic, &in.Number, &in.TopicID, &in.FirstSeen, &retired, &in.RetiredBy, &final); err != nil {
		return Incarnation{}, err
	}
	if retired != nil {
		in.RetiredAt = *retired
	}
	if len(final) > 0 {
		var m map[string]int64
		if err := json.Unmarshal(final, &m); err != nil {
			return Incarnation{}, fmt.Errorf("final_offsets: %w", err)
		}
		in.FinalOffsets = map[int32]int64{}
		for k, v := range m {
			p, err := strconv.ParseInt(k, 10, 32)
			if err != nil {
				return Incarnation{}, fmt.Errorf("final_offsets: partition %q: %w", k, err)
			}
			in.FinalOffsets[int32(p)] = v
		}
	}
	return in, nil
}

// CurrentIncarnation returns the topic's current incarnation; ok is false
// when the pipeline has none recorded yet.
func (s *Store) CurrentIncarnation(ctx context.Context, topic string) (Incarnation, bool, error) {
	in, err := scanIncarnation(s.pool.QueryRow(ctx, `SELECT `+incarnationColumns+`
		FROM pipeline.topic_incarnations WHERE topic = $1 AND retired_at IS NULL`, topic))
	if errors.Is(err, pgx.ErrNoRows) {
		return Incarnation{}, false, nil
	}
	if err != nil {
		return Incarnation{}, false, fmt.Errorf("current incarnation of topic %s: %w", topic, err)
	}
	return in, true, nil
}

// Incarnations lists every incarnation of the topic, oldest first.
func (s *Store) Incarnations(ctx context.Context, topic string) ([]Incarnation, error) {
	rows, err := s.pool.Query(ctx, `SELECT `+incarnationColumns+`
		FROM pipeline.topic_incarnations WHERE topic = $1 ORDER BY incarnation`, topic)
	if err != nil {
		return nil, fmt.Errorf("incarnations of topic %s: %w", topic, err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (Incarnation, error) { return scanIncarnation(r) })
	if err != nil {
		return nil, fmt.Errorf("incarnations of topic %s: %w", topic, err)
	}
	return out, nil
}

// AdoptIncarnation records the topic Kafka has now, with id topicID ("" when
// the brokers do not say), as the first incarnation of a topic the pipeline
// has none of: what a deployment from before incarnations, or a new topic,
// goes through once. Everything recorded before belongs to incarnation 1 (the
// columns' default). It returns the current incarnation: the one it
// recorded, or the one another process recorded first, whose TopicID the
// caller must compare.
func (s *Store) AdoptIncarnation(ctx context.Context, topic, topicID string) (Incarnation, error) {
	_, err := s.pool.Exec(ctx, `INSERT INTO pipeline.topic_incarnations (topic, incarnation, topic_id)
		SELECT $1, COALESCE(max(incarnation), 0) + 1, NULLIF($2, '') FROM pipeline.topic_incarnations WHERE topic = $1
		HAVING count(*) FILTER (WHERE retired_at IS NULL) = 0
		ON CONFLICT DO NOTHING`, topic, topicID)
	if err != nil {
		return Incarnation{}, fmt.Errorf("adopt topic %s (id %q): %w", topic, topicID, err)
	}
	in, ok, err := s.CurrentIncarnation(ctx, topic)
	if err == nil && !ok {
		err = fmt.Errorf("adopt topic %s: no current incarnation after the insert", topic)
	}
	return in, err
}

// LearnTopicID records topicID for an incarnation recorded without one (the
// brokers did not report topic ids then, and now do). It reports whether it
// recorded it; an incarnation with an id keeps it.
func (s *Store) LearnTopicID(ctx context.Context, topic string, incarnation int, topicID string) (bool, error) {
	tag, err := s.pool.Exec(ctx, `UPDATE pipeline.topic_incarnations SET topic_id = $3
		WHERE topic = $1 AND incarnation = $2 AND topic_id IS NULL`, topic, incarnation, topicID)
	if err != nil {
		return false, fmt.Errorf("record topic id %s of topic %s incarnation %d: %w", topicID, topic, incarnation, err)
	}
	return tag.RowsAffected() == 1, nil
}

// IncarnationUsage is what the pipeline holds of one incarnation.
type IncarnationUsage struct {
	Offsets       map[int32]int64 `json:"offsets"` // stored next offsets (current incarnation) or final ones (retired)
	BronzeObjects int64           `json:"bronze_objects"`
	BronzeRecords int64           `json:"bronze_records"`
}

// IncarnationUsage counts the bronze objects of an incarnation and returns
// its offsets: stored ones while it is current, final ones once retired.
func (s *Store) IncarnationUsage(ctx context.Context, in Incarnation) (IncarnationUsage, error) {
	u := IncarnationUsage{Offsets: in.FinalOffsets}
	if in.Current() {
		var err error
		if u.Offsets, err = s.StreamOffsets(ctx, in.Topic); err != nil {
			return u, err
		}
	}
	err := s.pool.QueryRow(ctx, `SELECT count(*), COALESCE(sum(records), 0) FROM pipeline.bronze_objects
		WHERE topic = $1 AND incarnation = $2`, in.Topic, in.Number).Scan(&u.BronzeObjects, &u.BronzeRecords)
	if err != nil {
		return u, fmt.Errorf("bronze objects of topic %s incarnation %d: %w", in.Topic, in.Number, err)
	}
	return u, nil
}

// NewIncarnationInput asks StartIncarnation to start a topic's next
// incarnation.
type NewIncarnationInput struct {
	// Topic is the topic's name. Required.
	Topic string
	// Retiring is the number of the incarnation the caller saw as current
	// and means to retire. Required: if another process started a new one
	// meanwhile, nothing happens.
	Retiring int
	// TopicID is Kafka's id of the topic as it is now; "" when the brokers
	// do not report one.
	TopicID string
	// By says who retires the incarnation (recorded in retired_by).
	By string
}

// StartIncarnation retires the topic's current incarnation and starts the
// next one, in one transaction: the retired incarnation keeps its bronze,
// silver, quarantine and gold rows, and its stored offsets move to its
// final_offsets, so the stream of the new incarnation starts from the
// topic's earliest offset. It waits for a live load of the retired
// incarnation in flight (LoadLive locks its incarnation's row), so that
// final_offsets are where gold's rows of it end; a load that comes after
// fails with ErrNotCurrentIncarnation.
func (s *Store) StartIncarnation(ctx context.Context, in NewIncarnationInput) (retired, started Incarnation, err error) {
	if in.Topic == "" || in.Retiring < 1 {
		return retired, started, &InputError{Field: "Topic", Msg: "Topic and Retiring are required"}
	}
	err = pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		cur, err := scanIncarnation(tx.QueryRow(ctx, `SELECT `+incarnationColumns+`
			FROM pipeline.topic_incarnations WHERE topic = $1 AND retired_at IS NULL FOR UPDATE`, in.Topic))
		if errors.Is(err, pgx.ErrNoRows) {
			return &InputError{Field: "Topic", Msg: fmt.Sprintf("topic %s has no incarnation yet: the stream adopts it when it starts", in.Topic)}
		}
		if err != nil {
			return err
		}
		if cur.Number != in.Retiring {
			return &InputError{Field: "Retiring", Msg: fmt.Sprintf("topic %s is at incarnation %d, not %d: another process started it meanwhile", in.Topic, cur.Number, in.Retiring)}
		}
		if in.TopicID != "" && cur.TopicID == in.TopicID {
			return &InputError{Field: "TopicID", Msg: fmt.Sprintf("incarnation %d of topic %s already has id %s: the topic was not recreated", cur.Number, in.Topic, in.TopicID)}
		}
		var final []byte
		err = tx.QueryRow(ctx, `WITH d AS (DELETE FROM pipeline.stream_offsets WHERE topic = $1 RETURNING partition, next_offset)
			SELECT COALESCE(jsonb_object_agg(partition::text, next_offset), '{}') FROM d`, in.Topic).Scan(&final)
		if err != nil {
			return fmt.Errorf("move the stored offsets: %w", err)
		}
		if _, err := tx.Exec(ctx, `UPDATE pipeline.topic_incarnations SET retired_at = now(), retired_by = NULLIF($3, ''), final_offsets = $4
			WHERE topic = $1 AND incarnation = $2`, in.Topic, cur.Number, in.By, final); err != nil {
			return fmt.Errorf("retire incarnation %d: %w", cur.Number, err)
		}
		if _, err := tx.Exec(ctx, `INSERT INTO pipeline.topic_incarnations (topic, incarnation, topic_id) VALUES ($1, $2, NULLIF($3, ''))`,
			in.Topic, cur.Number+1, in.TopicID); err != nil {
			return fmt.Errorf("start incarnation %d: %w", cur.Number+1, err)
		}
		return nil
	})
	if err != nil {
		return retired, started, fmt.Errorf("start a new incarnation of topic %s: %w", in.Topic, err)
	}
	all, err := s.Incarnations(ctx, in.Topic)
	if err != nil {
		return retired, started, err
	}
	for _, i := range all {
		switch i.Number {
		case in.Retiring:
			retired = i
		case in.Retiring + 1:
			started = i
		}
	}
	return retired, started, nil
}

// lockCurrentIncarnation checks, in a load's transaction, that incarnation
// n is the topic's current one, and holds it so until the commit
// (FOR KEY SHARE: loads do not block each other; StartIncarnation's
// FOR UPDATE waits for them, and they for it).
func lockCurrentIncarnation(ctx context.Context, tx pgx.Tx, topic string, n int) error {
	var current bool
	err := tx.QueryRow(ctx, `SELECT retired_at IS NULL FROM pipeline.topic_incarnations
		WHERE topic = $1 AND incarnation = $2 FOR KEY SHARE`, topic, n).Scan(&current)
	if errors.Is(err, pgx.ErrNoRows) {
		return fmt.Errorf("topic %s has no incarnation %d: %w", topic, n, ErrNotCurrentIncarnation)
	}
	if err != nil {
		return fmt.Errorf("incarnation %d of topic %s: %w", n, topic, err)
	}
	if !current {
		return fmt.Errorf("incarnation %d of topic %s was retired: %w", n, topic, ErrNotCurrentIncarnation)
	}
	return nil
}
