-- 015_bi_reader_limits: bi_reader reads gold and nothing else. PostgreSQL
-- grants TEMPORARY on every database to PUBLIC, so a BI login could fill
-- temp tablespace; and a dashboard's runaway query would run forever. TEMP
-- goes from PUBLIC (the migrating role, the pipeline's own, keeps it
-- explicitly: gold loads stage in temp tables) and bi_reader's sessions get
-- a statement timeout of 5 minutes and an idle-in-transaction timeout of 1
-- minute. A role without CREATEROLE cannot set them: then a NOTICE says so,
-- and the DBA runs the ALTER ROLE lines. Never edit after release: add a new
-- file.

DO $$
BEGIN
  EXECUTE format('REVOKE TEMPORARY ON DATABASE %I FROM PUBLIC', current_database());
  EXECUTE format('GRANT TEMPORARY ON DATABASE %I TO %I', current_database(), current_user);
  BEGIN
    ALTER ROLE bi_reader SET statement_timeout = '5min';
    ALTER ROLE bi_reader SET idle_in_transaction_session_timeout = '1min';
  EXCEPTION WHEN insufficient_privilege THEN
    RAISE NOTICE 'bi_reader keeps no statement_timeout: % cannot ALTER ROLE bi_reader (run: ALTER ROLE bi_reader SET statement_timeout = ''5min'')', current_user;
  END;
END
$$;
