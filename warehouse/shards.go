package warehouse

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// ShardRunning is the state of a running shard; every other state is a
// stopped one.
const ShardRunning = "running"

// StreamShard is one shard of the live stream (a StreamCompaction
// workflow) as the SLO monitor last read it from Temporal
// (pipeline.stream_shards).
type StreamShard struct {
	Topic      string    `json:"topic"`
	Shard      int       `json:"shard"`
	Shards     int       `json:"shards"`
	WorkflowID string    `json:"workflow_id"`
	RunID      string    `json:"run_id,omitempty"`
	State      string    `json:"state"`
	Since      time.Time `json:"since,omitzero"`
	Reason     string    `json:"reason,omitempty"`
	Checked    time.Time `json:"checked_at,omitzero"`
}

// Stopped reports whether the shard loads nothing.
func (s StreamShard) Stopped() bool { return s.State != ShardRunning }

// RecordStreamShards replaces topic's shards with ss, read at at: the rows
// of another cut (before a reshard) go.
func (s *Store) RecordStreamShards(ctx context.Context, topic string, ss []StreamShard, at time.Time) error {
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `DELETE FROM pipeline.stream_shards WHERE topic = $1`, topic); err != nil {
			return err
		}
		for _, sh := range ss {
			if _, err := tx.Exec(ctx, `INSERT INTO pipeline.stream_shards
				(topic, shard, shards, workflow_id, run_id, state, since, reason, checked_at)
				VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)`,
				topic, sh.Shard, sh.Shards, sh.WorkflowID, sh.RunID, sh.State, nullTime(sh.Since), sh.Reason, at); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("record the stream shards of %s: %w", topic, err)
	}
	return nil
}

// StreamShards lists the recorded shards of topic, in shard order.
func (s *Store) StreamShards(ctx context.Context, topic string) ([]StreamShard, error) {
	rows, err := s.pool.Query(ctx, `SELECT topic, shard, shards, workflow_id, run_id, state, since, reason, checked_at
		FROM pipeline.stream_shards WHERE topic = $1 ORDER BY shard`, topic)
	if err != nil {
		return nil, fmt.Errorf("stream shards: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (StreamShard, error) {
		var sh StreamShard
		var since *time.Time
		err := r.Scan(&sh.Topic, &sh.Shard, &sh.Shards, &sh.WorkflowID, &sh.RunID, &sh.State, &since, &sh.Reason, &sh.Checked)
		if since != nil {
			sh.Since = *since
		}
		return sh, err
	})
	if err != nil {
		return nil, fmt.Errorf("stream shards: %w", err)
	}
	return out, nil
}
