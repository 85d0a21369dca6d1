package streamtest

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"strconv"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/segmentio/kafka-go"

	"github.com/acme/pipeline/event"
)

// Msg is a record to produce to one partition.
type Msg struct {
	Partition int
	Key       []byte
	Value     []byte
}

// Expect is what gold and quarantine must hold after a Mix is processed.
type Expect struct {
	Distinct   int              // distinct valid events
	Payments   int              // of which payment.*
	Audit      int              // of which audit.*
	Poison     int              // records that must be quarantined
	Duplicates int              // client retries (same event_id again)
	Net        map[string]int64 // currency → net amount in micros (refunds negative)
}

// Add merges another expectation (of disjoint events).
func (e *Expect) Add(o Expect) {
	e.Distinct += o.Distinct
	e.Payments += o.Payments
	e.Audit += o.Audit
	e.Poison += o.Poison
	e.Duplicates += o.Duplicates
	if e.Net == nil {
		e.Net = map[string]int64{}
	}
	for k, v := range o.Net {
		e.Net[k] += v
	}
}

// Mix generates a realistic stream of n events in the hour starting at hour:
// 70% page views, 15% payments in EUR, USD and JPY (a tenth of them refunds),
// 15% audit events; 5% client retries (the same record again, same
// partition) and about 1% poison records from other producers (bad JSON, not
// UTF-8, missing fields, bad amount, bad type, empty value). Events are
// partitioned by user as the API does (here by a hash modulo partitions).
func Mix(n, partitions int, hour time.Time, seed uint64) ([]Msg, Expect) {
	r := rand.New(rand.NewPCG(seed, 1))
	ex := Expect{Net: map[string]int64{}}
	var out, sent []Msg
	currencies := []string{"EUR", "USD", "JPY"}
	for i := 0; i < n; i++ {
		user := fmt.Sprintf("u-%d", r.IntN(500))
		p := int(fnv(user) % uint32(partitions))
		occurred := hour.Add(time.Duration(r.Int64N(int64(time.Hour))))
		ev := event.Event{
			EventID:    uuid.Must(uuid.NewV7()).String(),
			OccurredAt: occurred, ReceivedAt: occurred.Add(time.Second),
			Source: "web", UserID: user,
		}
		switch k := r.IntN(100); {
		case k < 70:
			ev.Type = "page_view"
			ev.Properties = json.RawMessage(fmt.Sprintf(`{"path":"/p/%d"}`, r.IntN(50)))
		case k < 85:
			cur := currencies[r.IntN(3)]
			micros := int64(r.IntN(100000)) * 10_000
			ev.Type = "payment.succeeded"
			if r.IntN(10) == 0 {
				ev.Type = "payment.refunded"
				ex.Net[cur] -= micros
			} else {
				ex.Net[cur] += micros
			}
			ev.Properties = json.RawMessage(fmt.Sprintf(`{"amount":"%s","currency":"%s"}`, event.FormatMicros(micros), cur))
			ex.Payments++
		default:
			ev.Type = "audit.login"
			ev.Properties = json.RawMessage(fmt.Sprintf(`{"actor":"%s","action":"login","outcome":"success"}`, user))
			ex.Audit++
		}
		b, err := ev.Marshal()
		if err != nil {
			panic(err)
		}
		m := Msg{Partition: p, Key: []byte(user), Value: b}
		out = append(out, m)
		sent = append(sent, m)
		ex.Distinct++
		if r.IntN(20) == 0 {
			out = append(out, sent[r.IntN(len(sent))])
			ex.Duplicates++
		}
		if r.IntN(100) == 0 {
			out = append(out, Msg{Partition: p, Value: Poison(r.IntN(6), occurred)})
			ex.Poison++
		}
	}
	return out, ex
}

