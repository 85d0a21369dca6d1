package silver

import (
	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/decimal128"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/iceberg-go"
	"github.com/google/uuid"

	"github.com/acme/pipeline/event"
)

// Schema is silver.events' schema, the documented one. The types are
// those outside readers handle: event_id a string (an Iceberg uuid reaches
// some readers as raw bytes), timestamps with time zone in microseconds
// (UTC), amounts decimal(18,6), properties a JSON string; the Kafka lineage
// says where each row was read from.
func Schema() *iceberg.Schema {
	ts := iceberg.PrimitiveTypes.TimestampTz
	str := iceberg.PrimitiveTypes.String
	return iceberg.NewSchema(0,
		iceberg.NestedField{ID: 1, Name: "event_id", Type: str, Required: true, Doc: "the event's id (UUID), unique in the table"},
		iceberg.NestedField{ID: 2, Name: "type", Type: str, Required: true},
		iceberg.NestedField{ID: 3, Name: "occurred_at", Type: ts, Required: true, Doc: "event time, UTC; the partition"},
		iceberg.NestedField{ID: 4, Name: "received_at", Type: ts, Required: true, Doc: "when the event API accepted it, UTC"},
		iceberg.NestedField{ID: 5, Name: "source", Type: str},
		iceberg.NestedField{ID: 6, Name: "user_id", Type: str},
		iceberg.NestedField{ID: 7, Name: "properties", Type: str, Required: true, Doc: "compact JSON object"},
		iceberg.NestedField{ID: 8, Name: "amount", Type: iceberg.DecimalTypeOf(18, 6), Doc: "payments only"},
		iceberg.NestedField{ID: 9, Name: "currency", Type: str, Doc: "payments only, ISO 4217"},
		iceberg.NestedField{ID: 10, Name: "actor", Type: str, Doc: "audit events only"},
		iceberg.NestedField{ID: 11, Name: "action", Type: str, Doc: "audit events only"},
		iceberg.NestedField{ID: 12, Name: "outcome", Type: str, Doc: "audit events only"},
		iceberg.NestedField{ID: 13, Name: "kafka_partition", Type: iceberg.PrimitiveTypes.Int32, Required: true},
		iceberg.NestedField{ID: 14, Name: "kafka_offset", Type: iceberg.PrimitiveTypes.Int64, Required: true},
		iceberg.NestedField{ID: 15, Name: "kafka_incarnation", Type: iceberg.PrimitiveTypes.Int32, Required: true,
			Doc: "the topic's incarnation (1 is the first)"},
	)
}

// Spec partitions by hour(occurred_at): the unit of compaction, of late
// events and of readers' filters.
func Spec() iceberg.PartitionSpec {
	return iceberg.NewPartitionSpec(iceberg.PartitionField{
		SourceIDs: []int{3}, FieldID: 1000, Name: "occurred_at_hour", Transform: iceberg.HourTransform{},
	})
}

// TableProperties are set when the table is created: v2 metadata, zstd,
// manifests merged on commit (fast append adds one manifest per commit
// otherwise), old metadata files deleted, 128 MiB files, and commit retries
// that conflict.go makes work with the SQL catalog.
func TableProperties() iceberg.Properties {
	return iceberg.Properties{
		"format-version":                             "2",
		"write.parquet.compression-codec":            "zstd",
		"commit.manifest-merge.enabled":              "true",
		"write.metadata.delete-after-commit.enabled": "true",
		"write.metadata.previous-versions-max":       "50",
		"write.target-file-size-bytes":               "134217728",
		"commit.retry.num-retries":                   "10",
		"commit.retry.min-wait-ms":                   "20",
		"commit.retry.max-wait-ms":                   "500",
	}
}

// arrowSchema matches Schema: required columns are not nullable.
func arrowSchema() *arrow.Schema {
	ts := &arrow.TimestampType{Unit: arrow.Microsecond, TimeZone: "UTC"}
	str := arrow.BinaryTypes.String
	return arrow.NewSchema([]arrow.Field{
		{Name: "event_id", Type: str},
		{Name: "type", Type: str},
		{Name: "occurred_at", Type: ts},
		{Name: "received_at", Type: ts},
		{Name: "source", Type: str, Nullable: true},
		{Name: "user_id", Type: str, Nullable: true},
		{Name: "properties", Type: str},
		{Name: "amount", Type: &arrow.Decimal128Type{Precision: 18, Scale: 6}, Nullable: true},
		{Name: "currency", Type: str, Nullable: true},
		{Name: "actor", Type: str, Nullable: true},
		{Name: "action", Type: str, Nullable: true},
		{Name: "outcome", Type: str, Nullable: true},
		{Name: "kafka_partition", Type: arrow.PrimitiveTypes.Int32},
		{Name: "kafka_offset", Type: arrow.PrimitiveTypes.Int64},
		{Name: "kafka_incarnation", Type: arrow.PrimitiveTypes.Int32},
	}, nil)
}

// isPayment says whether a row carries an amount.
func isPayment(r *event.Row) bool { return r.Currency != "" }

// toArrow builds one record batch of rows. The caller releases it.
func toArrow(rows []event.Row) arrow.RecordBatch {
	b := array.NewRecordBuilder(memory.DefaultAllocator, arrowSchema())
	defer b.Release()
	str := func(i int) *array.StringBuilder { return b.Field(i).(*array.StringBuilder) }
	opt := func(i int, s string) {
		if s == "" {
			str(i).AppendNull()
		} else {
			str(i).Append(s)
		}
	}
	for i := range rows {
		r := &rows[i]
		str(0).Append(uuid.UUID(r.EventID).String())
		str(1).Append(r.Type)
		b.Field(2).(*array.TimestampBuilder).Append(arrow.Timestamp(r.OccurredAt))
		b.Field(3).(*array.TimestampBuilder).Append(arrow.Timestamp(r.ReceivedAt))
		opt(4, r.Source)
		opt(5, r.UserID)
		str(6).Append(r.Properties)
		if isPayment(r) {
			b.Field(7).(*array.Decimal128Builder).Append(decimal128.FromI64(r.AmountMicros))
		} else {
			b.Field(7).(*array.Decimal128Builder).AppendNull()
		}
		opt(8, r.Currency)
		opt(9, r.Actor)
		opt(10, r.Action)
		opt(11, r.Outcome)
		b.Field(12).(*array.Int32Builder).Append(r.Partition)
		b.Field(13).(*array.Int64Builder).Append(r.Offset)
		b.Field(14).(*array.Int32Builder).Append(max(r.Incarnation, 1))
	}
	return b.NewRecordBatch()
}
