package warehouse

import (
	"fmt"
	"time"
)

// Day is a calendar day without a time zone (a civil date). Which instants it
// covers depends on the zone it is read in: see Start and Bounds.
//
// Its text form is ISO 8601, "2026-11-24", also in JSON.
type Day struct {
	Year  int
	Month time.Month
	Day   int
}

// ParseDay parses "YYYY-MM-DD".
func ParseDay(s string) (Day, error) {
	t, err := time.Parse(time.DateOnly, s)
	if err != nil {
		return Day{}, fmt.Errorf("day %q: want YYYY-MM-DD", s)
	}
	return DayOf(t), nil
}

// DayOf returns the day t falls on in t's location.
func DayOf(t time.Time) Day {
	y, m, d := t.Date()
	return Day{y, m, d}
}

// String returns "YYYY-MM-DD".
func (d Day) String() string { return fmt.Sprintf("%04d-%02d-%02d", d.Year, d.Month, d.Day) }

// IsZero reports whether d is the zero Day.
func (d Day) IsZero() bool { return d == Day{} }

// Start returns the first instant of d in loc (nil means UTC). On a day that
// starts inside a daylight-saving gap it is the first instant that exists.
func (d Day) Start(loc *time.Location) time.Time {
	if loc == nil {
		loc = time.UTC
	}
	t := time.Date(d.Year, d.Month, d.Day, 0, 0, 0, 0, loc)
	if DayOf(t) != d.normal() {
		// Midnight does not exist (a DST gap at 00:00): time.Date moved
		// back into the previous day. Step forward to the gap's end.
		for DayOf(t) != d.normal() {
			t = t.Add(15 * time.Minute).Truncate(15 * time.Minute)
		}
	}
	return t
}

// Bounds returns the half-open interval [start, end) of d in loc: 23, 24 or
// 25 hours long around daylight-saving changes.
func (d Day) Bounds(loc *time.Location) (start, end time.Time) {
	return d.Start(loc), d.AddDays(1).Start(loc)
}

// AddDays returns the day n days after d (before, when n is negative).
func (d Day) AddDays(n int) Day {
	return DayOf(time.Date(d.Year, d.Month, d.Day+n, 12, 0, 0, 0, time.UTC))
}

// Compare returns -1, 0 or +1 as d is before, equal to or after e.
func (d Day) Compare(e Day) int {
	a, b := d.normal(), e.normal()
	switch {
	case a.Year != b.Year:
		return cmpInt(a.Year, b.Year)
	case a.Month != b.Month:
		return cmpInt(int(a.Month), int(b.Month))
	default:
		return cmpInt(a.Day, b.Day)
	}
}

// MarshalText implements encoding.TextMarshaler ("YYYY-MM-DD").
func (d Day) MarshalText() ([]byte, error) { return []byte(d.String()), nil }

// UnmarshalText implements encoding.TextUnmarshaler ("YYYY-MM-DD").
func (d *Day) UnmarshalText(b []byte) error {
	v, err := ParseDay(string(b))
	if err != nil {
		return err
	}
	*d = v
	return nil
}

// normal folds out-of-range fields (Day{2026, 11, 31} is December 1st).
func (d Day) normal() Day { return d.AddDays(0) }

// epochDay is the number of days since 1970-01-01, for advisory lock keys.
func (d Day) epochDay() int32 {
	return int32(time.Date(d.Year, d.Month, d.Day, 0, 0, 0, 0, time.UTC).Unix() / 86400)
}

func cmpInt(a, b int) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}
