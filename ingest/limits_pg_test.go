package ingest_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/acme/pipeline/event"
	"github.com/acme/pipeline/internal/streamtest"
	"github.com/acme/pipeline/lake"
	"github.com/acme/pipeline/warehouse"
)

// TestLimitsFitPostgreSQL proves event.Decode's limits against a real
// PostgreSQL: every value the API accepts at a limit goes through the API and
// the topic and loads into gold by the stream's own path (event.Decode of the
// record, then warehouse.LoadLive) unchanged; every value PostgreSQL refuses
// is refused by Decode too; and the refusals themselves can be stored in
// pipeline.quarantine, where the stream puts them.
func TestLimitsFitPostgreSQL(t *testing.T) {
	st, _ := streamtest.Database(t)
	ctx := context.Background()
	pool := st.Pool()
	_, brokers := startBroker(t)
	_, base := startAPI(t, brokers, nil)

	// At the limits, accepted: each must load and read back equal.
	atLimits := []struct{ name, props, fields string }{
		{"64 deep", nested(64), ""},
		{"64 deep in objects", nestedObjects(64), ""},
		{"64 deep mixed", `{"a":` + strings.Repeat(`[{"b":`, 31) + `[]` + strings.Repeat(`}]`, 31) + `}`, ""},
		{"largest numbers", `{"a":` + strings.Repeat("9", 309) + `,"b":-` + strings.Repeat("9", 309) + `,"c":1.7976931348623157e308,"d":9.99e308,"e":0.000001e314}`, ""},
		{"smallest numbers", `{"a":4.9406564584124654e-324,"b":0.` + strings.Repeat("0", 339) + `1,"c":1e-340,"d":-1.5e-339,"e":0e-340}`, ""},
		{"longest number", `{"a":-` + strings.Repeat("9", 309) + "." + strings.Repeat("9", 340) + `}`, ""},
		{"exponent at the limit", `{"a":0e1000,"b":0.` + strings.Repeat("0", 700) + `1e1000,"c":1e-0000000000000000340}`, ""},
		{"many of the longest numbers", `{"a":[` + strings.TrimSuffix(strings.Repeat("1e308,", 10000), ",") + `]}`, ""},
		{"long strings", fmt.Sprintf(`{"%s":"%s","b":"\ud83d\ude00 \uffff \u0001 \\u0000 \" \u2028"}`, strings.Repeat("k", 64<<10), strings.Repeat("é", 400<<10)), ""},
		{"odd keys", `{"":1,"a.b":2,"[0]":3,"\"":4,"\u00e9":5,"\ud83d\ude00":{"\\u0000":6}}`, ""},
		{"text fields at their limits", `{}`, `"source":"` + strings.Repeat("\u00e9", 127) + `\u0001","user_id":"` + strings.Repeat("u", 255) + `\ud83d\ude00"`},
	}
	sent := map[string]int{} // event_id: case
	for i, c := range atLimits {
		extra := `"properties":` + c.props
		if c.fields != "" {
			extra += "," + c.fields
		}
		typ := "limits.case_" + strings.Repeat("x", 128-len("limits.case_"))
		r := post(t, base, []byte(ev(typ, extra)), nil)
		if r.status != 202 || len(r.EventIDs) != 1 {
			t.Fatalf("%s: status %d: %.300s", c.name, r.status, r.raw)
		}
		sent[r.EventIDs[0]] = i
	}
	// The stream's view: the records on the topic, cleaned by Decode.
	var rows []event.Row
	for _, rec := range readTopic(t, brokers, testTopic) {
		e, errs := event.Decode(rec.value, event.Options{})
		if errs != nil {
			t.Fatalf("the stream would quarantine an accepted event: %.300v", errs)
		}
		row, err := e.ToRow(int32(rec.partition), rec.offset)
		if err != nil {
			t.Fatal(err)
		}
		rows = append(rows, row)
	}
	res, err := st.LoadLive(ctx, warehouse.LoadInput{Rows: rows})
	if err != nil {
		t.Fatalf("gold refused values within the limits: %v", err)
	}
	if res.Inserted != int64(len(atLimits)) {
		t.Fatalf("%d of %d events inserted", res.Inserted, len(atLimits))
	}
	for _, row := range rows {
		c := atLimits[sent[uuid.UUID(row.EventID).String()]]
		var same bool
		var typ, source, user string
		var n int
		err := pool.QueryRow(ctx, `SELECT properties = $2::jsonb, event_type, COALESCE(source, ''), COALESCE(user_id, ''), octet_length(properties::text)
			FROM gold.events WHERE event_id = $1`, uuid.UUID(row.EventID), c.props).Scan(&same, &typ, &source, &user, &n)
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		if !same || typ != row.Type || source != row.Source || user != row.UserID {
			t.Errorf("%s: gold holds something else than was sent", c.name)
		}
		t.Logf("%s: %d bytes of properties sent, %d bytes as PostgreSQL prints them", c.name, len(c.props), n)
	}

	// PostgreSQL refuses these; Decode must refuse them before they reach
	// the topic or gold. code is the SQLSTATE PostgreSQL answers with.
	refused := []struct{ name, props, code string }{
		{"1e999999", `{"x":1e999999}`, "22003"},               // value overflows numeric format
		{"-1e-999999", `{"x":-1e-999999}`, "22003"},           // value overflows numeric format
		{"1e131072", `{"x":1e131072}`, "22003"},               // one digit more than numeric holds
		{"0e-16384", `{"x":0e-16384}`, "22003"},               // one scale digit more
		{"0e1073741823", `{"x":0e1073741823}`, "22003"},       // exponent >= INT_MAX/2
		{"NUL", `{"x":"\u0000"}`, "22P05"},                    // unsupported Unicode escape sequence
		{"NUL in a key", `{"a":{"\u0000":1}}`, "22P05"},       // unsupported Unicode escape sequence
		{"lone high surrogate", `{"x":"\ud800"}`, "22P02"},    // Unicode low surrogate must follow a high surrogate
		{"lone low surrogate", `{"x":"\udc00"}`, "22P02"},     // Unicode low surrogate must follow a high surrogate
		{"surrogate in a key", `{"\ud800\ud800":1}`, "22P02"}, // Unicode high surrogate must not follow a high surrogate
		// stack depth limit exceeded, with max_stack_depth 2MB at 13,092
		// objects or 14,546 arrays here (a few levels fewer as a literal
		// in psql); Decode stops at 10,000 anyway, as encoding/json does.
		{"20,000 arrays deep", nested(20000), "54001"},
		{"20,000 objects deep", nestedObjects(20000), "54001"},
	}
	// Beyond a limit, refused by Decode, though PostgreSQL would take them
	// (printing back far more than was sent, for the numbers).
	beyond := []string{`{"x":1e309}`, `{"x":1e-341}`, `{"x":0e1001}`, `{"x":9.9e131071}`, `{"x":0e-16383}`, nested(65), nested(13089)}

	var quarantined []warehouse.QuarantineEntry
	nulKey := -1 // the offset of the NUL key's record
	for _, c := range refused {
		if c.name == "NUL in a key" {
			nulKey = len(quarantined)
		}
		_, err := pool.Exec(ctx, `SELECT $1::text::jsonb`, c.props)
		var pgErr *pgconn.PgError
		if !errors.As(err, &pgErr) || pgErr.Code != c.code {
			t.Errorf("%s: PostgreSQL answered %v, want SQLSTATE %s", c.name, err, c.code)
		}
		quarantined = append(quarantined, mustRefuse(t, c.name, c.props, len(quarantined)))
	}
	for _, p := range beyond {
		var n int
		if err := pool.QueryRow(ctx, `SELECT length($1::text::jsonb::text)`, p).Scan(&n); err != nil {
			t.Errorf("%.40s: PostgreSQL refused what a limit was meant to refuse early: %v", p, err)
		}
		t.Logf("beyond a limit, PostgreSQL would store %.40s, printed back as %d characters", p, n)
		quarantined = append(quarantined, mustRefuse(t, fmt.Sprintf("%.40s", p), p, len(quarantined)))
	}
	// A NUL is refused by text columns too.
	if _, err := pool.Exec(ctx, `SELECT $1::text`, "web\x00"); err == nil {
		t.Error("PostgreSQL took a NUL in text")
	}
	for i, f := range []string{`"source":"web\u0000"`, `"user_id":"\ud800"`, `"\u0000":1`} {
		if _, errs := event.Decode([]byte(topicRecord(100+i, f)), event.Options{}); errs == nil {
			t.Errorf("%s accepted", f)
		} else {
			quarantined = append(quarantined, quarantineEntry(len(quarantined), errs))
		}
	}

	// The reasons are what the stream records for such a record; they must
	// be storable themselves (a NUL in a field name was not).
	if err := st.RecordQuarantine(ctx, quarantined); err != nil {
		t.Fatalf("the quarantine table refused the reasons: %v", err)
	}
	var n int
	if err := pool.QueryRow(ctx, `SELECT count(*) FROM pipeline.quarantine`).Scan(&n); err != nil || n != len(quarantined) {
		t.Errorf("%d quarantine rows, want %d: %v", n, len(quarantined), err)
	}
	var field string
	if err := pool.QueryRow(ctx, `SELECT errors->0->>'field' FROM pipeline.quarantine WHERE record_offset = $1`, nulKey).Scan(&field); err != nil || field != `properties.a["\u0000"]` {
		t.Errorf("the NUL key's field is stored as %q, want it spelled as an escape: %v", field, err)
	}
}

