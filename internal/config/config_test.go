package config

import (
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestValidate(t *testing.T) {
	good := Config{TemporalAddress: "127.0.0.1:7233", TemporalNamespace: "default", KafkaBrokers: "a:9092, b:9092",
		S3Endpoint: "http://127.0.0.1:9000", AWSRegion: "us-east-1", DatabaseURL: DefaultDatabaseURL, APIKeys: "web:9f86d081884c7d659a2feaa0c55ad015"}
	tests := []struct {
		name   string
		mutate func(*Config)
		need   Need
		want   string // fragment; "" means valid
	}{
		{"all good", func(*Config) {}, NeedTemporal | NeedKafka | NeedS3 | NeedDatabase | NeedAPIKeys, ""},
		{"temporal without port", func(c *Config) { c.TemporalAddress = "localhost" }, NeedTemporal, `TEMPORAL_ADDRESS="localhost": must be host:port`},
		{"no brokers", func(c *Config) { c.KafkaBrokers = " , " }, NeedKafka, "KAFKA_BROKERS"},
		{"broker without port", func(c *Config) { c.KafkaBrokers = "a:9092,b" }, NeedKafka, `KAFKA_BROKERS="b"`},
		{"s3 not a URL", func(c *Config) { c.S3Endpoint = "127.0.0.1:9000" }, NeedS3, "S3_ENDPOINT"},
		{"database not postgres", func(c *Config) { c.DatabaseURL = "mysql://x:pw@h/db" }, NeedDatabase, `DATABASE_URL="mysql://x:xxxxx@h/db"`},
		{"no api keys", func(c *Config) { c.APIKeys = "" }, NeedAPIKeys, "PIPELINE_API_KEYS is empty"},
		{"placeholder api key", func(c *Config) { c.APIKeys = "web:CHANGE-ME" }, NeedAPIKeys, `PIPELINE_API_KEYS: the secret of key "web" has 9 characters`},
		{"long placeholder api key", func(c *Config) { c.APIKeys = "dev:dev-secret-change-me" }, NeedAPIKeys, `the secret of key "dev" is a placeholder (contains "change-me")`},
		{"short second api key", func(c *Config) { c.APIKeys = "web:9f86d081884c7d659a2feaa0c55ad015,ios:abc123" }, NeedAPIKeys, `the secret of key "ios" has 6 characters, fewer than 16`},
		{"unneeded part not checked", func(c *Config) { c.KafkaBrokers = "" }, NeedTemporal, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := good
			tt.mutate(&c)
			err := c.Validate(tt.need)
			if tt.want == "" {
				if err != nil {
					t.Fatalf("unexpected error: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error %v, want it to contain %q", err, tt.want)
			}
		})
	}
}

func TestFlagsWinOverEnvironment(t *testing.T) {
	t.Setenv("KAFKA_BROKERS", "env:9092")
	t.Setenv("TEMPORAL_ADDRESS", "env:7233")
	var c Config
	fs := flag.NewFlagSet("x", flag.ContinueOnError)
	c.Register(fs)
	if err := fs.Parse([]string{"-kafka-brokers", "flag:9092"}); err != nil {
		t.Fatal(err)
	}
	if c.KafkaBrokers != "flag:9092" || c.TemporalAddress != "env:7233" {
		t.Fatalf("got brokers %q temporal %q", c.KafkaBrokers, c.TemporalAddress)
	}
}

func TestValidateSecurity(t *testing.T) {
	dir := t.TempDir()
	missing := filepath.Join(dir, "missing.pem")
	notPEM := filepath.Join(dir, "not.pem")
	if err := os.WriteFile(notPEM, []byte("hello"), 0o600); err != nil {
		t.Fatal(err)
	}
	good := Config{TemporalAddress: "temporal.example.com:7233", TemporalNamespace: "ns", KafkaBrokers: "b:9093",
		S3Endpoint: "", AWSRegion: "eu-west-1", DatabaseURL: DefaultDatabaseURL}
	all := NeedTemporal | NeedKafka | NeedS3 | NeedDatabase
	tests := []struct {
		name   string
		mutate func(*Config)
		want   []string // fragments; none means valid
	}{
		{"plaintext defaults, AWS credential chain", func(*Config) {}, nil},
		{"temporal api key", func(c *Config) { c.TemporalAPIKey = "k" }, nil},
		{"temporal cert without key", func(c *Config) { c.TemporalTLSCert = "/etc/t/client.pem" },
			[]string{`TEMPORAL_TLS_CERT="/etc/t/client.pem"`, "TEMPORAL_TLS_KEY is not"}},
		{"temporal key without cert", func(c *Config) { c.TemporalTLSKey = "/etc/t/client.key" },
			[]string{`TEMPORAL_TLS_KEY="/etc/t/client.key"`, "TEMPORAL_TLS_CERT is not"}},
		{"temporal unreadable cert", func(c *Config) { c.TemporalTLSCert, c.TemporalTLSKey = missing, notPEM },
			[]string{"TEMPORAL_TLS_CERT=", missing, "no such file"}},
		{"temporal unreadable CA", func(c *Config) { c.TemporalTLSCA = missing }, []string{"TEMPORAL_TLS_CA=", missing}},
		{"temporal CA not PEM", func(c *Config) { c.TemporalTLSCA = notPEM }, []string{"TEMPORAL_TLS_CA=", "no PEM certificate"}},
		{"kafka unknown mechanism", func(c *Config) { c.Kafka.SASLMechanism = "OAUTHBEARER" }, []string{`KAFKA_SASL_MECHANISM="OAUTHBEARER"`}},
		{"kafka user without password", func(c *Config) { c.Kafka.SASLMechanism, c.Kafka.SASLUsername = "SCRAM-SHA-512", "app" },
			[]string{"KAFKA_SASL_PASSWORD"}},
		{"kafka unreadable CA", func(c *Config) { c.Kafka.TLS, c.Kafka.TLSCAFile = true, missing }, []string{"KAFKA_TLS_CA=", missing}},
		{"s3 path style not a boolean", func(c *Config) { c.S3PathStyleSetting = "maybe" }, []string{`S3_PATH_STYLE="maybe"`}},
		{"s3 half static keys", func(c *Config) { c.AWSAccessKeyID = "AKIA" }, []string{"AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := good
			tt.mutate(&c)
			err := c.Validate(all)
			if len(tt.want) == 0 {
				if err != nil {
					t.Fatalf("unexpected error: %v", err)
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
		})
	}
}

func TestTemporalSecurity(t *testing.T) {
	var c Config
	if tc, err := c.TemporalTLS(); tc != nil || err != nil || c.TemporalCredentials() != nil {
		t.Fatalf("zero config: TLS %v, %v, credentials %v; want plaintext", tc, err, c.TemporalCredentials())
	}
	c.TemporalAPIKey = "secret"
	tc, err := c.TemporalTLS()
	if err != nil || tc == nil || tc.RootCAs != nil || len(tc.Certificates) != 0 {
		t.Fatalf("API key: TLS %+v, %v; want TLS with the system roots", tc, err)
	}
	if c.TemporalCredentials() == nil {
		t.Fatal("API key: no credentials")
	}
	c = Config{TemporalTLSServerName: "ns.acct.tmprl.cloud"}
	if tc, err := c.TemporalTLS(); err != nil || tc == nil || tc.ServerName != "ns.acct.tmprl.cloud" {
		t.Fatalf("server name: %+v %v", tc, err)
	}
}

func TestSecurityFromEnvironment(t *testing.T) {
	t.Setenv("S3_ENDPOINT", "") // set but empty: AWS itself
	t.Setenv("KAFKA_TLS", "true")
	t.Setenv("KAFKA_SASL_MECHANISM", "SCRAM-SHA-256")
	t.Setenv("KAFKA_SASL_USERNAME", "app")
	t.Setenv("KAFKA_SASL_PASSWORD", "pw")
	t.Setenv("TEMPORAL_API_KEY", "key")
	t.Setenv("TEMPORAL_TLS_SERVER_NAME", "x.tmprl.cloud")
	var c Config
	fs := flag.NewFlagSet("x", flag.ContinueOnError)
	c.Register(fs)
	if err := fs.Parse([]string{"-kafka-sasl-username", "flag-user"}); err != nil {
		t.Fatal(err)
	}
	if c.S3Endpoint != "" || c.S3PathStyle() {
		t.Fatalf("S3_ENDPOINT='': endpoint %q path-style %v; want AWS, virtual-hosted", c.S3Endpoint, c.S3PathStyle())
	}
	if !c.Kafka.TLS || c.Kafka.SASLMechanism != "SCRAM-SHA-256" || c.Kafka.SASLUsername != "flag-user" || c.Kafka.SASLPassword != "pw" {
		t.Fatalf("kafka %+v", c.Kafka)
	}
	if c.TemporalAPIKey != "key" || c.TemporalTLSServerName != "x.tmprl.cloud" {
		t.Fatalf("temporal key %q server name %q", c.TemporalAPIKey, c.TemporalTLSServerName)
	}

	t.Setenv("KAFKA_TLS", "yes please")
	t.Setenv("S3_PATH_STYLE", "false")
	os.Unsetenv("S3_ENDPOINT")
	var d Config
	d.Register(flag.NewFlagSet("y", flag.ContinueOnError))
	if d.S3Endpoint != "http://127.0.0.1:9000" || d.S3PathStyle() {
		t.Fatalf("unset S3_ENDPOINT %q, S3_PATH_STYLE=false gives path-style %v", d.S3Endpoint, d.S3PathStyle())
	}
	d.KafkaBrokers = "b:9092"
	if err := d.Validate(NeedKafka); err == nil || !strings.Contains(err.Error(), `KAFKA_TLS="yes please"`) {
		t.Fatalf("bad KAFKA_TLS: %v", err)
	}
}
