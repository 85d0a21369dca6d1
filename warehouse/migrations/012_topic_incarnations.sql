-- 012_topic_incarnations: a topic deleted and created again under the same
-- name numbers its records from offset 0 again. Offsets, the lake's index and
-- gold's lineage therefore belong to one incarnation of the topic: its
-- number here, Kafka's topic id in pipeline.topic_incarnations. Everything
-- recorded before this migration belongs to incarnation 1, the column
-- default, so existing rows need no rewrite (a constant default is a catalog
-- change only). The stream adopts a topic it has no incarnation for as
-- incarnation 1; `pipeline incarnation --start-new` retires the current one
-- and starts the next. Never edit after release: add a new file.

CREATE TABLE pipeline.topic_incarnations (
  topic         text        NOT NULL,
  incarnation   integer     NOT NULL CHECK (incarnation >= 1),
  topic_id      text        CHECK (topic_id ~ '^[A-Za-z0-9_-]{22}$'),
  first_seen    timestamptz NOT NULL DEFAULT now(),
  retired_at    timestamptz,
  retired_by    text,
  final_offsets jsonb,
  PRIMARY KEY (topic, incarnation),
  UNIQUE (topic, topic_id),
  CHECK ((retired_at IS NULL) = (final_offsets IS NULL))
);
CREATE UNIQUE INDEX topic_incarnations_current_idx ON pipeline.topic_incarnations (topic) WHERE retired_at IS NULL;
COMMENT ON TABLE pipeline.topic_incarnations IS
  'Incarnations of each streamed topic: the topic as Kafka knows it between its creation and its deletion. One is current (retired_at NULL) and streamed; retired ones keep their bronze, silver, quarantine and gold rows, readable by backfills.';
COMMENT ON COLUMN pipeline.topic_incarnations.topic IS 'Kafka topic name.';
COMMENT ON COLUMN pipeline.topic_incarnations.incarnation IS 'Number of the incarnation, 1 for the first the pipeline saw; the incarnation column of the stream''s tables and gold.events.kafka_incarnation refer to it.';
COMMENT ON COLUMN pipeline.topic_incarnations.topic_id IS 'Kafka''s topic id as its tools print it (kafka-topics.sh --describe; URL-safe base64); NULL when the brokers do not report topic ids (Kafka before 2.8).';
COMMENT ON COLUMN pipeline.topic_incarnations.first_seen IS 'When the pipeline adopted or started the incarnation.';
COMMENT ON COLUMN pipeline.topic_incarnations.retired_at IS 'When an operator retired it (pipeline incarnation --start-new); NULL for the current incarnation.';
COMMENT ON COLUMN pipeline.topic_incarnations.retired_by IS 'Who retired it: the command and the operating-system user.';
COMMENT ON COLUMN pipeline.topic_incarnations.final_offsets IS 'The stream''s offsets when it was retired, {"partition": next_offset}: where gold''s rows of the incarnation end.';

ALTER TABLE pipeline.stream_offsets ADD COLUMN incarnation integer NOT NULL DEFAULT 1;
COMMENT ON COLUMN pipeline.stream_offsets.incarnation IS 'The topic incarnation (pipeline.topic_incarnations) the offset belongs to: always the current one, since starting a new incarnation moves the old offsets to its final_offsets.';

-- The old primary keys let a new incarnation's object or record at an offset
-- pass for the old one's: they take the incarnation.
ALTER TABLE pipeline.bronze_objects ADD COLUMN incarnation integer NOT NULL DEFAULT 1,
  DROP CONSTRAINT bronze_objects_pkey, ADD PRIMARY KEY (topic, incarnation, partition, start_offset);
COMMENT ON COLUMN pipeline.bronze_objects.incarnation IS 'The topic incarnation (pipeline.topic_incarnations) the records were read from; keys of incarnations after the first end in -iN.';

ALTER TABLE pipeline.silver_objects ADD COLUMN incarnation integer NOT NULL DEFAULT 1;
COMMENT ON COLUMN pipeline.silver_objects.incarnation IS 'The topic incarnation the rows were read from: a file holds rows of one incarnation, and its offset range is in that incarnation.';

ALTER TABLE pipeline.quarantine ADD COLUMN incarnation integer NOT NULL DEFAULT 1,
  DROP CONSTRAINT quarantine_pkey, ADD PRIMARY KEY (topic, incarnation, partition, record_offset);
COMMENT ON COLUMN pipeline.quarantine.incarnation IS 'The topic incarnation the record was read from.';

ALTER TABLE pipeline.lost_offsets ADD COLUMN incarnation integer NOT NULL DEFAULT 1,
  DROP CONSTRAINT lost_offsets_pkey, ADD PRIMARY KEY (topic, incarnation, partition, first_offset);
COMMENT ON COLUMN pipeline.lost_offsets.incarnation IS 'The topic incarnation whose offsets were lost.';

ALTER TABLE pipeline.rebuild_sources ADD COLUMN incarnation integer NOT NULL DEFAULT 1;
COMMENT ON COLUMN pipeline.rebuild_sources.incarnation IS 'The topic incarnation of the object''s offsets: a rebuild replaces gold rows of that incarnation only.';

ALTER TABLE pipeline.rebuild_rows ADD COLUMN kafka_incarnation integer NOT NULL DEFAULT 1;

ALTER TABLE gold.events ADD COLUMN kafka_incarnation integer NOT NULL DEFAULT 1;
COMMENT ON COLUMN gold.events.kafka_incarnation IS 'Lineage: incarnation of the events topic the record was read from (1, unless the topic was deleted and created again; pipeline.topic_incarnations). With kafka_partition and kafka_offset it names one record.';
