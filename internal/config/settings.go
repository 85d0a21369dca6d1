package config

import "fmt"

// The one table of the pipeline's settings. Flag registration, defaults and
// per-setting validation are derived from it (Register, Validate); README.md's
// configuration table is rendered from it (TestReadmeTable keeps them equal);
// the deployment tests read it to know which variables exist, which are
// secrets and which a deployment must set. Adding a setting is adding a row.

// The contract's resource names, the defaults of --topic and --bucket.
const (
	DefaultTopic  = "events"
	DefaultBucket = "datalake"
)

// DefaultDatabaseURL is DATABASE_URL's default.
const DefaultDatabaseURL = "postgres://postgres@127.0.0.1:5432/pipeline?sslmode=disable"

// Setting is one row of the table.
type Setting struct {
	// Env is the environment variable; empty for a flag without one.
	Env string
	// Flag is the flag's name without dashes; empty for the environment
	// only. Credentials have none, so that they never show in `ps`, but for
	// DATABASE_URL, whose flag serves local URLs without a password.
	Flag string
	// Default is the value when neither the flag nor the variable is given,
	// as the flag shows it; empty for unset.
	Default string
	// DefaultNote completes the README's default column where the value
	// alone would mislead (what `pipeline dev` does instead, what unset means).
	DefaultNote string
	// Doc says what the setting means, in one line of Markdown. The flag's
	// usage is the same text without backquotes (the flag package would take
	// a backquoted word for the value's name).
	Doc string
	// Secret marks a value that carries a credential: deployments keep it in
	// a secret store, never in a ConfigMap or a command line.
	Secret bool
	// Bool marks a true/false setting: its flag takes no value.
	Bool bool
	// EmptyIsValue makes a variable set to "" a value rather than unset:
	// S3_ENDPOINT= means AWS itself, not the local default.
	EmptyIsValue bool
	// Need is the part of the configuration the setting belongs to: Validate
	// checks it when the caller needs that part.
	Need Need
	// Deploy marks a setting whose default suits only `pipeline dev` on one
	// machine (loopback addresses, the dev namespace): a deployment of a
	// subcommand that needs the part provides it, even if empty.
	Deploy bool
	// ReadBy names who reads a variable that Config does not hold (the
	// OpenTelemetry SDK, the SLO monitor). Such rows document it only.
	ReadBy string

	str     func(*Config) *string // the field a string setting fills
	boolean func(*Config) *bool   // the field a Bool setting fills
	check   func(name, v string) error
}

