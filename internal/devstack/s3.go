package devstack

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
)

// startS3 runs versitygw with its posix backend: objects are plain files under
// Dir/s3/<bucket>/, readable with ls and cat, and the gateway is strict about
// checksums the way real S3 is.
func (s *Stack) startS3(ctx context.Context) error {
	addr := hostPort(s.cfg.S3Port)
	if !portFree(addr) {
		return fmt.Errorf("port %s is taken: another S3 store or `pipeline dev` is running", addr)
	}
	if err := s.s3Credentials(); err != nil {
		return err
	}
	root := filepath.Join(s.cfg.Dir, "s3")
	for _, d := range []string{root, filepath.Join(s.cfg.Dir, "meta-s3")} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return err
		}
	}
	bin, err := s.bin("versitygw")
	if err != nil {
		return err
	}
	// The keys go in the environment: ps shows a command line to anyone.
	c, err := startChild("versitygw", filepath.Join(s.cfg.Dir, "s3.log"), bin,
		[]string{"ROOT_ACCESS_KEY_ID=" + s.AccessKeyID, "ROOT_SECRET_ACCESS_KEY=" + s.SecretAccessKey},
		"--region", s.Region, "--port", addr, "--quiet", "posix", "--sidecar", filepath.Join(s.cfg.Dir, "meta-s3"), root)
	if err != nil {
		return err
	}
	s.onClose(c.stop)
	if err := waitPort(ctx, addr, 30*time.Second, c.exited); err != nil {
		return fmt.Errorf("%w (see %s)", err, filepath.Join(s.cfg.Dir, "s3.log"))
	}
	s.S3Endpoint = "http://" + addr
	if !s.cfg.CreateResources {
		return nil
	}
	return EnsureBucket(ctx, S3Client(s.S3Endpoint, s.Region, s.AccessKeyID, s.SecretAccessKey), s.cfg.Bucket)
}

// s3Credentials takes the configured keys, else the ones generated on a
// previous start, else generates and stores new ones.
func (s *Stack) s3Credentials() error {
	if s.cfg.AccessKeyID != "" && s.cfg.SecretAccessKey != "" {
		s.AccessKeyID, s.SecretAccessKey = s.cfg.AccessKeyID, s.cfg.SecretAccessKey
		return nil
	}
	path := filepath.Join(s.cfg.Dir, "s3.credentials")
	if b, err := os.ReadFile(path); err == nil {
		if id, secret, ok := strings.Cut(strings.TrimSpace(string(b)), ":"); ok {
			s.AccessKeyID, s.SecretAccessKey = id, secret
			return nil
		}
	}
	s.AccessKeyID, s.SecretAccessKey = "dev"+randomHex(6), randomHex(20)
	return os.WriteFile(path, []byte(s.AccessKeyID+":"+s.SecretAccessKey+"\n"), 0o600)
}

// S3Client builds a path-style client for an S3-compatible endpoint.
func S3Client(endpoint, region, id, secret string) *s3.Client {
	return s3.New(s3.Options{
		BaseEndpoint: aws.String(endpoint),
		Region:       region,
		Credentials:  credentials.NewStaticCredentialsProvider(id, secret, ""),
		UsePathStyle: true,
	})
}

// EnsureBucket creates a private bucket when it is missing.
func EnsureBucket(ctx context.Context, c *s3.Client, bucket string) error {
	_, err := c.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String(bucket), ACL: types.BucketCannedACLPrivate})
	var owned *types.BucketAlreadyOwnedByYou
	var exists *types.BucketAlreadyExists
	if err != nil && !errors.As(err, &owned) && !errors.As(err, &exists) {
		return fmt.Errorf("create bucket %s: %w", bucket, err)
	}
	return nil
}
