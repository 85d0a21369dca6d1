package warehouse

import (
	"encoding/json"
	"testing"
	"time"
)

func TestDay(t *testing.T) {
	load := func(name string) *time.Location {
		l, err := time.LoadLocation(name)
		if err != nil {
			t.Fatal(err)
		}
		return l
	}
	for _, tc := range []struct {
		day        string
		loc        *time.Location
		start, end string // in UTC
	}{
		{"2026-11-24", nil, "2026-11-24T00:00:00Z", "2026-11-25T00:00:00Z"},
		{"2026-11-24", load("Asia/Tokyo"), "2026-11-23T15:00:00Z", "2026-11-24T15:00:00Z"},
		{"2026-10-25", load("Europe/Berlin"), "2026-10-24T22:00:00Z", "2026-10-25T23:00:00Z"},     // 25 h
		{"2026-03-29", load("Europe/Berlin"), "2026-03-28T23:00:00Z", "2026-03-29T22:00:00Z"},     // 23 h
		{"2018-11-04", load("America/Sao_Paulo"), "2018-11-04T03:00:00Z", "2018-11-05T02:00:00Z"}, // midnight did not exist
		{"2024-12-31", load("Asia/Kolkata"), "2024-12-30T18:30:00Z", "2024-12-31T18:30:00Z"},
		{"2028-02-29", nil, "2028-02-29T00:00:00Z", "2028-03-01T00:00:00Z"},
	} {
		d, err := ParseDay(tc.day)
		if err != nil {
			t.Fatal(err)
		}
		if d.String() != tc.day {
			t.Errorf("String() = %s, want %s", d, tc.day)
		}
		start, end := d.Bounds(tc.loc)
		if got := start.UTC().Format(time.RFC3339); got != tc.start {
			t.Errorf("%s in %v: start %s, want %s", tc.day, tc.loc, got, tc.start)
		}
		if got := end.UTC().Format(time.RFC3339); got != tc.end {
			t.Errorf("%s in %v: end %s, want %s", tc.day, tc.loc, got, tc.end)
		}
	}
	for _, bad := range []string{"", "2026-13-01", "2026-02-30", "24.11.2026", "2026-11-24T00:00:00Z"} {
		if _, err := ParseDay(bad); err == nil {
			t.Errorf("ParseDay(%q) accepted", bad)
		}
	}
	if got := (Day{2026, 12, 31}).AddDays(1); got != (Day{2027, 1, 1}) {
		t.Errorf("AddDays across a year: %v", got)
	}
	if (Day{2026, 11, 24}).Compare(Day{2026, 11, 25}) != -1 || (Day{2026, 12, 1}).Compare(Day{2026, 11, 31}) != 0 {
		t.Error("Compare")
	}
	var v struct{ From Day }
	if err := json.Unmarshal([]byte(`{"From":"2026-11-01"}`), &v); err != nil || v.From != (Day{2026, 11, 1}) {
		t.Fatalf("JSON: %v %v", v, err)
	}
	if b, _ := json.Marshal(v); string(b) != `{"From":"2026-11-01"}` {
		t.Fatalf("JSON: %s", b)
	}
}
