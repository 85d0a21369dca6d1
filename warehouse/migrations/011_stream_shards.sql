-- 011_stream_shards: the live stream's shards (StreamCompaction workflows)
-- as the SLO monitor last read them from Temporal, so that /status and
-- `pipeline status` show a stopped shard without a Temporal client of their
-- own; and the stream_running measurement of the monitor. Never edit after
-- release: add a new file.

CREATE TABLE pipeline.stream_shards (
  topic       text        NOT NULL,
  shard       integer     NOT NULL CHECK (shard >= 0),
  shards      integer     NOT NULL CHECK (shards >= 1),
  workflow_id text        NOT NULL,
  run_id      text        NOT NULL DEFAULT '',
  state       text        NOT NULL,
  since       timestamptz,
  reason      text        NOT NULL DEFAULT '',
  checked_at  timestamptz NOT NULL,
  PRIMARY KEY (topic, shard),
  CHECK (shard < shards)
);
COMMENT ON TABLE pipeline.stream_shards IS
  'The stream''s shards of the current cut, one row each, replaced at every SLO evaluation from Temporal''s visibility. A shard whose state is not running loads nothing: the stream_running SLO pages at once.';
COMMENT ON COLUMN pipeline.stream_shards.state IS 'running, failed, terminated, canceled, timed_out, completed (stopped by its signal), or missing (Temporal knows no run).';
COMMENT ON COLUMN pipeline.stream_shards.since IS 'When the latest run started (running) or closed (stopped).';
COMMENT ON COLUMN pipeline.stream_shards.reason IS 'Why a stopped shard stopped: the failure down to its root cause, or the termination reason.';
COMMENT ON COLUMN pipeline.stream_shards.checked_at IS 'The evaluation that read it.';

ALTER TABLE pipeline.slo_measurements DROP CONSTRAINT slo_measurements_slo_check;
ALTER TABLE pipeline.slo_measurements ADD CONSTRAINT slo_measurements_slo_check
  CHECK (slo IN ('freshness', 'completeness', 'error_rate', 'stream_running'));
COMMENT ON COLUMN pipeline.slo_measurements.value IS 'freshness: seconds (p95 of 202-to-gold, or the age of the oldest record waiting in Kafka when larger); completeness: events missing in hours past the allowed lateness; error_rate: quarantined share of the records of the last hour; stream_running: shards of the stream that are not running.';
