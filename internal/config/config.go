// Package config loads the settings every subcommand shares: flags first, then
// the environment variables of the contract, then defaults. Validation happens
// once at start-up and names the setting and the bad value, so a typo in an
// environment variable fails the process at once instead of a retry loop later.
package config

import (
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/url"
	"os"
	"strings"

	"go.temporal.io/sdk/client"

	"github.com/acme/pipeline/internal/kafkaconn"
)

// Config is the shared configuration. Field docs name the variable and default.
type Config struct {
	TemporalAddress   string // TEMPORAL_ADDRESS, default 127.0.0.1:7233
	TemporalNamespace string // TEMPORAL_NAMESPACE, default "default"
	KafkaBrokers      string // KAFKA_BROKERS, comma-separated host:port, default 127.0.0.1:9092
	S3Endpoint        string // S3_ENDPOINT, URL, default http://127.0.0.1:9000; empty for AWS
	AWSAccessKeyID    string // AWS_ACCESS_KEY_ID
	AWSSecretKey      string // AWS_SECRET_ACCESS_KEY
	AWSRegion         string // AWS_REGION, default us-east-1
	DatabaseURL       string // DATABASE_URL, default postgres://postgres@127.0.0.1:5432/pipeline
	APIKeys           string // PIPELINE_API_KEYS, name:secret pairs, comma-separated
	Topic             string // the event topic, "events"
	Bucket            string // the lake bucket, "datalake"
	// TLSCertFile and TLSKeyFile are the gateway's PEM certificate and key
	// (PIPELINE_TLS_CERT, PIPELINE_TLS_KEY): the API serves HTTPS with them,
	// and provisioning checks them against the blueprint's domain.
	TLSCertFile, TLSKeyFile string

	// Temporal's transport security. mTLS: TemporalTLSCert and
	// TemporalTLSKey (TEMPORAL_TLS_CERT, TEMPORAL_TLS_KEY), PEM files.
	// TemporalTLSCA (TEMPORAL_TLS_CA) replaces the system roots for the
	// server's certificate; TemporalTLSServerName (TEMPORAL_TLS_SERVER_NAME)
	// overrides the name checked in it. TemporalAPIKey (TEMPORAL_API_KEY,
	// environment only) authenticates with an API key, as Temporal Cloud
	// accepts, and implies TLS. Any of them turns TLS on; none is plaintext.
	TemporalTLSCert, TemporalTLSKey, TemporalTLSCA, TemporalTLSServerName string
	TemporalAPIKey                                                        string

	// Kafka is the security of every Kafka connection: KAFKA_TLS,
	// KAFKA_TLS_CA, KAFKA_TLS_CERT, KAFKA_TLS_KEY, KAFKA_SASL_MECHANISM,
	// KAFKA_SASL_USERNAME, KAFKA_SASL_PASSWORD (environment only). The
	// zero value is plaintext without authentication.
	Kafka kafkaconn.Config

	// S3PathStyleSetting is S3_PATH_STYLE as given: "true" addresses the
	// bucket in the path (http://host/bucket/key), "false" in the host name
	// (bucket.host). Empty: path-style with an S3_ENDPOINT, virtual-hosted
	// on AWS. See S3PathStyle.
	S3PathStyleSetting string

	// envErrs are variables that could not be parsed, reported by Validate.
	envErrs []error
}

// Default database URL when DATABASE_URL is unset.
const DefaultDatabaseURL = "postgres://postgres@127.0.0.1:5432/pipeline?sslmode=disable"

func env(name, def string) string {
	if v, ok := os.LookupEnv(name); ok && v != "" {
		return v
	}
	return def
}

