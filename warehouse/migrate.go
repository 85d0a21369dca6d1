package warehouse

import (
	"context"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"path"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
)

//go:embed migrations/*.sql
var migrationFiles embed.FS

// reservedVersions are migration numbers promised to other work that may land
// after higher numbers: the ordering check tolerates their absence, and
// Migrate applies them whenever they appear, even after higher versions.
var reservedVersions = map[int]string{
	2: "002_lake_index.sql (bronze/silver/quarantine index of the stream)",
}

// migrationLockKey is the pg_advisory_lock key that serialises Migrate
// across processes ("pipemigr" in ASCII).
const migrationLockKey int64 = 0x706970656d696772

// migration is one file of migrations/: NNN_name.sql.
type migration struct {
	Version  int
	Name     string // file name
	SQL      string
	Checksum string // hex SHA-256 of SQL
}

var migrationName = regexp.MustCompile(`^([0-9]{3})_([a-z0-9_]+)\.sql$`)

// loadMigrations reads and checks the migration files of fsys (a directory of
// NNN_name.sql files): well-named, unique versions, non-empty, and no gap in
// the numbering other than a reserved version.
func loadMigrations(fsys fs.FS) ([]migration, error) {
	entries, err := fs.ReadDir(fsys, ".")
	if err != nil {
		return nil, fmt.Errorf("read migrations: %w", err)
	}
	var ms []migration
	seen := map[int]string{}
	for _, e := range entries {
		if e.IsDir() || path.Ext(e.Name()) != ".sql" {
			continue
		}
		m := migrationName.FindStringSubmatch(e.Name())
		if m == nil {
			return nil, fmt.Errorf("migration %s: name must be NNN_lower_case_name.sql", e.Name())
		}
		v, _ := strconv.Atoi(m[1])
		if v == 0 {
			return nil, fmt.Errorf("migration %s: versions start at 001", e.Name())
		}
		if other, dup := seen[v]; dup {
			return nil, fmt.Errorf("migrations %s and %s: both are version %d", other, e.Name(), v)
		}
		seen[v] = e.Name()
		b, err := fs.ReadFile(fsys, e.Name())
		if err != nil {
			return nil, fmt.Errorf("migration %s: %w", e.Name(), err)
		}
		if strings.TrimSpace(string(b)) == "" {
			return nil, fmt.Errorf("migration %s: empty", e.Name())
		}
		sum := sha256.Sum256(b)
		ms = append(ms, migration{Version: v, Name: e.Name(), SQL: string(b), Checksum: hex.EncodeToString(sum[:])})
	}
	slices.SortFunc(ms, func(a, b migration) int { return a.Version - b.Version })
	if len(ms) > 0 {
		for v := 1; v < ms[len(ms)-1].Version; v++ {
			if _, ok := seen[v]; !ok && reservedVersions[v] == "" {
				return nil, fmt.Errorf("migrations: version %03d is missing (numbers must be gap-free; only %s may come later)", v, reservedList())
			}
		}
	}
	return ms, nil
}

func reservedList() string {
	var vs []string
	for _, v := range slices.Sorted(maps.Keys(reservedVersions)) {
		vs = append(vs, fmt.Sprintf("%03d", v))
	}
	return strings.Join(vs, ", ")
}

// MigrationStatus is one migration file and whether it has been applied.
type MigrationStatus struct {
	Version   int
	Name      string
	AppliedAt time.Time // zero when pending
}

// Migrate applies the embedded migrations that the database has not recorded
// in pipeline.schema_migrations, in version order, each in its own transaction
// together with its record. A migration that appears late with a lower number
// than applied ones (a reserved version) is applied when it appears. Processes
// starting at once serialise on a PostgreSQL advisory lock; the later ones find
// nothing left to do. A recorded migration whose file has changed since is an
// error: add a new migration instead of editing an applied one.
func (s *Store) Migrate(ctx context.Context) error {
	sub, err := fs.Sub(migrationFiles, "migrations")
	if err != nil {
		return err
	}
	ms, err := loadMigrations(sub)
	if err != nil {
		return err
	}
	_, err = migrate(ctx, s.pool, ms)
	return err
}

// Migrations lists the embedded migrations and when each was applied.
func (s *Store) Migrations(ctx context.Context) ([]MigrationStatus, error) {
	sub, err := fs.Sub(migrationFiles, "migrations")
	if err != nil {
		return nil, err
	}
	ms, err := loadMigrations(sub)
	if err != nil {
		return nil, err
	}
	applied := map[int]time.Time{}
	rows, err := s.pool.Query(ctx, "SELECT version, applied_at FROM pipeline.schema_migrations")
	if err == nil {
		for rows.Next() {
			var v int
			var at time.Time
			if err := rows.Scan(&v, &at); err != nil {
				return nil, err
			}
			applied[v] = at
		}
		err = rows.Err()
	}
	if err != nil && !isUndefinedTable(err) {
		return nil, fmt.Errorf("read pipeline.schema_migrations: %w", err)
	}
	out := make([]MigrationStatus, len(ms))
	for i, m := range ms {
		out[i] = MigrationStatus{Version: m.Version, Name: m.Name, AppliedAt: applied[m.Version]}
	}
	return out, nil
}

// EnsureMigrated creates the database named in url when it is missing and
// applies the pending migrations, with a Store of its own: what the
// warehouse owner's processes run before anything else (pipeline provision,
// pipeline dev).
func EnsureMigrated(ctx context.Context, url string) error {
	if err := EnsureDatabase(ctx, url); err != nil {
		return err
	}
	store, err := Open(ctx, Config{URL: url})
	if err != nil {
		return err
	}
	defer store.Close()
	return store.Migrate(ctx)
}

