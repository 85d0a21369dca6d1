-- 014_silver_table: what `pipeline status` and /status show of the Iceberg
-- table silver.events, kept current by every commit the pipeline makes to it
-- (stream appends, backfill overwrites, compactions, manifest rewrites,
-- snapshot expiry), so that status reads PostgreSQL alone and needs no S3
-- credentials. The Iceberg metadata stays the truth; this row is its
-- summary after the pipeline's latest commit. The index of silver Parquet
-- hour files (silver_objects) and the hours their compaction set aside
-- (silver_set_aside) are retired: nothing writes or reads them since silver
-- is silver.events; they stay one release for reference, then go. Never edit
-- after release: add a new file.

CREATE TABLE pipeline.silver_table (
  table_ident          text        PRIMARY KEY,
  metadata_location    text        NOT NULL,
  metadata_version     bigint      NOT NULL, -- NNNNN of NNNNN-uuid.metadata.json: only a newer one replaces the row
  snapshot_id          bigint,
  operation            text,
  committed_at         timestamptz,
  snapshots            integer     NOT NULL,
  oldest_snapshot_at   timestamptz,
  data_files           bigint      NOT NULL,
  records              bigint      NOT NULL,
  bytes                bigint      NOT NULL,
  last_append_snapshot bigint,
  last_append_at       timestamptz,
  last_append_loads    text,
  last_append_offsets  jsonb,
  updated_at           timestamptz NOT NULL DEFAULT clock_timestamp()
);
COMMENT ON TABLE pipeline.silver_table IS 'silver.events (Iceberg) after the pipeline''s latest commit to it: snapshot, retained snapshots, live files, rows, bytes, and the newest snapshot that carries gold loads with their Kafka offsets ("INCARNATION/PARTITION": [first, last]).';
COMMENT ON TABLE pipeline.silver_objects IS 'Retired: the index of silver Parquet hour files from before silver was the Iceberg table silver.events. Nothing writes or reads it.';
COMMENT ON TABLE pipeline.silver_set_aside IS 'Retired with hour compaction: silver.events is compacted by the SilverMaintenance workflow.';
