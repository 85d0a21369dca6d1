package config

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
)

// TestDatabaseURLTLS checks that the TLS settings documented for
// DATABASE_URL (docs/real-infrastructure.md) are understood by pgx: sslmode,
// sslrootcert, sslcert and sslkey travel in the URL, nothing else is needed.
func TestDatabaseURLTLS(t *testing.T) {
	dir := t.TempDir()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "rds-ca"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, _ := x509.MarshalECPrivateKey(key)
	ca := filepath.Join(dir, "ca.pem")
	crt := filepath.Join(dir, "client.crt")
	kf := filepath.Join(dir, "client.key")
	certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	for p, b := range map[string][]byte{ca: certPEM, crt: certPEM, kf: pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder})} {
		if err := os.WriteFile(p, b, 0o600); err != nil {
			t.Fatal(err)
		}
	}

	url := "postgres://pipeline:pw@db.abc.eu-west-1.rds.amazonaws.com:5432/pipeline?sslmode=verify-full&sslrootcert=" + ca
	pc, err := pgxpool.ParseConfig(url)
	if err != nil {
		t.Fatalf("verify-full: %v", err)
	}
	tc := pc.ConnConfig.TLSConfig
	if tc == nil || tc.InsecureSkipVerify || tc.ServerName != "db.abc.eu-west-1.rds.amazonaws.com" || tc.RootCAs == nil {
		t.Fatalf("verify-full: TLS config %+v; want the host name verified against sslrootcert", tc)
	}
	if len(pc.ConnConfig.Fallbacks) != 0 {
		t.Fatalf("verify-full must not fall back to plaintext: %d fallbacks", len(pc.ConnConfig.Fallbacks))
	}
	if err := (Config{DatabaseURL: url}).Validate(NeedDatabase); err != nil {
		t.Fatal(err)
	}

	// Client certificate authentication.
	pc, err = pgxpool.ParseConfig(url + "&sslcert=" + crt + "&sslkey=" + kf)
	if err != nil {
		t.Fatalf("sslcert/sslkey: %v", err)
	}
	if got := pc.ConnConfig.TLSConfig; got == nil || len(got.Certificates) != 1 {
		t.Fatalf("sslcert/sslkey: no client certificate in %+v", got)
	}

	// require: encrypted, no verification; disable: plaintext.
	if pc, err := pgxpool.ParseConfig("postgres://h/db?sslmode=require"); err != nil || pc.ConnConfig.TLSConfig == nil || !pc.ConnConfig.TLSConfig.InsecureSkipVerify {
		t.Fatalf("require: %v %+v", err, pc)
	}
	if pc, err := pgxpool.ParseConfig(DefaultDatabaseURL); err != nil || pc.ConnConfig.TLSConfig != nil {
		t.Fatalf("default sslmode=disable: %v", err)
	}

	// A missing sslrootcert fails when the URL is parsed, naming the file.
	missing := filepath.Join(dir, "nope.pem")
	if _, err := pgxpool.ParseConfig("postgres://h/db?sslmode=verify-full&sslrootcert=" + missing); err == nil || !strings.Contains(err.Error(), "nope.pem") {
		t.Fatalf("missing sslrootcert: %v", err)
	}
}
