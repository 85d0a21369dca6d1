package starter

import (
	"crypto/tls"
	"fmt"
	"log/slog"

	"go.temporal.io/sdk/client"
	temporalotel "go.temporal.io/sdk/contrib/opentelemetry"
	"go.temporal.io/sdk/interceptor"
	sdklog "go.temporal.io/sdk/log"
)

// DialConfig says where Dial connects and how. Address and Namespace are
// required; the zero TLS and Credentials are plaintext without
// authentication (the local dev server).
type DialConfig struct {
	Address, Namespace string
	// TLS, when set, secures the connection (mTLS with a client
	// certificate in it). config.Config.TemporalTLS builds it.
	TLS *tls.Config
	// Credentials, when set, authenticate every call, e.g.
	// client.NewAPIKeyStaticCredentials for a Temporal Cloud API key (which
	// needs TLS too). config.Config.TemporalCredentials builds it.
	Credentials client.Credentials
}

// Dial connects to Temporal with the process's structured logger and the
// OpenTelemetry tracing interceptor: workflow and activity spans join the
// traces of their callers (through the Temporal headers), and an activity's
// context carries its span, so spans the activity starts are its children.
// The interceptor uses the global TracerProvider, so spans are exported
// once telemetry.Setup has run (before or after Dial).
func Dial(dc DialConfig, log *slog.Logger) (client.Client, error) {
	// The default Tracer is taken from the global provider, which delegates
	// to the one Setup installs; the default propagator (W3C trace context
	// and baggage) is the one every Temporal SDK speaks.
	tracing, err := temporalotel.NewTracingInterceptor(temporalotel.TracerOptions{})
	if err != nil {
		return nil, fmt.Errorf("temporal tracing interceptor: %w", err)
	}
	c, err := client.Dial(client.Options{
		HostPort:          dc.Address,
		Namespace:         dc.Namespace,
		Credentials:       dc.Credentials,
		ConnectionOptions: client.ConnectionOptions{TLS: dc.TLS},
		Logger:            sdklog.NewStructuredLogger(log.With("component", "temporal")),
		Interceptors:      []interceptor.ClientInterceptor{tracing},
	})
	if err != nil {
		security := "plaintext"
		switch {
		case dc.TLS != nil && dc.Credentials != nil:
			security = "TLS, API key"
		case dc.TLS != nil && len(dc.TLS.Certificates) > 0:
			security = "mTLS"
		case dc.TLS != nil:
			security = "TLS"
		case dc.Credentials != nil:
			security = "API key"
		}
		return nil, fmt.Errorf("connect to Temporal at %s (namespace %s, %s): %w", dc.Address, dc.Namespace, security, err)
	}
	return c, nil
}
