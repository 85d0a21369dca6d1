// Package config loads the settings every subcommand shares: flags first, then
// the environment variables of the contract, then defaults. Each setting is
// one row of Settings, which the flags, the checks, README.md's table and the
// deployment tests all read, so none of them can name a setting the others do
// not know. Validation happens once at start-up and names the setting and the
// bad value, so a typo in an environment variable fails the process at once
// instead of a retry loop later.
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

// Config is the shared configuration. Settings holds each field's variable,
// flag, default and meaning.
type Config struct {
	TemporalAddress   string // TEMPORAL_ADDRESS
	TemporalNamespace string // TEMPORAL_NAMESPACE
	KafkaBrokers      string // KAFKA_BROKERS, comma-separated host:port
	S3Endpoint        string // S3_ENDPOINT, URL; empty for AWS
	AWSAccessKeyID    string // AWS_ACCESS_KEY_ID
	AWSSecretKey      string // AWS_SECRET_ACCESS_KEY
	AWSRegion         string // AWS_REGION
	DatabaseURL       string // DATABASE_URL
	APIKeys           string // PIPELINE_API_KEYS, name:secret pairs, comma-separated
	Topic             string // --topic
	Bucket            string // --bucket
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

	// envErrs are variables that could not be parsed, by variable; Validate
	// reports them with the other problems of their part.
	envErrs map[string]error
}

// Register adds the flags of Settings to fs and fills the environment-only
// fields. A flag's default is its variable when set, else the table's
// default, so flags win over variables and variables over defaults.
func (c *Config) Register(fs *flag.FlagSet) {
	for _, s := range Settings {
		switch {
		case s.boolean != nil:
			v, err := kafkaconn.ParseBool(s.value())
			if err != nil {
				if c.envErrs == nil {
					c.envErrs = map[string]error{}
				}
				c.envErrs[s.Env] = invalid(s.Env, s.value(), "want true or false")
			}
			if s.Flag == "" {
				*s.boolean(c) = v
				continue
			}
			fs.BoolVar(s.boolean(c), s.Flag, v, s.usage())
		case s.str != nil:
			if s.Flag == "" {
				*s.str(c) = s.value()
				continue
			}
			fs.StringVar(s.str(c), s.Flag, s.value(), s.usage())
		}
	}
}

// value is the setting's variable when set, else its default.
func (s Setting) value() string {
	if s.Env == "" {
		return s.Default
	}
	v, ok := os.LookupEnv(s.Env)
	if !ok || (v == "" && !s.EmptyIsValue) {
		return s.Default
	}
	return v
}

