package kafkaconn

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// pki is a throwaway CA with a server certificate for 127.0.0.1/localhost
// and a client certificate, written as PEM files.
type pki struct {
	caFile, clientCert, clientKey string
	server                        tls.Certificate
	pool                          *x509.CertPool
}

func newPKI(t *testing.T) pki {
	t.Helper()
	dir := t.TempDir()
	caKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	caTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	caCert, _ := x509.ParseCertificate(caDER)
	issue := func(serial int64, name string, usage x509.ExtKeyUsage, server bool) ([]byte, []byte) {
		key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		tmpl := &x509.Certificate{
			SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: name},
			NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
			KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{usage},
		}
		if server {
			tmpl.DNSNames = []string{"localhost"}
			tmpl.IPAddresses = []net.IP{net.ParseIP("127.0.0.1")}
		}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, caCert, &key.PublicKey, caKey)
		if err != nil {
			t.Fatal(err)
		}
		kder, _ := x509.MarshalECPrivateKey(key)
		return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
			pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder})
	}
	write := func(name string, b []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, b, 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	var p pki
	p.caFile = write("ca.pem", pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER}))
	sc, sk := issue(2, "broker", x509.ExtKeyUsageServerAuth, true)
	if p.server, err = tls.X509KeyPair(sc, sk); err != nil {
		t.Fatal(err)
	}
	cc, ck := issue(3, "client", x509.ExtKeyUsageClientAuth, false)
	p.clientCert, p.clientKey = write("client.pem", cc), write("client-key.pem", ck)
	p.pool = x509.NewCertPool()
	p.pool.AddCert(caCert)
	return p
}

