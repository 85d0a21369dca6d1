package status_test

import (
	"context"
	"testing"

	"github.com/acme/pipeline/internal/status"
	"github.com/acme/pipeline/internal/streamtest"
	"github.com/acme/pipeline/warehouse"
)

// emptyPipeline is a fresh warehouse, a status source on it without Kafka
// (lag unknown, the rest shows) and its first snapshot, which the section
// tests check is empty before they add what they show.
func emptyPipeline(t *testing.T) (*warehouse.Store, status.Source, status.Snapshot) {
	t.Helper()
	store, _ := streamtest.Database(t)
	src := status.Source{DB: store.Pool()}
	snap, err := src.Snapshot(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return store, src, snap
}
