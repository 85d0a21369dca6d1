package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"time"

	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"

	"github.com/acme/pipeline/activities"
	"github.com/acme/pipeline/internal/config"
	"github.com/acme/pipeline/lake"
	"github.com/acme/pipeline/warehouse"
	"github.com/acme/pipeline/workflows"
)

func runBackfill(ctx context.Context, args []string) error {
	var cfg config.Config
	fs := newFlagSet("backfill", "--from DATE --to DATE [--layers silver,gold,marts] [--dry-run]")
	cfg.Register(fs)
	from := fs.String("from", "", "first day, YYYY-MM-DD, by event time in UTC (required)")
	to := fs.String("to", "", "last day, YYYY-MM-DD, inclusive (required)")
	layers := fs.String("layers", "silver,gold,marts", "layers to rebuild, comma-separated")
	dry := fs.Bool("dry-run", false, "report the days, bronze objects and rows that would be rebuilt; change nothing")
	maxDays := fs.Int("max-days", workflows.DefaultBackfillMaxDays, "refuse a longer range")
	conc := fs.Int("concurrency", workflows.DefaultBackfillConcurrency, "days rebuilt at once")
	detach := fs.Bool("detach", false, "print the workflow id and return without waiting")
	if err := parse(fs, args); err != nil {
		return err
	}
	in := workflows.BackfillInput{From: *from, To: *to, DryRun: *dry, MaxDays: *maxDays, Concurrency: *conc, Topic: cfg.Topic}
	for _, l := range strings.Split(*layers, ",") {
		if l = strings.TrimSpace(l); l != "" {
			in.Layers = append(in.Layers, l)
		}
	}
	if err := in.Validate(); err != nil {
		var ae *temporal.ApplicationError
		if errors.As(err, &ae) {
			return fmt.Errorf("%w: --%s", errUsage, strings.Replace(ae.Message(), "_", "-", 1))
		}
		return fmt.Errorf("%w: %v", errUsage, err)
	}
	if err := cfg.Validate(config.NeedTemporal); err != nil {
		return err
	}
	tc, err := dialTemporal(cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		return err
	}
	defer tc.Close()
	id := backfillWorkflowID(in.From, in.To, in.DryRun)
	run, err := tc.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: id, TaskQueue: workflows.BatchQueue}, workflows.Backfill, in)
	if err != nil {
		return fmt.Errorf("start Backfill %s..%s: %w", in.From, in.To, err)
	}
	fmt.Printf("Backfill %s..%s (%s%s) started: workflow %s\n", in.From, in.To, strings.Join(in.Layers, ","), map[bool]string{true: ", dry run"}[in.DryRun], id)
	fmt.Printf("  progress: temporal workflow query -w %s --type progress; pause/resume: temporal workflow signal -w %s --name pause|resume\n", id, id)
	if *detach {
		fmt.Println(id)
		return nil
	}
	res, err := waitBackfill(ctx, tc, run, os.Stdout)
	if err != nil {
		var ae *temporal.ApplicationError
		if errors.As(err, &ae) {
			return fmt.Errorf("%s\n(workflow %s; its steps and retries: `temporal workflow show -w %s --detailed`)", ae.Message(), id, id)
		}
		return fmt.Errorf("workflow %s: %w", id, err)
	}
	printBackfillResult(os.Stdout, res)
	fmt.Println(id)
	return nil
}

// backfillWorkflowID is backfill-FROM-TO-<random>: several backfills of one
// range may be started, each with its own id.
func backfillWorkflowID(from, to string, dry bool) string {
	var b [3]byte
	_, _ = rand.Read(b[:])
	kind := "backfill"
	if dry {
		kind = "backfill-dry-run"
	}
	return fmt.Sprintf("%s-%s-%s-%s", kind, from, to, hex.EncodeToString(b[:]))
}

// waitBackfill renders the progress query as a bar until the workflow ends.
func waitBackfill(ctx context.Context, tc client.Client, run client.WorkflowRun, out io.Writer) (workflows.BackfillResult, error) {
	type outcome struct {
		res workflows.BackfillResult
		err error
	}
	done := make(chan outcome, 1)
	go func() {
		var o outcome
		o.err = run.Get(ctx, &o.res)
		done <- o
	}()
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	last := ""
	for {
		select {
		case o := <-done:
			if last != "" {
				fmt.Fprintln(out)
			}
			return o.res, o.err
		case <-ctx.Done():
			return workflows.BackfillResult{}, ctx.Err()
		case <-tick.C:
			v, err := tc.QueryWorkflow(ctx, run.GetID(), run.GetRunID(), workflows.BackfillProgressQuery)
			if err != nil {
				continue // not started yet, or finishing
			}
			var p workflows.BackfillProgress
			if v.Get(&p) != nil {
				continue
			}
			if line := progressLine(p); line != last {
				fmt.Fprintf(out, "\r%s", line)
				last = line
			}
		}
	}
}

// progressLine renders one line: [#####-----] 3/10 days · 2026-11-04 · 12345 rows.
func progressLine(p workflows.BackfillProgress) string {
	const width = 30
	n := 0
	if p.DaysTotal > 0 {
		n = width * p.DaysDone / p.DaysTotal
	}
	s := fmt.Sprintf("[%s%s] %d/%d days · %d rows", strings.Repeat("#", n), strings.Repeat("-", width-n), p.DaysDone, p.DaysTotal, p.Rows)
	if p.CurrentDay != "" {
		s += " · now " + strings.Join(p.Running, ", ")
	}
	if p.Paused {
		s += " · PAUSED"
	}
	return s + "   "
}

func printBackfillResult(out io.Writer, res workflows.BackfillResult) {
	verb := "rebuilt"
	if res.DryRun {
		verb = "would rebuild (dry run, nothing changed)"
	}
	fmt.Fprintf(out, "%s %s..%s (%s): %d days, %d bronze objects, %d records, %d rows\n",
		verb, res.From, res.To, strings.Join(res.Layers, ","), len(res.Days), res.BronzeObjects, res.Records, res.Rows)
	for _, d := range res.Days {
		fmt.Fprintf(out, "  %s  bronze %d objects / %d records (%d quarantined, %d duplicates, %d other days) -> %d rows, %d silver files (%d retired)",
			d.Day, d.BronzeObjects, d.Records, d.Quarantined, d.Duplicates, d.OtherDays, d.Rows, len(d.SilverFiles), d.SilverReplace)
		if res.DryRun {
			fmt.Fprintf(out, ", gold now %d rows\n", d.GoldBefore)
		} else {
			fmt.Fprintf(out, ", gold %d -> %d rows (%d payments, %d audit), %d mart rows\n", d.GoldDeleted, d.GoldInserted, d.GoldPayments, d.GoldAudit, d.MartRows)
		}
	}
}

// newBackfiller builds the Backfill activities from the configuration: the
// lake bucket (lakeConfig: path-style with an S3_ENDPOINT, as the dev store
// and versitygw want) and the warehouse.
func newBackfiller(cfg config.Config, store *warehouse.Store) (*activities.Backfiller, error) {
	lk, err := lake.New(lakeConfig(cfg))
	if err != nil {
		return nil, err
	}
	return activities.NewBackfiller(activities.BackfillerConfig{Lake: lk, Store: store})
}
