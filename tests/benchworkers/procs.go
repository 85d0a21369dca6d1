package main

import (
	"context"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/acme/pipeline/tests/benchutil"
)

// processGroups names the processes of a run: the cluster's (pids, by
// name: infra, api, worker-N), the servers `pipeline dev --infra` started
// (Temporal, versitygw; kfake runs inside it), PostgreSQL's backends and
// this benchmark (the sender and the gold poller).
func processGroups(pids map[int]string) []benchutil.Group {
	named := func(want func(string) bool) func(benchutil.Proc, map[int]benchutil.Proc) bool {
		return func(p benchutil.Proc, all map[int]benchutil.Proc) bool {
			for pid, name := range pids {
				if want(name) && benchutil.Descends(p, all, pid) {
					return true
				}
			}
			return false
		}
	}
	comm := func(c string) func(benchutil.Proc, map[int]benchutil.Proc) bool {
		return func(p benchutil.Proc, _ map[int]benchutil.Proc) bool { return p.Comm == c }
	}
	self := os.Getpid()
	return []benchutil.Group{
		{Name: "pipeline api", Match: named(func(n string) bool { return n == "api" })},
		{Name: "pipeline worker(s)", Match: named(func(n string) bool { return strings.HasPrefix(n, "worker") })},
		{Name: "Temporal dev server", Match: comm("temporal")},
		{Name: "versitygw (S3)", Match: comm("versitygw")},
		{Name: "pipeline dev --infra (kfake broker)", Match: named(func(n string) bool { return n == "infra" })},
		{Name: "PostgreSQL", Match: comm("postgres")},
		{Name: "this benchmark (sender, gold poller)", Match: func(p benchutil.Proc, _ map[int]benchutil.Proc) bool { return p.PID == self }},
	}
}

// dropDatabase drops the run's database (u's path) through the server's
// postgres database.
func dropDatabase(u *url.URL) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	name := strings.TrimPrefix(u.Path, "/")
	admin := *u
	admin.Path = "/postgres"
	conn, err := pgx.Connect(ctx, admin.String())
	if err != nil {
		return
	}
	defer conn.Close(ctx)
	_, _ = conn.Exec(ctx, "DROP DATABASE IF EXISTS "+pgx.Identifier{name}.Sanitize()+" WITH (FORCE)")
}
