// Package kafkaconn holds how the pipeline connects to Kafka: TLS (with an
// optional CA and client certificate) and SASL (PLAIN, SCRAM-SHA-256,
// SCRAM-SHA-512). Every kafka-go client of the pipeline gets its transport
// or dialer from a Config, so one set of variables (KAFKA_TLS, KAFKA_SASL_*)
// secures all of them. The zero Config is plaintext without authentication,
// the local dev broker's setting.
package kafkaconn

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"syscall"

	"github.com/segmentio/kafka-go"
	"github.com/segmentio/kafka-go/sasl"
	"github.com/segmentio/kafka-go/sasl/plain"
	"github.com/segmentio/kafka-go/sasl/scram"
)

// SASL mechanisms (KAFKA_SASL_MECHANISM).
const (
	MechanismPlain       = "PLAIN"
	MechanismSCRAMSHA256 = "SCRAM-SHA-256"
	MechanismSCRAMSHA512 = "SCRAM-SHA-512"
)

// Config is the security of the Kafka connections. Field docs name the
// variable; the zero value is plaintext, no authentication.
type Config struct {
	// TLS turns TLS on (KAFKA_TLS=true). Implied by TLSCAFile and
	// TLSCertFile.
	TLS bool
	// TLSCAFile is a PEM bundle of the CAs that sign the brokers'
	// certificates (KAFKA_TLS_CA). Empty: the system's roots.
	TLSCAFile string
	// TLSCertFile and TLSKeyFile are the client's PEM certificate and key,
	// for brokers that require mTLS (KAFKA_TLS_CERT, KAFKA_TLS_KEY). Set
	// both or neither.
	TLSCertFile, TLSKeyFile string
	// SASLMechanism is PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512
	// (KAFKA_SASL_MECHANISM). Empty: no SASL.
	SASLMechanism string
	// SASLUsername and SASLPassword are the SASL credentials
	// (KAFKA_SASL_USERNAME, KAFKA_SASL_PASSWORD).
	SASLUsername, SASLPassword string
}

// ParseBool parses a boolean variable: true/false, 1/0, yes/no, on/off
// (any case); empty is false.
func ParseBool(s string) (bool, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "", "0", "false", "no", "off":
		return false, nil
	case "1", "true", "yes", "on":
		return true, nil
	}
	return strconv.ParseBool(strings.TrimSpace(s))
}

// TLSEnabled reports whether connections use TLS.
func (c Config) TLSEnabled() bool {
	return c.TLS || c.TLSCAFile != "" || c.TLSCertFile != "" || c.TLSKeyFile != ""
}

// String describes the security without secrets, e.g. "TLS, SASL SCRAM-SHA-256 as user app".
func (c Config) String() string {
	var parts []string
	if c.TLSEnabled() {
		s := "TLS"
		if c.TLSCertFile != "" {
			s = "mTLS"
		}
		parts = append(parts, s)
	} else {
		parts = append(parts, "plaintext")
	}
	if c.SASLMechanism != "" {
		parts = append(parts, fmt.Sprintf("SASL %s as user %s", c.mechanism(), c.SASLUsername))
	}
	return strings.Join(parts, ", ")
}

func (c Config) mechanism() string { return strings.ToUpper(strings.TrimSpace(c.SASLMechanism)) }

