package ingest_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/acme/pipeline/ingest"
)

func TestHealthReadyMetricsStatus(t *testing.T) {
	c, brokers := startBroker(t)
	_, base := startAPI(t, brokers, nil)

	if code, body := get(t, base+"/healthz"); code != 200 || strings.TrimSpace(body) != "ok" {
		t.Errorf("/healthz: %d %q", code, body)
	}
	if code, body := get(t, base+"/readyz"); code != 200 {
		t.Errorf("/readyz with the broker up: %d %q", code, body)
	}
	post(t, base, jsonArray(ev("a", ""), ev("b", "")), nil)
	post(t, base, []byte(ev("a", "")), map[string]string{"Authorization": ""})
	post(t, base, []byte(`{"type":"a"}`), nil)

	code, metrics := get(t, base+"/metrics")
	if code != 200 {
		t.Fatalf("/metrics: %d", code)
	}
	for _, want := range []string{
		`pipeline_api_events_accepted_total{`,
		`pipeline_api_requests_refused_total{`,
		`reason="unauthorized"`,
		`reason="invalid"`,
		`pipeline_api_events_refused_total{`,
		`pipeline_api_request_duration_seconds_bucket{`,
		`http_route="/v1/events"`,
		`pipeline_api_batch_size_bucket{`,
		`pipeline_api_produce_duration_seconds_bucket{`,
		`go_goroutines`,
	} {
		if !strings.Contains(metrics, want) {
			t.Errorf("/metrics has no %s", want)
		}
	}
	if t.Failed() {
		t.Logf("/metrics:\n%s", grepLines(metrics, "pipeline_"))
	}

	code, page := get(t, base+"/status")
	if code != 200 || !strings.Contains(page, "Event API") || !strings.Contains(page, "events") || !strings.Contains(page, ">ready<") {
		t.Errorf("/status: %d\n%s", code, page)
	}

	c.Close()
	time.Sleep(1100 * time.Millisecond) // past the readiness cache
	if code, body := get(t, base+"/readyz"); code != 503 || !strings.Contains(body, "kafka") {
		t.Errorf("/readyz with the broker down: %d %q", code, body)
	}
}

func grepLines(s, substr string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, substr) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

func TestReadyzMissingTopic(t *testing.T) {
	_, brokers := startBroker(t)
	_, base := startAPI(t, brokers, func(c *ingest.Config) { c.Topic = "no-such-topic" })
	if code, body := get(t, base+"/readyz"); code != 503 || !strings.Contains(body, "no-such-topic") {
		t.Errorf("/readyz without the topic: %d %q", code, body)
	}
	if code, body := get(t, base+"/status"); code != 200 || !strings.Contains(body, "not ready") {
		t.Errorf("/status without the topic: %d %q", code, body)
	}
}

func TestCustomStatusHandler(t *testing.T) {
	_, brokers := startBroker(t)
	_, base := startAPI(t, brokers, func(c *ingest.Config) {
		c.Status = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("pipeline status")) })
	})
	if code, body := get(t, base+"/status"); code != 200 || body != "pipeline status" {
		t.Errorf("/status: %d %q", code, body)
	}
}

// TestTLS serves HTTPS when a certificate and key are configured.
func TestTLS(t *testing.T) {
	_, brokers := startBroker(t)
	certFile, keyFile, pool := selfSigned(t)
	s, err := ingest.New(ingest.Config{Brokers: brokers, APIKeys: map[string]string{"test": testKey},
		TLSCertFile: certFile, TLSKeyFile: keyFile}, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- s.Serve(ctx, ln) }()
	defer func() {
		cancel()
		if err := <-served; err != nil {
			t.Errorf("Serve: %v", err)
		}
	}()

	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}, Timeout: 5 * time.Second}
	base := "https://" + ln.Addr().String()
	res, err := client.Get(base + "/healthz")
	if err != nil {
		t.Fatalf("GET /healthz over TLS: %v", err)
	}
	res.Body.Close()
	if res.StatusCode != 200 || res.TLS == nil {
		t.Errorf("GET /healthz over TLS: %d, TLS %v", res.StatusCode, res.TLS != nil)
	}
	if r := post(t, base, []byte(ev("over_tls", "")), nil); r.status != http.StatusAccepted {
		t.Errorf("POST over TLS: %d %s", r.status, r.raw)
	}
	plain, err := http.Get("http://" + ln.Addr().String() + "/healthz")
	if err == nil {
		plain.Body.Close()
		if plain.StatusCode == 200 {
			t.Error("plain HTTP is served on the TLS port")
		}
	}
}

// selfSigned writes a certificate for 127.0.0.1 and trusts it in
// http.DefaultClient for the rest of the test.
func selfSigned(t *testing.T) (certFile, keyFile string, pool *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "pipeline test"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		IPAddresses:  []net.IP{net.ParseIP("127.0.0.1")},
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600)
	os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}), 0o600)
	cert, _ := x509.ParseCertificate(der)
	pool = x509.NewCertPool()
	pool.AddCert(cert)
	old := http.DefaultClient
	http.DefaultClient = &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	t.Cleanup(func() { http.DefaultClient = old })
	return certFile, keyFile, pool
}

func TestNewRefusesBadTLSFiles(t *testing.T) {
	_, err := ingest.New(ingest.Config{Brokers: []string{"127.0.0.1:9092"}, APIKeys: map[string]string{"a": "b"},
		TLSCertFile: "/nonexistent/cert.pem", TLSKeyFile: "/nonexistent/key.pem"}, nil)
	if err == nil || !strings.Contains(err.Error(), "TLSCertFile") {
		t.Errorf("New with missing TLS files: %v", err)
	}
}

