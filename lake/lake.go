// Package lake is the data lake: the S3 bucket (datalake) that holds the
// stream's bronze, silver and quarantine objects. It offers a small object
// store (Put, Get, List, Delete) over any S3-compatible service, the key
// layout of every layer, the bronze and quarantine NDJSON codecs, and the
// silver Parquet codec for event.Row (zstd, bounded row groups).
//
// Keys are deterministic: they name the Kafka partition and offset range an
// object holds, so a retried writer rewrites the same key instead of adding a
// second copy.
package lake

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/smithy-go"

	"github.com/acme/pipeline/internal/config"
)

// DefaultBucket is the contract's bucket name.
const DefaultBucket = config.DefaultBucket

// Config configures a Store.
type Config struct {
	// Endpoint is the S3 endpoint URL, e.g. http://127.0.0.1:9000. Empty
	// means AWS itself (the regional endpoint of Region).
	Endpoint string
	// Region is the signing region. Default us-east-1.
	Region string
	// AccessKeyID and SecretAccessKey are static credentials
	// (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY). Set both, or neither to
	// use the AWS SDK's default credential chain: the AWS_* variables,
	// shared config and credentials files (AWS_PROFILE), web identity
	// (IRSA on EKS), ECS task and EC2 instance roles.
	AccessKeyID     string
	SecretAccessKey string
	// Bucket is the bucket of the lake. Default "datalake".
	Bucket string
	// PathStyle addresses the bucket in the path (http://host/bucket/key)
	// instead of the host name; S3-compatible local stores need it
	// (S3_PATH_STYLE; by default true with an Endpoint, false on AWS).
	PathStyle bool
}

// Validate reports a configuration that cannot work, naming the setting.
func (c Config) Validate() error {
	if c.Endpoint != "" {
		u, err := url.Parse(c.Endpoint)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return fmt.Errorf("lake: Endpoint (S3_ENDPOINT) %q: must be an http:// or https:// URL", c.Endpoint)
		}
	}
	if (c.AccessKeyID == "") != (c.SecretAccessKey == "") {
		return errors.New("lake: set both AccessKeyID and SecretAccessKey (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY), or neither for the AWS credential chain")
	}
	return nil
}

// Store is the lake bucket. It is safe for concurrent use.
type Store struct {
	client *s3.Client
	bucket string
	where  string // endpoint and bucket, for messages
}

// ErrNotFound is returned (wrapped) by Get for a key that does not exist.
var ErrNotFound = errors.New("object not found")

// New validates cfg and builds the S3 client. It does not contact the store:
// EnsureBucket does.
func New(cfg Config) (*Store, error) {
	client, err := NewS3Client(cfg)
	if err != nil {
		return nil, err
	}
	if cfg.Bucket == "" {
		cfg.Bucket = DefaultBucket
	}
	where := "s3://" + cfg.Bucket
	if cfg.Endpoint != "" {
		where = cfg.Endpoint + " bucket " + cfg.Bucket
	}
	return &Store{client: client, bucket: cfg.Bucket, where: where}, nil
}

// NewS3Client validates cfg and builds the S3 client New uses (provisioning
// uses it too): static credentials when cfg has them, else the AWS SDK's
// default chain, resolved lazily on the first request.
func NewS3Client(cfg Config) (*s3.Client, error) {
	opts, err := s3Options(cfg)
	if err != nil {
		return nil, err
	}
	return s3.New(opts), nil
}

