-- 003_catalog: the catalog of provisioned resources. The Provision workflow
-- plans against it (blueprint.Diff) and records one row per resource as soon
-- as that resource is applied, so a rerun after a failure continues where the
-- failed run stopped. Never edit after release: add a new file.

CREATE TABLE pipeline.catalog (
  kind       text        NOT NULL CHECK (kind IN ('datastore', 'archive', 'conduit', 'lane', 'insight', 'gateway', 'compute')),
  name       text        NOT NULL,
  config     jsonb       NOT NULL,
  status     text        NOT NULL CHECK (status IN ('applied', 'failed')),
  applied_at timestamptz,
  error      text,
  updated_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (kind, name),
  CHECK (status <> 'applied' OR applied_at IS NOT NULL)
);
COMMENT ON TABLE pipeline.catalog IS
  'Resources provisioned from the blueprint (Provision workflow), one row per tipo and nome. Rows are never deleted: a resource the blueprint no longer declares is reported as orphaned.';
COMMENT ON COLUMN pipeline.catalog.kind IS 'The resource''s tipo: datastore, archive, conduit, lane, insight, gateway or compute.';
COMMENT ON COLUMN pipeline.catalog.name IS 'The resource''s nome in the blueprint.';
COMMENT ON COLUMN pipeline.catalog.config IS 'The config the resource was last applied with (canonical, defaults filled in); for a resource never applied, the config of the failed attempt.';
COMMENT ON COLUMN pipeline.catalog.status IS 'applied: config is in place; failed: the last attempt failed (see error), config is still the last applied one when applied_at is set.';
COMMENT ON COLUMN pipeline.catalog.applied_at IS 'When config was last applied successfully; NULL when it never was.';
COMMENT ON COLUMN pipeline.catalog.error IS 'The last failure, cleared by the next success.';
COMMENT ON COLUMN pipeline.catalog.updated_at IS 'When the row last changed.';
