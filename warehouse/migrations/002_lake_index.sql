-- 002_lake_index: the index of the lake's objects written by the live stream
-- (StreamCompaction): bronze objects by topic partition and offset range,
-- silver Parquet files by event hour with their compaction state, and
-- quarantined records with their reason. Readers go through these tables, not
-- through bucket listings, so an object written by an attempt that crashed
-- before recording it is never read. Never edit after release: add a new file.

CREATE TABLE pipeline.bronze_objects (
  topic           text        NOT NULL,
  partition       integer     NOT NULL CHECK (partition >= 0),
  start_offset    bigint      NOT NULL CHECK (start_offset >= 0),
  end_offset      bigint      NOT NULL,
  records         integer     NOT NULL CHECK (records > 0),
  bytes           bigint      NOT NULL,
  object_key      text        NOT NULL UNIQUE,
  arrived_at      timestamptz NOT NULL,
  cleaned         integer     NOT NULL DEFAULT 0,
  quarantined     integer     NOT NULL DEFAULT 0,
  min_occurred_at timestamptz,
  max_occurred_at timestamptz,
  event_hours     timestamptz[] NOT NULL DEFAULT '{}',
  created_at      timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (topic, partition, start_offset),
  CHECK (end_offset >= start_offset),
  CHECK (cleaned + quarantined = records)
);
CREATE INDEX bronze_objects_arrived_at_idx ON pipeline.bronze_objects (arrived_at);
COMMENT ON TABLE pipeline.bronze_objects IS
  'Bronze objects of the datalake bucket: the records of one topic partition and offset range exactly as consumed (NDJSON). One row per object; the first object recorded for a start offset wins, so a retried stream cycle reuses it.';
COMMENT ON COLUMN pipeline.bronze_objects.topic IS 'Kafka topic.';
COMMENT ON COLUMN pipeline.bronze_objects.partition IS 'Partition of the topic.';
COMMENT ON COLUMN pipeline.bronze_objects.start_offset IS 'Offset of the first record in the object.';
COMMENT ON COLUMN pipeline.bronze_objects.end_offset IS 'Offset of the last record in the object (inclusive); the next object starts after it.';
COMMENT ON COLUMN pipeline.bronze_objects.records IS 'Number of records in the object.';
COMMENT ON COLUMN pipeline.bronze_objects.bytes IS 'Size of the object in bytes.';
COMMENT ON COLUMN pipeline.bronze_objects.object_key IS 'Key in the datalake bucket, bronze/events/dt=.../hour=.../TOPIC-pNN-FIRST-LAST.ndjson.';
COMMENT ON COLUMN pipeline.bronze_objects.arrived_at IS 'Kafka timestamp of the first record: the arrival hour the object is filed under.';
COMMENT ON COLUMN pipeline.bronze_objects.cleaned IS 'Records that were cleaned into silver rows (duplicates included).';
COMMENT ON COLUMN pipeline.bronze_objects.quarantined IS 'Records that could not be cleaned (see pipeline.quarantine).';
COMMENT ON COLUMN pipeline.bronze_objects.min_occurred_at IS 'Earliest event time among the cleaned records; NULL when none.';
COMMENT ON COLUMN pipeline.bronze_objects.max_occurred_at IS 'Latest event time among the cleaned records; NULL when none.';
COMMENT ON COLUMN pipeline.bronze_objects.event_hours IS 'Event-time hours (UTC) the cleaned records fall in: the silver hours this object fed.';
COMMENT ON COLUMN pipeline.bronze_objects.created_at IS 'When the object was recorded.';

