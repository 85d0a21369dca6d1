-- 010_lost_offsets: offsets the stream never read because the topic's
-- retention deleted them first. Each row is one gap, found when the stream
-- asked for an offset below the partition's earliest retained one. Never edit
-- after release: add a new file.

CREATE TABLE pipeline.lost_offsets (
  topic        text        NOT NULL,
  partition    integer     NOT NULL CHECK (partition >= 0),
  first_offset bigint      NOT NULL CHECK (first_offset >= 0),
  last_offset  bigint      NOT NULL,
  detected_at  timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (topic, partition, first_offset),
  CHECK (last_offset >= first_offset)
);
COMMENT ON TABLE pipeline.lost_offsets IS
  'Records the stream never read: retention deleted offsets first_offset..last_offset of the partition before the stream reached them. They are in no layer; the producers or the topic''s retention need a look.';
COMMENT ON COLUMN pipeline.lost_offsets.first_offset IS 'The first offset lost: where the stream was.';
COMMENT ON COLUMN pipeline.lost_offsets.last_offset IS 'The last offset lost: the one before the earliest retained offset.';
COMMENT ON COLUMN pipeline.lost_offsets.detected_at IS 'When the stream found the gap.';