// Register adds the shared flags to fs, their defaults taken from the
// environment, so flags win over variables and variables over defaults.
func (c *Config) Register(fs *flag.FlagSet) {
	fs.StringVar(&c.TemporalAddress, "temporal-address", env("TEMPORAL_ADDRESS", "127.0.0.1:7233"), "Temporal frontend host:port (TEMPORAL_ADDRESS)")
	fs.StringVar(&c.TemporalNamespace, "temporal-namespace", env("TEMPORAL_NAMESPACE", "default"), "Temporal namespace (TEMPORAL_NAMESPACE)")
	fs.StringVar(&c.KafkaBrokers, "kafka-brokers", env("KAFKA_BROKERS", "127.0.0.1:9092"), "Kafka bootstrap brokers, comma-separated host:port (KAFKA_BROKERS)")
	// S3_ENDPOINT set but empty means AWS itself, so it is not defaulted.
	s3Endpoint, ok := os.LookupEnv("S3_ENDPOINT")
	if !ok {
		s3Endpoint = "http://127.0.0.1:9000"
	}
	fs.StringVar(&c.S3Endpoint, "s3-endpoint", s3Endpoint, "S3 endpoint URL; empty for AWS itself (S3_ENDPOINT)")
	fs.StringVar(&c.S3PathStyleSetting, "s3-path-style", os.Getenv("S3_PATH_STYLE"), "true: path-style bucket addressing; false: virtual-hosted; default true with an S3 endpoint, false for AWS (S3_PATH_STYLE)")
	fs.StringVar(&c.TemporalTLSCert, "temporal-tls-cert", env("TEMPORAL_TLS_CERT", ""), "client PEM certificate for Temporal mTLS, with --temporal-tls-key (TEMPORAL_TLS_CERT)")
	fs.StringVar(&c.TemporalTLSKey, "temporal-tls-key", env("TEMPORAL_TLS_KEY", ""), "client PEM private key for Temporal mTLS (TEMPORAL_TLS_KEY)")
	fs.StringVar(&c.TemporalTLSCA, "temporal-tls-ca", env("TEMPORAL_TLS_CA", ""), "PEM CA bundle for Temporal's server certificate; default the system roots (TEMPORAL_TLS_CA)")
	fs.StringVar(&c.TemporalTLSServerName, "temporal-tls-server-name", env("TEMPORAL_TLS_SERVER_NAME", ""), "server name to verify in Temporal's certificate; default the host of --temporal-address (TEMPORAL_TLS_SERVER_NAME)")
	kafkaTLS, err := kafkaconn.ParseBool(os.Getenv("KAFKA_TLS"))
	if err != nil {
		c.envErrs = append(c.envErrs, fmt.Errorf("KAFKA_TLS=%q: want true or false", os.Getenv("KAFKA_TLS")))
	}
	fs.BoolVar(&c.Kafka.TLS, "kafka-tls", kafkaTLS, "connect to Kafka over TLS (KAFKA_TLS)")
	fs.StringVar(&c.Kafka.TLSCAFile, "kafka-tls-ca", env("KAFKA_TLS_CA", ""), "PEM CA bundle for the brokers' certificates; implies TLS (KAFKA_TLS_CA)")
	fs.StringVar(&c.Kafka.TLSCertFile, "kafka-tls-cert", env("KAFKA_TLS_CERT", ""), "client PEM certificate for Kafka mTLS; implies TLS (KAFKA_TLS_CERT)")
	fs.StringVar(&c.Kafka.TLSKeyFile, "kafka-tls-key", env("KAFKA_TLS_KEY", ""), "client PEM private key for Kafka mTLS (KAFKA_TLS_KEY)")
	fs.StringVar(&c.Kafka.SASLMechanism, "kafka-sasl-mechanism", env("KAFKA_SASL_MECHANISM", ""), "PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512; empty: no SASL (KAFKA_SASL_MECHANISM)")
	fs.StringVar(&c.Kafka.SASLUsername, "kafka-sasl-username", env("KAFKA_SASL_USERNAME", ""), "SASL user name (KAFKA_SASL_USERNAME)")
	fs.StringVar(&c.AWSRegion, "aws-region", env("AWS_REGION", "us-east-1"), "S3 region (AWS_REGION)")
	fs.StringVar(&c.DatabaseURL, "database-url", env("DATABASE_URL", DefaultDatabaseURL), "PostgreSQL URL (DATABASE_URL)")
	fs.StringVar(&c.Topic, "topic", "events", "Kafka topic of the events")
	fs.StringVar(&c.Bucket, "bucket", "datalake", "S3 bucket of the lake")
	fs.StringVar(&c.TLSCertFile, "tls-cert", env("PIPELINE_TLS_CERT", ""), "gateway PEM certificate; with --tls-key the API speaks HTTPS only (PIPELINE_TLS_CERT)")
	fs.StringVar(&c.TLSKeyFile, "tls-key", env("PIPELINE_TLS_KEY", ""), "gateway PEM private key (PIPELINE_TLS_KEY)")
	// Secrets come from the environment only: a flag would show in `ps`.
	c.AWSAccessKeyID = os.Getenv("AWS_ACCESS_KEY_ID")
	c.AWSSecretKey = os.Getenv("AWS_SECRET_ACCESS_KEY")
	c.APIKeys = os.Getenv("PIPELINE_API_KEYS")
	c.TemporalAPIKey = os.Getenv("TEMPORAL_API_KEY")
	c.Kafka.SASLPassword = os.Getenv("KAFKA_SASL_PASSWORD")
}

// TemporalTLSEnabled reports whether the Temporal connection uses TLS: any
// TEMPORAL_TLS_* setting or an API key turns it on.
func (c Config) TemporalTLSEnabled() bool {
	return c.TemporalTLSCert != "" || c.TemporalTLSKey != "" || c.TemporalTLSCA != "" ||
		c.TemporalTLSServerName != "" || c.TemporalAPIKey != ""
}

