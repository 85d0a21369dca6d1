-- 004_slo: what the SLOMonitor workflow measures and remembers. Per arrival
-- hour, what the event API accepted and what the live stream counted through
-- its layers (the completeness SLO compares them); per live load, how fresh
-- its rows were (the freshness SLO); every SLO measurement, kept the insight
-- resource's retencao_dias; and alerts, one row per incident. Never edit
-- after release: add a new file.

-- A live load's freshness, measured by LoadLive just before commit: the p95
-- and max of (commit − received_at) over its rows, and the newest
-- received_at it made visible. The freshness SLO and the gold freshness
-- gauge read these instead of scanning gold.events.
ALTER TABLE pipeline.loads
  ADD COLUMN latency_p95_ms     bigint,
  ADD COLUMN latency_max_ms     bigint,
  ADD COLUMN newest_received_at timestamptz;
COMMENT ON COLUMN pipeline.loads.latency_p95_ms IS 'Live loads: p95 over the rows of (commit − received_at), in ms: the 202-to-gold latency.';
COMMENT ON COLUMN pipeline.loads.latency_max_ms IS 'Live loads: the largest (commit − received_at) of the load, in ms.';
COMMENT ON COLUMN pipeline.loads.newest_received_at IS 'Live loads: the newest received_at among the rows.';
CREATE INDEX loads_live_finished_idx ON pipeline.loads (finished_at) WHERE kind = 'live';

-- Counting gold rows per arrival hour: a BRIN index costs the loads almost
-- nothing (rows arrive roughly in received_at order) and turns the count of
-- an hour into a read of that hour's pages.
CREATE INDEX events_received_at_brin ON gold.events USING brin (received_at);

CREATE TABLE pipeline.api_accepted (
  hour       timestamptz NOT NULL,
  instance   text        NOT NULL,
  accepted   bigint      NOT NULL CHECK (accepted >= 0),
  updated_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (hour, instance),
  CHECK (date_trunc('hour', hour AT TIME ZONE 'UTC') = hour AT TIME ZONE 'UTC')
);
COMMENT ON TABLE pipeline.api_accepted IS
  'Events the event API answered 202 for, per received_at hour (UTC) and API process. Each process upserts its own running count every few seconds; the hour''s total is the sum over instances.';
COMMENT ON COLUMN pipeline.api_accepted.hour IS 'Hour of received_at (UTC).';
COMMENT ON COLUMN pipeline.api_accepted.instance IS 'The API process: host, pid and start time.';
COMMENT ON COLUMN pipeline.api_accepted.accepted IS 'Events accepted in that hour by that process (running count).';

CREATE TABLE pipeline.stream_arrivals (
  topic       text        NOT NULL,
  hour        timestamptz NOT NULL,
  records     bigint      NOT NULL DEFAULT 0,
  quarantined bigint      NOT NULL DEFAULT 0,
  cleaned     bigint      NOT NULL DEFAULT 0,
  inserted    bigint      NOT NULL DEFAULT 0,
  updated_at  timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (topic, hour)
);
COMMENT ON TABLE pipeline.stream_arrivals IS
  'The live stream''s accounting per arrival hour (UTC; received_at of cleaned records, Kafka timestamp of quarantined ones), added in the transaction of the gold load that commits the offsets, so each record counts exactly once.';
COMMENT ON COLUMN pipeline.stream_arrivals.records IS 'Records consumed from Kafka and written to bronze.';
COMMENT ON COLUMN pipeline.stream_arrivals.quarantined IS 'Records that could not be cleaned (pipeline.quarantine).';
COMMENT ON COLUMN pipeline.stream_arrivals.cleaned IS 'Records cleaned into silver rows, repeated event_ids included.';
COMMENT ON COLUMN pipeline.stream_arrivals.inserted IS 'Rows that became new gold.events rows; cleaned − inserted are repeated event_ids (client retries).';

CREATE TABLE pipeline.slo_measurements (
  slo         text             NOT NULL CHECK (slo IN ('freshness', 'completeness', 'error_rate')),
  measured_at timestamptz      NOT NULL,
  value       double precision NOT NULL,
  objective   double precision NOT NULL,
  good        boolean          NOT NULL,
  detail      text             NOT NULL DEFAULT '',
  PRIMARY KEY (slo, measured_at)
);
COMMENT ON TABLE pipeline.slo_measurements IS
  'One row per SLO per evaluation (SLOMonitor, every minute). good = value within objective. Kept retencao_dias days.';
COMMENT ON COLUMN pipeline.slo_measurements.value IS 'freshness: seconds (p95 of 202-to-gold, or the age of the oldest record waiting in Kafka when larger); completeness: events missing in hours past the allowed lateness; error_rate: quarantined share of the records of the last hour.';
COMMENT ON COLUMN pipeline.slo_measurements.objective IS 'The bound the value must stay within.';
COMMENT ON COLUMN pipeline.slo_measurements.detail IS 'What was measured, for people: where data stopped, which layer misses events.';

CREATE TABLE pipeline.alerts (
  alert_id      bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  slo           text        NOT NULL,
  severity      text        NOT NULL CHECK (severity IN ('page', 'ticket')),
  opened_at     timestamptz NOT NULL,
  resolved_at   timestamptz,
  summary       text        NOT NULL,
  burn_short    double precision NOT NULL,
  burn_long     double precision NOT NULL,
  notified_at   timestamptz,
  notify_error  text,
  CHECK (resolved_at IS NULL OR resolved_at >= opened_at)
);
CREATE UNIQUE INDEX alerts_one_open_per_slo ON pipeline.alerts (slo) WHERE resolved_at IS NULL;
COMMENT ON TABLE pipeline.alerts IS
  'SLO incidents: an alert opens when the error budget burns too fast (multiwindow burn rate) and stays open, without firing again, until the SLO is met over the short window. At most one open alert per SLO.';
COMMENT ON COLUMN pipeline.alerts.severity IS 'page: fast burn (14.4× over 1h and 5m); ticket: slow burn (6× over 6h and 30m).';
COMMENT ON COLUMN pipeline.alerts.summary IS 'What broke and where, as logged and sent to the webhook.';
COMMENT ON COLUMN pipeline.alerts.burn_short IS 'Burn rate over the short window when the alert opened.';
COMMENT ON COLUMN pipeline.alerts.burn_long IS 'Burn rate over the long window when the alert opened.';
COMMENT ON COLUMN pipeline.alerts.notified_at IS 'When the webhook accepted the alert; NULL without a webhook or while it fails.';
COMMENT ON COLUMN pipeline.alerts.notify_error IS 'The webhook''s last failure.';
