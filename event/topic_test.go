package event

import (
	"strings"
	"testing"
	"time"
)

// TestDecodeTopicRecord covers records read back from the topic (AssignID
// false), which other producers than the API may write.
func TestDecodeTopicRecord(t *testing.T) {
	kafkaTime := time.Date(2026, 11, 24, 14, 5, 10, 0, time.UTC)
	const id = `"event_id":"0193a0b4-6b7e-7c3a-9f1e-2b9d4c1e8a55"`
	tests := []struct {
		name         string
		raw          string
		now          time.Time
		wantReceived time.Time
		wantErr      string
	}{
		{"received_at kept", `{` + id + `,"type":"click","occurred_at":"2026-11-24T14:05:09Z","received_at":"2026-11-24T14:05:09.5Z"}`,
			kafkaTime, time.Date(2026, 11, 24, 14, 5, 9, 500_000_000, time.UTC), ""},
		{"missing received_at takes the Kafka timestamp", `{` + id + `,"type":"click","occurred_at":"2026-11-24T14:05:09Z"}`,
			kafkaTime, kafkaTime, ""},
		{"missing received_at and no timestamp", `{` + id + `,"type":"click","occurred_at":"2026-11-24T14:05:09Z"}`,
			time.Time{}, time.Time{}, "received_at: is required on the topic"},
		{"missing event_id", `{"type":"click","occurred_at":"2026-11-24T14:05:09Z"}`,
			kafkaTime, time.Time{}, "event_id: is required on the topic"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ev, errs := Decode([]byte(tt.raw), Options{Now: tt.now})
			if tt.wantErr != "" {
				if errs == nil || !strings.Contains(errs.Error(), tt.wantErr) {
					t.Fatalf("errors %v, want %q", errs, tt.wantErr)
				}
				return
			}
			if errs != nil {
				t.Fatal(errs)
			}
			if !ev.ReceivedAt.Equal(tt.wantReceived) {
				t.Fatalf("received_at %s, want %s", ev.ReceivedAt, tt.wantReceived)
			}
		})
	}
}
