package activities

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"

	"go.temporal.io/sdk/temporal"

	"github.com/acme/pipeline/blueprint"
)

// Dev certificates generated for a gateway without a configured certificate.
const (
	devCertValidity = 365 * 24 * time.Hour
	// devCertRenewBefore: a dev certificate this close to expiry is replaced
	// rather than reused.
	devCertRenewBefore = 7 * 24 * time.Hour
)

// gatewayStateDir is where dev certificates are kept: dir, or a directory
// under os.TempDir() if dir is empty.
func gatewayStateDir(dir string) string {
	if dir == "" {
		return filepath.Join(os.TempDir(), "pipeline-tls")
	}
	return dir
}

// gatewayTLS applies a gateway's TLS settings and returns the result message
// (without the "gateway <name>:" prefix apply adds to errors).
//
// tls=false: plain HTTP. tls=true with certFile and keyFile: the pair is
// loaded and its leaf must cover the domain and be valid at now; a mismatch,
// an expired certificate or an unreadable file is non-retryable and names
// the domain and the file. tls=true without a certificate: a self-signed
// ECDSA P-256 certificate for the domain, localhost and 127.0.0.1 is
// generated once under stateDir (gateway-<name>.crt/.key, key mode 0600) and
// reused while it is valid.
func gatewayTLS(name string, cfg blueprint.GatewayConfig, certFile, keyFile, stateDir string, now time.Time) (string, error) {
	if !cfg.TLS {
		return fmt.Sprintf("gateway %s: domain %s, plain HTTP (tls=false)", name, cfg.Domain), nil
	}
	if cfg.Domain == "" {
		return "", temporal.NewNonRetryableApplicationError("tls=true needs a dominio", ErrTypeInvalid, nil)
	}
	switch {
	case certFile != "" && keyFile != "":
		leaf, err := loadGatewayCert(cfg.Domain, certFile, keyFile, now)
		if err != nil {
			return "", err
		}
		return fmt.Sprintf("gateway %s: domain %s, TLS with certificate %s: %s", name, cfg.Domain, certFile, describeCert(leaf)), nil
	case certFile != "" || keyFile != "":
		return "", temporal.NewNonRetryableApplicationError(fmt.Sprintf(
			"domain %s: TLS certificate %q and key %q: both or neither must be configured", cfg.Domain, certFile, keyFile), ErrTypeInvalid, nil)
	}
	if name == "" || name != filepath.Base(name) || strings.ContainsAny(name, `/\`) || name == "." || name == ".." {
		return "", temporal.NewNonRetryableApplicationError(fmt.Sprintf("name %q cannot name a certificate file", name), ErrTypeInvalid, nil)
	}
	dir := gatewayStateDir(stateDir)
	crt := filepath.Join(dir, "gateway-"+name+".crt")
	key := filepath.Join(dir, "gateway-"+name+".key")
	how := "reused"
	leaf, err := loadGatewayCert(cfg.Domain, crt, key, now.Add(devCertRenewBefore))
	if err != nil {
		if leaf, err = writeDevCert(cfg.Domain, crt, key, now); err != nil {
			return "", err
		}
		how = "generated"
	} else if err := os.Chmod(key, 0o600); err != nil {
		return "", fmt.Errorf("dev key %s: %w", key, err)
	}
	return fmt.Sprintf("gateway %s: domain %s, TLS self-signed for dev (%s %s): %s", name, cfg.Domain, how, crt, describeCert(leaf)), nil
}

// loadGatewayCert loads the pair and checks that its leaf covers domain and
// is valid at now. Every error is non-retryable (the files or the worker's
// configuration must change) and names the domain and the file.
func loadGatewayCert(domain, certFile, keyFile string, now time.Time) (*x509.Certificate, error) {
	bad := func(format string, args ...any) error {
		return temporal.NewNonRetryableApplicationError(fmt.Sprintf(format, args...), ErrTypeRefused, nil)
	}
	certPEM, err := os.ReadFile(certFile)
	if err != nil {
		return nil, bad("domain %s: TLS certificate file %s: %v", domain, certFile, err)
	}
	keyPEM, err := os.ReadFile(keyFile)
	if err != nil {
		return nil, bad("domain %s: TLS key file %s: %v", domain, keyFile, err)
	}
	pair, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return nil, bad("domain %s: TLS certificate %s with key %s: %v", domain, certFile, keyFile, err)
	}
	leaf := pair.Leaf
	if leaf == nil {
		if leaf, err = x509.ParseCertificate(pair.Certificate[0]); err != nil {
			return nil, bad("domain %s: TLS certificate %s: %v", domain, certFile, err)
		}
	}
	if err := leaf.VerifyHostname(domain); err != nil {
		return nil, bad("domain %s: TLS certificate %s does not cover it (subject %s, SANs %s)",
			domain, certFile, leaf.Subject, strings.Join(certSANs(leaf), ", "))
	}
	if now.After(leaf.NotAfter) {
		return nil, bad("domain %s: TLS certificate %s expired at %s", domain, certFile, leaf.NotAfter.UTC().Format(time.RFC3339))
	}
	if now.Before(leaf.NotBefore) {
		return nil, bad("domain %s: TLS certificate %s is not valid before %s", domain, certFile, leaf.NotBefore.UTC().Format(time.RFC3339))
	}
	return leaf, nil
}

// writeDevCert generates a self-signed ECDSA P-256 certificate for domain,
// localhost and 127.0.0.1 and writes it to crt and key (mode 0600), each
// through a temporary file renamed into place.
func writeDevCert(domain, crt, key string, now time.Time) (*x509.Certificate, error) {
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("generate dev key: %w", err)
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 128))
	if err != nil {
		return nil, fmt.Errorf("generate serial: %w", err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: domain, Organization: []string{"pipeline dev (self-signed)"}},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(devCertValidity),
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		DNSNames:              []string{"localhost"},
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback},
	}
	if ip := net.ParseIP(domain); ip != nil {
		tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
	} else if domain != "localhost" {
		tmpl.DNSNames = append([]string{domain}, tmpl.DNSNames...)
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &priv.PublicKey, priv)
	if err != nil {
		return nil, fmt.Errorf("create dev certificate: %w", err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		return nil, fmt.Errorf("encode dev key: %w", err)
	}
	if err := os.MkdirAll(filepath.Dir(crt), 0o700); err != nil {
		return nil, fmt.Errorf("dev certificate directory: %w", err)
	}
	if err := writeFileAtomic(key, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}), 0o600); err != nil {
		return nil, err
	}
	if err := writeFileAtomic(crt, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644); err != nil {
		return nil, err
	}
	return x509.ParseCertificate(der)
}

func writeFileAtomic(path string, data []byte, mode os.FileMode) error {
	f, err := os.CreateTemp(filepath.Dir(path), filepath.Base(path)+".tmp*")
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	tmp := f.Name()
	_, err = f.Write(data)
	if err == nil {
		err = f.Chmod(mode)
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		os.Remove(tmp)
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}

// describeCert is what the result message says of a certificate.
func describeCert(c *x509.Certificate) string {
	return fmt.Sprintf("subject %s, SANs %s, not after %s, SHA-256 %s",
		c.Subject, strings.Join(certSANs(c), ", "), c.NotAfter.UTC().Format(time.RFC3339), certFingerprint(c))
}

func certSANs(c *x509.Certificate) []string {
	var s []string
	s = append(s, c.DNSNames...)
	for _, ip := range c.IPAddresses {
		s = append(s, ip.String())
	}
	if len(s) == 0 {
		s = []string{"none"}
	}
	return s
}

// certFingerprint is the SHA-256 of the DER certificate, as openssl prints
// it (AB:CD:…).
func certFingerprint(c *x509.Certificate) string {
	sum := sha256.Sum256(c.Raw)
	h := strings.ToUpper(hex.EncodeToString(sum[:]))
	var b strings.Builder
	for i := 0; i < len(h); i += 2 {
		if i > 0 {
			b.WriteByte(':')
		}
		b.WriteString(h[i : i+2])
	}
	return b.String()
}