func TestConfigValidate(t *testing.T) {
	valid := func() ingest.Config {
		return ingest.Config{Brokers: []string{"127.0.0.1:9092"}, APIKeys: map[string]string{"web": "s3cret"}}
	}
	cases := []struct {
		name   string
		mutate func(*ingest.Config)
		want   string // "" means valid
	}{
		{"minimal", func(*ingest.Config) {}, ""},
		{"everything set", func(c *ingest.Config) {
			c.Addr, c.Topic, c.MaxBodyBytes, c.MaxEventBytes, c.ProduceTimeout, c.MaxInFlight = "127.0.0.1:8080", "events", 1<<20, 1<<10, time.Second, 8
			c.TLSCertFile, c.TLSKeyFile = "c.pem", "k.pem"
		}, ""},
		{"no brokers", func(c *ingest.Config) { c.Brokers = nil }, "Brokers"},
		{"broker without port", func(c *ingest.Config) { c.Brokers = []string{"kafka"} }, `Brokers: "kafka" is not host:port`},
		{"broker with bad port", func(c *ingest.Config) { c.Brokers = []string{"kafka:http"} }, "port must be a number"},
		{"bad addr", func(c *ingest.Config) { c.Addr = "8080" }, "Addr"},
		{"bad topic", func(c *ingest.Config) { c.Topic = "my topic" }, "Topic"},
		{"no keys", func(c *ingest.Config) { c.APIKeys = nil }, "APIKeys: at least one"},
		{"empty secret", func(c *ingest.Config) { c.APIKeys = map[string]string{"web": " "} }, `key "web" has an empty secret`},
		{"bad key name", func(c *ingest.Config) { c.APIKeys = map[string]string{"a b": "x"} }, "key name"},
		{"shared secret", func(c *ingest.Config) { c.APIKeys = map[string]string{"a": "x", "b": "x"} }, `keys "a" and "b" have the same secret`},
		{"negative body limit", func(c *ingest.Config) { c.MaxBodyBytes = -1 }, "MaxBodyBytes"},
		{"negative event limit", func(c *ingest.Config) { c.MaxEventBytes = -1 }, "MaxEventBytes"},
		{"event limit over body limit", func(c *ingest.Config) { c.MaxBodyBytes = 1000; c.MaxEventBytes = 2000 }, "must not exceed MaxBodyBytes"},
		{"event limit default over small body limit", func(c *ingest.Config) { c.MaxBodyBytes = 1000 }, "MaxEventBytes 1048576"},
		{"negative timeout", func(c *ingest.Config) { c.ProduceTimeout = -time.Second }, "ProduceTimeout"},
		{"negative in-flight", func(c *ingest.Config) { c.MaxInFlight = -1 }, "MaxInFlight"},
		{"cert without key", func(c *ingest.Config) { c.TLSCertFile = "c.pem" }, "TLSCertFile and TLSKeyFile"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := valid()
			tc.mutate(&c)
			err := c.Validate()
			switch {
			case tc.want == "" && err != nil:
				t.Errorf("Validate: %v", err)
			case tc.want != "" && err == nil:
				t.Errorf("Validate accepted it; want an error naming %q", tc.want)
			case tc.want != "" && !strings.Contains(err.Error(), tc.want):
				t.Errorf("Validate: %v; want it to name %q", err, tc.want)
			}
			if err != nil && strings.Contains(err.Error(), "s3cret") {
				t.Errorf("Validate printed a secret: %v", err)
			}
		})
	}
	// Several problems are reported together.
	err := ingest.Config{MaxBodyBytes: -1}.Validate()
	for _, want := range []string{"Brokers", "APIKeys", "MaxBodyBytes"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Validate of a bad config: %v; want it to name %s", err, want)
		}
	}
}

func TestParseAPIKeys(t *testing.T) {
	cases := []struct {
		in      string
		want    map[string]string
		wantErr string
	}{
		{"", map[string]string{}, ""},
		{"web:s3cret", map[string]string{"web": "s3cret"}, ""},
		{" web : s3cret , backend:0th:3r ,", map[string]string{"web": "s3cret", "backend": "0th:3r"}, ""},
		{"s3cretwithoutname", nil, "entry 1 has no ':'"},
		{"web:a,:b", nil, "entry 2 has an empty name"},
		{"web:", nil, `key "web" has an empty secret`},
		{"web:a,web:b", nil, `key "web" is listed twice`},
		{"my key:x", nil, "entry 1: the key name"},
	}
	for _, tc := range cases {
		got, err := ingest.ParseAPIKeys(tc.in)
		if tc.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("ParseAPIKeys(%q) = %v, %v; want error %q", tc.in, got, err, tc.wantErr)
			}
			if err != nil && (strings.Contains(err.Error(), "s3cret") || strings.Contains(err.Error(), "withoutname")) {
				t.Errorf("ParseAPIKeys(%q): the error shows a secret: %v", tc.in, err)
			}
			continue
		}
		if err != nil || len(got) != len(tc.want) {
			t.Errorf("ParseAPIKeys(%q) = %v, %v; want %v", tc.in, got, err, tc.want)
			continue
		}
		for k, v := range tc.want {
			if got[k] != v {
				t.Errorf("ParseAPIKeys(%q)[%q] = %q, want %q", tc.in, k, got[k], v)
			}
		}
	}
}

func TestRunReportsABusyAddress(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	s, err := ingest.New(ingest.Config{Addr: ln.Addr().String(), Brokers: []string{"127.0.0.1:9"}, APIKeys: map[string]string{"a": "b"}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	err = s.Run(context.Background())
	if err == nil || !strings.Contains(err.Error(), ln.Addr().String()) {
		t.Errorf("Run on a busy address: %v", err)
	}
}
