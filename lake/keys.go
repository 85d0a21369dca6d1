package lake

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Prefixes of the three layers (see CONTRACT.md, "Lake layout").
const (
	BronzePrefix     = "bronze/events/"
	SilverPrefix     = "silver/events/"
	QuarantinePrefix = "quarantine/events/"
)

// hourPath is "dt=YYYY-MM-DD/hour=HH/" of t in UTC.
func hourPath(t time.Time) string {
	t = t.UTC()
	return fmt.Sprintf("dt=%s/hour=%02d/", t.Format(time.DateOnly), t.Hour())
}

// rangeName is "p03-000000001000-000000001999": partition, first and last
// offset (both inclusive), zero-padded so that keys sort by offset.
func rangeName(partition int32, first, last int64) string {
	return fmt.Sprintf("p%02d-%012d-%012d", partition, first, last)
}

// BronzeKey is the key of the bronze object holding the records first..last
// (inclusive) of one partition of topic, as consumed. arrival is the Kafka
// timestamp of the first record: it places the object by arrival date and
// hour, and a retry computes the same key.
//
//	bronze/events/dt=2026-11-24/hour=14/events-p03-000000001000-000000001999.ndjson
func BronzeKey(topic string, partition int32, first, last int64, arrival time.Time) string {
	return BronzePrefix + hourPath(arrival) + topic + "-" + rangeName(partition, first, last) + ".ndjson"
}

// QuarantineKey is the key of the quarantine object for the records of the
// bronze range first..last that could not be cleaned, placed like its bronze
// object.
//
//	quarantine/events/dt=2026-11-24/hour=14/events-p03-000000001000-000000001999.ndjson
func QuarantineKey(topic string, partition int32, first, last int64, arrival time.Time) string {
	return QuarantinePrefix + hourPath(arrival) + topic + "-" + rangeName(partition, first, last) + ".ndjson"
}

// SilverKey is the key of the silver Parquet file holding the cleaned rows of
// one partition's offsets first..last whose event time (occurred_at) falls in
// hour. A stream cycle writes one per bronze range and event hour; hour
// compaction merges them into files named the same way by the wider range
// they cover.
//
//	silver/events/dt=2026-11-24/hour=14/p03-000000001000-000000001999.parquet
func SilverKey(hour time.Time, partition int32, first, last int64) string {
	return SilverPrefix + hourPath(hour) + rangeName(partition, first, last) + ".parquet"
}

// CompactedSilverKey is the key of a file written by hour compaction: the
// offset range it covers and its generation, one more than the highest
// generation among the files it merges (a stream cycle's file is generation
// 0), so that no key is ever reused.
//
//	silver/events/dt=2026-11-24/hour=14/p03-000000000000-000000099999-g1.parquet
func CompactedSilverKey(hour time.Time, partition int32, first, last int64, generation int) string {
	return SilverPrefix + hourPath(hour) + rangeName(partition, first, last) + fmt.Sprintf("-g%d", generation) + ".parquet"
}

// SilverHourPrefix is the prefix of every silver file of one event hour.
func SilverHourPrefix(hour time.Time) string { return SilverPrefix + hourPath(hour) }

// SilverDayPrefix is the prefix of every silver file of one UTC day.
func SilverDayPrefix(day time.Time) string {
	return SilverPrefix + "dt=" + day.UTC().Format(time.DateOnly) + "/"
}

// KeyInfo is what a lake key says about its object.
type KeyInfo struct {
	Layer     string    // "bronze", "silver" or "quarantine"
	Hour      time.Time // arrival hour (bronze, quarantine) or event hour (silver), UTC
	Topic     string    // bronze and quarantine only
	Partition int32
	First     int64 // first offset, inclusive
	Last      int64 // last offset, inclusive
	// Generation is 0 for a stream cycle's silver file, N ≥ 1 for one
	// written by hour compaction.
	Generation int
}

// ParseKey parses a key made by BronzeKey, QuarantineKey or SilverKey.
func ParseKey(key string) (KeyInfo, error) {
	var ki KeyInfo
	var rest string
	switch {
	case strings.HasPrefix(key, BronzePrefix):
		ki.Layer, rest = "bronze", key[len(BronzePrefix):]
	case strings.HasPrefix(key, SilverPrefix):
		ki.Layer, rest = "silver", key[len(SilverPrefix):]
	case strings.HasPrefix(key, QuarantinePrefix):
		ki.Layer, rest = "quarantine", key[len(QuarantinePrefix):]
	default:
		return ki, fmt.Errorf("lake key %q: not under %s, %s or %s", key, BronzePrefix, SilverPrefix, QuarantinePrefix)
	}
	bad := func(why string) (KeyInfo, error) { return KeyInfo{}, fmt.Errorf("lake key %q: %s", key, why) }
	parts := strings.Split(rest, "/")
	if len(parts) != 3 || !strings.HasPrefix(parts[0], "dt=") || !strings.HasPrefix(parts[1], "hour=") {
		return bad("want dt=YYYY-MM-DD/hour=HH/NAME")
	}
	h, err := time.Parse("2006-01-02 15", parts[0][3:]+" "+parts[1][5:])
	if err != nil {
		return bad("bad dt= or hour=")
	}
	ki.Hour = h
	name := parts[2]
	ext := ".ndjson"
	if ki.Layer == "silver" {
		ext = ".parquet"
	}
	if !strings.HasSuffix(name, ext) {
		return bad("want a " + ext + " name")
	}
	name = strings.TrimSuffix(name, ext)
	// [topic-]pNN-FIRST-LAST[-gN]; the topic itself may contain '-'.
	f := strings.Split(name, "-")
	if ki.Layer == "silver" && len(f) == 4 && strings.HasPrefix(f[3], "g") {
		g, err := strconv.Atoi(f[3][1:])
		if err != nil || g < 1 {
			return bad("bad generation")
		}
		ki.Generation = g
		f = f[:3]
	}
	if len(f) < 3 {
		return bad("want [topic-]pNN-FIRST-LAST")
	}
	pn, first, last := f[len(f)-3], f[len(f)-2], f[len(f)-1]
	if ki.Layer != "silver" {
		if len(f) < 4 {
			return bad("want topic-pNN-FIRST-LAST")
		}
		ki.Topic = strings.Join(f[:len(f)-3], "-")
	} else if len(f) != 3 {
		return bad("want pNN-FIRST-LAST")
	}
	if !strings.HasPrefix(pn, "p") {
		return bad("want pNN")
	}
	p, err1 := strconv.ParseInt(pn[1:], 10, 32)
	a, err2 := strconv.ParseInt(first, 10, 64)
	b, err3 := strconv.ParseInt(last, 10, 64)
	if err1 != nil || err2 != nil || err3 != nil || p < 0 || a < 0 || b < a {
		return bad("bad partition or offsets")
	}
	ki.Partition, ki.First, ki.Last = int32(p), a, b
	return ki, nil
}