// broker starts kfake with SASL for user app/s3cret under mech, over TLS
// when tc is not nil, with topic "t" (1 partition).
func broker(t *testing.T, mech string, tc *tls.Config) []string {
	t.Helper()
	opts := []kfake.Opt{kfake.NumBrokers(1), kfake.SeedTopics(1, "t"), kfake.EnableSASL(), kfake.Superuser(mech, "app", "s3cret")}
	if tc != nil {
		opts = append(opts, kfake.TLS(tc))
	}
	c, err := kfake.NewCluster(opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c.ListenAddrs()
}

// roundTrip produces one record through a Writer and reads it back through
// a Reader (Dialer) and a Client (Transport), all secured by cfg.
func roundTrip(t *testing.T, brokers []string, cfg Config) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	tr, err := cfg.Transport(&kafka.Transport{ClientID: "kafkaconn-test", DialTimeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer tr.CloseIdleConnections()
	w := &kafka.Writer{Addr: kafka.TCP(brokers...), Topic: "t", RequiredAcks: kafka.RequireAll, Transport: tr, BatchTimeout: time.Millisecond}
	defer w.Close()
	if err := w.WriteMessages(ctx, kafka.Message{Key: []byte("k"), Value: []byte("hello over " + cfg.String())}); err != nil {
		t.Fatalf("produce (%s): %v", cfg, err)
	}

	d, err := cfg.Dialer(&kafka.Dialer{Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	conn, err := d.DialContext(ctx, "tcp", brokers[0])
	if err != nil {
		t.Fatalf("dial (%s): %v", cfg, err)
	}
	ps, err := conn.ReadPartitions("t")
	conn.Close()
	if err != nil || len(ps) != 1 {
		t.Fatalf("read partitions (%s): %v %v", cfg, ps, err)
	}
	r := kafka.NewReader(kafka.ReaderConfig{Brokers: brokers, Topic: "t", Partition: 0, Dialer: d, MaxWait: 100 * time.Millisecond})
	defer r.Close()
	m, err := r.ReadMessage(ctx)
	if err != nil {
		t.Fatalf("read (%s): %v", cfg, err)
	}
	if string(m.Key) != "k" || !strings.HasPrefix(string(m.Value), "hello over ") {
		t.Fatalf("read back %q=%q", m.Key, m.Value)
	}

	c := &kafka.Client{Addr: kafka.TCP(brokers...), Transport: tr, Timeout: 5 * time.Second}
	offs, err := c.ListOffsets(ctx, &kafka.ListOffsetsRequest{Topics: map[string][]kafka.OffsetRequest{"t": {kafka.LastOffsetOf(0)}}})
	if err != nil {
		t.Fatalf("list offsets (%s): %v", cfg, err)
	}
	if got := offs.Topics["t"]; len(got) != 1 || got[0].LastOffset != 1 {
		t.Fatalf("offsets %+v, want next offset 1", got)
	}
	if id, err := topicID(brokers, cfg); err != nil || id == ([16]byte{}) {
		t.Fatalf("topic id through franz-go (%s): %x %v", cfg, id, err)
	}
}

// topicID asks for the id of topic "t" with a franz-go client (Metadata
// v10+) secured by cfg.FranzOpts.
func topicID(brokers []string, cfg Config) ([16]byte, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	opts, err := cfg.FranzOpts()
	if err != nil {
		return [16]byte{}, err
	}
	cl, err := kgo.NewClient(append(opts, kgo.SeedBrokers(brokers...), kgo.RetryTimeout(time.Second))...)
	if err != nil {
		return [16]byte{}, err
	}
	defer cl.Close()
	req := kmsg.NewPtrMetadataRequest()
	rt := kmsg.NewMetadataRequestTopic()
	rt.Topic = kmsg.StringPtr("t")
	req.Topics = append(req.Topics, rt)
	resp, err := req.RequestWith(ctx, cl)
	if err != nil {
		return [16]byte{}, err
	}
	if len(resp.Topics) != 1 {
		return [16]byte{}, fmt.Errorf("%d topics in the answer", len(resp.Topics))
	}
	return resp.Topics[0].TopicID, kerr.ErrorForCode(resp.Topics[0].ErrorCode)
}

func TestSASLOverTLS(t *testing.T) {
	p := newPKI(t)
	for _, mech := range []string{MechanismSCRAMSHA256, MechanismSCRAMSHA512, MechanismPlain} {
		t.Run(mech, func(t *testing.T) {
			brokers := broker(t, mech, &tls.Config{Certificates: []tls.Certificate{p.server}, MinVersion: tls.VersionTLS12})
			cfg := Config{TLS: true, TLSCAFile: p.caFile, SASLMechanism: mech, SASLUsername: "app", SASLPassword: "s3cret"}
			if err := cfg.Validate(); err != nil {
				t.Fatal(err)
			}
			roundTrip(t, brokers, cfg)
		})
	}
}

func TestSASLPlaintext(t *testing.T) {
	// SCRAM without TLS (a private network): the mechanism name is not case-sensitive.
	brokers := broker(t, MechanismSCRAMSHA256, nil)
	roundTrip(t, brokers, Config{SASLMechanism: "scram-sha-256", SASLUsername: "app", SASLPassword: "s3cret"})
}

func TestMutualTLS(t *testing.T) {
	p := newPKI(t)
	brokers := broker(t, MechanismSCRAMSHA256, &tls.Config{
		Certificates: []tls.Certificate{p.server}, ClientAuth: tls.RequireAndVerifyClientCert, ClientCAs: p.pool,
	})
	cfg := Config{TLSCAFile: p.caFile, TLSCertFile: p.clientCert, TLSKeyFile: p.clientKey,
		SASLMechanism: MechanismSCRAMSHA256, SASLUsername: "app", SASLPassword: "s3cret"}
	if !cfg.TLSEnabled() {
		t.Fatal("a CA file implies TLS")
	}
	roundTrip(t, brokers, cfg)

	// Without the client certificate the broker hangs up during the handshake.
	noCert := cfg
	noCert.TLSCertFile, noCert.TLSKeyFile = "", ""
	if err := metadata(brokers, noCert); err == nil {
		t.Fatal("a broker that requires a client certificate accepted none")
	}
}

func metadata(brokers []string, cfg Config) error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	tr, err := cfg.Transport(&kafka.Transport{DialTimeout: 5 * time.Second})
	if err != nil {
		return err
	}
	defer tr.CloseIdleConnections()
	_, err = (&kafka.Client{Addr: kafka.TCP(brokers...), Transport: tr}).Metadata(ctx, &kafka.MetadataRequest{Topics: []string{"t"}})
	return err
}

func TestWrongCredentialsRefused(t *testing.T) {
	p := newPKI(t)
	for _, mech := range []string{MechanismSCRAMSHA256, MechanismPlain} {
		t.Run(mech, func(t *testing.T) {
			brokers := broker(t, mech, &tls.Config{Certificates: []tls.Certificate{p.server}})
			good := Config{TLS: true, TLSCAFile: p.caFile, SASLMechanism: mech, SASLUsername: "app", SASLPassword: "s3cret"}
			if err := metadata(brokers, good); err != nil {
				t.Fatalf("right password: %v", err)
			}
			bad := good
			bad.SASLPassword = "wrong"
			err := metadata(brokers, bad)
			if err == nil {
				t.Fatal("a wrong password was accepted")
			}
			// Kafka answers SASL Authentication Failed; kfake, like some
			// proxies, closes the connection. Explain names the variables
			// either way.
			if !errors.Is(err, kafka.SASLAuthenticationFailed) && !errors.Is(err, io.ErrUnexpectedEOF) && !errors.Is(err, io.EOF) {
				t.Fatalf("wrong password: error %q (%T), want SASL Authentication Failed or the connection closed", err, err)
			}
			err = bad.Explain(err)
			for _, w := range []string{"refused the credentials", `KAFKA_SASL_USERNAME="app"`, "KAFKA_SASL_PASSWORD"} {
				if !strings.Contains(err.Error(), w) {
					t.Fatalf("explained error %q, want it to contain %q", err, w)
				}
			}
			t.Logf("wrong password refused: %v", err)
			if _, err := topicID(brokers, bad); err == nil {
				t.Fatal("a wrong password was accepted by the franz-go client")
			}

			// A client without TLS against the TLS listener does not get in either.
			plain := good
			plain.TLS, plain.TLSCAFile = false, ""
			if err := metadata(brokers, plain); err == nil {
				t.Fatal("a plaintext client talked to the TLS listener")
			} else {
				t.Logf("plaintext client: %v", plain.Explain(err))
			}
			// Nor one that does not trust the broker's CA.
			untrusted := good
			untrusted.TLSCAFile = ""
			if err := untrusted.Explain(metadata(brokers, untrusted)); err == nil || !strings.Contains(err.Error(), "set KAFKA_TLS_CA") {
				t.Fatalf("untrusted broker certificate: %v", err)
			}
		})
	}
}

func TestValidate(t *testing.T) {
	p := newPKI(t)
	missing := filepath.Join(t.TempDir(), "nope.pem")
	tests := []struct {
		name string
		cfg  Config
		want []string // fragments; none means valid
	}{
		{"zero is plaintext", Config{}, nil},
		{"scram", Config{SASLMechanism: "SCRAM-SHA-512", SASLUsername: "u", SASLPassword: "p"}, nil},
		{"tls with ca and client cert", Config{TLS: true, TLSCAFile: p.caFile, TLSCertFile: p.clientCert, TLSKeyFile: p.clientKey}, nil},
		{"unknown mechanism", Config{SASLMechanism: "GSSAPI", SASLUsername: "u", SASLPassword: "p"},
			[]string{`KAFKA_SASL_MECHANISM="GSSAPI"`, "PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512"}},
		{"username without password", Config{SASLMechanism: "PLAIN", SASLUsername: "u"}, []string{"KAFKA_SASL_PASSWORD"}},
		{"password without username", Config{SASLMechanism: "SCRAM-SHA-256", SASLPassword: "p"}, []string{"KAFKA_SASL_USERNAME"}},
		{"credentials without mechanism", Config{SASLUsername: "u", SASLPassword: "p"}, []string{"KAFKA_SASL_MECHANISM is empty"}},
		{"cert without key", Config{TLS: true, TLSCertFile: p.clientCert}, []string{"KAFKA_TLS_CERT=", "KAFKA_TLS_KEY is not"}},
		{"key without cert", Config{TLS: true, TLSKeyFile: p.clientKey}, []string{"KAFKA_TLS_KEY=", "KAFKA_TLS_CERT is not"}},
		{"unreadable CA", Config{TLS: true, TLSCAFile: missing}, []string{"KAFKA_TLS_CA=", missing, "no such file"}},
		{"CA not PEM", Config{TLS: true, TLSCAFile: p.clientKey}, []string{"KAFKA_TLS_CA=", "no PEM certificate"}},
		{"unreadable cert", Config{TLS: true, TLSCertFile: missing, TLSKeyFile: p.clientKey}, []string{"KAFKA_TLS_CERT=", missing}},
		{"cert and key swapped", Config{TLS: true, TLSCertFile: p.clientKey, TLSKeyFile: p.clientCert}, []string{"KAFKA_TLS_CERT=", "KAFKA_TLS_KEY="}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.cfg.Validate()
			if len(tt.want) == 0 {
				if err != nil {
					t.Fatalf("unexpected error: %v", err)
				}
				if _, err := tt.cfg.Transport(nil); err != nil {
					t.Fatalf("Transport: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("no error, want %q", tt.want)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Fatalf("error %q, want it to contain %q", err, w)
				}
			}
			// The client constructors refuse the same configuration.
			if _, terr := tt.cfg.Transport(nil); terr == nil {
				t.Fatalf("Transport accepted what Validate refused (%v)", err)
			}
			if _, derr := tt.cfg.Dialer(nil); derr == nil {
				t.Fatalf("Dialer accepted what Validate refused (%v)", err)
			}
		})
	}
}

func TestString(t *testing.T) {
	c := Config{TLS: true, SASLMechanism: "scram-sha-512", SASLUsername: "app", SASLPassword: "s3cret"}
	if got := c.String(); got != "TLS, SASL SCRAM-SHA-512 as user app" || strings.Contains(got, "s3cret") {
		t.Fatalf("String() = %q", got)
	}
	if got := (Config{}).String(); got != "plaintext" {
		t.Fatalf("zero String() = %q", got)
	}
}

func TestExplainTLSToPlaintextListener(t *testing.T) {
	brokers := broker(t, MechanismPlain, nil)
	cfg := Config{TLS: true, SASLMechanism: MechanismPlain, SASLUsername: "app", SASLPassword: "s3cret"}
	err := cfg.Explain(metadata(brokers, cfg))
	if err == nil || !strings.Contains(err.Error(), "KAFKA_TLS") {
		t.Fatalf("TLS to a plaintext listener: %v", err)
	}
	t.Log(err)
}