// usage is the flag's help: Doc, what unset means when the flag package
// shows no default, and the variable, without Markdown.
func (s Setting) usage() string {
	u := s.Doc
	switch {
	case s.Default != "" || s.DefaultNote == "":
	case strings.HasPrefix(s.DefaultNote, "unset"):
		u += "; " + s.DefaultNote
	default:
		u += "; default " + s.DefaultNote
	}
	if s.Env != "" {
		u += " (" + s.Env + ")"
	}
	return strings.ReplaceAll(u, "`", "")
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
	return splitList(c.KafkaBrokers)
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

// parts are the parts in the order Validate reports them, each with its
// checks that span several settings.
var parts = []struct {
	need   Need
	across func(Config) error
}{
	{NeedTemporal, func(c Config) error { _, err := c.TemporalTLS(); return err }},
	{NeedKafka, func(c Config) error { return c.Kafka.Validate() }},
	{NeedS3, func(c Config) error {
		if (c.AWSAccessKeyID == "") != (c.AWSSecretKey == "") {
			return errors.New("AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY: set both, or neither to use the AWS credential chain (AWS_PROFILE, web identity/IRSA, instance role)")
		}
		return nil
	}},
	{NeedDatabase, nil},
	{NeedAPIKeys, nil},
}

// Validate checks the parts the caller needs and reports every problem,
// each naming its variable and value: first the settings of each part, in
// the table's order, then the checks across them.
func (c Config) Validate(need Need) error {
	var errs []error
	for _, p := range parts {
		if need&p.need == 0 {
			continue
		}
		for _, s := range Settings {
			if s.Need != p.need {
				continue
			}
			if err := c.envErrs[s.Env]; err != nil {
				errs = append(errs, err)
			} else if s.check != nil && s.str != nil {
				if err := s.check(s.Env, *s.str(&c)); err != nil {
					errs = append(errs, err)
				}
			}
		}
		if p.across != nil {
			if err := p.across(c); err != nil {
				errs = append(errs, err)
			}
		}
	}
	return errors.Join(errs...)
}

// invalid is the error of a setting's bad value.
func invalid(name, val, why string) error {
	return fmt.Errorf("%s=%q: %s", name, val, why)
}

// The checks of single settings, named in Settings.

func hostPort(name, v string) error {
	if _, port, err := net.SplitHostPort(v); err != nil || port == "" {
		return invalid(name, v, "must be host:port")
	}
	return nil
}

func notEmpty(name, v string) error {
	if v == "" {
		return invalid(name, v, "must not be empty")
	}
	return nil
}

func brokerList(name, v string) error {
	brokers := splitList(v)
	if len(brokers) == 0 {
		return invalid(name, v, "must list at least one host:port")
	}
	var errs []error
	for _, b := range brokers {
		errs = append(errs, hostPort(name, b))
	}
	return errors.Join(errs...)
}

func s3Endpoint(name, v string) error {
	if v == "" {
		return nil // AWS itself
	}
	if u, err := url.Parse(v); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return invalid(name, v, "must be an http:// or https:// URL (set it empty for AWS itself)")
	}
	return nil
}

func boolOrEmpty(name, v string) error {
	if _, err := kafkaconn.ParseBool(v); err != nil {
		return invalid(name, v, "want true or false")
	}
	return nil
}

func postgresURL(name, v string) error {
	if u, err := url.Parse(v); err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") {
		return invalid(name, redact(v), "must be a postgres:// URL")
	}
	return nil
}

func apiKeys(name, v string) error {
	if strings.TrimSpace(v) == "" {
		return fmt.Errorf("%s is empty: set name:secret pairs, e.g. %s=web:$(openssl rand -hex 16)", name, name)
	}
	for _, pair := range splitList(v) {
		key, secret, _ := strings.Cut(pair, ":")
		if err := strongSecret(secret); err != nil {
			return fmt.Errorf("%s: the secret of key %q %v; generate one, e.g. %s=%s:$(openssl rand -hex 16)", name, key, err, name, key)
		}
	}
	return nil
}

// MinAPIKeySecret is the shortest secret an API key may have: 16
// characters, 128 bits as hex.
const MinAPIKeySecret = 16

// placeholders are words of example secrets that must never be accepted.
var placeholders = []string{"change-me", "changeme", "change_me", "example", "placeholder", "password", "secret"}

// strongSecret refuses an API key secret that is short or an example's
// placeholder (the Kubernetes example's web:CHANGE-ME among them). It says
// why without repeating the secret.
func strongSecret(secret string) error {
	if len(secret) < MinAPIKeySecret {
		return fmt.Errorf("has %d characters, fewer than %d", len(secret), MinAPIKeySecret)
	}
	low := strings.ToLower(secret)
	for _, p := range placeholders {
		if strings.Contains(low, p) {
			return fmt.Errorf("is a placeholder (contains %q)", p)
		}
	}
	return nil
}

func splitList(v string) []string {
	var out []string
	for _, b := range strings.Split(v, ",") {
		if b = strings.TrimSpace(b); b != "" {
			out = append(out, b)
		}
	}
	return out
}

func redact(u string) string {
	p, err := url.Parse(u)
	if err != nil {
		return "(unparsable)"
	}
	return p.Redacted()
}
