package config

import (
	"flag"
	"strings"
	"testing"
)

func TestValidate(t *testing.T) {
	good := Config{TemporalAddress: "127.0.0.1:7233", TemporalNamespace: "default", KafkaBrokers: "a:9092, b:9092",
		S3Endpoint: "http://127.0.0.1:9000", AWSRegion: "us-east-1", DatabaseURL: DefaultDatabaseURL, APIKeys: "web:s3cret"}
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
