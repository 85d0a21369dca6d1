-- 006_rebuild: the state of backfills ("rebuilds" of one UTC day each).
--
-- A backfill of a day is cut into units that several workers run at once:
-- it snapshots the sources of the day (bronze objects, or live silver files
-- for a gold-only rebuild) into pipeline.rebuild_sources, stages their
-- cleaned rows into pipeline.rebuild_rows (one transaction per unit),
-- resolves one winner per event_id in SQL (the losers are deleted), writes
-- silver per hour and replaces gold in one transaction. Memory stays
-- flat in the size of a day: the deduplication is PostgreSQL's sort.
--
-- Staged rows are UNLOGGED: they are scratch space that a backfill can
-- always stage again. After a PostgreSQL crash they are empty, and so is
-- pipeline.rebuild_units (also unlogged), so the workflow sees which units
-- must be staged again; nothing is ever committed to gold from a partial
-- stage. Never edit after release: add a new file.

CREATE SEQUENCE pipeline.rebuild_seq;

CREATE TABLE pipeline.rebuilds (
  rebuild_id   bigint      PRIMARY KEY DEFAULT nextval('pipeline.rebuild_seq'),
  workflow_id  text        NOT NULL,
  run_id       text        NOT NULL,
  day          date        NOT NULL,
  topic        text        NOT NULL,
  source       text        NOT NULL CHECK (source IN ('bronze', 'silver')),
  units        integer     NOT NULL,
  objects      integer     NOT NULL,
  records      bigint      NOT NULL,
  dry_run      boolean     NOT NULL DEFAULT false,
  created_at   timestamptz NOT NULL DEFAULT now(),
  finished_at  timestamptz
);
CREATE UNIQUE INDEX rebuilds_open_idx ON pipeline.rebuilds (run_id, day) WHERE finished_at IS NULL;
COMMENT ON TABLE pipeline.rebuilds IS
  'One rebuild of one UTC day by a Backfill workflow run: its sources are fixed when it is planned, so that rows the live stream loads later are never touched by it.';
COMMENT ON COLUMN pipeline.rebuilds.source IS 'bronze: silver and gold are rebuilt from bronze objects; silver: gold is rebuilt from the live silver files.';
COMMENT ON COLUMN pipeline.rebuilds.units IS 'Units of work the sources were cut into (staged in parallel).';

CREATE TABLE pipeline.rebuild_sources (
  rebuild_id   bigint  NOT NULL REFERENCES pipeline.rebuilds ON DELETE CASCADE,
  unit         integer NOT NULL,
  object_key   text    NOT NULL,
  partition    integer NOT NULL,
  start_offset bigint  NOT NULL,
  end_offset   bigint  NOT NULL,
  records      bigint  NOT NULL,
  PRIMARY KEY (rebuild_id, object_key)
);
CREATE INDEX rebuild_sources_unit_idx ON pipeline.rebuild_sources (rebuild_id, unit);
COMMENT ON TABLE pipeline.rebuild_sources IS
  'The objects a rebuild read, with their partition and offset range: the rebuild replaces only gold rows and silver files of these ranges.';

CREATE UNLOGGED TABLE pipeline.rebuild_units (
  rebuild_id  bigint      NOT NULL,
  unit        integer     NOT NULL,
  records     bigint      NOT NULL,
  quarantined bigint      NOT NULL,
  other_days  bigint      NOT NULL,
  staged      bigint      NOT NULL,
  staged_at   timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (rebuild_id, unit)
);

CREATE UNLOGGED TABLE pipeline.rebuild_rows (
  rebuild_id      bigint      NOT NULL,
  unit            integer     NOT NULL,
  event_id        uuid        NOT NULL,
  event_type      text        NOT NULL,
  occurred_at     timestamptz NOT NULL,
  received_at     timestamptz,
  source          text,
  user_id         text,
  properties      jsonb       NOT NULL,
  kafka_partition integer     NOT NULL,
  kafka_offset    bigint      NOT NULL,
  amount_micros   bigint,
  currency        text,
  actor           text,
  action          text,
  outcome         text
);
CREATE INDEX rebuild_rows_hour_idx ON pipeline.rebuild_rows (rebuild_id, occurred_at);

CREATE TABLE pipeline.backfill_leases (
  day         date        PRIMARY KEY,
  workflow_id text        NOT NULL,
  run_id      text        NOT NULL,
  acquired_at timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE pipeline.backfill_leases IS
  'The day a Backfill workflow run is rebuilding: one rebuild of a day at a time, whoever started it (pipeline backfill, the Temporal CLI or UI). A lease of a run that is no longer running is taken over.';

ALTER TABLE pipeline.loads ADD COLUMN rebuild_id bigint;
COMMENT ON COLUMN pipeline.loads.rebuild_id IS 'Backfills: the rebuild (pipeline.rebuilds) whose sources (pipeline.rebuild_sources) the rows came from.';
