package silver

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/apache/iceberg-go/table"
)

// The SQL catalog of iceberg-go v0.7.0 checks a commit's requirements
// itself and returns a lost race as a plain error ("requirement failed:
// branch "main" has changed", or "… was created concurrently" on a table
// without a snapshot), not wrapped as table.ErrCommitFailed, so the
// library's own refresh-and-replay (commit.retry.*) never fires: measured
// here, 29 of 40 concurrent commits failed with 10 retries set
// (apache/iceberg-go#1079). The wrapper below maps those errors to
// ErrCommitFailed; the library then rebases the snapshot on the new head
// without rewriting data (40 of 40, exact counts).

// conflictCatalog is the table's catalog, with lost races reported as
// table.ErrCommitFailed.
type conflictCatalog struct{ table.CatalogIO }

func (c conflictCatalog) CommitTable(ctx context.Context, ident table.Identifier, reqs []table.Requirement, upd []table.Update) (table.Metadata, string, error) {
	m, loc, err := c.CatalogIO.CommitTable(ctx, ident, reqs, upd)
	if err != nil && !errors.Is(err, table.ErrCommitFailed) && isConflict(err) {
		err = fmt.Errorf("%w: %w", table.ErrCommitFailed, err)
	}
	return m, loc, err
}

// retrying returns t bound to the conflict-mapping catalog.
func retrying(t *table.Table, cat table.CatalogIO) *table.Table {
	return table.New(t.Identifier(), t.Metadata(), t.MetadataLocation(), t.FS, conflictCatalog{cat})
}

// isConflict reports whether err is a lost optimistic-concurrency race,
// safe to retry on the reloaded table.
func isConflict(err error) bool {
	if err == nil {
		return false
	}
	if errors.Is(err, table.ErrCommitFailed) {
		return true
	}
	s := err.Error()
	return strings.Contains(s, "requirement failed") &&
		(strings.Contains(s, "has changed") || strings.Contains(s, "created concurrently"))
}
