package main

import (
	"log/slog"

	"go.temporal.io/sdk/client"

	"github.com/acme/pipeline/internal/config"
	"github.com/acme/pipeline/lake"
	"github.com/acme/pipeline/silver"
	"github.com/acme/pipeline/starter"
)

// dialTemporal connects to Temporal as cfg says: TEMPORAL_ADDRESS and
// TEMPORAL_NAMESPACE, over TLS or mTLS (TEMPORAL_TLS_*) and with an API key
// (TEMPORAL_API_KEY) when configured.
func dialTemporal(cfg config.Config, log *slog.Logger) (client.Client, error) {
	tlsCfg, err := cfg.TemporalTLS()
	if err != nil {
		return nil, err
	}
	return starter.Dial(starter.DialConfig{
		Address: cfg.TemporalAddress, Namespace: cfg.TemporalNamespace,
		TLS: tlsCfg, Credentials: cfg.TemporalCredentials(),
	}, log)
}

// lakeConfig is the lake bucket as cfg says: S3_ENDPOINT (empty for AWS),
// static keys or the AWS credential chain, S3_PATH_STYLE.
func lakeConfig(cfg config.Config) lake.Config {
	return lake.Config{Endpoint: cfg.S3Endpoint, Region: cfg.AWSRegion, AccessKeyID: cfg.AWSAccessKeyID,
		SecretAccessKey: cfg.AWSSecretKey, Bucket: cfg.Bucket, PathStyle: cfg.S3PathStyle()}
}

// silverConfig is the catalog of silver.events on the configuration's
// warehouse and S3. Its Bucket is left to the user: the lake's bucket for
// the stream, the backfill and maintenance, the archive's for provisioning.
func silverConfig(cfg config.Config) silver.Config {
	return silver.Config{DatabaseURL: cfg.DatabaseURL, Endpoint: cfg.S3Endpoint, Region: cfg.AWSRegion,
		AccessKeyID: cfg.AWSAccessKeyID, SecretAccessKey: cfg.AWSSecretKey}
}