// Pending returns how many of the embedded migrations the database has not
// applied, of total.
func (s *Store) Pending(ctx context.Context) (pending, total int, err error) {
	ms, err := s.Migrations(ctx)
	if err != nil {
		return 0, 0, err
	}
	for _, m := range ms {
		if m.AppliedAt.IsZero() {
			pending++
		}
	}
	return pending, len(ms), nil
}

const bootstrapSQL = `
CREATE SCHEMA IF NOT EXISTS pipeline;
CREATE TABLE IF NOT EXISTS pipeline.schema_migrations (
  version    integer     PRIMARY KEY,
  name       text        NOT NULL,
  checksum   text        NOT NULL,
  applied_at timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE pipeline.schema_migrations IS 'Applied schema migrations (warehouse/migrations/NNN_name.sql), one row each.';
COMMENT ON COLUMN pipeline.schema_migrations.version IS 'Migration number, the NNN of the file name.';
COMMENT ON COLUMN pipeline.schema_migrations.name IS 'Migration file name.';
COMMENT ON COLUMN pipeline.schema_migrations.checksum IS 'SHA-256 of the file as applied; a changed file is refused.';
COMMENT ON COLUMN pipeline.schema_migrations.applied_at IS 'When the migration was applied.';
`

// migrate applies ms and returns the versions it applied.
func migrate(ctx context.Context, pool *pgxpool.Pool, ms []migration) (applied []int, err error) {
	conn, err := pool.Acquire(ctx)
	if err != nil {
		return nil, fmt.Errorf("migrate: %w", err)
	}
	defer conn.Release()
	if _, err := conn.Exec(ctx, "SELECT pg_advisory_lock($1)", migrationLockKey); err != nil {
		return nil, fmt.Errorf("migrate: take lock: %w", err)
	}
	defer func() {
		if _, uerr := conn.Exec(context.WithoutCancel(ctx), "SELECT pg_advisory_unlock($1)", migrationLockKey); uerr != nil {
			// The session lock dies with the connection: close it.
			_ = conn.Conn().Close(context.WithoutCancel(ctx))
		}
	}()

	var exists bool
	if err := conn.QueryRow(ctx, "SELECT to_regclass('pipeline.schema_migrations') IS NOT NULL").Scan(&exists); err != nil {
		return nil, fmt.Errorf("migrate: %w", err)
	}
	if !exists {
		if _, err := conn.Exec(ctx, bootstrapSQL); err != nil {
			if isInsufficientPrivilege(err) {
				return nil, fmt.Errorf("migrate: create pipeline.schema_migrations: %w: %w", ErrNotOwner, err)
			}
			return nil, fmt.Errorf("migrate: create pipeline.schema_migrations: %w", err)
		}
	}
	done := map[int]string{}
	rows, err := conn.Query(ctx, "SELECT version, checksum FROM pipeline.schema_migrations")
	if err != nil {
		return nil, fmt.Errorf("migrate: %w", err)
	}
	for rows.Next() {
		var v int
		var sum string
		if err := rows.Scan(&v, &sum); err != nil {
			return nil, fmt.Errorf("migrate: %w", err)
		}
		done[v] = sum
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("migrate: %w", err)
	}

	for _, m := range ms {
		if sum, ok := done[m.Version]; ok {
			if sum != m.Checksum {
				return applied, fmt.Errorf("migration %s: changed since it was applied (checksum %.12s, applied %.12s); add a new migration instead", m.Name, m.Checksum, sum)
			}
			continue
		}
		tx, err := conn.Begin(ctx)
		if err != nil {
			return applied, fmt.Errorf("migration %s: %w", m.Name, err)
		}
		if _, err := tx.Exec(ctx, m.SQL); err != nil {
			_ = tx.Rollback(context.WithoutCancel(ctx))
			if isInsufficientPrivilege(err) {
				return applied, fmt.Errorf("migration %s: %w: %w", m.Name, ErrNotOwner, err)
			}
			return applied, fmt.Errorf("migration %s: %w", m.Name, err)
		}
		if _, err := tx.Exec(ctx, "INSERT INTO pipeline.schema_migrations (version, name, checksum) VALUES ($1, $2, $3)",
			m.Version, m.Name, m.Checksum); err != nil {
			_ = tx.Rollback(context.WithoutCancel(ctx))
			return applied, fmt.Errorf("migration %s: record: %w", m.Name, err)
		}
		if err := tx.Commit(ctx); err != nil {
			return applied, fmt.Errorf("migration %s: commit: %w", m.Name, err)
		}
		applied = append(applied, m.Version)
	}
	return applied, nil
}

// ErrNotOwner is what Migrate returns when migrations are pending and the
// role it runs as may not change the schema: a process's own role
// (pipeline_worker, 016_process_roles) waits for the owner's, which
// provisioning uses, to apply them.
var ErrNotOwner = errors.New("this role may not change the warehouse's schema; the owner's role applies migrations (pipeline provision, or a worker, with the owner's DATABASE_URL)")

func isInsufficientPrivilege(err error) bool {
	var pgErr interface{ SQLState() string }
	return errors.As(err, &pgErr) && pgErr.SQLState() == "42501"
}

func isUndefinedTable(err error) bool {
	var pgErr interface{ SQLState() string }
	return errors.As(err, &pgErr) && pgErr.SQLState() == "42P01"
}
