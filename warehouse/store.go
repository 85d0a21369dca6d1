// Package warehouse owns everything SQL about the analytics warehouse in
// PostgreSQL: the versioned schema (gold facts and marts, pipeline metadata, the
// bi_reader role), the gold loads of the live stream (LoadLive) and of backfills
// (ReplaceDays), the daily marts (BuildMarts) and the stream offsets stored with
// the gold rows.
//
// Every load is one transaction: rows are COPYed in PostgreSQL's binary format
// into temporary staging tables, then moved into gold with INSERT ... ON
// CONFLICT (event_id) DO NOTHING, together with a lineage row in pipeline.loads
// and, for live loads, the stream offsets. Readers never see half a load. A
// live batch none of whose event_ids is in gold yet is COPYed straight into
// the gold tables instead, with the same result at about half the cost.
package warehouse

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
)

// Config configures a Store.
type Config struct {
	// URL is the PostgreSQL connection string, URL or key=value form
	// (postgres://user@host:5432/db?sslmode=disable). Required.
	URL string
	// MaxConns is the size of the connection pool. Default 4: loads are
	// bandwidth-bound, not connection-bound.
	MaxConns int32
}

// Validate reports a configuration that cannot work, naming the setting.
func (c Config) Validate() error {
	if c.URL == "" {
		return &InputError{Field: "URL", Msg: "the PostgreSQL URL is required (DATABASE_URL)"}
	}
	if _, err := pgxpool.ParseConfig(c.URL); err != nil {
		return &InputError{Field: "URL", Msg: fmt.Sprintf("not a PostgreSQL connection string: %v", err)}
	}
	if c.MaxConns < 0 {
		return &InputError{Field: "MaxConns", Msg: fmt.Sprintf("%d is negative", c.MaxConns)}
	}
	return nil
}

// Store is the warehouse: a connection pool and the operations on it. It is
// safe for concurrent use.
type Store struct {
	pool       *pgxpool.Pool
	mode       atomic.Int32 // loadMode
	directSkip atomic.Int32 // loads left on the probed direct path after a conflict
	probes     atomic.Int64 // loads that probed gold for their ids (probe.go), for tests
}

// Open validates cfg, connects and checks that the server answers.
func Open(ctx context.Context, cfg Config) (*Store, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	pc, _ := pgxpool.ParseConfig(cfg.URL)
	pc.MaxConns = 4
	if cfg.MaxConns > 0 {
		pc.MaxConns = cfg.MaxConns
	}
	if _, ok := pc.ConnConfig.RuntimeParams["application_name"]; !ok {
		pc.ConnConfig.RuntimeParams["application_name"] = "pipeline-warehouse"
	}
	pool, err := pgxpool.NewWithConfig(ctx, pc)
	if err != nil {
		return nil, fmt.Errorf("open warehouse %s: %w", describe(pc.ConnConfig), err)
	}
	if err := pool.Ping(ctx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("open warehouse %s: %w", describe(pc.ConnConfig), err)
	}
	return &Store{pool: pool}, nil
}

// FromPool wraps a pool opened elsewhere (the status page's own, small
// pool) to use the Store's read methods on it.
func FromPool(pool *pgxpool.Pool) *Store { return &Store{pool: pool} }

// Pool returns the connection pool, for queries this package does not offer.
func (s *Store) Pool() *pgxpool.Pool { return s.pool }

// Close closes every connection of the pool.
func (s *Store) Close() { s.pool.Close() }

// EnsureDatabase creates the database named in url if it does not exist yet. It
// connects to that database first: a role that may reach only its own
// database (a worker's, pipeline_worker) is done there. Only when the
// database is missing does it connect, with the same credentials, to the
// database "postgres" of the same server to create it. Two processes
// calling it at once is fine.
func EnsureDatabase(ctx context.Context, url string) error {
	cc, err := pgx.ParseConfig(url)
	if err != nil {
		return &InputError{Field: "URL", Msg: fmt.Sprintf("not a PostgreSQL connection string: %v", err)}
	}
	name := cc.Database
	if name == "" {
		return &InputError{Field: "URL", Msg: "names no database"}
	}
	own, err := pgx.ConnectConfig(ctx, cc.Copy())
	if err == nil {
		own.Close(context.WithoutCancel(ctx))
		return nil
	}
	var missing *pgconn.PgError
	if !errors.As(err, &missing) || missing.Code != "3D000" { // invalid_catalog_name: no such database
		return fmt.Errorf("ensure database %q: connect: %w", name, err)
	}
	admin := cc.Copy()
	admin.Database = "postgres"
	conn, err := pgx.ConnectConfig(ctx, admin)
	if err != nil {
		return fmt.Errorf("ensure database %q: connect to %s: %w", name, describe(admin), err)
	}
	defer conn.Close(context.WithoutCancel(ctx))

	var exists bool
	if err := conn.QueryRow(ctx, "SELECT EXISTS (SELECT FROM pg_database WHERE datname = $1)", name).Scan(&exists); err != nil {
		return fmt.Errorf("ensure database %q: %w", name, err)
	}
	if exists {
		return nil
	}
	_, err = conn.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize())
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && (pgErr.Code == "42P04" || pgErr.Code == "23505") {
		return nil // duplicate_database: created meanwhile by someone else
	}
	if err != nil {
		return fmt.Errorf("ensure database %q: %w", name, err)
	}
	return nil
}

// InputError is a request this package refuses before touching the database:
// no retry can fix it.
type InputError struct {
	Field string // the offending field or setting, e.g. "From", "URL"
	Msg   string
}

func (e *InputError) Error() string { return e.Field + ": " + e.Msg }

// IsPermanent reports whether err is a failure that retrying the same call
// cannot fix: an InputError, or PostgreSQL refusing the data or the statement
// (data exceptions, integrity violations, syntax or privilege errors). Other
// errors (connection loss, deadlock, server shutting down, timeouts) are worth
// retrying. Callers use it to mark a Temporal activity error non-retryable.
func IsPermanent(err error) bool {
	var ie *InputError
	if errors.As(err, &ie) {
		return true
	}
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && len(pgErr.Code) == 5 {
		switch pgErr.Code[:2] {
		case "22", // data exception: bad JSON, invalid UTF-8, out of range
			"23", // integrity constraint violation
			"42": // syntax error or access rule violation
			return true
		}
	}
	return false
}

func describe(cc *pgx.ConnConfig) string {
	return fmt.Sprintf("%s@%s:%d/%s", cc.User, cc.Host, cc.Port, cc.Database)
}

// HasTable reports whether the database has the table (schema-qualified):
// a reader such as the status page can then work against a database that a
// worker of an older version migrated.
func (s *Store) HasTable(ctx context.Context, table string) (bool, error) {
	var ok bool
	if err := s.pool.QueryRow(ctx, `SELECT to_regclass($1) IS NOT NULL`, table).Scan(&ok); err != nil {
		return false, fmt.Errorf("is there a table %s: %w", table, err)
	}
	return ok, nil
}

// HasRole reports whether the role exists in the cluster, and names the
// database connected to, for provisioning's report.
func (s *Store) HasRole(ctx context.Context, role string) (database string, ok bool, err error) {
	if err := s.pool.QueryRow(ctx, `SELECT current_database(), EXISTS (SELECT FROM pg_roles WHERE rolname = $1)`, role).
		Scan(&database, &ok); err != nil {
		return "", false, fmt.Errorf("is there a role %s: %w", role, err)
	}
	return database, ok, nil
}
