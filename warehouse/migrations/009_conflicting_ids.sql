-- 009_conflicting_ids: one event id is one event, and the ids clients reuse
-- for another event are counted.
--
-- A live load used to deduplicate gold.events, gold.payments and
-- gold.audit_log each on its own: an id sent first as order.created and later
-- as payment.captured gave one events row (the first) and one payments row
-- (the second), and revenue counted a payment that gold.events did not hold.
-- Now a record whose event_id is known (already in gold, or repeated in the
-- batch) is a duplicate for all three tables, whatever its type. A duplicate
-- whose content differs from the record it lost to (another event_type,
-- occurred_at, user_id, source or properties) is a conflicting duplicate:
-- not a client retry but an id reused for another event, usually a client
-- bug. Each load counts them (pipeline.loads.rows_conflicting) and notes the
-- ids (pipeline.conflicting_ids); /status and `pipeline status` show both.
-- Never edit after release: add a new file.

ALTER TABLE pipeline.loads ADD COLUMN rows_conflicting bigint NOT NULL DEFAULT 0;
COMMENT ON COLUMN pipeline.loads.rows_conflicting IS
  'Live loads: duplicates (counted in rows_duplicate too) whose content differed from the record they lost to: another event_type, occurred_at, user_id, source or properties. An event_id reused for another event, usually a client bug; pipeline.conflicting_ids names them.';
-- The tallies over time read only the loads that had any.
CREATE INDEX loads_conflicting_idx ON pipeline.loads (started_at) WHERE rows_conflicting > 0;

CREATE TABLE pipeline.conflicting_ids (
  event_id     uuid        PRIMARY KEY,
  kept_type    text        NOT NULL,
  other_type   text        NOT NULL,
  other_source text,
  fields       text[]      NOT NULL,
  conflicts    bigint      NOT NULL CHECK (conflicts >= 1),
  first_seen   timestamptz NOT NULL DEFAULT now(),
  last_seen    timestamptz NOT NULL DEFAULT now(),
  last_load_id bigint      NOT NULL
);
CREATE INDEX conflicting_ids_last_seen_idx ON pipeline.conflicting_ids (last_seen);
COMMENT ON TABLE pipeline.conflicting_ids IS
  'Event ids that arrived again with other content (conflicting duplicates): one row per id, written by the live load that met them. gold keeps the first record; the others went nowhere (no events, payments or audit row). Find the client by other_source and the id.';
COMMENT ON COLUMN pipeline.conflicting_ids.event_id IS 'The reused event id.';
COMMENT ON COLUMN pipeline.conflicting_ids.kept_type IS 'event_type of the record the latest conflicting one lost to (the one in gold.events, or the earlier record of the same batch).';
COMMENT ON COLUMN pipeline.conflicting_ids.other_type IS 'event_type of the latest conflicting record (not loaded).';
COMMENT ON COLUMN pipeline.conflicting_ids.other_source IS 'source of the latest conflicting record; NULL when it had none.';
COMMENT ON COLUMN pipeline.conflicting_ids.fields IS 'Content fields in which the latest conflicting record differed: event_type, occurred_at, user_id, source, properties.';
COMMENT ON COLUMN pipeline.conflicting_ids.conflicts IS 'Conflicting records with this id so far.';
COMMENT ON COLUMN pipeline.conflicting_ids.first_seen IS 'When a load first met a conflicting record with this id.';
COMMENT ON COLUMN pipeline.conflicting_ids.last_seen IS 'When a load last met one.';
COMMENT ON COLUMN pipeline.conflicting_ids.last_load_id IS 'The load that last met one (pipeline.loads.load_id).';
