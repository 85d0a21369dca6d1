package activities

import (
	"context"
	"os"

	"github.com/acme/pipeline/event"
	"github.com/acme/pipeline/internal/kafkaread"
	"github.com/acme/pipeline/lake"
	"github.com/acme/pipeline/warehouse"
)

// What the live stream's activities (Stream) use of the lake, the warehouse
// and Kafka, each as the small interface of one concern, so that the flush
// logic can be unit-tested against in-memory fakes (flush_unit_test.go)
// while NewStream keeps building the real clients, and the real-component
// tests stay the integration tier. Only the methods Stream calls are here.

// objectStore is what the stream keeps whole in memory in the lake: bronze,
// quarantine and its own silver files are Put and Get as bytes, and orphans
// Deleted. readBronze takes only this, so the backfill shares it.
type objectStore interface {
	Put(ctx context.Context, key string, body []byte, contentType string) error
	Get(ctx context.Context, key string) ([]byte, error)
	Delete(ctx context.Context, keys ...string) error
}

// fileStore is what hour compaction streams through local temporary files
// rather than memory: its inputs and outputs can be larger than a flush.
type fileStore interface {
	PutFile(ctx context.Context, key string, f *os.File, contentType string) error
	GetFile(ctx context.Context, key, dir string) (*os.File, error)
}

// streamLake is the lake as Stream holds it.
type streamLake interface {
	objectStore
	fileStore
}

// offsetStore is the stream's position in pipeline.stream_offsets (written
// with each gold load, see goldLoader) and the record of offsets it skipped
// because retention deleted them first: what a starting or retried cycle
// resumes from, and the trace a skip leaves.
type offsetStore interface {
	StreamOffsets(ctx context.Context, topic string) (map[int32]int64, error)
	RecordLostOffsets(ctx context.Context, topic string, partition int32, first, last int64) error
}

// goldLoader loads a flush's rows and offsets into gold in one transaction,
// and finds the rows gold refuses when a load fails on a record.
type goldLoader interface {
	LoadLive(ctx context.Context, in warehouse.LoadInput) (warehouse.LoadResult, error)
	FindRefused(ctx context.Context, rows []event.Row) ([]warehouse.RefusedRow, error)
}

// bronzeIndex is pipeline.bronze_objects: the object recorded at an offset
// is what a retried flush reuses instead of reading Kafka again, and the
// first attempt to record one wins.
type bronzeIndex interface {
	BronzeAt(ctx context.Context, topic string, incarnation int, partition int32, offset int64) (warehouse.BronzeObject, bool, error)
	RecordBronze(ctx context.Context, o warehouse.BronzeObject) (warehouse.BronzeObject, error)
}

// quarantineIndex is pipeline.quarantine: the records cleaning or gold
// refused, by offset and object.
type quarantineIndex interface {
	RecordQuarantine(ctx context.Context, qs []warehouse.QuarantineEntry) error
}

// incarnationStore is pipeline.topic_incarnations: which incarnation of a
// topic the stream streams, so that a topic deleted and created again is
// caught before its offsets are taken for the old one's.
type incarnationStore interface {
	CurrentIncarnation(ctx context.Context, topic string) (warehouse.Incarnation, bool, error)
	AdoptIncarnation(ctx context.Context, topic, topicID string) (warehouse.Incarnation, error)
	LearnTopicID(ctx context.Context, topic string, incarnation int, topicID string) (bool, error)
	IncarnationUsage(ctx context.Context, in warehouse.Incarnation) (warehouse.IncarnationUsage, error)
}

// streamWarehouse is the warehouse as Stream holds it.
type streamWarehouse interface {
	offsetStore
	goldLoader
	bronzeIndex
	quarantineIndex
	incarnationStore
}

// kafkaReader is the stream's side of Kafka: a partition's records read at
// an explicit offset (each partition has one writer, which holds its
// position), its bounds, the topic's partitions and id, and the
// consumer-group commit that only shows the position to standard tools.
type kafkaReader interface {
	Read(ctx context.Context, req kafkaread.ReadRequest) (kafkaread.Batch, error)
	Bounds(ctx context.Context, topic string, partitions []int32) (map[int32]kafkaread.Bounds, error)
	Partitions(ctx context.Context, topic string) ([]int32, error)
	TopicID(ctx context.Context, topic string) (kafkaread.TopicID, error)
	Commit(ctx context.Context, group, topic string, offsets map[int32]int64) error
}

// The real clients NewStream builds satisfy them.
var (
	_ streamLake      = (*lake.Store)(nil)
	_ streamWarehouse = (*warehouse.Store)(nil)
	_ kafkaReader     = (*kafkaread.Client)(nil)
)
