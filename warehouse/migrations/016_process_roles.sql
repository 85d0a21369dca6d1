-- 016_process_roles: a database role per process, so that each holds only
-- the privileges it uses. The migrating role (provisioning's, the owner of
-- every table) keeps the schema; the others never change it.
--
--   pipeline_worker  the stream, backfills, marts, maintenance and the
--                    catalog's bookkeeping: reads and writes the tables of
--                    gold, pipeline and the Iceberg catalog, and stages in
--                    temp tables; no DDL, no schema_migrations.
--   pipeline_api     the event API: writes its accepted counts
--                    (pipeline.api_accepted) and reads the pipeline's
--                    metadata for /status. It cannot read or write gold:
--                    the status page's counts of gold come from the three
--                    SECURITY DEFINER functions below, which return
--                    aggregates only.
--
-- Both are LOGIN roles without a password, like bi_reader: the DBA gives
-- them one (ALTER ROLE pipeline_worker PASSWORD ...), or creates them
-- beforehand with one and this migration only grants. A migrating role
-- without CREATEROLE cannot create them: a NOTICE says so, and the grants
-- wait until they exist (re-run them from this file). Never edit after
-- release: add a new file.

CREATE FUNCTION pipeline.gold_freshness(since timestamptz)
RETURNS TABLE (received_at timestamptz, occurred_at timestamptz)
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
  IF since IS NULL THEN
    RETURN QUERY SELECT max(e.received_at), max(e.occurred_at) FROM gold.events e;
  ELSE
    RETURN QUERY SELECT max(e.received_at), max(e.occurred_at) FROM gold.events e WHERE e.occurred_at >= since;
  END IF;
END
$$;
COMMENT ON FUNCTION pipeline.gold_freshness(timestamptz) IS
  'The newest received_at and occurred_at in gold.events (of the rows that occurred since since, when not null): the status page''s freshness, readable by pipeline_api.';

CREATE FUNCTION pipeline.gold_hour_layers(from_ts timestamptz, to_ts timestamptz)
RETURNS TABLE (hour timestamp, gold bigint, silver bigint)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
  SELECT date_trunc('hour', e.occurred_at AT TIME ZONE 'UTC'), count(*),
         count(*) FILTER (WHERE NOT EXISTS (SELECT 1 FROM pipeline.loads l WHERE l.load_id = e.load_id AND l.silver_pending))
  FROM gold.events e
  WHERE e.occurred_at >= from_ts AND e.occurred_at < to_ts
  GROUP BY 1
$$;
COMMENT ON FUNCTION pipeline.gold_hour_layers(timestamptz, timestamptz) IS
  'gold.events rows per occurred_at hour (UTC) in [from_ts, to_ts), and how many of them silver.events holds (their load is not pending for silver): the status page''s layer counts.';

CREATE FUNCTION pipeline.gold_of_hour(p_topic text, p_hour timestamptz, p_inserted bigint)
RETURNS bigint
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  n bigint;
BEGIN
  SELECT g.gold INTO n FROM pipeline.gold_hour_counts g
  WHERE g.topic = p_topic AND g.hour = p_hour AND g.inserted_seen = p_inserted AND g.counted_at > now() - interval '1 hour';
  IF FOUND THEN
    RETURN n;
  END IF;
  SELECT count(*) INTO n FROM gold.events e WHERE e.received_at >= p_hour AND e.received_at < p_hour + interval '1 hour';
  INSERT INTO pipeline.gold_hour_counts AS g (topic, hour, inserted_seen, gold) VALUES (p_topic, p_hour, p_inserted, n)
  ON CONFLICT (topic, hour) DO UPDATE SET inserted_seen = EXCLUDED.inserted_seen, gold = EXCLUDED.gold, counted_at = now();
  RETURN n;
END
$$;
COMMENT ON FUNCTION pipeline.gold_of_hour(text, timestamptz, bigint) IS
  'gold.events rows received in the hour p_hour: the count pipeline.gold_hour_counts keeps when the stream''s inserted tally is still p_inserted and the count is under an hour old, else a fresh count, kept.';

