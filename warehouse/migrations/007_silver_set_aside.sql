-- 007_silver_set_aside: silver hours that hour compaction set aside.
--
-- A (hour, partition) of silver whose compaction fails in a way no retry can
-- fix (a live file missing from the bucket, a corrupt Parquet file) used to
-- stop compaction of every later hour. It is now recorded here with its
-- reason and skipped, and compaction goes on with the other hours. It is
-- tried again after a back-off (retry_at) and cleared when it compacts; a
-- backfill of its day rewrites its silver and clears it at once. Never edit
-- after release: add a new file.

CREATE TABLE pipeline.silver_set_aside (
  hour           timestamptz NOT NULL,
  partition      integer     NOT NULL CHECK (partition >= 0),
  topic          text        NOT NULL,
  reason         text        NOT NULL,
  error_type     text        NOT NULL,
  object_key     text,
  since          timestamptz NOT NULL DEFAULT now(),
  last_failed_at timestamptz NOT NULL DEFAULT now(),
  attempts       integer     NOT NULL DEFAULT 1 CHECK (attempts >= 1),
  retry_at       timestamptz NOT NULL,
  PRIMARY KEY (hour, partition),
  CHECK (date_trunc('hour', hour AT TIME ZONE 'UTC') = hour AT TIME ZONE 'UTC')
);
COMMENT ON TABLE pipeline.silver_set_aside IS
  'Silver (event hour, partition) pairs that hour compaction set aside after an error no retry can fix (a live file missing from the bucket, a corrupt file): compaction skips them until retry_at and goes on with the other hours. A backfill of the day, or a later successful compaction of the pair, deletes the row. Alert: pipeline_silver_hours_set_aside > 0.';
COMMENT ON COLUMN pipeline.silver_set_aside.hour IS 'Event-time hour (UTC) of the silver files.';
COMMENT ON COLUMN pipeline.silver_set_aside.partition IS 'Partition of the silver files.';
COMMENT ON COLUMN pipeline.silver_set_aside.topic IS 'Topic of the failing file: a backfill of this topic and day clears the row.';
COMMENT ON COLUMN pipeline.silver_set_aside.reason IS 'Why compaction failed, one line (the last failure).';
COMMENT ON COLUMN pipeline.silver_set_aside.error_type IS 'Kind of failure: SilverMissing, SilverCorrupt, or the type of another non-retryable error.';
COMMENT ON COLUMN pipeline.silver_set_aside.object_key IS 'The silver object that could not be read; NULL when the failure named none.';
COMMENT ON COLUMN pipeline.silver_set_aside.since IS 'When the pair was first set aside.';
COMMENT ON COLUMN pipeline.silver_set_aside.last_failed_at IS 'When compaction of the pair last failed.';
COMMENT ON COLUMN pipeline.silver_set_aside.attempts IS 'Compactions of the pair that failed since it was set aside (1 the first time).';
COMMENT ON COLUMN pipeline.silver_set_aside.retry_at IS 'Compaction (by its workflow time) tries the pair again from then on: 1h after the first failure, doubling up to 24h.';