// Poison returns a record value the stream must quarantine (kind 0..5).
func Poison(kind int, at time.Time) []byte {
	ts := at.Format(time.RFC3339)
	switch kind {
	case 0:
		return []byte(`not json at all`)
	case 1:
		return []byte(`{"type":"page_view","occurred_at":"` + ts + `"}`) // no event_id, no received_at
	case 2:
		return []byte{0xff, 0xfe, '{', '}'}
	case 3:
		return []byte(`{"event_id":"` + uuid.NewString() + `","type":"payment.succeeded","occurred_at":"` + ts +
			`","received_at":"` + ts + `","properties":{"amount":"lots","currency":"EUR"}}`)
	case 4:
		return []byte(`{"event_id":"` + uuid.NewString() + `","type":"Bad Type!","occurred_at":"` + ts + `","received_at":"` + ts + `"}`)
	default:
		return []byte{}
	}
}

func fnv(s string) uint32 {
	var h uint32 = 2166136261
	for i := 0; i < len(s); i++ {
		h ^= uint32(s[i])
		h *= 16777619
	}
	return h
}

// Produce writes msgs to topic, each to its partition, acks=all.
func Produce(t testing.TB, brokers []string, topic string, msgs []Msg) {
	t.Helper()
	w := &kafka.Writer{Addr: kafka.TCP(brokers...), Topic: topic, BatchSize: 1000, BatchTimeout: 5 * time.Millisecond,
		RequiredAcks: kafka.RequireAll,
		Balancer: kafka.BalancerFunc(func(m kafka.Message, _ ...int) int {
			p, _ := strconv.Atoi(string(m.Headers[0].Value))
			return p
		})}
	defer w.Close()
	kms := make([]kafka.Message, len(msgs))
	for i, m := range msgs {
		kms[i] = kafka.Message{Key: m.Key, Value: m.Value, Headers: []kafka.Header{{Key: "p", Value: []byte(strconv.Itoa(m.Partition))}}}
	}
	if err := w.WriteMessages(context.Background(), kms...); err != nil {
		t.Fatal(err)
	}
}

// CheckGold compares gold and pipeline.quarantine with ex: exact counts, no
// duplicate event_id, exact net amounts per currency.
func CheckGold(t testing.TB, pool *pgxpool.Pool, ex Expect) {
	t.Helper()
	count := func(sql string, args ...any) int64 {
		t.Helper()
		var n int64
		if err := pool.QueryRow(context.Background(), sql, args...).Scan(&n); err != nil {
			t.Fatalf("%s: %v", sql, err)
		}
		return n
	}
	if got := count(`SELECT count(*) FROM gold.events`); got != int64(ex.Distinct) {
		t.Errorf("gold.events has %d rows, want %d distinct events", got, ex.Distinct)
	}
	if got := count(`SELECT count(DISTINCT event_id) FROM gold.events`); got != int64(ex.Distinct) {
		t.Errorf("gold.events has %d distinct ids, want %d", got, ex.Distinct)
	}
	if got := count(`SELECT count(*) FROM gold.payments`); got != int64(ex.Payments) {
		t.Errorf("gold.payments has %d rows, want %d", got, ex.Payments)
	}
	if got := count(`SELECT count(*) FROM gold.audit_log`); got != int64(ex.Audit) {
		t.Errorf("gold.audit_log has %d rows, want %d", got, ex.Audit)
	}
	for cur, want := range ex.Net {
		got := count(`SELECT coalesce(sum(CASE WHEN is_refund THEN -amount ELSE amount END) * 1000000, 0)::bigint
			FROM gold.payments WHERE currency = $1`, cur)
		if got != want {
			t.Errorf("net %s = %s, want %s", cur, event.FormatMicros(got), event.FormatMicros(want))
		}
	}
	if got := count(`SELECT count(*) FROM pipeline.quarantine`); got != int64(ex.Poison) {
		t.Errorf("pipeline.quarantine has %d rows, want %d poison records", got, ex.Poison)
	}
}