// s3Options builds the client's options without contacting anything.
func s3Options(cfg Config) (s3.Options, error) {
	if err := cfg.Validate(); err != nil {
		return s3.Options{}, err
	}
	if cfg.Region == "" {
		cfg.Region = "us-east-1"
	}
	opts := s3.Options{
		Region:       cfg.Region,
		UsePathStyle: cfg.PathStyle,
		// Checksums only where the API requires them: S3-compatible stores
		// differ in what they accept otherwise (see STACK-FACTS).
		RequestChecksumCalculation: aws.RequestChecksumCalculationWhenRequired,
		ResponseChecksumValidation: aws.ResponseChecksumValidationWhenRequired,
		HTTPClient: &http.Client{Transport: &http.Transport{
			Proxy:               nil,
			MaxIdleConnsPerHost: 64,
			IdleConnTimeout:     90 * time.Second,
		}},
		RetryMaxAttempts: 3,
	}
	if cfg.AccessKeyID != "" {
		opts.Credentials = credentials.NewStaticCredentialsProvider(cfg.AccessKeyID, cfg.SecretAccessKey, "")
	} else {
		// The default chain: environment, shared files and AWS_PROFILE, web
		// identity (AWS_ROLE_ARN + AWS_WEB_IDENTITY_TOKEN_FILE, as IRSA
		// sets them), SSO, ECS and EC2 instance roles. Loading reads the
		// shared files only; credentials are fetched on first use and
		// refreshed before they expire.
		ac, err := awsconfig.LoadDefaultConfig(context.Background(), awsconfig.WithRegion(cfg.Region))
		if err != nil {
			return s3.Options{}, fmt.Errorf("lake: AWS credential chain (AWS_ACCESS_KEY_ID unset): %w", err)
		}
		opts.Credentials = ac.Credentials
	}
	if cfg.Endpoint != "" {
		opts.BaseEndpoint = aws.String(cfg.Endpoint)
	}
	return opts, nil
}

// Bucket returns the bucket name.
func (s *Store) Bucket() string { return s.bucket }

// URI returns s3://bucket/key.
func (s *Store) URI(key string) string { return "s3://" + s.bucket + "/" + key }

// EnsureBucket creates the bucket, private, when it does not exist yet. An
// existing bucket is left as it is.
func (s *Store) EnsureBucket(ctx context.Context) error {
	_, err := s.client.HeadBucket(ctx, &s3.HeadBucketInput{Bucket: &s.bucket})
	if err == nil {
		return nil
	}
	if !isNotFound(err) {
		return fmt.Errorf("lake: check bucket at %s: %w", s.where, err)
	}
	_, err = s.client.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: &s.bucket, ACL: types.BucketCannedACLPrivate})
	var owned *types.BucketAlreadyOwnedByYou
	if err != nil && !errors.As(err, &owned) && apiCode(err) != "BucketAlreadyOwnedByYou" {
		return fmt.Errorf("lake: create bucket at %s: %w", s.where, err)
	}
	return nil
}

// Put writes an object from memory, replacing any object of that key.
func (s *Store) Put(ctx context.Context, key string, body []byte, contentType string) error {
	return s.put(ctx, key, bytes.NewReader(body), int64(len(body)), contentType)
}

// PutFile writes an object from a file (e.g. a large Parquet file written to
// disk first), replacing any object of that key.
func (s *Store) PutFile(ctx context.Context, key string, f *os.File, contentType string) error {
	st, err := f.Stat()
	if err != nil {
		return fmt.Errorf("lake: put %s: %w", key, err)
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return fmt.Errorf("lake: put %s: %w", key, err)
	}
	return s.put(ctx, key, f, st.Size(), contentType)
}

func (s *Store) put(ctx context.Context, key string, body io.ReadSeeker, size int64, contentType string) error {
	in := &s3.PutObjectInput{Bucket: &s.bucket, Key: &key, Body: body, ContentLength: &size}
	if contentType != "" {
		in.ContentType = &contentType
	}
	if _, err := s.client.PutObject(ctx, in); err != nil {
		return fmt.Errorf("lake: put %s (%d bytes) at %s: %w", key, size, s.where, err)
	}
	return nil
}

// Get reads a whole object into memory. A missing key is an error wrapping
// ErrNotFound.
func (s *Store) Get(ctx context.Context, key string) ([]byte, error) {
	out, err := s.client.GetObject(ctx, &s3.GetObjectInput{Bucket: &s.bucket, Key: &key})
	if err != nil {
		if isNotFound(err) {
			return nil, fmt.Errorf("lake: get %s at %s: %w", key, s.where, ErrNotFound)
		}
		return nil, fmt.Errorf("lake: get %s at %s: %w", key, s.where, err)
	}
	defer out.Body.Close()
	var buf bytes.Buffer
	if out.ContentLength != nil && *out.ContentLength > 0 {
		buf.Grow(int(*out.ContentLength))
	}
	if _, err := buf.ReadFrom(out.Body); err != nil {
		return nil, fmt.Errorf("lake: get %s at %s: %w", key, s.where, err)
	}
	return buf.Bytes(), nil
}

