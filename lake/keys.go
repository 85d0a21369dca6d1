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

// KeyInfo is what a lake key says about its object.
type KeyInfo struct {
	Layer string    // "bronze" or "quarantine"
	Hour  time.Time // arrival hour, UTC
	Topic string
	// Incarnation is the topic's incarnation the offsets belong to: 1 for a
	// key without "-iN".
	Incarnation int
	Partition   int32
	First       int64 // first offset, inclusive
	Last        int64 // last offset, inclusive
	// GoldRefused marks a quarantine object of records gold refused
	// (GoldRefusedKey).
	GoldRefused bool
}

// ParseKey parses a key made by BronzeKey, QuarantineKey or GoldRefusedKey.
// (Silver is the Iceberg table silver.events, whose files the table's
// metadata names.)
func ParseKey(key string) (KeyInfo, error) {
	var ki KeyInfo
	var rest string
	switch {
	case strings.HasPrefix(key, BronzePrefix):
		ki.Layer, rest = "bronze", key[len(BronzePrefix):]
	case strings.HasPrefix(key, QuarantinePrefix):
		ki.Layer, rest = "quarantine", key[len(QuarantinePrefix):]
	default:
		return ki, fmt.Errorf("lake key %q: not under %s or %s", key, BronzePrefix, QuarantinePrefix)
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
	if !strings.HasSuffix(name, ".ndjson") {
		return bad("want a .ndjson name")
	}
	name = strings.TrimSuffix(name, ".ndjson")
	if ki.Layer == "quarantine" && strings.HasSuffix(name, goldRefusedSuffix) {
		name, ki.GoldRefused = strings.TrimSuffix(name, goldRefusedSuffix), true
	}
	// topic-pNN-FIRST-LAST[-iN]; the topic itself may contain '-'.
	f := strings.Split(name, "-")
	ki.Incarnation = 1
	if n := len(f); n > 0 && strings.HasPrefix(f[n-1], "i") {
		inc, err := strconv.Atoi(f[n-1][1:])
		if err != nil || inc < 2 {
			return bad("bad incarnation (-iN, N ≥ 2)")
		}
		ki.Incarnation, f = inc, f[:n-1]
	}
	if len(f) < 4 {
		return bad("want topic-pNN-FIRST-LAST")
	}
	pn, first, last := f[len(f)-3], f[len(f)-2], f[len(f)-1]
	ki.Topic = strings.Join(f[:len(f)-3], "-")
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
