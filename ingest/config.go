package ingest

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/acme/pipeline/internal/config"
	"github.com/acme/pipeline/internal/kafkaconn"
)

// Defaults for the zero values of Config.
const (
	DefaultAddr           = ":8080"
	DefaultTopic          = config.DefaultTopic
	DefaultMaxBodyBytes   = 10 << 20 // 10 MiB
	DefaultMaxEventBytes  = 1 << 20  // 1 MiB
	DefaultProduceTimeout = 5 * time.Second
	DefaultMaxInFlight    = 64
)

// Config configures the event API. The zero value of every optional field
// means its default; New applies the defaults and calls Validate.
type Config struct {
	// Addr is the host:port to listen on. Default ":8080" (every interface);
	// use 127.0.0.1:8080 to stay on loopback.
	Addr string
	// AdminAddr is the host:port of the operators' listener: GET /status and
	// GET /metrics, which then are not on Addr, so that the public port (and
	// the Ingress in front of it) serves only the events and the probes.
	// Empty: they are served on Addr too (tests, or a private network).
	// `pipeline api` sets it (--admin-addr, default 127.0.0.1:9465).
	AdminAddr string
	// Profile serves Go's profiles under /debug/pprof/ beside /status and
	// /metrics (telemetry.HandleProfiles): `pipeline api --pprof`. Only
	// with AdminAddr, never on the public listener.
	Profile bool
	// Brokers are the Kafka bootstrap addresses as host:port (KAFKA_BROKERS).
	// Required.
	Brokers []string
	// Kafka is the TLS and SASL of the Kafka connections (KAFKA_TLS,
	// KAFKA_SASL_*). The zero value is plaintext without authentication.
	Kafka kafkaconn.Config
	// Topic receives the events. Default "events".
	Topic string
	// APIKeys maps each key's name to its secret (PIPELINE_API_KEYS; see
	// ParseAPIKeys). Required: at least one. Clients send the secret as
	// "Authorization: Bearer SECRET"; the name travels with each record in
	// the api-key-name header. Secrets are never logged.
	APIKeys map[string]string
	// MaxBodyBytes limits one request body, in bytes, after gzip decoding.
	// Larger bodies are refused with 413. Default 10 MiB.
	MaxBodyBytes int64
	// MaxEventBytes limits one event as sent, in bytes. Larger events are
	// refused with 413. Default 1 MiB.
	//
	// The record on the topic is a little larger (event_id, received_at and
	// the headers are added). Up to 1 MiB, records are held to 1,048,527
	// bytes, which fits Kafka's default max.message.bytes (1,048,588) with
	// the batch header, so an event within a few hundred bytes of 1 MiB is
	// refused with 413 too. Above 1 MiB, records may reach MaxEventBytes +
	// 64 KiB, and the topic's max.message.bytes must be raised to match.
	MaxEventBytes int64
	// ProduceTimeout bounds the wait for Kafka to acknowledge a request's
	// events (acks=all); past it the request is refused with 503 and
	// Retry-After. Default 5s.
	ProduceTimeout time.Duration
	// MaxInFlight limits how many POST /v1/events requests are read and
	// produced at once; further requests are refused at once with 503 and
	// Retry-After. Peak memory grows with MaxInFlight × MaxBodyBytes.
	// Default 64.
	MaxInFlight int
	// TLSCertFile and TLSKeyFile are PEM files. With both set the server
	// speaks HTTPS (TLS 1.2 or later) only; set both or neither.
	TLSCertFile, TLSKeyFile string
	// OnAccepted, when set, is told of every 202: n events received at
	// receivedAt (their received_at). The completeness SLO counts them.
	OnAccepted func(receivedAt time.Time, n int)
	// Status, when set, serves GET /status (the pipeline's status page).
	// Nil serves a minimal page about this API.
	Status http.Handler
}

func (c Config) withDefaults() Config {
	if c.Addr == "" {
		c.Addr = DefaultAddr
	}
	if c.Topic == "" {
		c.Topic = DefaultTopic
	}
	if c.MaxBodyBytes == 0 {
		c.MaxBodyBytes = DefaultMaxBodyBytes
	}
	if c.MaxEventBytes == 0 {
		c.MaxEventBytes = DefaultMaxEventBytes
	}
	if c.ProduceTimeout == 0 {
		c.ProduceTimeout = DefaultProduceTimeout
	}
	if c.MaxInFlight == 0 {
		c.MaxInFlight = DefaultMaxInFlight
	}
	return c
}

var (
	topicRe   = regexp.MustCompile(`^[a-zA-Z0-9._-]{1,249}$`)
	keyNameRe = regexp.MustCompile(`^[A-Za-z0-9._@/+-]{1,64}$`)
)

