package activities

import (
	"context"
	"errors"
	"fmt"

	"go.temporal.io/sdk/temporal"

	"github.com/acme/pipeline/lake"
	"github.com/acme/pipeline/warehouse"
)

// readBronze reads back a recorded bronze object and checks it against the
// index: the one reader of bronze, for the stream (reusing an earlier
// attempt's object) and the backfill alike.
func readBronze(ctx context.Context, lk objectStore, obj warehouse.BronzeObject) ([]lake.Record, error) {
	data, err := lk.Get(ctx, obj.Key)
	if errors.Is(err, lake.ErrNotFound) {
		return nil, temporal.NewNonRetryableApplicationError(
			fmt.Sprintf("bronze object %s (partition %d offsets %d..%d) is recorded in pipeline.bronze_objects but missing from the bucket",
				obj.Key, obj.Partition, obj.First, obj.Last), ErrTypeBronzeCorrupt, err)
	}
	if err != nil {
		return nil, fmt.Errorf("read bronze partition %d offsets %d..%d: %w", obj.Partition, obj.First, obj.Last, err)
	}
	recs, err := lake.DecodeBronze(data)
	if err == nil {
		err = checkBronze(recs, obj)
	}
	if err != nil {
		return nil, temporal.NewNonRetryableApplicationError(
			fmt.Sprintf("bronze object %s (partition %d offsets %d..%d) is corrupt: %v", obj.Key, obj.Partition, obj.First, obj.Last, err),
			ErrTypeBronzeCorrupt, err)
	}
	return recs, nil
}

// checkBronze compares an object's records with its index row: as many
// records, in increasing offsets, all within First..Last. The range may be
// wider than its records: it covers every offset its read consumed, and
// read_committed consumes transaction markers and aborted records without
// returning them, at either end or between records.
func checkBronze(recs []lake.Record, obj warehouse.BronzeObject) error {
	if len(recs) != obj.Records {
		return fmt.Errorf("holds %d records, index says %d records at offsets %d..%d", len(recs), obj.Records, obj.First, obj.Last)
	}
	prev := obj.First - 1
	for _, r := range recs {
		if r.Offset <= prev || r.Offset > obj.Last {
			return fmt.Errorf("record at offset %d is out of order or outside the index's offsets %d..%d", r.Offset, obj.First, obj.Last)
		}
		prev = r.Offset
	}
	return nil
}
