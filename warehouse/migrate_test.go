package warehouse

import (
	"context"
	"io/fs"
	"slices"
	"strings"
	"sync"
	"testing"
	"testing/fstest"
	"time"
)

func TestLoadMigrations(t *testing.T) {
	file := func(sql string) *fstest.MapFile { return &fstest.MapFile{Data: []byte(sql)} }
	for _, tc := range []struct {
		name     string
		files    fstest.MapFS
		versions []int
		err      string // substring of the error; "" for success
	}{
		{"one", fstest.MapFS{"001_gold.sql": file("SELECT 1")}, []int{1}, ""},
		{"reserved 002 may come later", fstest.MapFS{"001_a.sql": file("SELECT 1"), "003_c.sql": file("SELECT 3")}, []int{1, 3}, ""},
		{"all present, any listing order", fstest.MapFS{"003_c.sql": file("SELECT 3"), "001_a.sql": file("SELECT 1"), "002_b.sql": file("SELECT 2")}, []int{1, 2, 3}, ""},
		{"other files ignored", fstest.MapFS{"001_a.sql": file("SELECT 1"), "README.md": file("# hi")}, []int{1}, ""},
		{"gap other than reserved", fstest.MapFS{"001_a.sql": file("SELECT 1"), "004_d.sql": file("SELECT 4")}, nil, "version 003 is missing"},
		{"duplicate version", fstest.MapFS{"001_a.sql": file("SELECT 1"), "001_b.sql": file("SELECT 1")}, nil, "both are version 1"},
		{"bad name", fstest.MapFS{"1_a.sql": file("SELECT 1")}, nil, "name must be NNN_lower_case_name.sql"},
		{"upper case name", fstest.MapFS{"001_Gold.sql": file("SELECT 1")}, nil, "name must be"},
		{"version zero", fstest.MapFS{"000_a.sql": file("SELECT 1")}, nil, "versions start at 001"},
		{"empty file", fstest.MapFS{"001_a.sql": file(" \n")}, nil, "empty"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ms, err := loadMigrations(tc.files)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("err = %v, want it to contain %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var got []int
			for _, m := range ms {
				got = append(got, m.Version)
			}
			if !slices.Equal(got, tc.versions) {
				t.Fatalf("versions = %v, want %v", got, tc.versions)
			}
		})
	}
}

