package activities

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	s3types "github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/segmentio/kafka-go"
	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/temporal"

	"github.com/acme/pipeline/blueprint"
	"github.com/acme/pipeline/internal/kafkaconn"
	"github.com/acme/pipeline/silver"
	"github.com/acme/pipeline/warehouse"
)

// ProvisionerConfig holds the clients provisioning uses. Every field is
// required except S3Endpoint and HTTPClient.
type ProvisionerConfig struct {
	// Store is the warehouse; it also holds the catalog (pipeline.catalog).
	Store *warehouse.Store
	// KafkaBrokers are the bootstrap brokers (host:port) of the conduit's topic.
	KafkaBrokers []string
	// KafkaConn is the TLS and SASL of the Kafka connections (KAFKA_TLS,
	// KAFKA_SASL_*). The zero value is plaintext without authentication.
	KafkaConn kafkaconn.Config
	// S3 is the client of the archive's bucket.
	S3 *s3.Client
	// S3Endpoint is the S3 endpoint URL the anonymous-read check goes to
	// (path-style). Empty means AWS: https://s3.<region>.amazonaws.com.
	S3Endpoint string
	// Silver, when set, is where the Iceberg table silver.events is
	// created with the lake (its Bucket is the archive's name, set when
	// applied); nil leaves the table alone.
	Silver *silver.Config
	// HTTPClient makes the anonymous-read check. Default: 10 s timeout.
	HTTPClient *http.Client
	// TLSCertFile and TLSKeyFile are the event API's PEM certificate and
	// key. A gateway with tls=true checks that the certificate covers its
	// domain and is not expired; without them a self-signed dev certificate
	// is generated under StateDir.
	TLSCertFile, TLSKeyFile string
	// StateDir keeps dev certificates (gateway-<name>.crt/.key), e.g.
	// ".dev/tls". Default: a directory under os.TempDir().
	StateDir string
}

// Validate reports a missing client, naming the field.
func (c ProvisionerConfig) Validate() error {
	switch {
	case c.Store == nil:
		return errors.New("provisioner: Store is required (DATABASE_URL)")
	case len(c.KafkaBrokers) == 0:
		return errors.New("provisioner: KafkaBrokers is required (KAFKA_BROKERS)")
	case c.S3 == nil:
		return errors.New("provisioner: S3 is required (S3_ENDPOINT and AWS credentials)")
	}
	if err := c.KafkaConn.Validate(); err != nil {
		return fmt.Errorf("provisioner: %w", err)
	}
	return nil
}

// Provisioner holds the activities of the Provision workflow: one per
// resource kind, plus the catalog read, the marts' zone and the schedules. Each
// resource activity is idempotent (it converges the resource to its config,
// whatever exists already) and records its catalog row on success, so a
// rerun after a failure continues where it stopped.
type Provisioner struct {
	cfg ProvisionerConfig
}

// NewProvisioner validates cfg and returns the activities.
func NewProvisioner(cfg ProvisionerConfig) (*Provisioner, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.HTTPClient == nil {
		cfg.HTTPClient = &http.Client{Timeout: 10 * time.Second}
	}
	return &Provisioner{cfg: cfg}, nil
}

// LoadCatalogResult is the catalog of provisioned resources: only the
// resources applied at least once, each with the config in place.
type LoadCatalogResult struct {
	Entries []blueprint.CatalogEntry `json:"entries"`
	// Missing lists the recorded resources found gone ("conduit events"):
	// they are left out of Entries, so the plan creates them again.
	Missing []string `json:"missing,omitempty"`
}

// LoadCatalog reads pipeline.catalog. A database without the catalog yet (a
// bare stack) has an empty catalog.
func (p *Provisioner) LoadCatalog(ctx context.Context) (LoadCatalogResult, error) {
	rows, err := p.cfg.Store.Catalog(ctx)
	if err != nil {
		return LoadCatalogResult{}, err
	}
	var res LoadCatalogResult
	for _, r := range rows {
		if !r.Applied() {
			continue
		}
		// Refresh, as terraform does: a topic or bucket the catalog records
		// but that is gone (a new broker or store behind the same warehouse)
		// is planned as a create again instead of being trusted.
		there, err := p.exists(ctx, blueprint.Kind(r.Kind), r.Name)
		if err != nil {
			return LoadCatalogResult{}, err
		}
		if !there {
			activity.GetLogger(ctx).Warn("catalog records a resource that is missing: it will be created again",
				"kind", r.Kind, "name", r.Name)
			res.Missing = append(res.Missing, r.Kind+" "+r.Name)
			continue
		}
		res.Entries = append(res.Entries, blueprint.CatalogEntry{Kind: blueprint.Kind(r.Kind), Name: r.Name, Config: r.Config})
	}
	return res, nil
}

