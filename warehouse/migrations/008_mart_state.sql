-- 008_mart_state: which days have marts, and whether gold changed under
-- them since; and the warehouse's settings (the marts' time zone). Never edit
-- after release: add a new file.
--
-- The protocol that keeps staleness from being lost (see
-- warehouse/mart_state.go):
--   * every transaction that writes gold rows marks the built days that
--     overlap them dirty, with an UPDATE that takes the row lock whatever
--     the row holds (never "WHERE NOT dirty", which can skip a row being
--     claimed without waiting for it);
--   * a rebuild first claims its day in a transaction of its own (dirty
--     cleared, claimed_at set), then builds the marts in a REPEATABLE READ
--     transaction whose snapshot is taken after that commit, then records
--     built_at. A gold transaction that committed before the claim is in the
--     snapshot; one that committed after it marked the day dirty again.
--   * a day is pending while dirty, or claimed after it was last built (a
--     rebuild under way, or one that died between claim and build), or built
--     in another zone than pipeline.settings' mart_zone.

CREATE TABLE pipeline.settings (
  name       text        PRIMARY KEY,
  value      text        NOT NULL,
  updated_at timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE pipeline.settings IS
  'Settings the pipeline records when it is provisioned, one row each, for every process to read (e.g. mart_zone).';
COMMENT ON COLUMN pipeline.settings.name IS 'Setting name, e.g. mart_zone: the IANA time zone that cuts the days of the daily marts.';
COMMENT ON COLUMN pipeline.settings.value IS 'Its value, as text.';
COMMENT ON COLUMN pipeline.settings.updated_at IS 'When it was last changed.';

CREATE TABLE pipeline.mart_days (
  day         date        PRIMARY KEY,
  zone        text        NOT NULL,
  starts_at   timestamptz NOT NULL,
  ends_at     timestamptz NOT NULL,
  claimed_at  timestamptz NOT NULL,
  built_at    timestamptz,
  dirty       boolean     NOT NULL DEFAULT false,
  dirty_since timestamptz,
  CHECK (starts_at < ends_at),
  CHECK (dirty = (dirty_since IS NOT NULL))
);
-- Gold writers look days up by overlap with the hours they wrote.
CREATE INDEX mart_days_span_idx ON pipeline.mart_days (starts_at, ends_at);
COMMENT ON TABLE pipeline.mart_days IS
  'One row per day whose daily marts (gold.daily_*) have been built: the instants the build covered and whether gold changed in them since. Pending days (dirty, claimed after the last build, or built in another zone than the configured one) are rebuilt by the RefreshMarts workflow (schedule marts-refresh).';
COMMENT ON COLUMN pipeline.mart_days.day IS 'The mart day (gold.daily_*.day).';
COMMENT ON COLUMN pipeline.mart_days.zone IS 'IANA time zone the day was cut in by its latest build.';
COMMENT ON COLUMN pipeline.mart_days.starts_at IS 'First instant of the day in zone.';
COMMENT ON COLUMN pipeline.mart_days.ends_at IS 'First instant of the next day in zone (23, 24 or 25 hours after starts_at).';
COMMENT ON COLUMN pipeline.mart_days.claimed_at IS 'When the latest rebuild claimed the day (cleared dirty) before reading gold.';
COMMENT ON COLUMN pipeline.mart_days.built_at IS 'Start of the transaction of the latest completed build (its snapshot); null or before claimed_at while a rebuild is under way or died.';
COMMENT ON COLUMN pipeline.mart_days.dirty IS 'Gold rows of the day were written after the latest claim: the marts may be stale.';
COMMENT ON COLUMN pipeline.mart_days.dirty_since IS 'When the day became dirty (the first gold write after the latest claim); null when clean.';
