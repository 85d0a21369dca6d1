package lake_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/acme/pipeline/lake"
)

// fakeS3 answers every request 200 and records the path and the access key
// of each request's signature.
type fakeS3 struct {
	mu    sync.Mutex
	paths []string
	keys  []string
	hosts []string
}

func (f *fakeS3) start(t *testing.T) string {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f.mu.Lock()
		defer f.mu.Unlock()
		f.paths = append(f.paths, r.URL.Path)
		f.hosts = append(f.hosts, r.Host)
		// Authorization: AWS4-HMAC-SHA256 Credential=AKID/20261124/us-east-1/s3/aws4_request, ...
		auth := r.Header.Get("Authorization")
		if _, cred, ok := strings.Cut(auth, "Credential="); ok {
			key, _, _ := strings.Cut(cred, "/")
			f.keys = append(f.keys, key)
		}
		w.WriteHeader(http.StatusOK)
	}))
	t.Cleanup(srv.Close)
	return srv.URL
}

// isolate points the AWS SDK at empty shared files and clears the AWS_*
// variables, so the developer's own AWS setup cannot leak into a test.
func isolate(t *testing.T) string {
	dir := t.TempDir()
	for _, v := range []string{"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE",
		"AWS_DEFAULT_PROFILE", "AWS_ROLE_ARN", "AWS_WEB_IDENTITY_TOKEN_FILE", "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
		"AWS_CONTAINER_CREDENTIALS_FULL_URI"} {
		t.Setenv(v, "")
		os.Unsetenv(v)
	}
	t.Setenv("AWS_CONFIG_FILE", filepath.Join(dir, "config"))
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", filepath.Join(dir, "credentials"))
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
	return dir
}

func headBucket(t *testing.T, cfg lake.Config) {
	t.Helper()
	st, err := lake.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := st.EnsureBucket(context.Background()); err != nil {
		t.Fatalf("EnsureBucket: %v", err)
	}
}

func TestStaticCredentialsPathStyle(t *testing.T) {
	isolate(t)
	t.Setenv("AWS_ACCESS_KEY_ID", "FROM-ENV") // static keys in the Config win
	var f fakeS3
	url := f.start(t)
	headBucket(t, lake.Config{Endpoint: url, AccessKeyID: "STATIC", SecretAccessKey: "x", Bucket: "b1", PathStyle: true})
	if len(f.keys) == 0 || f.keys[0] != "STATIC" {
		t.Fatalf("signed with %v, want STATIC", f.keys)
	}
	if f.paths[0] != "/b1" {
		t.Fatalf("path %q, want /b1 (path-style)", f.paths[0])
	}
}

func TestCredentialChainFromEnvironment(t *testing.T) {
	isolate(t)
	t.Setenv("AWS_ACCESS_KEY_ID", "CHAIN-ENV")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "secret")
	var f fakeS3
	url := f.start(t)
	headBucket(t, lake.Config{Endpoint: url, Bucket: "b2", PathStyle: true})
	if len(f.keys) == 0 || f.keys[0] != "CHAIN-ENV" {
		t.Fatalf("signed with %v, want the environment's CHAIN-ENV", f.keys)
	}
}

func TestCredentialChainFromProfile(t *testing.T) {
	dir := isolate(t)
	creds := "[default]\naws_access_key_id = DEFAULT-PROFILE\naws_secret_access_key = s\n\n[analytics]\naws_access_key_id = NAMED-PROFILE\naws_secret_access_key = s\n"
	if err := os.WriteFile(filepath.Join(dir, "credentials"), []byte(creds), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("AWS_PROFILE", "analytics")
	var f fakeS3
	url := f.start(t)
	headBucket(t, lake.Config{Endpoint: url, Bucket: "b3", PathStyle: true})
	if len(f.keys) == 0 || f.keys[0] != "NAMED-PROFILE" {
		t.Fatalf("signed with %v, want AWS_PROFILE's NAMED-PROFILE", f.keys)
	}
}

func TestCredentialChainBadProfile(t *testing.T) {
	isolate(t)
	t.Setenv("AWS_PROFILE", "missing")
	_, err := lake.New(lake.Config{Endpoint: "http://127.0.0.1:1", Bucket: "b"})
	if err == nil || !strings.Contains(err.Error(), "missing") || !strings.Contains(err.Error(), "AWS_ACCESS_KEY_ID unset") {
		t.Fatalf("unknown AWS_PROFILE: %v", err)
	}
}

func TestHalfStaticCredentialsRefused(t *testing.T) {
	for _, c := range []lake.Config{{AccessKeyID: "a"}, {SecretAccessKey: "s"}} {
		if err := c.Validate(); err == nil || !strings.Contains(err.Error(), "AWS_SECRET_ACCESS_KEY") {
			t.Fatalf("%+v: %v", c, err)
		}
	}
}