// exists reports whether a resource that lives outside the warehouse (the
// conduit's topic, the archive's bucket) is still there. Other kinds are
// settings recorded in the warehouse itself, so they exist with the catalog.
func (p *Provisioner) exists(ctx context.Context, kind blueprint.Kind, name string) (bool, error) {
	switch kind {
	case blueprint.KindConduit:
		_, err := p.partitions(ctx, name)
		if errors.Is(err, kafka.UnknownTopicOrPartition) {
			return false, nil
		}
		return err == nil, err
	case blueprint.KindArchive:
		_, err := p.cfg.S3.HeadBucket(ctx, &s3.HeadBucketInput{Bucket: aws.String(name)})
		var nf *s3types.NotFound
		var nb *s3types.NoSuchBucket
		if errors.As(err, &nf) || errors.As(err, &nb) {
			return false, nil
		}
		if err != nil {
			return false, fmt.Errorf("check bucket %s: %w", name, err)
		}
		return true, nil
	}
	return true, nil
}

// ResourceInput is one resource to apply. All fields are required.
type ResourceInput struct {
	Kind blueprint.Kind `json:"kind"`
	Name string         `json:"name"`
	// Config is the blueprint's canonical config for the resource.
	Config json.RawMessage `json:"config"`
}

// ResourceResult says what applying a resource did, for the workflow's report.
type ResourceResult struct {
	Kind   blueprint.Kind `json:"kind"`
	Name   string         `json:"name"`
	Detail string         `json:"detail"`
}

// apply decodes in's config, runs fn and records the outcome in the catalog:
// the row on success, the error on failure (the error is returned as is, so
// Temporal retries it unless it is non-retryable).
func apply[C any](ctx context.Context, p *Provisioner, in ResourceInput, kind blueprint.Kind, fn func(ctx context.Context, cfg C) (string, error)) (ResourceResult, error) {
	res := ResourceResult{Kind: in.Kind, Name: in.Name}
	if in.Kind != kind {
		return res, temporal.NewNonRetryableApplicationError(
			fmt.Sprintf("%s %s: sent to the %s activity", in.Kind, in.Name, kind), ErrTypeInvalid, nil)
	}
	var cfg C
	if err := json.Unmarshal(in.Config, &cfg); err != nil {
		return res, temporal.NewNonRetryableApplicationError(
			fmt.Sprintf("%s %s: config: %v", kind, in.Name, err), ErrTypeInvalid, err)
	}
	detail, err := fn(ctx, cfg)
	if err != nil {
		err = fmt.Errorf("%s %s: %w", kind, in.Name, err)
		if rerr := p.cfg.Store.RecordFailed(ctx, string(kind), in.Name, in.Config, err.Error()); rerr != nil {
			activity.GetLogger(ctx).Warn("record failure in catalog", "kind", kind, "name", in.Name, "error", rerr)
		}
		var appErr *temporal.ApplicationError
		if errors.As(err, &appErr) && appErr.NonRetryable() {
			// Keep it non-retryable, with the resource named in the message.
			return res, temporal.NewNonRetryableApplicationError(err.Error(), appErr.Type(), err)
		}
		return res, err
	}
	if err := p.cfg.Store.RecordApplied(ctx, string(kind), in.Name, in.Config); err != nil {
		return res, err
	}
	res.Detail = detail
	activity.GetLogger(ctx).Info("resource applied", "kind", kind, "name", in.Name, "detail", detail)
	return res, nil
}

func refused(format string, args ...any) error {
	return temporal.NewNonRetryableApplicationError(fmt.Sprintf(format, args...), ErrTypeRefused, nil)
}