// Settings is the table, grouped by what the settings configure; README.md
// lists them in this order.
var Settings = []Setting{
	// Temporal.
	{Env: "TEMPORAL_ADDRESS", Flag: "temporal-address", Default: "127.0.0.1:7233", Need: NeedTemporal, Deploy: true,
		Doc: "Temporal frontend, host:port", str: func(c *Config) *string { return &c.TemporalAddress }, check: hostPort},
	{Env: "TEMPORAL_NAMESPACE", Flag: "temporal-namespace", Default: "default", Need: NeedTemporal, Deploy: true,
		Doc: "Temporal namespace", str: func(c *Config) *string { return &c.TemporalNamespace }, check: notEmpty},
	{Env: "TEMPORAL_TLS_CERT", Flag: "temporal-tls-cert", Need: NeedTemporal,
		Doc: "client PEM certificate for Temporal mTLS, with `TEMPORAL_TLS_KEY`; any `TEMPORAL_TLS_*` turns TLS on",
		str: func(c *Config) *string { return &c.TemporalTLSCert }},
	{Env: "TEMPORAL_TLS_KEY", Flag: "temporal-tls-key", Need: NeedTemporal,
		Doc: "client PEM private key for Temporal mTLS", str: func(c *Config) *string { return &c.TemporalTLSKey }},
	{Env: "TEMPORAL_TLS_CA", Flag: "temporal-tls-ca", DefaultNote: "the system's roots", Need: NeedTemporal,
		Doc: "PEM CA bundle that signs Temporal's server certificate", str: func(c *Config) *string { return &c.TemporalTLSCA }},
	{Env: "TEMPORAL_TLS_SERVER_NAME", Flag: "temporal-tls-server-name", DefaultNote: "the host of `TEMPORAL_ADDRESS`", Need: NeedTemporal,
		Doc: "server name to verify in Temporal's certificate", str: func(c *Config) *string { return &c.TemporalTLSServerName }},
	{Env: "TEMPORAL_API_KEY", Secret: true, Need: NeedTemporal,
		Doc: "API key (Temporal Cloud), sent as `Authorization: Bearer`; implies TLS", str: func(c *Config) *string { return &c.TemporalAPIKey }},

	// Kafka.
	{Env: "KAFKA_BROKERS", Flag: "kafka-brokers", Default: "127.0.0.1:9092", Need: NeedKafka, Deploy: true,
		Doc: "Kafka bootstrap brokers, comma-separated host:port", str: func(c *Config) *string { return &c.KafkaBrokers }, check: brokerList},
	{Env: "KAFKA_TLS", Flag: "kafka-tls", Default: "false", Bool: true, Need: NeedKafka,
		Doc: "`true`: connect to Kafka over TLS", boolean: func(c *Config) *bool { return &c.Kafka.TLS }},
	{Env: "KAFKA_TLS_CA", Flag: "kafka-tls-ca", DefaultNote: "the system's roots", Need: NeedKafka,
		Doc: "PEM CA bundle that signs the brokers' certificates; implies TLS", str: func(c *Config) *string { return &c.Kafka.TLSCAFile }},
	{Env: "KAFKA_TLS_CERT", Flag: "kafka-tls-cert", Need: NeedKafka,
		Doc: "client PEM certificate for Kafka mTLS, with `KAFKA_TLS_KEY`; implies TLS", str: func(c *Config) *string { return &c.Kafka.TLSCertFile }},
	{Env: "KAFKA_TLS_KEY", Flag: "kafka-tls-key", Need: NeedKafka,
		Doc: "client PEM private key for Kafka mTLS", str: func(c *Config) *string { return &c.Kafka.TLSKeyFile }},
	{Env: "KAFKA_SASL_MECHANISM", Flag: "kafka-sasl-mechanism", DefaultNote: "unset: no SASL", Need: NeedKafka,
		Doc: "`PLAIN`, `SCRAM-SHA-256` or `SCRAM-SHA-512`", str: func(c *Config) *string { return &c.Kafka.SASLMechanism }},
	{Env: "KAFKA_SASL_USERNAME", Flag: "kafka-sasl-username", Need: NeedKafka,
		Doc: "SASL user name", str: func(c *Config) *string { return &c.Kafka.SASLUsername }},
	{Env: "KAFKA_SASL_PASSWORD", Secret: true, Need: NeedKafka,
		Doc: "SASL password", str: func(c *Config) *string { return &c.Kafka.SASLPassword }},
	{Flag: "topic", Default: DefaultTopic,
		Doc: "Kafka topic of the events", str: func(c *Config) *string { return &c.Topic }},

	// S3, the lake.
	{Env: "S3_ENDPOINT", Flag: "s3-endpoint", Default: "http://127.0.0.1:9000", EmptyIsValue: true, Need: NeedS3, Deploy: true,
		Doc: "S3 endpoint URL; set it empty for AWS itself", str: func(c *Config) *string { return &c.S3Endpoint }, check: s3Endpoint},
	{Env: "AWS_REGION", Flag: "aws-region", Default: "us-east-1", Need: NeedS3, Deploy: true,
		Doc: "S3 region", str: func(c *Config) *string { return &c.AWSRegion }, check: notEmpty},
	{Env: "S3_PATH_STYLE", Flag: "s3-path-style", DefaultNote: "`true` with an `S3_ENDPOINT`, `false` on AWS", Need: NeedS3,
		Doc: "`true`: path-style bucket addressing; `false`: virtual-hosted", str: func(c *Config) *string { return &c.S3PathStyleSetting }, check: boolOrEmpty},
	{Env: "AWS_ACCESS_KEY_ID", Secret: true, Need: NeedS3,
		DefaultNote: "unset: the AWS credential chain; `pipeline dev` generates and prints one",
		Doc:         "S3 access key (also the dev store's root key when set); set both keys or neither",
		str:         func(c *Config) *string { return &c.AWSAccessKeyID }},
	{Env: "AWS_SECRET_ACCESS_KEY", Secret: true, Need: NeedS3,
		DefaultNote: "unset: the AWS credential chain; `pipeline dev` generates and prints one",
		Doc:         "S3 secret key", str: func(c *Config) *string { return &c.AWSSecretKey }},
	{Flag: "bucket", Default: DefaultBucket,
		Doc: "S3 bucket of the lake", str: func(c *Config) *string { return &c.Bucket }},

	// PostgreSQL, the warehouse. The URL carries the password, hence secret,
	// though it has a flag for local use.
	{Env: "DATABASE_URL", Flag: "database-url", Default: DefaultDatabaseURL, Secret: true, Need: NeedDatabase, Deploy: true,
		DefaultNote: "`pipeline dev` falls back to a private cluster",
		Doc:         "PostgreSQL URL (warehouse), TLS settings included", str: func(c *Config) *string { return &c.DatabaseURL }, check: postgresURL},

	// The event API.
	{Env: "PIPELINE_API_KEYS", Secret: true, Need: NeedAPIKeys, Deploy: true,
		DefaultNote: "`pipeline dev` generates and prints one; required for `pipeline api`",
		Doc:         "comma-separated `name:secret` pairs; clients send `Authorization: Bearer secret`. `pipeline api` refuses a secret under 16 characters or an example's placeholder (`CHANGE-ME`, `secret`, ...), naming the key",
		str:         func(c *Config) *string { return &c.APIKeys }, check: apiKeys},
	{Env: "PIPELINE_TLS_CERT", Flag: "tls-cert",
		DefaultNote: "unset: plain HTTP; provisioning makes a self-signed dev certificate under `.dev/tls` for a `tls: true` gateway",
		Doc:         "the gateway's PEM certificate, with `PIPELINE_TLS_KEY`: `pipeline api` serves HTTPS only, and `Provision` checks it covers the blueprint's `dominio` and has not expired",
		str:         func(c *Config) *string { return &c.TLSCertFile }},
	{Env: "PIPELINE_TLS_KEY", Flag: "tls-key",
		Doc: "the gateway's PEM private key", str: func(c *Config) *string { return &c.TLSKeyFile }},

	// The SLO monitor reads these when the worker starts it.
	{Env: "PIPELINE_ALERT_WEBHOOK", Secret: true, ReadBy: "the SLO monitor (cmd/pipeline/monitor.go)",
		Doc: "URL that receives every SLO alert as JSON when it opens and resolves; such URLs usually carry a token"},
	{Env: "PIPELINE_STATUS_URL", ReadBy: "the SLO monitor (cmd/pipeline/monitor.go)",
		Doc: "the `/status` link put in alert notifications"},

	// OpenTelemetry: internal/telemetry checks them, the SDK reads them.
	{Env: "OTEL_TRACES_EXPORTER", Default: "none", ReadBy: otel,
		Doc: "`otlp`, `console` or `none` (comma-separated for several)"},
	{Env: "OTEL_EXPORTER_OTLP_ENDPOINT", Default: "http://localhost:4318", ReadBy: otel,
		Doc: "where OTLP traces go, over HTTP/protobuf"},
	{Env: "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", DefaultNote: "`OTEL_EXPORTER_OTLP_ENDPOINT` + `/v1/traces`", ReadBy: otel,
		Doc: "the same, for traces only"},
	{Env: "OTEL_EXPORTER_OTLP_HEADERS", Secret: true, ReadBy: otel,
		Doc: "headers of every OTLP request, comma-separated `key=value` (a vendor's API key goes here)"},
	{Env: "OTEL_EXPORTER_OTLP_PROTOCOL", Default: "http/protobuf", ReadBy: otel,
		Doc: "OTLP transport: `http/protobuf`, the only one supported"},
	{Env: "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", ReadBy: otel,
		Doc: "the same, for traces only"},
	{Env: "OTEL_SERVICE_NAME", DefaultNote: "`pipeline-api`, `pipeline-worker` or `pipeline-dev`, by process", ReadBy: otel,
		Doc: "service name of every span and metric"},
	{Env: "OTEL_RESOURCE_ATTRIBUTES", ReadBy: otel,
		Doc: "resource attributes of every span and metric, comma-separated `key=value`"},
	{Env: "OTEL_TRACES_SAMPLER", Default: "parentbased_always_on", ReadBy: otel,
		Doc: "sampler: `always_on`, `always_off`, `traceidratio` or their `parentbased_` forms"},
	{Env: "OTEL_TRACES_SAMPLER_ARG", Default: "1.0", ReadBy: otel,
		Doc: "the ratio of a `traceidratio` sampler, between 0 and 1"},
	{Env: "OTEL_PROPAGATORS", Default: "tracecontext,baggage", ReadBy: otel,
		Doc: "`tracecontext`, `baggage` or `none` (comma-separated)"},
	{Env: "OTEL_SDK_DISABLED", Default: "false", ReadBy: otel,
		Doc: "`true`: no OpenTelemetry SDK; `/metrics` serves only Go runtime and process metrics"},
}

