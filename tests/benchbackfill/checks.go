package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
)

// verify checks the day's gold facts and marts against the generator.
func (b *bench) verify(ctx context.Context, what string) error {
	start, end := b.day.Bounds(time.UTC)
	for table, want := range map[string]int64{"gold.events": b.tl.distinct, "gold.payments": b.tl.payments, "gold.audit_log": b.tl.audit} {
		var n int64
		if err := b.store.Pool().QueryRow(ctx, "SELECT count(*) FROM "+table+" WHERE occurred_at >= $1 AND occurred_at < $2", start, end).Scan(&n); err != nil {
			return err
		}
		if n != want {
			return fmt.Errorf("%s: %s has %d rows of the day, want %d", what, table, n, want)
		}
	}
	var events, payments, audit int64
	err := b.store.Pool().QueryRow(ctx, `SELECT (SELECT coalesce(sum(events),0) FROM gold.daily_product_metrics WHERE day = $1::date),
		(SELECT coalesce(sum(payments),0) FROM gold.daily_revenue WHERE day = $1::date),
		(SELECT coalesce(sum(events),0) FROM gold.daily_audit_summary WHERE day = $1::date)`, b.day.String()).Scan(&events, &payments, &audit)
	if err != nil {
		return err
	}
	if events != b.tl.distinct || payments != b.tl.captured || audit != b.tl.audit {
		return fmt.Errorf("%s: marts total %d events, %d payments, %d audit events; want %d, %d, %d",
			what, events, payments, audit, b.tl.distinct, b.tl.captured, b.tl.audit)
	}
	return nil
}

// peakRSS reads VmHWM (KiB) of a process from /proc.
func peakRSS(pid int) (int64, error) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(data), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == "VmHWM:" {
			return strconv.ParseInt(f[1], 10, 64)
		}
	}
	return 0, errors.New("no VmHWM in /proc status")
}

func dropDatabase(name string) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable")
	if err != nil {
		return
	}
	defer conn.Close(ctx)
	_, _ = conn.Exec(ctx, "DROP DATABASE IF EXISTS "+pgx.Identifier{name}.Sanitize()+" WITH (FORCE)")
}
