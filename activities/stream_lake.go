package activities

import (
	"context"
	"fmt"

	"github.com/acme/pipeline/lake"
	"github.com/acme/pipeline/warehouse"
)

// What a flush writes to the lake besides bronze: the quarantine object of
// a range.

// quarantine writes a quarantine object of partition p under key (the
// cleaning rule's, QuarantineKey, or gold's refusals, GoldRefusedKey) and
// records its records.
func (a *Stream) quarantine(ctx context.Context, topic string, inc int, p int32, key string, bad []lake.Quarantined) error {
	if err := a.lake.Put(ctx, key, lake.EncodeQuarantine(bad), "application/x-ndjson"); err != nil {
		return fmt.Errorf("quarantine partition %d (%s): %w", p, key, err)
	}
	entries := make([]warehouse.QuarantineEntry, len(bad))
	for i, q := range bad {
		entries[i] = warehouse.QuarantineEntry{Topic: topic, Incarnation: inc, Partition: p, Offset: q.Record.Offset, Key: key,
			Reason: q.Reason, Errors: q.Errors, Timestamp: q.Record.Time}
	}
	if err := a.wh.RecordQuarantine(ctx, entries); err != nil {
		return fmt.Errorf("quarantine partition %d (%s): %w", p, key, err)
	}
	return nil
}
