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
	if err == nil && (len(recs) != obj.Records || recs[0].Offset != obj.First || recs[len(recs)-1].Offset != obj.Last) {
		err = fmt.Errorf("holds %d records, index says %d records at offsets %d..%d", len(recs), obj.Records, obj.First, obj.Last)
	}
	if err != nil {
		return nil, temporal.NewNonRetryableApplicationError(
			fmt.Sprintf("bronze object %s (partition %d offsets %d..%d) is corrupt: %v", obj.Key, obj.Partition, obj.First, obj.Last, err),
			ErrTypeBronzeCorrupt, err)
	}
	return recs, nil
}