// Validate reports every bad setting, each named by its field. Zero values
// are valid: they mean the defaults.
func (c Config) Validate() error {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }

	if c.AdminAddr != "" {
		if _, _, err := net.SplitHostPort(c.AdminAddr); err != nil {
			bad("AdminAddr %q: want host:port such as 127.0.0.1:9465", c.AdminAddr)
		}
	}
	if c.Addr != "" {
		if _, port, err := net.SplitHostPort(c.Addr); err != nil {
			bad("Addr %q: want host:port such as :8080 or 127.0.0.1:8080", c.Addr)
		} else if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
			bad("Addr %q: port must be a number from 0 to 65535", c.Addr)
		}
	}
	if len(c.Brokers) == 0 {
		bad("Brokers: at least one Kafka broker address is required (KAFKA_BROKERS=host:9092)")
	}
	for _, b := range c.Brokers {
		host, port, err := net.SplitHostPort(b)
		if err != nil || host == "" {
			bad("Brokers: %q is not host:port", b)
		} else if n, err := strconv.Atoi(port); err != nil || n <= 0 || n > 65535 {
			bad("Brokers: %q: port must be a number from 1 to 65535", b)
		}
	}
	if err := c.Kafka.Validate(); err != nil {
		bad("Kafka: %w", err)
	}
	if c.Topic != "" && !topicRe.MatchString(c.Topic) {
		bad("Topic %q: a Kafka topic name is 1 to 249 of a-z, A-Z, 0-9, '.', '_' and '-'", c.Topic)
	}
	if len(c.APIKeys) == 0 {
		bad("APIKeys: at least one API key is required (PIPELINE_API_KEYS=name:secret)")
	}
	names := make([]string, 0, len(c.APIKeys))
	for name := range c.APIKeys {
		names = append(names, name)
	}
	slices.Sort(names)
	owner := map[string]string{}
	for _, name := range names {
		secret := c.APIKeys[name]
		if !keyNameRe.MatchString(name) {
			// Not echoed: a name that breaks the rules may be a misplaced secret.
			bad("APIKeys: a key name (%d characters) is not 1 to 64 of A-Z, a-z, 0-9 and ._@/+-", len(name))
		}
		if strings.TrimSpace(secret) == "" {
			bad("APIKeys: key %q has an empty secret", name)
			continue
		}
		if other, dup := owner[secret]; dup {
			bad("APIKeys: keys %q and %q have the same secret", other, name)
		}
		owner[secret] = name
	}
	if c.MaxBodyBytes < 0 {
		bad("MaxBodyBytes %d: must not be negative (0 means %d)", c.MaxBodyBytes, DefaultMaxBodyBytes)
	}
	if c.MaxEventBytes < 0 {
		bad("MaxEventBytes %d: must not be negative (0 means %d)", c.MaxEventBytes, DefaultMaxEventBytes)
	}
	d := c.withDefaults()
	if c.MaxBodyBytes >= 0 && c.MaxEventBytes >= 0 && d.MaxEventBytes > d.MaxBodyBytes {
		bad("MaxEventBytes %d: must not exceed MaxBodyBytes (%d)", d.MaxEventBytes, d.MaxBodyBytes)
	}
	if c.ProduceTimeout < 0 {
		bad("ProduceTimeout %s: must not be negative (0 means %s)", c.ProduceTimeout, DefaultProduceTimeout)
	}
	if c.MaxInFlight < 0 {
		bad("MaxInFlight %d: must not be negative (0 means %d)", c.MaxInFlight, DefaultMaxInFlight)
	}
	if (c.TLSCertFile == "") != (c.TLSKeyFile == "") {
		bad("TLSCertFile and TLSKeyFile: set both or neither")
	}
	if len(errs) == 0 {
		return nil
	}
	return fmt.Errorf("ingest: invalid config: %w", errors.Join(errs...))
}

// ParseAPIKeys parses PIPELINE_API_KEYS: comma-separated name:secret pairs
// such as "web:s3cret,backend:0th3r". Spaces around names and secrets are
// ignored, and so are empty entries; a secret may itself contain ':'. An
// empty string yields an empty map. Errors name the entry by position or by
// name, never by its secret.
func ParseAPIKeys(s string) (map[string]string, error) {
	keys := map[string]string{}
	for i, entry := range strings.Split(s, ",") {
		entry = strings.TrimSpace(entry)
		if entry == "" {
			continue
		}
		name, secret, ok := strings.Cut(entry, ":")
		name, secret = strings.TrimSpace(name), strings.TrimSpace(secret)
		switch {
		case !ok:
			return nil, fmt.Errorf("PIPELINE_API_KEYS: entry %d has no ':' (want name:secret)", i+1)
		case name == "":
			return nil, fmt.Errorf("PIPELINE_API_KEYS: entry %d has an empty name (want name:secret)", i+1)
		case !keyNameRe.MatchString(name):
			// Not echoed: a name that breaks the rules may be a misplaced secret.
			return nil, fmt.Errorf("PIPELINE_API_KEYS: entry %d: the key name must be 1 to 64 of A-Z, a-z, 0-9 and ._@/+-", i+1)
		case secret == "":
			return nil, fmt.Errorf("PIPELINE_API_KEYS: key %q has an empty secret", name)
		}
		if _, dup := keys[name]; dup {
			return nil, fmt.Errorf("PIPELINE_API_KEYS: key %q is listed twice", name)
		}
		keys[name] = secret
	}
	return keys, nil
}