// ApplyDatastore makes sure the warehouse database exists, applies the
// versioned migrations (schemas gold and pipeline, the bi_reader role) and
// checks that bi_reader exists. tamanho_gb (Insight's capacity threshold) and
// ha are recorded in the catalog and reported.
func (p *Provisioner) ApplyDatastore(ctx context.Context, in ResourceInput) (ResourceResult, error) {
	return apply(ctx, p, in, blueprint.KindDatastore, func(ctx context.Context, cfg blueprint.DatastoreConfig) (string, error) {
		if cfg.Engine != blueprint.EnginePostgres {
			return "", refused("engine %q: only %q is supported", cfg.Engine, blueprint.EnginePostgres)
		}
		pool := p.cfg.Store.Pool()
		if err := warehouse.EnsureDatabase(ctx, pool.Config().ConnString()); err != nil {
			return "", err
		}
		if err := p.cfg.Store.Migrate(ctx); err != nil {
			return "", fmt.Errorf("migrations: %w", err)
		}
		db, role, err := p.cfg.Store.HasRole(ctx, "bi_reader")
		if err != nil {
			return "", err
		}
		if !role {
			return "", errors.New("role bi_reader is missing after the migrations")
		}
		ms, err := p.cfg.Store.Migrations(ctx)
		if err != nil {
			return "", err
		}
		roles := "roles bi_reader"
		for _, r := range []string{"pipeline_worker", "pipeline_api"} {
			_, ok, err := p.cfg.Store.HasRole(ctx, r)
			if err != nil {
				return "", err
			}
			if ok {
				roles += ", " + r
			} else {
				roles += ", " + r + " MISSING (the migrating role could not create it: see warehouse/migrations/016_process_roles.sql)"
			}
		}
		return fmt.Sprintf("database %s: %d migrations in place, %s, capacity threshold %d GB, ha=%t",
			db, len(ms), roles, cfg.SizeGB, cfg.HA), nil
	})
}

// probeKey is the object the anonymous-read check writes and reads.
const probeKey = "_provision/anonymous-read-probe"

// ApplyArchive creates the lake bucket, private, and checks that anonymous
// reads of the bucket listing and of an object are refused. tamanho_gb is
// recorded as Insight's capacity threshold.
func (p *Provisioner) ApplyArchive(ctx context.Context, in ResourceInput) (ResourceResult, error) {
	return apply(ctx, p, in, blueprint.KindArchive, func(ctx context.Context, cfg blueprint.ArchiveConfig) (string, error) {
		if cfg.Public {
			return "", refused("publico: the lake holds raw events and must stay private")
		}
		_, err := p.cfg.S3.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String(in.Name), ACL: s3types.BucketCannedACLPrivate})
		var owned *s3types.BucketAlreadyOwnedByYou
		var exists *s3types.BucketAlreadyExists
		if err != nil && !errors.As(err, &owned) && !errors.As(err, &exists) {
			return "", fmt.Errorf("create bucket: %w", err)
		}
		if _, err := p.cfg.S3.PutObject(ctx, &s3.PutObjectInput{
			Bucket: aws.String(in.Name), Key: aws.String(probeKey),
			Body: bytes.NewReader([]byte("written by the Provision workflow to check that anonymous reads are refused\n")),
		}); err != nil {
			return "", fmt.Errorf("write probe object %s: %w", probeKey, err)
		}
		for _, key := range []string{"", probeKey} {
			if err := p.checkAnonymousRefused(ctx, in.Name, key); err != nil {
				return "", err
			}
		}
		if _, err := p.cfg.S3.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: aws.String(in.Name), Key: aws.String(probeKey)}); err != nil {
			return "", fmt.Errorf("delete probe object %s: %w", probeKey, err)
		}
		detail := fmt.Sprintf("bucket %s: private (anonymous list and read refused), capacity threshold %d GB", in.Name, cfg.SizeGB)
		if p.cfg.Silver == nil {
			return detail, nil
		}
		table, err := p.ensureSilver(ctx, in.Name)
		if err != nil {
			return "", err
		}
		return detail + "; " + table, nil
	})
}