// topicRecord is a record another producer might write to the topic: with
// event_id and received_at.
func topicRecord(i int, fields string) string {
	id := fmt.Sprintf("0193a0b4-6b7e-7c3a-9f1e-%012d", i+1)
	return ev("page_view", `"event_id":"`+id+`","received_at":"2026-11-24T14:05:10Z",`+fields)
}

// nested returns properties nesting depth containers, counting properties
// itself: {"a":[[...]]} with depth-1 arrays.
func nested(depth int) string {
	return `{"a":` + strings.Repeat("[", depth-1) + strings.Repeat("]", depth-1) + `}`
}

// nestedObjects is nested with objects: {"a":{"a":...{}}}.
func nestedObjects(depth int) string {
	return strings.Repeat(`{"a":`, depth-1) + `{}` + strings.Repeat("}", depth-1)
}

// mustRefuse decodes an event with props, which must be refused, and returns
// the quarantine entry the stream would record for it.
func mustRefuse(t *testing.T, name, props string, offset int) warehouse.QuarantineEntry {
	t.Helper()
	_, errs := event.Decode([]byte(topicRecord(offset, `"properties":`+props)), event.Options{})
	if errs == nil {
		t.Errorf("%s: accepted", name)
	}
	return quarantineEntry(offset, errs)
}

func quarantineEntry(offset int, errs event.Errors) warehouse.QuarantineEntry {
	problems := make([]lake.FieldProblem, len(errs))
	for i, e := range errs {
		problems[i] = lake.FieldProblem{Field: e.Field, Message: e.Message}
	}
	return warehouse.QuarantineEntry{Topic: "events", Partition: 0, Offset: int64(offset), Key: "quarantine/test",
		Reason: errs.Error(), Errors: problems, Timestamp: time.Date(2026, 11, 24, 14, 5, 10, 0, time.UTC)}
}
