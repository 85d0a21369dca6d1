package warehouse

import (
	"context"
	"encoding/json"
	"fmt"
	"time"
)

// Catalog statuses (pipeline.catalog.status).
const (
	CatalogApplied = "applied"
	CatalogFailed  = "failed"
)

// CatalogRow is one provisioned resource in pipeline.catalog.
type CatalogRow struct {
	Kind   string          // the resource's tipo
	Name   string          // the resource's nome
	Config json.RawMessage // the config last applied (or attempted, when never applied)
	Status string          // CatalogApplied or CatalogFailed
	// AppliedAt is when Config was last applied; zero when it never was.
	AppliedAt time.Time
	Error     string // the last failure; empty after a success
}

// Applied reports whether the resource's Config is in place: it was applied
// at least once (a later failed update leaves the earlier config recorded).
func (r CatalogRow) Applied() bool { return !r.AppliedAt.IsZero() }

// Catalog returns every row of pipeline.catalog, ordered by kind and name. A
// database whose migrations have not created the catalog yet has an empty one.
func (s *Store) Catalog(ctx context.Context) ([]CatalogRow, error) {
	rows, err := s.pool.Query(ctx, `SELECT kind, name, config, status, applied_at, coalesce(error, '')
		FROM pipeline.catalog ORDER BY kind, name`)
	if err != nil {
		if isUndefinedTable(err) {
			return nil, nil
		}
		return nil, fmt.Errorf("read pipeline.catalog: %w", err)
	}
	defer rows.Close()
	var out []CatalogRow
	for rows.Next() {
		var r CatalogRow
		var cfg []byte
		var at *time.Time
		if err := rows.Scan(&r.Kind, &r.Name, &cfg, &r.Status, &at, &r.Error); err != nil {
			return nil, fmt.Errorf("read pipeline.catalog: %w", err)
		}
		r.Config = json.RawMessage(cfg)
		if at != nil {
			r.AppliedAt = *at
		}
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read pipeline.catalog: %w", err)
	}
	return out, nil
}

// RecordApplied records that resource kind/name now runs with config.
func (s *Store) RecordApplied(ctx context.Context, kind, name string, config json.RawMessage) error {
	_, err := s.pool.Exec(ctx, `INSERT INTO pipeline.catalog (kind, name, config, status, applied_at, error)
		VALUES ($1, $2, $3, 'applied', now(), NULL)
		ON CONFLICT (kind, name) DO UPDATE SET config = EXCLUDED.config, status = 'applied',
		  applied_at = now(), error = NULL, updated_at = now()`, kind, name, string(config))
	if err != nil {
		return fmt.Errorf("record %s %s in pipeline.catalog: %w", kind, name, err)
	}
	return nil
}

// RecordFailed records that applying config to resource kind/name failed with
// msg. A resource applied before keeps its earlier config and applied_at, so
// the next plan still compares against what is in place.
func (s *Store) RecordFailed(ctx context.Context, kind, name string, config json.RawMessage, msg string) error {
	_, err := s.pool.Exec(ctx, `INSERT INTO pipeline.catalog (kind, name, config, status, error)
		VALUES ($1, $2, $3, 'failed', $4)
		ON CONFLICT (kind, name) DO UPDATE SET status = 'failed', error = EXCLUDED.error, updated_at = now(),
		  config = CASE WHEN pipeline.catalog.applied_at IS NULL THEN EXCLUDED.config ELSE pipeline.catalog.config END`,
		kind, name, string(config), msg)
	if err != nil {
		return fmt.Errorf("record failure of %s %s in pipeline.catalog: %w", kind, name, err)
	}
	return nil
}