// TemporalTLS returns the TLS configuration of the Temporal connection, nil
// for plaintext. An API key alone gives TLS with the system roots, which is
// what Temporal Cloud wants. Errors name the variables and files.
func (c Config) TemporalTLS() (*tls.Config, error) {
	if !c.TemporalTLSEnabled() {
		return nil, nil
	}
	return kafkaconn.ClientTLS("TEMPORAL_TLS", c.TemporalTLSCA, c.TemporalTLSCert, c.TemporalTLSKey, c.TemporalTLSServerName)
}

// TemporalCredentials returns the API-key credentials (TEMPORAL_API_KEY),
// nil without a key.
func (c Config) TemporalCredentials() client.Credentials {
	if c.TemporalAPIKey == "" {
		return nil
	}
	return client.NewAPIKeyStaticCredentials(c.TemporalAPIKey)
}

// S3PathStyle reports whether the bucket is addressed in the path:
// S3_PATH_STYLE when set, else true with an S3_ENDPOINT (MinIO, versitygw,
// Ceph and most S3-compatible stores want it) and false on AWS.
func (c Config) S3PathStyle() bool {
	if v, err := kafkaconn.ParseBool(c.S3PathStyleSetting); err == nil && strings.TrimSpace(c.S3PathStyleSetting) != "" {
		return v
	}
	return c.S3Endpoint != ""
}

// Brokers splits KafkaBrokers.
func (c Config) Brokers() []string {
	var out []string
	for _, b := range strings.Split(c.KafkaBrokers, ",") {
		if b = strings.TrimSpace(b); b != "" {
			out = append(out, b)
		}
	}
	return out
}

// Need names the parts of the configuration a subcommand uses.
type Need int

const (
	NeedTemporal Need = 1 << iota
	NeedKafka
	NeedS3
	NeedDatabase
	NeedAPIKeys
)

// Validate checks the parts the caller needs and reports every problem,
// each naming its variable and value.
func (c Config) Validate(need Need) error {
	var errs []error
	bad := func(name, val, why string) {
		errs = append(errs, fmt.Errorf("%s=%q: %s", name, val, why))
	}
	hostport := func(name, v string) {
		if _, port, err := net.SplitHostPort(v); err != nil || port == "" {
			bad(name, v, "must be host:port")
		}
	}
	if need&NeedTemporal != 0 {
		hostport("TEMPORAL_ADDRESS", c.TemporalAddress)
		if c.TemporalNamespace == "" {
			bad("TEMPORAL_NAMESPACE", c.TemporalNamespace, "must not be empty")
		}
		if _, err := c.TemporalTLS(); err != nil {
			errs = append(errs, err)
		}
	}
	if need&NeedKafka != 0 {
		if len(c.Brokers()) == 0 {
			bad("KAFKA_BROKERS", c.KafkaBrokers, "must list at least one host:port")
		}
		for _, b := range c.Brokers() {
			hostport("KAFKA_BROKERS", b)
		}
		errs = append(errs, c.envErrs...)
		if err := c.Kafka.Validate(); err != nil {
			errs = append(errs, err)
		}
	}
	if need&NeedS3 != 0 {
		if c.S3Endpoint != "" {
			if u, err := url.Parse(c.S3Endpoint); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
				bad("S3_ENDPOINT", c.S3Endpoint, "must be an http:// or https:// URL (set it empty for AWS itself)")
			}
		}
		if c.AWSRegion == "" {
			bad("AWS_REGION", c.AWSRegion, "must not be empty")
		}
		if _, err := kafkaconn.ParseBool(c.S3PathStyleSetting); err != nil {
			bad("S3_PATH_STYLE", c.S3PathStyleSetting, "want true or false")
		}
		if (c.AWSAccessKeyID == "") != (c.AWSSecretKey == "") {
			errs = append(errs, errors.New("AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY: set both, or neither to use the AWS credential chain (AWS_PROFILE, web identity/IRSA, instance role)"))
		}
	}
	if need&NeedDatabase != 0 {
		if u, err := url.Parse(c.DatabaseURL); err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") {
			bad("DATABASE_URL", redact(c.DatabaseURL), "must be a postgres:// URL")
		}
	}
	if need&NeedAPIKeys != 0 && strings.TrimSpace(c.APIKeys) == "" {
		errs = append(errs, errors.New("PIPELINE_API_KEYS is empty: set name:secret pairs, e.g. PIPELINE_API_KEYS=web:$(openssl rand -hex 16)"))
	}
	return errors.Join(errs...)
}

func redact(u string) string {
	p, err := url.Parse(u)
	if err != nil {
		return "(unparsable)"
	}
	return p.Redacted()
}
