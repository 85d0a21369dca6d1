-- 001_gold: the gold facts and marts, the pipeline's load metadata, and the
-- read-only role for BI tools. Applied once, in one transaction, by
-- warehouse.(*Store).Migrate. Never edit after release: add a new file.

CREATE SCHEMA IF NOT EXISTS gold;
COMMENT ON SCHEMA gold IS
  'Analytics tables for BI tools: facts (events, payments, audit_log) loaded by the pipeline, and daily marts built by NightlyAggregation. Read with the bi_reader role.';

CREATE SCHEMA IF NOT EXISTS pipeline;
COMMENT ON SCHEMA pipeline IS
  'Pipeline metadata: schema migrations, loads (lineage), stream offsets. Not for BI users.';
REVOKE ALL ON SCHEMA pipeline FROM PUBLIC;

------------------------------------------------------------------------------
-- Facts
------------------------------------------------------------------------------

CREATE TABLE gold.events (
  event_id        uuid        PRIMARY KEY,
  event_type      text        NOT NULL,
  occurred_at     timestamptz NOT NULL,
  received_at     timestamptz,
  source          text,
  user_id         text,
  properties      jsonb       NOT NULL DEFAULT '{}',
  kafka_partition integer     NOT NULL,
  kafka_offset    bigint      NOT NULL,
  load_id         bigint      NOT NULL,
  loaded_at       timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX events_occurred_at_idx ON gold.events (occurred_at);

COMMENT ON TABLE gold.events IS
  'Every analytics event, exactly once (deduplicated on event_id). One row per event accepted by the event API or written to the events topic and cleaned by the pipeline.';
COMMENT ON COLUMN gold.events.event_id IS 'Unique event id (UUID, usually v7). Clients that retry resend the same id; it appears here once.';
COMMENT ON COLUMN gold.events.event_type IS 'Event type, dotted lower case, e.g. page_view, payment.succeeded, audit.login.';
COMMENT ON COLUMN gold.events.occurred_at IS 'When the event happened, by the client''s clock (event time). Days and marts are by this column.';
COMMENT ON COLUMN gold.events.received_at IS 'When the event API received the event (server clock); NULL when another producer wrote the record without it.';
COMMENT ON COLUMN gold.events.source IS 'Where the event came from (e.g. web, ios, billing); NULL when not given.';
COMMENT ON COLUMN gold.events.user_id IS 'The user the event belongs to; NULL for anonymous events.';
COMMENT ON COLUMN gold.events.properties IS 'Event-specific properties as sent by the client (JSON object; {} when none). Payment amounts keep their exact decimal text.';
COMMENT ON COLUMN gold.events.kafka_partition IS 'Lineage: partition of the events topic the record was read from.';
COMMENT ON COLUMN gold.events.kafka_offset IS 'Lineage: offset of the record in its partition.';
COMMENT ON COLUMN gold.events.load_id IS 'Lineage: the load that wrote this row (pipeline.loads.load_id, visible to pipeline operators).';
COMMENT ON COLUMN gold.events.loaded_at IS 'When the row was written to the warehouse (start of its load transaction). A backfill rewrites it.';

CREATE TABLE gold.payments (
  event_id    uuid          PRIMARY KEY,
  event_type  text          NOT NULL,
  occurred_at timestamptz   NOT NULL,
  received_at timestamptz,
  source      text,
  user_id     text,
  amount      numeric(18,6) NOT NULL,
  currency    char(3)       NOT NULL,
  is_refund   boolean       NOT NULL,
  load_id     bigint        NOT NULL,
  loaded_at   timestamptz   NOT NULL DEFAULT now()
);
CREATE INDEX payments_occurred_at_idx ON gold.payments (occurred_at);

COMMENT ON TABLE gold.payments IS
  'Finance facts: one row per payment.* event (also in gold.events, same event_id). Refunds are rows with is_refund = true and a positive amount.';
COMMENT ON COLUMN gold.payments.event_id IS 'Unique event id; joins to gold.events.event_id.';
COMMENT ON COLUMN gold.payments.event_type IS 'Payment event type, e.g. payment.succeeded, payment.refunded.';
COMMENT ON COLUMN gold.payments.occurred_at IS 'When the payment happened (event time).';
COMMENT ON COLUMN gold.payments.received_at IS 'When the event API received the event; NULL when unknown.';
COMMENT ON COLUMN gold.payments.source IS 'Where the event came from; NULL when not given.';
COMMENT ON COLUMN gold.payments.user_id IS 'The paying user; NULL when not given.';
COMMENT ON COLUMN gold.payments.amount IS 'Exact amount in currency units with six decimals, as sent in properties.amount (never negative; see is_refund).';
COMMENT ON COLUMN gold.payments.currency IS 'ISO 4217 currency code, e.g. EUR, USD, JPY.';
COMMENT ON COLUMN gold.payments.is_refund IS 'True for payment.refunded: money returned to the customer. False for every other payment.* type.';
COMMENT ON COLUMN gold.payments.load_id IS 'Lineage: the load that wrote this row (pipeline.loads.load_id).';
COMMENT ON COLUMN gold.payments.loaded_at IS 'When the row was written to the warehouse.';

CREATE TABLE gold.audit_log (
  event_id    uuid        PRIMARY KEY,
  occurred_at timestamptz NOT NULL,
  event_type  text        NOT NULL,
  actor       text        NOT NULL,
  action      text        NOT NULL,
  outcome     text        NOT NULL DEFAULT 'success',
  user_id     text,
  source      text,
  properties  jsonb       NOT NULL DEFAULT '{}',
  received_at timestamptz,
  load_id     bigint      NOT NULL,
  loaded_at   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX audit_log_occurred_at_idx ON gold.audit_log (occurred_at);

COMMENT ON TABLE gold.audit_log IS
  'Audit facts: one row per audit.* event (also in gold.events, same event_id): who did what, and how it ended.';
COMMENT ON COLUMN gold.audit_log.event_id IS 'Unique event id; joins to gold.events.event_id.';
COMMENT ON COLUMN gold.audit_log.occurred_at IS 'When the audited action happened (event time).';
COMMENT ON COLUMN gold.audit_log.event_type IS 'Audit event type, e.g. audit.login, audit.permission_change.';
COMMENT ON COLUMN gold.audit_log.actor IS 'Who acted (properties.actor), e.g. a user, admin or service name.';
COMMENT ON COLUMN gold.audit_log.action IS 'What was done (properties.action).';
COMMENT ON COLUMN gold.audit_log.outcome IS 'How it ended (properties.outcome); success when not given.';
COMMENT ON COLUMN gold.audit_log.user_id IS 'The user the event belongs to; NULL when not given.';
COMMENT ON COLUMN gold.audit_log.source IS 'Where the event came from; NULL when not given.';
COMMENT ON COLUMN gold.audit_log.properties IS 'All event properties as sent (JSON object).';
COMMENT ON COLUMN gold.audit_log.received_at IS 'When the event API received the event; NULL when unknown.';
COMMENT ON COLUMN gold.audit_log.load_id IS 'Lineage: the load that wrote this row (pipeline.loads.load_id).';
COMMENT ON COLUMN gold.audit_log.loaded_at IS 'When the row was written to the warehouse.';

------------------------------------------------------------------------------
-- Marts: one day at a time, replaced as a whole by NightlyAggregation.
------------------------------------------------------------------------------

CREATE TABLE gold.daily_product_metrics (
  day          date        NOT NULL,
  event_type   text        NOT NULL,
  events       bigint      NOT NULL,
  unique_users bigint      NOT NULL,
  built_at     timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (day, event_type)
);
COMMENT ON TABLE gold.daily_product_metrics IS
  'Product analytics per day and event type, over every event type. Built from gold.events by NightlyAggregation.';
COMMENT ON COLUMN gold.daily_product_metrics.day IS 'Calendar day of occurred_at in the aggregation time zone (UTC unless configured).';
COMMENT ON COLUMN gold.daily_product_metrics.event_type IS 'Event type.';
COMMENT ON COLUMN gold.daily_product_metrics.events IS 'Number of events of this type that day.';
COMMENT ON COLUMN gold.daily_product_metrics.unique_users IS 'Number of distinct user_id among them (anonymous events not counted).';
COMMENT ON COLUMN gold.daily_product_metrics.built_at IS 'When this row was computed.';

CREATE TABLE gold.daily_revenue (
  day          date          NOT NULL,
  currency     char(3)       NOT NULL,
  payments     bigint        NOT NULL,
  gross        numeric(28,6) NOT NULL,
  refunds      numeric(28,6) NOT NULL,
  net          numeric(28,6) NOT NULL,
  refund_count bigint        NOT NULL,
  built_at     timestamptz   NOT NULL DEFAULT now(),
  PRIMARY KEY (day, currency)
);
COMMENT ON TABLE gold.daily_revenue IS
  'Revenue per day and currency, exact decimals, built from gold.payments. Amounts are never converted between currencies.';
COMMENT ON COLUMN gold.daily_revenue.day IS 'Calendar day of occurred_at in the aggregation time zone (UTC unless configured).';
COMMENT ON COLUMN gold.daily_revenue.currency IS 'ISO 4217 currency code.';
COMMENT ON COLUMN gold.daily_revenue.payments IS 'Number of payment.* events other than payment.refunded.';
COMMENT ON COLUMN gold.daily_revenue.gross IS 'Sum of the amounts of those payments.';
COMMENT ON COLUMN gold.daily_revenue.refunds IS 'Sum of the amounts of payment.refunded events (positive).';
COMMENT ON COLUMN gold.daily_revenue.net IS 'gross - refunds (negative when refunds exceed payments).';
COMMENT ON COLUMN gold.daily_revenue.refund_count IS 'Number of payment.refunded events.';
COMMENT ON COLUMN gold.daily_revenue.built_at IS 'When this row was computed.';

CREATE TABLE gold.daily_audit_summary (
  day      date        NOT NULL,
  actor    text        NOT NULL,
  action   text        NOT NULL,
  outcome  text        NOT NULL,
  events   bigint      NOT NULL,
  built_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (day, actor, action, outcome)
);
COMMENT ON TABLE gold.daily_audit_summary IS
  'Audit events per day, actor, action and outcome, built from gold.audit_log.';
COMMENT ON COLUMN gold.daily_audit_summary.day IS 'Calendar day of occurred_at in the aggregation time zone (UTC unless configured).';
COMMENT ON COLUMN gold.daily_audit_summary.actor IS 'Who acted (properties.actor).';
COMMENT ON COLUMN gold.daily_audit_summary.action IS 'What was done (properties.action).';
COMMENT ON COLUMN gold.daily_audit_summary.outcome IS 'properties.outcome, success when not given.';
COMMENT ON COLUMN gold.daily_audit_summary.events IS 'Number of audit events.';
COMMENT ON COLUMN gold.daily_audit_summary.built_at IS 'When this row was computed.';

------------------------------------------------------------------------------
-- Pipeline metadata
------------------------------------------------------------------------------

CREATE TABLE pipeline.loads (
  load_id           bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  kind              text        NOT NULL CHECK (kind IN ('live', 'backfill')),
  source_keys       text[]      NOT NULL DEFAULT '{}',
  topic             text,
  day_from          date,
  day_to            date,
  time_zone         text,
  rows_seen         bigint      NOT NULL DEFAULT 0,
  rows_inserted     bigint      NOT NULL DEFAULT 0,
  rows_duplicate    bigint      NOT NULL DEFAULT 0,
  rows_out_of_range bigint      NOT NULL DEFAULT 0,
  rows_deleted      bigint      NOT NULL DEFAULT 0,
  started_at        timestamptz NOT NULL DEFAULT clock_timestamp(),
  finished_at       timestamptz
);
CREATE INDEX loads_started_at_idx ON pipeline.loads (started_at);
COMMENT ON TABLE pipeline.loads IS
  'Lineage: one row per committed load into gold (live stream batch or backfill of whole days).';
COMMENT ON COLUMN pipeline.loads.load_id IS 'Load id, stored in gold.*.load_id of every row the load wrote.';
COMMENT ON COLUMN pipeline.loads.kind IS 'live: a stream batch (upsert on event_id); backfill: whole days replaced.';
COMMENT ON COLUMN pipeline.loads.source_keys IS 'Object keys in the datalake bucket the rows were read from (bronze or silver).';
COMMENT ON COLUMN pipeline.loads.topic IS 'Live loads: the Kafka topic whose offsets were stored with the load.';
COMMENT ON COLUMN pipeline.loads.day_from IS 'Backfills: first replaced day (inclusive).';
COMMENT ON COLUMN pipeline.loads.day_to IS 'Backfills: last replaced day (inclusive).';
COMMENT ON COLUMN pipeline.loads.time_zone IS 'Backfills: the time zone the days are in (IANA name).';
COMMENT ON COLUMN pipeline.loads.rows_seen IS 'Rows offered to the load.';
COMMENT ON COLUMN pipeline.loads.rows_inserted IS 'Rows inserted into gold.events.';
COMMENT ON COLUMN pipeline.loads.rows_duplicate IS 'Rows skipped because their event_id was already in gold.events or repeated in the batch.';
COMMENT ON COLUMN pipeline.loads.rows_out_of_range IS 'Backfills: rows skipped because they occurred outside the replaced days.';
COMMENT ON COLUMN pipeline.loads.rows_deleted IS 'Backfills: gold.events rows deleted from the replaced days before loading.';
COMMENT ON COLUMN pipeline.loads.started_at IS 'When the load transaction started.';
COMMENT ON COLUMN pipeline.loads.finished_at IS 'When the load finished (just before commit).';

CREATE TABLE pipeline.stream_offsets (
  topic       text        NOT NULL,
  partition   integer     NOT NULL,
  next_offset bigint      NOT NULL CHECK (next_offset >= 0),
  updated_at  timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (topic, partition)
);
COMMENT ON TABLE pipeline.stream_offsets IS
  'The stream''s position: per topic partition, the offset of the next record to load. Written in the same transaction as the gold rows, so gold and offsets never disagree; never moves backwards.';
COMMENT ON COLUMN pipeline.stream_offsets.topic IS 'Kafka topic.';
COMMENT ON COLUMN pipeline.stream_offsets.partition IS 'Partition of the topic.';
COMMENT ON COLUMN pipeline.stream_offsets.next_offset IS 'Offset of the first record not yet loaded into gold.';
COMMENT ON COLUMN pipeline.stream_offsets.updated_at IS 'When a load last confirmed this offset.';

------------------------------------------------------------------------------
-- bi_reader: read-only access to gold for Metabase, Looker and friends.
-- Roles belong to the whole server, so several databases (or two processes)
-- may race to create it: tolerate that.
------------------------------------------------------------------------------

DO $$
BEGIN
  IF NOT EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = 'bi_reader') THEN
    BEGIN
      CREATE ROLE bi_reader LOGIN;
    EXCEPTION WHEN duplicate_object OR unique_violation THEN
      NULL; -- created meanwhile by a migration of another database on this server
    END;
  END IF;
END
$$;

GRANT USAGE ON SCHEMA gold TO bi_reader;
GRANT SELECT ON ALL TABLES IN SCHEMA gold TO bi_reader;
ALTER DEFAULT PRIVILEGES IN SCHEMA gold GRANT SELECT ON TABLES TO bi_reader;
REVOKE ALL ON SCHEMA pipeline FROM bi_reader;
REVOKE ALL ON ALL TABLES IN SCHEMA pipeline FROM bi_reader;
REVOKE ALL ON SCHEMA public FROM bi_reader;
