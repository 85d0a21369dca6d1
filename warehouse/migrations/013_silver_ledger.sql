-- 013_silver_ledger: silver is the Iceberg table silver.events, written after
-- gold. A live load's rows reach gold and the stream offsets in one
-- PostgreSQL transaction; they reach silver in a second commit, to the
-- Iceberg catalog. Between the two a load is pending: silver_pending, set
-- in the load's own transaction, until the append that carries its rows
-- records its snapshot here. A worker killed in between leaves the load
-- pending, and the next stream cycle sweeps it (rebuilding its rows from its
-- bronze objects). Loads from before this migration are not pending: a
-- backfill rebuilds their silver. Never edit after release: add a new file.

ALTER TABLE pipeline.loads
  ADD COLUMN silver_pending     boolean     NOT NULL DEFAULT false,
  ADD COLUMN silver_snapshot_id bigint,
  ADD COLUMN silver_at          timestamptz,
  ADD COLUMN bronze_keys        text[]      NOT NULL DEFAULT '{}';
CREATE INDEX loads_silver_pending_idx ON pipeline.loads (load_id) WHERE silver_pending;
COMMENT ON COLUMN pipeline.loads.silver_pending IS 'The load inserted rows into gold that silver.events does not hold yet: the stream appends them within seconds, or sweeps them after a crash.';
COMMENT ON COLUMN pipeline.loads.silver_snapshot_id IS 'The snapshot of silver.events (Iceberg) that appended the load''s rows; NULL when none was needed (every row replaced by a backfill first) or before silver was an Iceberg table.';
COMMENT ON COLUMN pipeline.loads.silver_at IS 'When the load''s rows were recorded as in silver.events.';
COMMENT ON COLUMN pipeline.loads.bronze_keys IS 'The bronze objects (pipeline.bronze_objects.object_key) a live load''s rows were cleaned from: where a sweep rebuilds them.';
