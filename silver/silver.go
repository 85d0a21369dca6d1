// Package silver holds the silver layer as the Apache Iceberg table
// silver.events, with its catalog in the warehouse's PostgreSQL (iceberg-go's
// SQL catalog, the Java JDBC catalog's layout, so Spark, Trino and pyiceberg
// can point at it). Readers see whole snapshots: which files are live is in
// the table's metadata, never in a listing of the bucket. See
// docs/silver-iceberg.md for the design and the facts measured here.
package silver

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"

	"github.com/apache/iceberg-go"
	"github.com/apache/iceberg-go/catalog"
	sqlcat "github.com/apache/iceberg-go/catalog/sql"
	icebergio "github.com/apache/iceberg-go/io"
	_ "github.com/apache/iceberg-go/io/gocloud/s3" // s3:// FileIO only (io/gocloud would link GCS and Azure too)
	"github.com/apache/iceberg-go/table"
	_ "github.com/jackc/pgx/v5/stdlib" // database/sql driver "pgx"
)

// Names of the catalog, namespace and table.
const (
	CatalogName = "pipeline"
	Namespace   = "silver"
	TableName   = "events"
)

// Config says where the catalog and the table's files are.
type Config struct {
	// DatabaseURL is the warehouse's PostgreSQL, which holds the catalog's
	// tables (iceberg_tables, iceberg_namespace_properties). Required.
	DatabaseURL string
	// Bucket is the lake bucket; the table lives at s3://Bucket/silver/events.
	// Required.
	Bucket string
	// Endpoint is the S3 endpoint URL (path-style addressing); empty for AWS.
	Endpoint string
	// AccessKeyID and SecretAccessKey are static S3 keys; empty: the AWS
	// credential chain.
	AccessKeyID, SecretAccessKey string
	// Region is the S3 region. Default us-east-1.
	Region string
	// CreateCatalogTables creates the catalog's own tables when absent:
	// provisioning sets it, workers do not.
	CreateCatalogTables bool
	// Log gets what goes wrong beside a commit that stands (its summary not
	// published for status). Default slog.Default().
	Log *slog.Logger
}

// Catalog is an open catalog. It keeps its database handle for the tables
// it loads, so Close it only when none is in use.
type Catalog struct {
	cat *sqlcat.Catalog
	db  *sql.DB
	cfg Config
}

// Open opens the SQL catalog on the warehouse.
func Open(cfg Config) (*Catalog, error) {
	if cfg.DatabaseURL == "" || cfg.Bucket == "" {
		return nil, errors.New("silver: Config.DatabaseURL and Config.Bucket are required")
	}
	if cfg.Region == "" {
		cfg.Region = "us-east-1"
	}
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	db, err := sql.Open("pgx", cfg.DatabaseURL)
	if err != nil {
		return nil, fmt.Errorf("silver: open the catalog database: %w", err)
	}
	db.SetMaxOpenConns(4)
	props := iceberg.Properties{
		icebergio.S3Region:    cfg.Region,
		"init_catalog_tables": fmt.Sprint(cfg.CreateCatalogTables),
	}
	if cfg.Endpoint != "" {
		props[icebergio.S3EndpointURL] = cfg.Endpoint // also turns on path-style addressing
	}
	if cfg.AccessKeyID != "" {
		props[icebergio.S3AccessKeyID] = cfg.AccessKeyID
		props[icebergio.S3SecretAccessKey] = cfg.SecretAccessKey
	}
	cat, err := sqlcat.NewCatalog(CatalogName, db, sqlcat.Postgres, props)
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("silver: open the SQL catalog %s: %w", CatalogName, err)
	}
	return &Catalog{cat: cat, db: db, cfg: cfg}, nil
}

// Close closes the catalog's database handle.
func (c *Catalog) Close() error { return c.db.Close() }

// Ident is the table's identifier in the catalog.
var Ident = table.Identifier{Namespace, TableName}

// Location is the table's location in the bucket.
func (c *Catalog) Location() string {
	return fmt.Sprintf("s3://%s/%s/%s", c.cfg.Bucket, Namespace, TableName)
}

