package ingest_test

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/acme/pipeline/ingest"
)

// TestAdminListener: with AdminAddr set, the public routes answer the
// events and the probes only; /status and /metrics are on the operators'
// handler. Without it (tests, private networks) one handler has them all.
func TestAdminListener(t *testing.T) {
	status := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("pipeline status")) })
	for _, tc := range []struct {
		name, admin string
		profile     bool
		public      map[string]int // path → status code on the public handler
		operators   map[string]int
	}{
		{"admin listener", "127.0.0.1:9465", false,
			map[string]int{"/status": 404, "/metrics": 404, "/": 404, "/healthz": 200},
			map[string]int{"/status": 200, "/metrics": 200, "/": 302, "/healthz": 404, "/debug/pprof/": 404}},
		{"admin listener with --pprof", "127.0.0.1:9465", true,
			map[string]int{"/debug/pprof/": 404, "/debug/pprof/heap": 404},
			map[string]int{"/debug/pprof/": 200, "/debug/pprof/heap": 200, "/status": 200}},
		{"one listener", "", false,
			map[string]int{"/status": 200, "/metrics": 200, "/healthz": 200}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, err := ingest.New(ingest.Config{Brokers: []string{"127.0.0.1:9"}, APIKeys: map[string]string{"web": "9f86d081884c7d659a2feaa0c55ad015"},
				AdminAddr: tc.admin, Status: status, Profile: tc.profile}, nil)
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			check := func(h http.Handler, which string, want map[string]int) {
				for path, code := range want {
					rec := httptest.NewRecorder()
					h.ServeHTTP(rec, httptest.NewRequest("GET", path, nil))
					if rec.Code != code {
						t.Errorf("%s GET %s: %d, want %d", which, path, rec.Code, code)
					}
				}
			}
			check(s.Handler(), "public", tc.public)
			if tc.operators != nil {
				check(s.AdminHandler(), "operators'", tc.operators)
			} else if s.AdminHandler() != nil {
				t.Error("an operators' handler without AdminAddr")
			}
		})
	}
}
