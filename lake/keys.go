package lake

import (
	"crypto/sha256"
	"encoding/hex"
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
// offset (both inclusive), zero-padded so that keys sort by offset. Offsets
// of a topic's incarnation after the first (a topic deleted and created
// again numbers its records from 0 again) get "-iN", so that its objects
// never take the keys of the old topic's: "p03-000000001000-000000001999-i2".
// Keys of the first incarnation, every key written before incarnations
// existed among them, have no suffix.
func rangeName(incarnation int, partition int32, first, last int64) string {
	name := fmt.Sprintf("p%02d-%012d-%012d", partition, first, last)
	if incarnation > 1 {
		name += fmt.Sprintf("-i%d", incarnation)
	}
	return name
}

// BronzeKey is the key of the bronze object holding the records first..last
// (inclusive) of one partition of one incarnation of topic (0 or 1: the
// first), as consumed. arrival is the Kafka timestamp of the first record:
// it places the object by arrival date and hour, and a retry computes the
// same key.
//
//	bronze/events/dt=2026-11-24/hour=14/events-p03-000000001000-000000001999.ndjson
//	bronze/events/dt=2026-11-24/hour=14/events-p03-000000001000-000000001999-i2.ndjson
func BronzeKey(topic string, incarnation int, partition int32, first, last int64, arrival time.Time) string {
	return BronzePrefix + hourPath(arrival) + topic + "-" + rangeName(incarnation, partition, first, last) + ".ndjson"
}

// QuarantineKey is the key of the quarantine object for the records of the
// bronze range first..last that could not be cleaned, placed like its bronze
// object.
//
//	quarantine/events/dt=2026-11-24/hour=14/events-p03-000000001000-000000001999.ndjson
func QuarantineKey(topic string, incarnation int, partition int32, first, last int64, arrival time.Time) string {
	return QuarantinePrefix + hourPath(arrival) + topic + "-" + rangeName(incarnation, partition, first, last) + ".ndjson"
}

// GoldRefusedKey is the key of the quarantine object for the records of the
// bronze range first..last that were cleaned but that gold refused (a value
// PostgreSQL cannot store, a rule the warehouse added): an object apart from
// QuarantineKey's, which the same range may have too, so that no key is
// written twice with different bytes.
//
//	quarantine/events/dt=2026-11-24/hour=14/events-p03-000000001000-000000001999.gold-refused.ndjson
func GoldRefusedKey(topic string, incarnation int, partition int32, first, last int64, arrival time.Time) string {
	return QuarantinePrefix + hourPath(arrival) + topic + "-" + rangeName(incarnation, partition, first, last) + goldRefusedSuffix + ".ndjson"
}

const goldRefusedSuffix = ".gold-refused"

// SilverKey is the key of the silver Parquet file holding the cleaned rows of
// one partition's offsets first..last (of the topic's incarnation) whose
// event time (occurred_at) falls in hour. A stream cycle writes one per
// bronze range and event hour; hour compaction merges them into files named
// by the wider range they cover (MergedSilverKey).
//
//	silver/events/dt=2026-11-24/hour=14/p03-000000001000-000000001999.parquet
//	silver/events/dt=2026-11-24/hour=14/p03-000000001000-000000001999-i2.parquet
func SilverKey(hour time.Time, incarnation int, partition int32, first, last int64) string {
	return SilverPrefix + hourPath(hour) + rangeName(incarnation, partition, first, last) + ".parquet"
}

// MergedSilverKey is the key of a file written by hour compaction: the
// offset range it covers, the first 8 bytes of the SHA-256 of its bytes (sum)
// in hex, and its generation, one more than the highest generation among the
// files it merges (a stream cycle's or a rebuild's file is generation 0).
//
//	silver/events/dt=2026-11-24/hour=14/p03-000000000000-000000099999-5f1c0e9a2b7d4c13-g2.parquet
//	silver/events/dt=2026-11-24/hour=14/p03-000000000000-000000099999-i2-5f1c0e9a2b7d4c13-g2.parquet
//
// The key names the content, not the inputs or the attempt: two writes of
// one key are the same bytes, whatever raced. Neither the range nor the
// generation can promise that: a backfill rerun, a late file or a retried
// compaction may merge different files (or the same files encoded by a
// newer Parquet library) into another file of the same range and
// generation, and overwriting an object that the index has retired (or that
// a reader is reading) must never change what that key holds. Naming the
// inputs instead would hold only as long as every encoder since the first
// produced the very same bytes.
func MergedSilverKey(hour time.Time, incarnation int, partition int32, first, last int64, generation int, sum [sha256.Size]byte) string {
	return SilverPrefix + hourPath(hour) + rangeName(incarnation, partition, first, last) +
		"-" + hex.EncodeToString(sum[:sumBytes]) + fmt.Sprintf("-g%d", generation) + ".parquet"
}

// sumBytes is how much of the SHA-256 a merged key carries: 64 bits, so that
// two different files of one hour, partition, range and generation never
// meet (and the key stays short).
const sumBytes = 8

// RebuildSilverKey is the key of a silver file written by a backfill (a
// "rebuild" of a day): the offset range it covers and rebuild, a number
// (≥ 1) that no other rebuild of any day uses, so that a rerun of the same
// day never writes a key an earlier rebuild wrote, which compaction may have
// merged and deleted meanwhile.
//
//	silver/events/dt=2026-11-24/hour=14/p03-000000000000-000000099999-r42.parquet
//	silver/events/dt=2026-11-24/hour=14/p03-000000000000-000000099999-i2-r42.parquet
func RebuildSilverKey(hour time.Time, incarnation int, partition int32, first, last int64, rebuild int64) string {
	return SilverPrefix + hourPath(hour) + rangeName(incarnation, partition, first, last) + fmt.Sprintf("-r%d", rebuild) + ".parquet"
}

// CompactedSilverKey is the key form that hour compaction and backfills
// wrote before MergedSilverKey and RebuildSilverKey: the offset range and a
// generation only. Such keys exist in old lakes and ParseKey reads them.
//
//	silver/events/dt=2026-11-24/hour=14/p03-000000000000-000000099999-g1.parquet
//
// Deprecated: the key can be written twice with different bytes (a backfill
// rerun, two compactions of different files). Use MergedSilverKey for hour
// compaction and RebuildSilverKey for backfills.
func CompactedSilverKey(hour time.Time, partition int32, first, last int64, generation int) string {
	return SilverPrefix + hourPath(hour) + rangeName(1, partition, first, last) + fmt.Sprintf("-g%d", generation) + ".parquet"
}

// SilverHourPrefix is the prefix of every silver file of one event hour.
func SilverHourPrefix(hour time.Time) string { return SilverPrefix + hourPath(hour) }

// SilverDayPrefix is the prefix of every silver file of one UTC day.
func SilverDayPrefix(day time.Time) string {
	return SilverPrefix + "dt=" + day.UTC().Format(time.DateOnly) + "/"
}

// KeyInfo is what a lake key says about its object.
type KeyInfo struct {
	Layer string    // "bronze", "silver" or "quarantine"
	Hour  time.Time // arrival hour (bronze, quarantine) or event hour (silver), UTC
	Topic string    // bronze and quarantine only
	// Incarnation is the topic's incarnation the offsets belong to: 1 for a
	// key without "-iN".
	Incarnation int
	Partition   int32
	First       int64 // first offset, inclusive
	Last        int64 // last offset, inclusive
	// Generation is 0 for a stream cycle's or a rebuild's silver file,
	// N ≥ 1 for one written by hour compaction (or an old backfill: 1000).
	Generation int
	// Sum is the hex content sum of a file named by MergedSilverKey, ""
	// for every other key.
	Sum string
	// Rebuild is the rebuild number of a file named by RebuildSilverKey, 0
	// for every other key.
	Rebuild int64
	// GoldRefused marks a quarantine object of records gold refused
	// (GoldRefusedKey).
	GoldRefused bool
}

// ParseKey parses a key made by BronzeKey, QuarantineKey, SilverKey,
// MergedSilverKey, RebuildSilverKey or (old keys) CompactedSilverKey.
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
	if ki.Layer == "quarantine" && strings.HasSuffix(name, goldRefusedSuffix) {
		name, ki.GoldRefused = strings.TrimSuffix(name, goldRefusedSuffix), true
	}
	// [topic-]pNN-FIRST-LAST[-iN], then for silver one of -gN, -SUM-gN or
	// -rN; the topic itself may contain '-'.
	f := strings.Split(name, "-")
	if ki.Layer == "silver" {
		var ok bool
		if f, ok = ki.silverSuffix(f); !ok {
			return bad("bad generation, sum or rebuild")
		}
	}
	ki.Incarnation = 1
	if n := len(f); n > 0 && strings.HasPrefix(f[n-1], "i") {
		inc, err := strconv.Atoi(f[n-1][1:])
		if err != nil || inc < 2 {
			return bad("bad incarnation (-iN, N ≥ 2)")
		}
		ki.Incarnation, f = inc, f[:n-1]
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

// silverSuffix parses the end of a silver name split at '-': after
// pNN-FIRST-LAST and an optional -iN (which it keeps, for ParseKey), one of
// -gN, -SUM-gN or -rN, into ki. It returns the fields before that suffix;
// false when a suffix is there but malformed.
func (ki *KeyInfo) silverSuffix(f []string) ([]string, bool) {
	if len(f) < 3 {
		return f, true // ParseKey says what is missing
	}
	base, rest := f[:3], f[3:]
	if len(rest) > 0 && strings.HasPrefix(rest[0], "i") {
		base, rest = f[:4], f[4:]
	}
	gen := func(s string) (int, bool) {
		g, err := strconv.Atoi(strings.TrimPrefix(s, "g"))
		return g, strings.HasPrefix(s, "g") && err == nil && g >= 1
	}
	switch {
	case len(rest) == 0:
		return base, true
	case len(rest) == 1 && strings.HasPrefix(rest[0], "g"):
		g, ok := gen(rest[0])
		ki.Generation = g
		return base, ok
	case len(rest) == 1 && strings.HasPrefix(rest[0], "r"):
		r, err := strconv.ParseInt(rest[0][1:], 10, 64)
		ki.Rebuild = r
		return base, err == nil && r >= 1
	case len(rest) == 2:
		g, ok := gen(rest[1])
		_, err := hex.DecodeString(rest[0])
		if !ok || err != nil || len(rest[0]) != 2*sumBytes || strings.ToLower(rest[0]) != rest[0] {
			return f, false
		}
		ki.Generation, ki.Sum = g, rest[0]
		return base, true
	}
	return f, true // an unknown suffix: ParseKey refuses the extra fields
}
