package activities

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.temporal.io/sdk/temporal"

	"github.com/acme/pipeline/blueprint"
)

// writeTestCert writes a self-signed certificate for dnsNames, valid from
// notBefore to notAfter, and its key under dir; it returns the file paths.
func writeTestCert(t *testing.T, dir, base string, dnsNames []string, notBefore, notAfter time.Time) (crt, key string) {
	t.Helper()
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(42),
		Subject:      pkix.Name{CommonName: dnsNames[0]},
		NotBefore:    notBefore,
		NotAfter:     notAfter,
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		DNSNames:     dnsNames,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &priv.PublicKey, priv)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	crt, key = filepath.Join(dir, base+".crt"), filepath.Join(dir, base+".key")
	if err := os.WriteFile(crt, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(key, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}), 0o600); err != nil {
		t.Fatal(err)
	}
	return crt, key
}

func TestGatewayTLS(t *testing.T) {
	now := time.Now()
	dir := t.TempDir()
	goodCrt, goodKey := writeTestCert(t, dir, "good", []string{"events.acme.test"}, now.Add(-time.Hour), now.Add(90*24*time.Hour))
	otherCrt, otherKey := writeTestCert(t, dir, "other", []string{"other.acme.test"}, now.Add(-time.Hour), now.Add(90*24*time.Hour))
	oldCrt, oldKey := writeTestCert(t, dir, "old", []string{"events.acme.test"}, now.Add(-48*time.Hour), now.Add(-24*time.Hour))
	missingKey := filepath.Join(dir, "missing.key")

	tests := []struct {
		name      string
		cfg       blueprint.GatewayConfig
		crt, key  string
		want      []string // substrings of the result message
		wantErr   []string // substrings of the error; nil means success
		wantFatal bool     // the error must be non-retryable
	}{
		{
			name: "plain HTTP", cfg: blueprint.GatewayConfig{Domain: "events.acme.test"},
			want: []string{"gateway edge", "events.acme.test", "plain HTTP"},
		},
		{
			name: "valid certificate for the domain", cfg: blueprint.GatewayConfig{Domain: "events.acme.test", TLS: true},
			crt: goodCrt, key: goodKey,
			want: []string{"gateway edge", "certificate " + goodCrt, "subject CN=events.acme.test", "SANs events.acme.test", "not after ", "SHA-256 "},
		},
		{
			name: "wrong domain", cfg: blueprint.GatewayConfig{Domain: "events.acme.test", TLS: true},
			crt: otherCrt, key: otherKey,
			wantErr: []string{"events.acme.test", otherCrt, "does not cover", "other.acme.test"}, wantFatal: true,
		},
		{
			name: "expired", cfg: blueprint.GatewayConfig{Domain: "events.acme.test", TLS: true},
			crt: oldCrt, key: oldKey,
			wantErr: []string{"events.acme.test", oldCrt, "expired"}, wantFatal: true,
		},
		{
			name: "missing key file", cfg: blueprint.GatewayConfig{Domain: "events.acme.test", TLS: true},
			crt: goodCrt, key: missingKey,
			wantErr: []string{"events.acme.test", missingKey}, wantFatal: true,
		},
		{
			name: "key of another certificate", cfg: blueprint.GatewayConfig{Domain: "events.acme.test", TLS: true},
			crt: goodCrt, key: otherKey,
			wantErr: []string{"events.acme.test", goodCrt, otherKey}, wantFatal: true,
		},
		{
			name: "certificate without key", cfg: blueprint.GatewayConfig{Domain: "events.acme.test", TLS: true},
			crt:     goodCrt,
			wantErr: []string{"events.acme.test", "both or neither"}, wantFatal: true,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			state := t.TempDir()
			got, err := gatewayTLS("edge", tt.cfg, tt.crt, tt.key, state, now)
			if tt.wantErr != nil {
				if err == nil {
					t.Fatalf("no error; result %q", got)
				}
				for _, w := range tt.wantErr {
					if !strings.Contains(err.Error(), w) {
						t.Errorf("error %q does not mention %q", err, w)
					}
				}
				var appErr *temporal.ApplicationError
				if tt.wantFatal && (!errors.As(err, &appErr) || !appErr.NonRetryable()) {
					t.Errorf("error %q is retryable", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			for _, w := range tt.want {
				if !strings.Contains(got, w) {
					t.Errorf("result %q does not mention %q", got, w)
				}
			}
			if entries, _ := os.ReadDir(state); len(entries) != 0 {
				t.Errorf("state dir has %d files; want none without a dev certificate", len(entries))
			}
		})
	}
}

func TestGatewaySelfSigned(t *testing.T) {
	now := time.Now()
	state := filepath.Join(t.TempDir(), ".dev", "tls")
	cfg := blueprint.GatewayConfig{Domain: "events.acme.test", TLS: true}
	crt, key := filepath.Join(state, "gateway-edge.crt"), filepath.Join(state, "gateway-edge.key")

	first, err := gatewayTLS("edge", cfg, "", "", state, now)
	if err != nil {
		t.Fatal(err)
	}
	for _, w := range []string{"self-signed for dev", "generated " + crt, "events.acme.test", "localhost", "127.0.0.1", "SHA-256 "} {
		if !strings.Contains(first, w) {
			t.Errorf("result %q does not mention %q", first, w)
		}
	}
	fi, err := os.Stat(key)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("key mode %v, want 0600", fi.Mode().Perm())
	}
	leaf, err := loadGatewayCert("events.acme.test", crt, key, now)
	if err != nil {
		t.Fatal(err)
	}
	if leaf.PublicKeyAlgorithm != x509.ECDSA || leaf.PublicKey.(*ecdsa.PublicKey).Curve != elliptic.P256() {
		t.Errorf("key %v, want ECDSA P-256", leaf.PublicKeyAlgorithm)
	}
	for _, h := range []string{"localhost", "127.0.0.1"} {
		if err := leaf.VerifyHostname(h); err != nil {
			t.Errorf("dev certificate: %v", err)
		}
	}

	// Reuse: same certificate, same fingerprint.
	second, err := gatewayTLS("edge", cfg, "", "", state, now.Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(second, "reused "+crt) || fingerprintOf(second) != fingerprintOf(first) {
		t.Errorf("second run %q, want the certificate of the first %q reused", second, first)
	}

	// Another domain: the dev certificate is replaced.
	third, err := gatewayTLS("edge", blueprint.GatewayConfig{Domain: "api.acme.test", TLS: true}, "", "", state, now)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(third, "generated") || !strings.Contains(third, "api.acme.test") || fingerprintOf(third) == fingerprintOf(first) {
		t.Errorf("new domain: %q, want a new certificate", third)
	}

	// Close to expiry: replaced.
	fourth, err := gatewayTLS("edge", blueprint.GatewayConfig{Domain: "api.acme.test", TLS: true}, "", "", state, now.Add(devCertValidity-24*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(fourth, "generated") {
		t.Errorf("near expiry: %q, want a new certificate", fourth)
	}

	// A name that is not a file name is refused.
	if _, err := gatewayTLS("../edge", cfg, "", "", state, now); err == nil {
		t.Error("name ../edge: no error")
	}
}

func fingerprintOf(msg string) string {
	_, fp, _ := strings.Cut(msg, "SHA-256 ")
	return fp
}
