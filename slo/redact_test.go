package slo

import (
	"errors"
	"fmt"
	"net/url"
	"strings"
	"testing"
)

// TestRedactWebhook: the webhook's secret (in its path, query or user info)
// never reaches a log line or pipeline.alerts.notify_error, whatever error
// quoted it; the host stays, to say where the call went.
func TestRedactWebhook(t *testing.T) {
	for _, tc := range []struct {
		name, webhook string
		err           error
		secret, shown string
	}{
		{"slack path token", "https://hooks.slack.com/services/T000/B000/XXXXSECRET",
			&url.Error{Op: "Post", URL: "https://hooks.slack.com/services/T000/B000/XXXXSECRET", Err: errors.New("dial tcp: i/o timeout")},
			"XXXXSECRET", "https://hooks.slack.com/… : dial tcp"},
		{"query token", "http://127.0.0.1:1/notify?token=abc123secret",
			&url.Error{Op: "Post", URL: "http://127.0.0.1:1/notify?token=abc123secret", Err: errors.New("connection refused")},
			"abc123secret", "http://127.0.0.1:1/…"},
		{"user info", "https://bot:pa55word@alerts.example.com/hook",
			fmt.Errorf("parse %q: bad", "https://bot:pa55word@alerts.example.com/hook"),
			"pa55word", "https://alerts.example.com/…"},
		{"status only", "https://hooks.example.com/x/SECRET", errors.New("webhook answered 500 Internal Server Error"),
			"SECRET", "webhook answered 500"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := redactWebhook(tc.err, tc.webhook).Error()
			if strings.Contains(got, tc.secret) || !strings.Contains(got, strings.Fields(tc.shown)[0]) {
				t.Errorf("redacted %q: want no %q and %q", got, tc.secret, tc.shown)
			}
		})
	}
}
