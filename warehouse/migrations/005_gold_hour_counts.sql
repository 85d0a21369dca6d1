-- 005_gold_hour_counts: the completeness SLO's count of gold.events rows per
-- received_at hour, kept so that an hour is counted once an hour (or when
-- the stream has loaded more rows of it), not at every evaluation.
-- Never edit after release: add a new file.

CREATE TABLE pipeline.gold_hour_counts (
  topic         text        NOT NULL,
  hour          timestamptz NOT NULL,
  inserted_seen bigint      NOT NULL,
  gold          bigint      NOT NULL,
  counted_at    timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (topic, hour)
);
COMMENT ON TABLE pipeline.gold_hour_counts IS
  'gold.events rows received in an hour, as the completeness SLO last counted them, with the stream''s inserted tally (pipeline.stream_arrivals) at that moment: the count is redone when the tally has changed since or the count is an hour old.';
