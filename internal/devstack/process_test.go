package devstack

import (
	"slices"
	"testing"
)

// TestChildEnv: the stack's servers get the process's environment less what
// configures the pipeline: its OpenTelemetry settings (the Temporal server
// refuses OTEL_TRACES_EXPORTER=console) and its credentials.
func TestChildEnv(t *testing.T) {
	for _, tc := range []struct {
		in   string
		kept bool
	}{
		{"PATH=/usr/bin", true},
		{"HOME=/root", true},
		{"TMPDIR=/tmp", true},
		{"OTEL_TRACES_EXPORTER=console", false},
		{"OTEL_EXPORTER_OTLP_ENDPOINT=http://collector:4317", false},
		{"PIPELINE_API_KEYS=web:secret", false},
		{"DATABASE_URL=postgres://owner:pw@db/pipeline", false},
		{"AWS_SECRET_ACCESS_KEY=abc", false},
		{"TEMPORAL_API_KEY=abc", false},
		{"KAFKA_SASL_PASSWORD=abc", false},
		{"PGPASSWORD=abc", false},
	} {
		if got := slices.Contains(childEnv([]string{tc.in}), tc.in); got != tc.kept {
			t.Errorf("%s: kept %v, want %v", tc.in, got, tc.kept)
		}
	}
}