CREATE TABLE pipeline.silver_objects (
  object_key   text        PRIMARY KEY,
  hour         timestamptz NOT NULL,
  topic        text        NOT NULL,
  partition    integer     NOT NULL CHECK (partition >= 0),
  start_offset bigint      NOT NULL,
  end_offset   bigint      NOT NULL,
  rows         bigint      NOT NULL CHECK (rows >= 0),
  bytes        bigint      NOT NULL,
  compacted    boolean     NOT NULL DEFAULT false,
  state        text        NOT NULL DEFAULT 'live' CHECK (state IN ('live', 'replaced', 'deleted')),
  replaced_by  text[],
  created_at   timestamptz NOT NULL DEFAULT now(),
  replaced_at  timestamptz,
  CHECK (end_offset >= start_offset),
  CHECK (date_trunc('hour', hour AT TIME ZONE 'UTC') = hour AT TIME ZONE 'UTC')
);
CREATE INDEX silver_objects_live_idx ON pipeline.silver_objects (hour, partition) WHERE state = 'live';
CREATE INDEX silver_objects_dirty_idx ON pipeline.silver_objects (hour, partition) WHERE state = 'live' AND NOT compacted;
CREATE INDEX silver_objects_replaced_idx ON pipeline.silver_objects (replaced_at) WHERE state = 'replaced';
COMMENT ON TABLE pipeline.silver_objects IS
  'Silver Parquet files of the datalake bucket, by event hour. The live files of an hour hold every cleaned event of that hour once. Stream cycles add small files; hour compaction merges an hour''s files per partition into large ones and retires the small ones (replaced, then deleted from the bucket).';
COMMENT ON COLUMN pipeline.silver_objects.object_key IS 'Key in the datalake bucket, silver/events/dt=YYYY-MM-DD/hour=HH/pNN-FIRST-LAST.parquet.';
COMMENT ON COLUMN pipeline.silver_objects.hour IS 'Event-time hour (UTC, occurred_at truncated to the hour) of every row in the file.';
COMMENT ON COLUMN pipeline.silver_objects.topic IS 'Kafka topic the rows were read from.';
COMMENT ON COLUMN pipeline.silver_objects.partition IS 'Partition the rows were read from.';
COMMENT ON COLUMN pipeline.silver_objects.start_offset IS 'First offset of the range the file covers.';
COMMENT ON COLUMN pipeline.silver_objects.end_offset IS 'Last offset of the range the file covers (inclusive).';
COMMENT ON COLUMN pipeline.silver_objects.rows IS 'Rows in the file (distinct event_ids).';
COMMENT ON COLUMN pipeline.silver_objects.bytes IS 'Size of the file in bytes.';
COMMENT ON COLUMN pipeline.silver_objects.compacted IS 'True when hour compaction produced or confirmed the file; false for a stream cycle''s small file (its hour is due for compaction).';
COMMENT ON COLUMN pipeline.silver_objects.state IS 'live: part of the hour; replaced: merged into replaced_by, object about to be deleted; deleted: object removed from the bucket.';
COMMENT ON COLUMN pipeline.silver_objects.replaced_by IS 'The compacted files that now hold this file''s rows.';
COMMENT ON COLUMN pipeline.silver_objects.created_at IS 'When the file was recorded.';
COMMENT ON COLUMN pipeline.silver_objects.replaced_at IS 'When compaction replaced the file.';

CREATE TABLE pipeline.quarantine (
  topic           text        NOT NULL,
  partition       integer     NOT NULL CHECK (partition >= 0),
  record_offset   bigint      NOT NULL CHECK (record_offset >= 0),
  object_key      text        NOT NULL,
  reason          text        NOT NULL,
  errors          jsonb       NOT NULL DEFAULT '[]',
  kafka_timestamp timestamptz,
  quarantined_at  timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (topic, partition, record_offset)
);
CREATE INDEX quarantine_quarantined_at_idx ON pipeline.quarantine (quarantined_at);
COMMENT ON TABLE pipeline.quarantine IS
  'Records of the topic that could not be cleaned (bad JSON, wrong types, missing fields, ...). They never block the stream; the raw record is in the quarantine object.';
COMMENT ON COLUMN pipeline.quarantine.topic IS 'Kafka topic.';
COMMENT ON COLUMN pipeline.quarantine.partition IS 'Partition of the record.';
COMMENT ON COLUMN pipeline.quarantine.record_offset IS 'Offset of the record.';
COMMENT ON COLUMN pipeline.quarantine.object_key IS 'Key of the quarantine object holding the raw record and its reason (quarantine/events/...ndjson).';
COMMENT ON COLUMN pipeline.quarantine.reason IS 'Why the record could not be cleaned, one line.';
COMMENT ON COLUMN pipeline.quarantine.errors IS 'Every problem found: [{"field": ..., "message": ...}].';
COMMENT ON COLUMN pipeline.quarantine.kafka_timestamp IS 'Kafka timestamp of the record.';
COMMENT ON COLUMN pipeline.quarantine.quarantined_at IS 'When the record was quarantined.';
