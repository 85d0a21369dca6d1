package silver

import (
	"context"
	"fmt"
	"iter"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/iceberg-go"
	"github.com/apache/iceberg-go/table"

	"github.com/acme/pipeline/event"
)

// Range is a closed range of offsets of one partition of one topic
// incarnation: lineage, as the rows' kafka_* columns hold it.
type Range struct {
	Incarnation, Partition int32
	First, Last            int64
}

// DayLineage selects the rows that occurred in [start, end) and came from
// one of ranges: what a backfill of that day replaces. Nothing else: the
// stream's rows of later offsets, and the rows of other days in the same
// ranges, stay.
func DayLineage(start, end time.Time, ranges []Range) iceberg.BooleanExpression {
	var lineage iceberg.BooleanExpression = iceberg.AlwaysFalse{}
	for _, r := range ranges {
		one := iceberg.NewAnd(
			iceberg.EqualTo(iceberg.Reference("kafka_incarnation"), max(r.Incarnation, 1)),
			iceberg.EqualTo(iceberg.Reference("kafka_partition"), r.Partition),
			iceberg.GreaterThanEqual(iceberg.Reference("kafka_offset"), r.First),
			iceberg.LessThanEqual(iceberg.Reference("kafka_offset"), r.Last))
		lineage = iceberg.NewOr(lineage, one)
	}
	return iceberg.NewAnd(
		iceberg.GreaterThanEqual(iceberg.Reference("occurred_at"), iceberg.Timestamp(start.UnixMicro())),
		iceberg.LessThan(iceberg.Reference("occurred_at"), iceberg.Timestamp(end.UnixMicro())),
		lineage)
}

// batchRows is the size of the Arrow batches streamed into a write.
const batchRows = 8192

// Overwrite replaces the rows filter selects by the rows rows() yields, in
// one snapshot carrying commit. rows is called once per attempt, so the rows
// stream (from the database, say) and memory stays bounded by a batch and
// the files being rewritten. A snapshot of the same loads in the table's
// history means an earlier attempt committed: nothing is written again.
//
// Against a stream append that commits meanwhile, the table's serializable
// isolation fails the commit when the append added rows the filter selects
// (table.ErrConflictingDataFiles): the overwrite starts again from the new
// snapshot.
func (c *Catalog) Overwrite(ctx context.Context, rows func() iter.Seq2[event.Row, error], filter iceberg.BooleanExpression, commit Commit) (AppendResult, error) {
	if len(commit.LoadIDs) == 0 {
		return AppendResult{}, fmt.Errorf("silver: an overwrite needs the load ids it carries")
	}
	props, key, err := commit.props()
	if err != nil {
		return AppendResult{}, err
	}
	res, err := c.commit(ctx, key, func(tx *table.Transaction) (bool, error) {
		rdr := array.ReaderFromIter(arrowSchema(), batches(rows()))
		defer rdr.Release()
		return true, tx.Overwrite(ctx, rdr, props, table.WithOverwriteFilter(filter))
	})
	if err != nil {
		return res, fmt.Errorf("silver: overwrite for loads %s: %w", key, err)
	}
	return res, nil
}

// batches groups rows into Arrow record batches of batchRows.
func batches(rows iter.Seq2[event.Row, error]) iter.Seq2[arrow.RecordBatch, error] {
	return func(yield func(arrow.RecordBatch, error) bool) {
		buf := make([]event.Row, 0, batchRows)
		for r, err := range rows {
			if err != nil {
				yield(nil, err)
				return
			}
			buf = append(buf, r)
			if len(buf) == batchRows {
				if !yield(toArrow(buf), nil) {
					return
				}
				buf = buf[:0]
			}
		}
		if len(buf) > 0 {
			yield(toArrow(buf), nil)
		}
	}
}