// GetFile copies an object into a new temporary file in dir (os.TempDir()
// when empty) and returns it positioned at the start; the caller closes and
// removes it.
func (s *Store) GetFile(ctx context.Context, key, dir string) (*os.File, error) {
	out, err := s.client.GetObject(ctx, &s3.GetObjectInput{Bucket: &s.bucket, Key: &key})
	if err != nil {
		if isNotFound(err) {
			return nil, fmt.Errorf("lake: get %s at %s: %w", key, s.where, ErrNotFound)
		}
		return nil, fmt.Errorf("lake: get %s at %s: %w", key, s.where, err)
	}
	defer out.Body.Close()
	f, err := os.CreateTemp(dir, "lake-*")
	if err != nil {
		return nil, fmt.Errorf("lake: get %s: %w", key, err)
	}
	if _, err := io.Copy(f, out.Body); err != nil {
		f.Close()
		os.Remove(f.Name())
		return nil, fmt.Errorf("lake: get %s at %s: %w", key, s.where, err)
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		f.Close()
		os.Remove(f.Name())
		return nil, fmt.Errorf("lake: get %s: %w", key, err)
	}
	return f, nil
}

// Object is one entry of a listing.
type Object struct {
	Key          string
	Size         int64
	LastModified time.Time
}

// List returns every object whose key starts with prefix, in key order.
func (s *Store) List(ctx context.Context, prefix string) ([]Object, error) {
	var out []Object
	p := s3.NewListObjectsV2Paginator(s.client, &s3.ListObjectsV2Input{Bucket: &s.bucket, Prefix: &prefix})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("lake: list %s at %s: %w", prefix, s.where, err)
		}
		for _, o := range page.Contents {
			obj := Object{Key: aws.ToString(o.Key), Size: aws.ToInt64(o.Size)}
			if o.LastModified != nil {
				obj.LastModified = *o.LastModified
			}
			out = append(out, obj)
		}
	}
	return out, nil
}

// Delete removes objects; keys that do not exist are not an error. It sends
// batches of up to 1,000 keys.
func (s *Store) Delete(ctx context.Context, keys ...string) error {
	for len(keys) > 0 {
		n := min(len(keys), 1000)
		batch := keys[:n]
		keys = keys[n:]
		if len(batch) == 1 {
			if _, err := s.client.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: &s.bucket, Key: &batch[0]}); err != nil && !isNotFound(err) {
				return fmt.Errorf("lake: delete %s at %s: %w", batch[0], s.where, err)
			}
			continue
		}
		ids := make([]types.ObjectIdentifier, len(batch))
		for i := range batch {
			ids[i] = types.ObjectIdentifier{Key: &batch[i]}
		}
		out, err := s.client.DeleteObjects(ctx, &s3.DeleteObjectsInput{
			Bucket: &s.bucket,
			Delete: &types.Delete{Objects: ids, Quiet: aws.Bool(true)},
		})
		if err != nil {
			return fmt.Errorf("lake: delete %d objects from %s at %s: %w", len(batch), batch[0], s.where, err)
		}
		for _, e := range out.Errors {
			if aws.ToString(e.Code) == "NoSuchKey" {
				continue
			}
			return fmt.Errorf("lake: delete %s at %s: %s: %s", aws.ToString(e.Key), s.where, aws.ToString(e.Code), aws.ToString(e.Message))
		}
	}
	return nil
}

func isNotFound(err error) bool {
	var nsk *types.NoSuchKey
	var nf *types.NotFound
	var nsb *types.NoSuchBucket
	if errors.As(err, &nsk) || errors.As(err, &nf) || errors.As(err, &nsb) {
		return true
	}
	switch apiCode(err) {
	case "NoSuchKey", "NotFound", "NoSuchBucket", "404":
		return true
	}
	return false
}

func apiCode(err error) string {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		return ae.ErrorCode()
	}
	return ""
}
