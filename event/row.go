package event

import (
	"fmt"
	"math/big"
	"strings"

	"github.com/google/uuid"
)

// Row is a cleaned, typed event: one row of a silver Parquet file and the source
// of the gold tables. Payment and audit columns are empty for other types.
//
// Amounts are fixed-point micro-units (six decimals, the Parquet type
// DECIMAL(18,6)): exact, and fast to encode, unlike a float or a string.
type Row struct {
	EventID    [16]byte `parquet:"event_id,uuid"`
	Type       string   `parquet:"type,dict"`
	OccurredAt int64    `parquet:"occurred_at,timestamp(microsecond)"` // µs since the Unix epoch, UTC
	ReceivedAt int64    `parquet:"received_at,timestamp(microsecond)"` // µs since the Unix epoch, UTC
	Source     string   `parquet:"source,dict"`
	UserID     string   `parquet:"user_id"`
	Properties string   `parquet:"properties,json"` // compact JSON object, "{}" when absent

	AmountMicros int64  `parquet:"amount,decimal(6:18)"` // payments only
	Currency     string `parquet:"currency,dict"`        // payments only
	Actor        string `parquet:"actor"`                // audit only
	Action       string `parquet:"action,dict"`          // audit only
	Outcome      string `parquet:"outcome,dict"`         // audit only; "success" when absent

	// Lineage: where the record was read from.
	Partition int32 `parquet:"kafka_partition"`
	Offset    int64 `parquet:"kafka_offset"`
	// Incarnation is the topic incarnation the record was read from (a
	// topic deleted and created again numbers its offsets from 0 again);
	// 0 means the first. Not a silver column: a silver file holds one
	// incarnation, named by its key and in pipeline.silver_objects, so files
	// written before incarnations existed keep their schema.
	Incarnation int32 `parquet:"-"`
}

// ToRow converts a validated event into its silver row.
func (e Event) ToRow(partition int32, offset int64) (Row, error) {
	id, err := uuid.Parse(e.EventID)
	if err != nil {
		return Row{}, fmt.Errorf("event_id %q: %w", e.EventID, err)
	}
	r := Row{
		EventID:    id,
		Type:       e.Type,
		OccurredAt: e.OccurredAt.UnixMicro(),
		ReceivedAt: e.ReceivedAt.UnixMicro(),
		Source:     e.Source,
		UserID:     e.UserID,
		Properties: string(e.Properties),
		Partition:  partition,
		Offset:     offset,
	}
	if r.Properties == "" {
		r.Properties = "{}"
	}
	switch {
	case e.IsPayment():
		m, err := ParseMicros(e.Amount())
		if err != nil {
			return Row{}, fmt.Errorf("properties.amount: %w", err)
		}
		r.AmountMicros = m
		r.Currency = e.Prop("currency")
	case e.IsAudit():
		r.Actor = e.Prop("actor")
		r.Action = e.Prop("action")
		r.Outcome = e.Prop("outcome")
		if r.Outcome == "" {
			r.Outcome = "success"
		}
	}
	return r, nil
}

// ParseMicros parses a non-negative decimal with at most six fractional digits
// into micro-units: "12.5" → 12500000.
func ParseMicros(s string) (int64, error) {
	if !decimalRe.MatchString(s) {
		return 0, fmt.Errorf("%q is not a decimal with at most 12 integer and 6 fractional digits", s)
	}
	intPart, frac, _ := strings.Cut(s, ".")
	frac += strings.Repeat("0", 6-len(frac))
	v, ok := new(big.Int).SetString(intPart+frac, 10)
	if !ok || !v.IsInt64() {
		return 0, fmt.Errorf("%q is out of range", s)
	}
	return v.Int64(), nil
}

// FormatMicros is the inverse of ParseMicros, always with six decimals.
func FormatMicros(m int64) string {
	sign := ""
	if m < 0 {
		sign, m = "-", -m
	}
	return fmt.Sprintf("%s%d.%06d", sign, m/1_000_000, m%1_000_000)
}