func TestEmbeddedMigrations(t *testing.T) {
	sub, _ := fs.Sub(migrationFiles, "migrations")
	ms, err := loadMigrations(sub)
	if err != nil {
		t.Fatal(err)
	}
	if len(ms) == 0 || ms[0].Name != "001_gold.sql" {
		t.Fatalf("first migration = %+v, want 001_gold.sql", ms)
	}
	st, err := store.Migrations(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range st {
		if m.AppliedAt.IsZero() {
			t.Errorf("migration %s not applied", m.Name)
		}
	}
	// Migrate again: nothing to do, nothing changes.
	if err := store.Migrate(context.Background()); err != nil {
		t.Fatal(err)
	}
	if n := count(t, "SELECT count(*) FROM pipeline.schema_migrations"); n != int64(len(ms)) {
		t.Fatalf("%d rows in schema_migrations, want %d", n, len(ms))
	}
}

// TestMigrateLateAndChanged applies synthetic migrations to a fresh database:
// a reserved version that lands after a higher one is applied when it appears,
// and an applied migration whose file changed is refused.
func TestMigrateLateAndChanged(t *testing.T) {
	ctx := context.Background()
	dbURL, drop, err := newDatabase(ctx, "wh_test_mig")
	if err != nil {
		t.Fatal(err)
	}
	defer drop()
	s, err := Open(ctx, Config{URL: dbURL})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	load := func(files fstest.MapFS) []migration {
		t.Helper()
		ms, err := loadMigrations(files)
		if err != nil {
			t.Fatal(err)
		}
		return ms
	}
	m1 := &fstest.MapFile{Data: []byte("CREATE TABLE public.t1 (x int)")}
	m2 := &fstest.MapFile{Data: []byte("CREATE TABLE public.t2 (x int); CREATE TABLE public.t2b (x int)")}
	m3 := &fstest.MapFile{Data: []byte("CREATE TABLE public.t3 (x int)")}

	for _, step := range []struct {
		name  string
		files fstest.MapFS
		want  []int
		err   string
	}{
		{"001 and 003", fstest.MapFS{"001_a.sql": m1, "003_c.sql": m3}, []int{1, 3}, ""},
		{"002 lands late", fstest.MapFS{"001_a.sql": m1, "002_b.sql": m2, "003_c.sql": m3}, []int{2}, ""},
		{"nothing left", fstest.MapFS{"001_a.sql": m1, "002_b.sql": m2, "003_c.sql": m3}, nil, ""},
		{"001 edited", fstest.MapFS{"001_a.sql": {Data: []byte("CREATE TABLE public.t1 (y int)")}}, nil, "001_a.sql: changed since it was applied"},
		{"failing migration rolls back", fstest.MapFS{"001_a.sql": m1, "002_b.sql": m2, "003_c.sql": m3,
			"004_d.sql": {Data: []byte("CREATE TABLE public.t4 (x int); SELECT 1/0")}}, nil, "004_d.sql"},
	} {
		got, err := migrate(ctx, s.Pool(), load(step.files))
		if step.err != "" {
			if err == nil || !strings.Contains(err.Error(), step.err) {
				t.Fatalf("%s: err = %v, want %q", step.name, err, step.err)
			}
		} else if err != nil {
			t.Fatalf("%s: %v", step.name, err)
		}
		if !slices.Equal(got, step.want) {
			t.Fatalf("%s: applied %v, want %v", step.name, got, step.want)
		}
	}
	var t4 bool
	if err := s.Pool().QueryRow(ctx, "SELECT to_regclass('public.t4') IS NOT NULL").Scan(&t4); err != nil || t4 {
		t.Fatalf("t4 exists = %v (%v), want the failed migration rolled back", t4, err)
	}
	var versions []int32
	if err := s.Pool().QueryRow(ctx, "SELECT array_agg(version ORDER BY version) FROM pipeline.schema_migrations").Scan(&versions); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(versions, []int32{1, 2, 3}) {
		t.Fatalf("recorded versions %v, want [1 2 3]", versions)
	}
}

// TestMigrateConcurrent starts several processes' worth of Migrate on a fresh
// database at once: all succeed and each migration is applied once.
func TestMigrateConcurrent(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	dbURL, drop, err := newDatabase(ctx, "wh_test_conc")
	if err != nil {
		t.Fatal(err)
	}
	defer drop()
	const n = 4
	stores := make([]*Store, n)
	for i := range stores {
		if stores[i], err = Open(ctx, Config{URL: dbURL, MaxConns: 2}); err != nil {
			t.Fatal(err)
		}
		defer stores[i].Close()
	}
	var wg sync.WaitGroup
	errs := make([]error, n)
	start := make(chan struct{})
	for i, s := range stores {
		wg.Go(func() {
			<-start
			errs[i] = s.Migrate(ctx)
		})
	}
	close(start)
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("Migrate %d: %v", i, err)
		}
	}
	st, err := stores[0].Migrations(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var rows int64
	if err := stores[0].Pool().QueryRow(ctx, "SELECT count(*) FROM pipeline.schema_migrations").Scan(&rows); err != nil {
		t.Fatal(err)
	}
	if rows != int64(len(st)) {
		t.Fatalf("%d rows in schema_migrations, want %d", rows, len(st))
	}
	var tables int64
	if err := stores[0].Pool().QueryRow(ctx, "SELECT count(*) FROM pg_tables WHERE schemaname = 'gold'").Scan(&tables); err != nil {
		t.Fatal(err)
	}
	if tables != 6 {
		t.Fatalf("%d tables in gold, want 6", tables)
	}
}

// TestSchemaDocumented: BI users read the comments, so every table and column
// of gold, and of this package's pipeline tables, has one.
func TestSchemaDocumented(t *testing.T) {
	missing := query(t, `
SELECT c.relname || COALESCE('.' || a.attname, '')
FROM pg_class c
JOIN pg_namespace n ON n.oid = c.relnamespace
LEFT JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
WHERE c.relkind = 'r'
  AND (n.nspname = 'gold' OR (n.nspname = 'pipeline' AND c.relname IN ('loads', 'stream_offsets', 'schema_migrations')))
  AND COALESCE(col_description(c.oid, a.attnum), '') = ''
UNION ALL
SELECT n.nspname || '.' || c.relname
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind = 'r' AND n.nspname IN ('gold', 'pipeline') AND COALESCE(obj_description(c.oid, 'pg_class'), '') = ''
  AND (n.nspname = 'gold' OR c.relname IN ('loads', 'stream_offsets', 'schema_migrations'))
ORDER BY 1`)
	if len(missing) > 0 {
		t.Fatalf("without COMMENT: %v", missing)
	}
}