REVOKE ALL ON FUNCTION pipeline.gold_freshness(timestamptz), pipeline.gold_hour_layers(timestamptz, timestamptz),
  pipeline.gold_of_hour(text, timestamptz, bigint) FROM PUBLIC;

DO $$
DECLARE
  r text;
BEGIN
  FOREACH r IN ARRAY ARRAY['pipeline_worker', 'pipeline_api'] LOOP
    IF NOT EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = r) THEN
      BEGIN
        EXECUTE format('CREATE ROLE %I LOGIN', r);
      EXCEPTION
        WHEN duplicate_object OR unique_violation THEN
          NULL; -- created meanwhile by a migration of another database on this server
        WHEN insufficient_privilege THEN
          RAISE NOTICE 'role % is missing and % cannot create it (no CREATEROLE): create it, then run the grants of 016_process_roles.sql', r, current_user;
      END;
    END IF;
  END LOOP;

  IF EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = 'pipeline_worker') THEN
    EXECUTE format('GRANT CONNECT, TEMPORARY ON DATABASE %I TO pipeline_worker', current_database());
    GRANT USAGE ON SCHEMA gold, pipeline, public TO pipeline_worker;
    GRANT SELECT, INSERT, UPDATE, DELETE, TRUNCATE ON ALL TABLES IN SCHEMA gold, pipeline TO pipeline_worker;
    REVOKE INSERT, UPDATE, DELETE, TRUNCATE ON pipeline.schema_migrations FROM pipeline_worker;
    GRANT USAGE, SELECT, UPDATE ON ALL SEQUENCES IN SCHEMA gold, pipeline TO pipeline_worker;
    GRANT EXECUTE ON FUNCTION pipeline.gold_freshness(timestamptz), pipeline.gold_hour_layers(timestamptz, timestamptz),
      pipeline.gold_of_hour(text, timestamptz, bigint) TO pipeline_worker;
    -- Tables the owner creates later: the next migrations' and the Iceberg
    -- catalog's own (iceberg_tables, iceberg_namespace_properties in
    -- public), which provisioning creates.
    ALTER DEFAULT PRIVILEGES IN SCHEMA gold, pipeline, public GRANT SELECT, INSERT, UPDATE, DELETE, TRUNCATE ON TABLES TO pipeline_worker;
    ALTER DEFAULT PRIVILEGES IN SCHEMA gold, pipeline, public GRANT USAGE, SELECT, UPDATE ON SEQUENCES TO pipeline_worker;
    IF to_regclass('public.iceberg_tables') IS NOT NULL THEN
      GRANT SELECT, INSERT, UPDATE, DELETE ON public.iceberg_tables TO pipeline_worker;
    END IF;
    IF to_regclass('public.iceberg_namespace_properties') IS NOT NULL THEN
      GRANT SELECT, INSERT, UPDATE, DELETE ON public.iceberg_namespace_properties TO pipeline_worker;
    END IF;
  END IF;

  IF EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = 'pipeline_api') THEN
    EXECUTE format('GRANT CONNECT ON DATABASE %I TO pipeline_api', current_database());
    GRANT USAGE ON SCHEMA pipeline TO pipeline_api;
    GRANT SELECT ON ALL TABLES IN SCHEMA pipeline TO pipeline_api;
    ALTER DEFAULT PRIVILEGES IN SCHEMA pipeline GRANT SELECT ON TABLES TO pipeline_api;
    GRANT INSERT, UPDATE ON pipeline.api_accepted TO pipeline_api;
    GRANT EXECUTE ON FUNCTION pipeline.gold_freshness(timestamptz), pipeline.gold_hour_layers(timestamptz, timestamptz),
      pipeline.gold_of_hour(text, timestamptz, bigint) TO pipeline_api;
    REVOKE ALL ON SCHEMA gold FROM pipeline_api;
  END IF;
END
$$;