// Ensure creates the namespace and the table when they are absent, and
// reports whether it created the table. It is what provisioning runs; an
// existing table is left as it is.
func (c *Catalog) Ensure(ctx context.Context) (created bool, err error) {
	ns := table.Identifier{Namespace}
	ok, err := c.cat.CheckNamespaceExists(ctx, ns)
	if err != nil {
		return false, fmt.Errorf("silver: namespace %s: %w", Namespace, err)
	}
	if !ok {
		err := c.cat.CreateNamespace(ctx, ns, iceberg.Properties{"comment": "the silver layer: cleaned, typed events, each event id once"})
		if err != nil && !errors.Is(err, catalog.ErrNamespaceAlreadyExists) {
			return false, fmt.Errorf("silver: create namespace %s: %w", Namespace, err)
		}
	}
	if ok, err := c.cat.CheckTableExists(ctx, Ident); err != nil || ok {
		if err != nil {
			return false, fmt.Errorf("silver: table %s: %w", Ident, err)
		}
		return false, nil
	}
	spec := Spec()
	_, err = c.cat.CreateTable(ctx, Ident, Schema(),
		catalog.WithLocation(c.Location()), catalog.WithPartitionSpec(&spec), catalog.WithProperties(TableProperties()))
	if errors.Is(err, catalog.ErrTableAlreadyExists) {
		return false, nil // created concurrently
	}
	if err != nil {
		return false, fmt.Errorf("silver: create table %s at %s: %w", Ident, c.Location(), err)
	}
	if tbl, err := c.cat.LoadTable(ctx, Ident); err == nil {
		c.publish(ctx, tbl)
	}
	return true, nil
}

// Provision opens the catalog on cfg with its own tables created when
// absent, ensures the namespace and the table (Ensure), and closes it: what
// provisioning, and tests that stand in for it, run. It reports whether it
// created the table, and where the table lives.
func Provision(ctx context.Context, cfg Config) (created bool, location string, err error) {
	if err := CreateCatalogTables(ctx, cfg.DatabaseURL); err != nil {
		return false, "", err
	}
	cfg.CreateCatalogTables = false
	c, err := Open(cfg)
	if err != nil {
		return false, "", err
	}
	defer c.Close()
	created, err = c.Ensure(ctx)
	return created, c.Location(), err
}

// Load loads the table's current metadata, with commits that retry lost
// races (conflict.go).
func (c *Catalog) Load(ctx context.Context) (*table.Table, error) {
	t, err := c.cat.LoadTable(ctx, Ident)
	if err != nil {
		return nil, fmt.Errorf("silver: load table %s: %w", Ident, err)
	}
	return retrying(t, c.cat), nil
}

// CreateCatalogTables creates the SQL catalog's own tables in the database
// at dbURL when they are absent: what the owner's role runs before the
// workers' (pipeline_worker), which may not create tables, use the catalog.
// Only a missing table is created: CREATE TABLE IF NOT EXISTS needs CREATE
// on the schema even when the table is there, which a worker's role that
// provisions (Provision) does not have.
func CreateCatalogTables(ctx context.Context, dbURL string) error {
	db, err := sql.Open("pgx", dbURL)
	if err != nil {
		return fmt.Errorf("silver: open the catalog database: %w", err)
	}
	defer db.Close()
	var missing bool
	if err := db.QueryRowContext(ctx, `SELECT to_regclass('iceberg_tables') IS NULL OR to_regclass('iceberg_namespace_properties') IS NULL`).Scan(&missing); err != nil {
		return fmt.Errorf("silver: look for the catalog's tables: %w", err)
	}
	if !missing {
		return nil
	}
	if _, err := sqlcat.NewCatalog(CatalogName, db, sqlcat.Postgres, iceberg.Properties{"init_catalog_tables": "true"}); err != nil {
		return fmt.Errorf("silver: create the SQL catalog's tables: %w", err)
	}
	return nil
}
