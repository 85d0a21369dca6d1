// Package config loads the settings every subcommand shares: flags first, then
// the environment variables of the contract, then defaults. Validation happens
// once at start-up and names the setting and the bad value, so a typo in an
// environment variable fails the process at once instead of a retry loop later.
package config

import (
	"errors"
	"flag"
	"fmt"
	"net"
	"net/url"
	"os"
	"strings"
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
	fs.StringVar(&c.S3Endpoint, "s3-endpoint", env("S3_ENDPOINT", "http://127.0.0.1:9000"), "S3 endpoint URL, path-style (S3_ENDPOINT)")
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
	}
	if need&NeedKafka != 0 {
		if len(c.Brokers()) == 0 {
			bad("KAFKA_BROKERS", c.KafkaBrokers, "must list at least one host:port")
		}
		for _, b := range c.Brokers() {
			hostport("KAFKA_BROKERS", b)
		}
	}
	if need&NeedS3 != 0 {
		if c.S3Endpoint != "" {
			if u, err := url.Parse(c.S3Endpoint); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
				bad("S3_ENDPOINT", c.S3Endpoint, "must be an http:// or https:// URL")
			}
		}
		if c.AWSRegion == "" {
			bad("AWS_REGION", c.AWSRegion, "must not be empty")
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
