package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"

	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"

	"github.com/acme/pipeline/activities"
	"github.com/acme/pipeline/internal/config"
	"github.com/acme/pipeline/lake"
	"github.com/acme/pipeline/starter"
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
	conc := fs.Int("concurrency", workflows.DefaultBackfillConcurrency, "units of work (staging shares of a day, silver hours) run at once over every batch worker")
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
	if err := cfg.ValidateFor("backfill"); err != nil {
		return err
	}
	tc, err := dialTemporal(cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		return err
	}
	defer tc.Close()
	run, err := starter.StartBackfill(ctx, tc, in)
	if err != nil {
		return err
	}
	id := run.GetID()
	fmt.Printf("Backfill %s..%s (%s%s) started: workflow %s\n", in.From, in.To, strings.Join(in.Layers, ","), map[bool]string{true: ", dry run"}[in.DryRun], id)
	fmt.Printf("  progress: temporal workflow query -w %s --type progress; pause/resume: temporal workflow signal -w %s --name pause|resume\n", id, id)
	if *detach {
		fmt.Println(id)
		return nil
	}
	res, err := starter.WaitBackfill(ctx, tc, run, os.Stdout)
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

func printBackfillResult(out io.Writer, res workflows.BackfillResult) {
	verb := "rebuilt"
	if res.DryRun {
		verb = "would rebuild (dry run, nothing changed)"
	}
	fmt.Fprintf(out, "%s %s..%s (%s): %d days, %d bronze objects, %d records, %d rows\n",
		verb, res.From, res.To, strings.Join(res.Layers, ","), len(res.Days), res.BronzeObjects, res.Records, res.Rows)
	for _, d := range res.Days {
		fmt.Fprintf(out, "  %s  bronze %d objects / %d records in %d units (%d quarantined, %d duplicates, %d other days) -> %d rows",
			d.Day, d.BronzeObjects, d.Records, d.Units, d.Quarantined, d.Duplicates, d.OtherDays, d.Rows)
		if res.DryRun {
			fmt.Fprintln(out)
			continue
		}
		silverDone := fmt.Sprintf("silver.events %d rows (snapshot %d)", d.SilverRows, d.SilverSnap)
		if d.SilverSnap == 0 { // a marts-only rebuild
			silverDone = "silver.events unchanged"
		}
		fmt.Fprintf(out, "; %s; gold %d replaced by %d (%d payments, %d audit), %d rows of later offsets kept; %d mart rows\n",
			silverDone, d.GoldDeleted, d.GoldInserted, d.GoldPayments, d.GoldAudit, d.GoldKept, d.MartRows)
	}
}

// newBackfiller builds the Backfill activities from the configuration: the
// lake bucket (lakeConfig: path-style with an S3_ENDPOINT, as the dev store
// and versitygw want) and the warehouse.
func newBackfiller(cfg config.Config, store *warehouse.Store, tc client.Client) (*activities.Backfiller, error) {
	lk, err := lake.New(lakeConfig(cfg))
	if err != nil {
		return nil, err
	}
	return activities.NewBackfiller(activities.BackfillerConfig{Lake: lk, Store: store, Running: activities.WorkflowRunning(tc),
		Silver: silverConfig(cfg)})
}