// Validate reports every inconsistent or unreadable setting, each naming its
// variable. It reads the certificate files.
func (c Config) Validate() error {
	var errs []error
	switch c.mechanism() {
	case "":
		if c.SASLUsername != "" || c.SASLPassword != "" {
			errs = append(errs, errors.New("KAFKA_SASL_USERNAME/KAFKA_SASL_PASSWORD are set but KAFKA_SASL_MECHANISM is empty: set it to PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512"))
		}
	case MechanismPlain, MechanismSCRAMSHA256, MechanismSCRAMSHA512:
		if c.SASLUsername == "" {
			errs = append(errs, fmt.Errorf("KAFKA_SASL_MECHANISM=%s needs KAFKA_SASL_USERNAME", c.mechanism()))
		}
		if c.SASLPassword == "" {
			errs = append(errs, fmt.Errorf("KAFKA_SASL_MECHANISM=%s needs KAFKA_SASL_PASSWORD (KAFKA_SASL_USERNAME=%q has none)", c.mechanism(), c.SASLUsername))
		}
	default:
		errs = append(errs, fmt.Errorf("KAFKA_SASL_MECHANISM=%q: want PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512", c.SASLMechanism))
	}
	if _, err := c.TLSConfig(); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// TLSConfig returns the client TLS configuration, or nil when TLS is off.
// Errors name the variable and the file.
func (c Config) TLSConfig() (*tls.Config, error) {
	if !c.TLSEnabled() {
		return nil, nil
	}
	return ClientTLS("KAFKA_TLS", c.TLSCAFile, c.TLSCertFile, c.TLSKeyFile, "")
}

// ClientTLS builds a client *tls.Config (TLS 1.2 or later) from PEM files:
// caFile replaces the system roots when set, certFile and keyFile are the
// client certificate (both or neither), serverName overrides the name
// checked in the server's certificate. prefix names the variables in errors
// (prefix_CA, prefix_CERT, prefix_KEY).
func ClientTLS(prefix, caFile, certFile, keyFile, serverName string) (*tls.Config, error) {
	cfg := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: serverName}
	var errs []error
	if caFile != "" {
		pem, err := os.ReadFile(caFile)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s_CA=%q: %w", prefix, caFile, err))
		} else {
			pool := x509.NewCertPool()
			if !pool.AppendCertsFromPEM(pem) {
				errs = append(errs, fmt.Errorf("%s_CA=%q: no PEM certificate in the file", prefix, caFile))
			}
			cfg.RootCAs = pool
		}
	}
	switch {
	case certFile != "" && keyFile == "":
		errs = append(errs, fmt.Errorf("%s_CERT=%q is set but %s_KEY is not: set both or neither", prefix, certFile, prefix))
	case certFile == "" && keyFile != "":
		errs = append(errs, fmt.Errorf("%s_KEY=%q is set but %s_CERT is not: set both or neither", prefix, keyFile, prefix))
	case certFile != "":
		if err := readable(prefix+"_CERT", certFile); err != nil {
			errs = append(errs, err)
		} else if err := readable(prefix+"_KEY", keyFile); err != nil {
			errs = append(errs, err)
		} else if cert, err := tls.LoadX509KeyPair(certFile, keyFile); err != nil {
			errs = append(errs, fmt.Errorf("%s_CERT=%q, %s_KEY=%q: %w", prefix, certFile, prefix, keyFile, err))
		} else {
			cfg.Certificates = []tls.Certificate{cert}
		}
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return cfg, nil
}

func readable(name, path string) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("%s=%q: %w", name, path, err)
	}
	f.Close()
	return nil
}

// Mechanism returns the SASL mechanism, or nil without SASL.
func (c Config) Mechanism() (sasl.Mechanism, error) {
	switch m := c.mechanism(); m {
	case "":
		return nil, nil
	case MechanismPlain:
		if c.SASLUsername == "" || c.SASLPassword == "" {
			return nil, c.Validate()
		}
		return plain.Mechanism{Username: c.SASLUsername, Password: c.SASLPassword}, nil
	case MechanismSCRAMSHA256, MechanismSCRAMSHA512:
		if c.SASLUsername == "" || c.SASLPassword == "" {
			return nil, c.Validate()
		}
		algo := scram.SHA256
		if m == MechanismSCRAMSHA512 {
			algo = scram.SHA512
		}
		mech, err := scram.Mechanism(algo, c.SASLUsername, c.SASLPassword)
		if err != nil {
			return nil, fmt.Errorf("KAFKA_SASL_MECHANISM=%s: %w", m, err)
		}
		return mech, nil
	default:
		return nil, fmt.Errorf("KAFKA_SASL_MECHANISM=%q: want PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512", c.SASLMechanism)
	}
}

