package warehouse

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/acme/pipeline/event"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
)

// The tests run against a real PostgreSQL: DATABASE_URL's server, else
// postgres@127.0.0.1:5432. Each run creates its own databases with random
// names and drops them at the end. An unreachable server fails the run.
const defaultServerURL = "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable"

var (
	serverURL string // any database of the server, for admin connections
	testURL   string // the run's migrated database
	store     *Store // open on testURL
)

func TestMain(m *testing.M) { os.Exit(runTests(m)) }

func runTests(m *testing.M) int {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	serverURL = os.Getenv("DATABASE_URL")
	if serverURL == "" {
		serverURL = defaultServerURL
	}
	var drop func()
	var err error
	testURL, drop, err = newDatabase(ctx, "wh_test")
	if err != nil {
		fmt.Fprintf(os.Stderr, "FAIL: the warehouse tests need PostgreSQL (DATABASE_URL or %s): %v\n", defaultServerURL, err)
		return 1
	}
	defer drop()
	store, err = Open(ctx, Config{URL: testURL})
	if err != nil {
		fmt.Fprintf(os.Stderr, "FAIL: %v\n", err)
		return 1
	}
	defer store.Close()
	if err := store.Migrate(ctx); err != nil {
		fmt.Fprintf(os.Stderr, "FAIL: migrate: %v\n", err)
		return 1
	}
	return m.Run()
}

// newDatabase creates an empty database with a random name on the test server
// (through EnsureDatabase) and returns its URL and a function dropping it.
func newDatabase(ctx context.Context, prefix string) (string, func(), error) {
	u, err := url.Parse(serverURL)
	if err != nil || u.Scheme == "" {
		return "", nil, fmt.Errorf("DATABASE_URL must be a postgres:// URL: %q", serverURL)
	}
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	name := prefix + "_" + hex.EncodeToString(b)
	u.Path = "/" + name
	dbURL := u.String()
	if err := EnsureDatabase(ctx, dbURL); err != nil {
		return "", nil, err
	}
	drop := func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		conn, err := pgx.Connect(ctx, serverURL)
		if err != nil {
			fmt.Fprintf(os.Stderr, "drop database %s: %v\n", name, err)
			return
		}
		defer conn.Close(ctx)
		if _, err := conn.Exec(ctx, "DROP DATABASE IF EXISTS "+pgx.Identifier{name}.Sanitize()+" WITH (FORCE)"); err != nil {
			fmt.Fprintf(os.Stderr, "drop database %s: %v\n", name, err)
		}
	}
	return dbURL, drop, nil
}

// urlAs returns dbURL with another user name.
func urlAs(t *testing.T, dbURL, user string) string {
	t.Helper()
	u, err := url.Parse(dbURL)
	if err != nil {
		t.Fatal(err)
	}
	u.User = url.User(user)
	return u.String()
}

// reset empties every table the tests write to.
func reset(t *testing.T) {
	t.Helper()
	_, err := store.Pool().Exec(context.Background(), `TRUNCATE gold.events, gold.payments, gold.audit_log,
		gold.daily_product_metrics, gold.daily_revenue, gold.daily_audit_summary,
		pipeline.loads, pipeline.stream_offsets`)
	if err != nil {
		t.Fatal(err)
	}
}

// query returns the rows of sql, each row's columns joined by " | ", NULL as ∅.
func query(t *testing.T, sql string, args ...any) []string {
	t.Helper()
	rows, err := store.Pool().Query(context.Background(), sql, args...)
	if err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		vals, err := rows.Values()
		if err != nil {
			t.Fatal(err)
		}
		parts := make([]string, len(vals))
		for i, v := range vals {
			switch v := v.(type) {
			case nil:
				parts[i] = "∅"
			case [16]byte:
				parts[i] = uuid.UUID(v).String()
			default:
				parts[i] = fmt.Sprint(v)
			}
		}
		out = append(out, strings.Join(parts, " | "))
	}
	if err := rows.Err(); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
	return out
}

func count(t *testing.T, sql string, args ...any) int64 {
	t.Helper()
	var n int64
	if err := store.Pool().QueryRow(context.Background(), sql, args...).Scan(&n); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
	return n
}

// dumpSQL lists the content of the three fact tables as text, without the load
// metadata (load_id, loaded_at), in a stable order.
var dumpSQL = map[string]string{
	"events": `SELECT event_id::text, event_type, occurred_at::text, received_at::text, source, user_id,
		properties::text, kafka_partition, kafka_offset FROM gold.events ORDER BY event_id`,
	"payments": `SELECT event_id::text, event_type, occurred_at::text, received_at::text, source, user_id,
		amount::text, currency::text, is_refund FROM gold.payments ORDER BY event_id`,
	"audit_log": `SELECT event_id::text, occurred_at::text, event_type, actor, action, outcome, user_id, source,
		properties::text, received_at::text FROM gold.audit_log ORDER BY event_id`,
}

func dump(t *testing.T) map[string][]string {
	t.Helper()
	out := map[string][]string{}
	for name, sql := range dumpSQL {
		out[name] = query(t, sql)
	}
	return out
}

// Fixture builders. Event ids are readable: id(7) is 00000000-0000-7000-8000-000000000007.

func id(n int) [16]byte {
	return uuid.MustParse(fmt.Sprintf("00000000-0000-7000-8000-%012d", n))
}

func micros(t string) int64 {
	v, err := time.Parse(time.RFC3339Nano, t)
	if err != nil {
		panic(err)
	}
	return v.UnixMicro()
}

func ev(n int, typ, occurred, user, props string) event.Row {
	if props == "" {
		props = "{}"
	}
	return event.Row{
		EventID: id(n), Type: typ, OccurredAt: micros(occurred), ReceivedAt: micros(occurred) + 1_000_000,
		Source: "web", UserID: user, Properties: props, Partition: int32(n % 3), Offset: int64(n),
	}
}

func pay(n int, typ, occurred, user, amount, currency string) event.Row {
	r := ev(n, typ, occurred, user, obj("amount", amount, "currency", currency))
	m, err := event.ParseMicros(amount)
	if err != nil {
		panic(err)
	}
	r.AmountMicros, r.Currency, r.Source = m, currency, "billing"
	return r
}

func audit(n int, typ, occurred, actor, action, outcome string) event.Row {
	props := obj("actor", actor, "action", action)
	if outcome != "" {
		props = obj("actor", actor, "action", action, "outcome", outcome)
	}
	r := ev(n, typ, occurred, "", props)
	r.Actor, r.Action, r.Outcome, r.Source = actor, action, outcome, "admin"
	return r
}

// obj returns the JSON object of the key, value pairs kv.
func obj(kv ...string) string {
	m := map[string]string{}
	for i := 0; i < len(kv); i += 2 {
		m[kv[i]] = kv[i+1]
	}
	b, err := json.Marshal(m)
	if err != nil {
		panic(err)
	}
	return string(b)
}