// ensureSilver creates the Iceberg table silver.events in bucket, and its
// catalog's tables in the warehouse, when they are absent.
func (p *Provisioner) ensureSilver(ctx context.Context, bucket string) (string, error) {
	cfg := *p.cfg.Silver
	cfg.Bucket = bucket
	created, location, err := silver.Provision(ctx, cfg)
	if err != nil {
		return "", err
	}
	state := "exists"
	if created {
		state = "created"
	}
	return fmt.Sprintf("Iceberg table %s.%s at %s (catalog %s in the warehouse): %s", silver.Namespace, silver.TableName,
		location, silver.CatalogName, state), nil
}

func (p *Provisioner) checkAnonymousRefused(ctx context.Context, bucket, key string) error {
	base := strings.TrimRight(p.cfg.S3Endpoint, "/")
	if base == "" {
		region := p.cfg.S3.Options().Region
		base = "https://s3." + region + ".amazonaws.com"
	}
	u := base + "/" + bucket + "/" + key
	what := "object " + key
	if key == "" {
		what = "listing"
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return err
	}
	resp, err := p.cfg.HTTPClient.Do(req)
	if err != nil {
		return fmt.Errorf("anonymous read check of the %s: %w", what, err)
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<16))
	resp.Body.Close()
	switch {
	case resp.StatusCode == http.StatusForbidden || resp.StatusCode == http.StatusUnauthorized:
		return nil
	case resp.StatusCode >= 200 && resp.StatusCode < 300:
		return refused("publico=false, but an anonymous GET of the %s answered %s: make the bucket private", what, resp.Status)
	default:
		return fmt.Errorf("anonymous read check of the %s: unexpected %s (want 403)", what, resp.Status)
	}
}

// ApplyLane records the batch task queue's settings: prefetch is the
// concurrency of `pipeline worker` on batch-jobs (--batch-concurrency), duravel
// that its jobs are Temporal workflows (always durable here).
func (p *Provisioner) ApplyLane(ctx context.Context, in ResourceInput) (ResourceResult, error) {
	return apply(ctx, p, in, blueprint.KindLane, func(ctx context.Context, cfg blueprint.LaneConfig) (string, error) {
		return fmt.Sprintf("task queue %s: at most %d concurrent activities per worker, durable=%t", in.Name, cfg.Prefetch, cfg.Durable), nil
	})
}

// ApplyInsight records monitoring's settings: measurement retention and
// whether alerts fire.
func (p *Provisioner) ApplyInsight(ctx context.Context, in ResourceInput) (ResourceResult, error) {
	return apply(ctx, p, in, blueprint.KindInsight, func(ctx context.Context, cfg blueprint.InsightConfig) (string, error) {
		return fmt.Sprintf("monitoring %s: measurements kept %d days, alerts=%t", in.Name, cfg.RetentionDays, cfg.Alerts), nil
	})
}

// ApplyGateway checks the domain and TLS in front of the event API: with
// tls=true, the configured certificate (TLSCertFile, TLSKeyFile) must cover
// the domain and be valid, or, with none configured, a self-signed dev
// certificate is generated (once) under StateDir. The result names the
// certificate's subject, SANs, expiry and SHA-256 fingerprint.
func (p *Provisioner) ApplyGateway(ctx context.Context, in ResourceInput) (ResourceResult, error) {
	return apply(ctx, p, in, blueprint.KindGateway, func(ctx context.Context, cfg blueprint.GatewayConfig) (string, error) {
		return gatewayTLS(in.Name, cfg, p.cfg.TLSCertFile, p.cfg.TLSKeyFile, p.cfg.StateDir, time.Now())
	})
}

// ApplyCompute records a process's port and replicas for the deploy manifests.
func (p *Provisioner) ApplyCompute(ctx context.Context, in ResourceInput) (ResourceResult, error) {
	return apply(ctx, p, in, blueprint.KindCompute, func(ctx context.Context, cfg blueprint.ComputeConfig) (string, error) {
		s := fmt.Sprintf("compute %s (%s): replicas %d–%d", in.Name, cfg.Subtype, cfg.ReplicasMin, cfg.ReplicasMax)
		if cfg.Subtype == blueprint.SubtypeAPI {
			s += fmt.Sprintf(", port %d", cfg.Port)
		}
		return s, nil
	})
}