const otel = "internal/telemetry and the OpenTelemetry SDK"

// CommandNeeds are the parts of the configuration each subcommand of
// cmd/pipeline validates at start-up (ValidateFor); `pipeline dev`
// configures itself. The manifests' tests check that every workload
// provides the Deploy settings of its parts.
var CommandNeeds = map[string]Need{
	"api":         NeedKafka | NeedAPIKeys,
	"worker":      NeedTemporal | NeedKafka | NeedS3 | NeedDatabase,
	"provision":   NeedTemporal,
	"backfill":    NeedTemporal,
	"aggregate":   NeedTemporal,
	"maintain":    NeedTemporal,
	"status":      NeedDatabase | NeedKafka,
	"incarnation": NeedDatabase | NeedKafka,
}

// ValidateFor validates the parts of the configuration a subcommand needs,
// as CommandNeeds lists them; a subcommand it does not list is an error,
// not a configuration checked for nothing.
func (c Config) ValidateFor(command string) error {
	need, ok := CommandNeeds[command]
	if !ok {
		return fmt.Errorf("config: subcommand %q is not in CommandNeeds", command)
	}
	return c.Validate(need)
}

// Lookup returns the row of an environment variable.
func Lookup(env string) (Setting, bool) {
	for _, s := range Settings {
		if s.Env == env && env != "" {
			return s, true
		}
	}
	return Setting{}, false
}