// Transport sets TLS and SASL on t (a new Transport when nil) and returns
// it: pass the transport with the caller's own timeouts and client id.
func (c Config) Transport(t *kafka.Transport) (*kafka.Transport, error) {
	if t == nil {
		t = &kafka.Transport{}
	}
	tc, mech, err := c.build()
	if err != nil {
		return nil, err
	}
	t.TLS, t.SASL = tc, mech
	return t, nil
}

// Dialer sets TLS and SASL on d (a new Dialer when nil) and returns it.
func (c Config) Dialer(d *kafka.Dialer) (*kafka.Dialer, error) {
	if d == nil {
		d = &kafka.Dialer{}
	}
	tc, mech, err := c.build()
	if err != nil {
		return nil, err
	}
	d.TLS, d.SASLMechanism = tc, mech
	return d, nil
}

func (c Config) build() (*tls.Config, sasl.Mechanism, error) {
	if err := c.Validate(); err != nil {
		return nil, nil, err
	}
	tc, err := c.TLSConfig()
	if err != nil {
		return nil, nil, err
	}
	mech, err := c.Mechanism()
	if err != nil {
		return nil, nil, err
	}
	return tc, mech, nil
}

// Explain adds a hint naming the variables to check to an error of a Kafka
// request that failed while connecting: refused SASL credentials (Kafka
// answers SASL Authentication Failed; some brokers just close the
// connection), a broker certificate that is not trusted, TLS spoken to a
// plaintext listener or the reverse. Other errors are returned as they are.
func (c Config) Explain(err error) error {
	if err == nil {
		return nil
	}
	msg := err.Error()
	sasl := c.mechanism() != ""
	switch {
	case errors.Is(err, kafka.SASLAuthenticationFailed):
		return fmt.Errorf("%w (the broker refused SASL %s for KAFKA_SASL_USERNAME=%q: check KAFKA_SASL_PASSWORD and KAFKA_SASL_MECHANISM)", err, c.mechanism(), c.SASLUsername)
	case errors.Is(err, kafka.UnsupportedSASLMechanism):
		return fmt.Errorf("%w (KAFKA_SASL_MECHANISM=%s is not enabled on the broker)", err, c.mechanism())
	case errors.Is(err, kafka.IllegalSASLState):
		return fmt.Errorf("%w (does the broker's listener expect SASL? KAFKA_SASL_MECHANISM=%s)", err, c.mechanism())
	case strings.Contains(msg, "x509:") || strings.Contains(msg, "tls: failed to verify"):
		return fmt.Errorf("%w (the broker's certificate is not trusted: set KAFKA_TLS_CA to the CA that signed it)", err)
	case strings.Contains(msg, "first record does not look like a TLS handshake"):
		return fmt.Errorf("%w (the broker's listener does not speak TLS: unset KAFKA_TLS or use its TLS port)", err)
	case c.TLSEnabled() && (errors.Is(err, os.ErrDeadlineExceeded) || errors.Is(err, context.DeadlineExceeded)):
		return fmt.Errorf("%w (no answer to the TLS handshake: is the broker reachable, and does its listener speak TLS? KAFKA_TLS is on)", err)
	case errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, syscall.ECONNRESET):
		switch {
		case sasl:
			return fmt.Errorf("%w (the broker closed the connection: with SASL %s as KAFKA_SASL_USERNAME=%q this usually means it refused the credentials: check KAFKA_SASL_PASSWORD and KAFKA_SASL_MECHANISM; or the listener expects %s)",
				err, c.mechanism(), c.SASLUsername, map[bool]string{true: "plaintext", false: "TLS (KAFKA_TLS=true)"}[c.TLSEnabled()])
		case !c.TLSEnabled():
			return fmt.Errorf("%w (the broker closed the connection: does its listener require TLS (KAFKA_TLS=true) or SASL (KAFKA_SASL_MECHANISM)?)", err)
		default:
			return fmt.Errorf("%w (the broker closed the connection: does its listener require SASL (KAFKA_SASL_MECHANISM) or a client certificate (KAFKA_TLS_CERT, KAFKA_TLS_KEY)?)", err)
		}
	}
	return err
}
