// Command pipeline is the analytics pipeline in one binary: the event API, the
// Temporal worker, the embedded dev stack and the operator commands.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
)

type command struct {
	name, summary string
	run           func(ctx context.Context, args []string) error
}

// commands is filled in init: the subcommands print their own usage from it.
var commands []command

func init() {
	commands = []command{
		{"dev", "run the embedded default: Temporal, Kafka, S3 and PostgreSQL on loopback, with worker and API", runDev},
		{"api", "run the event API alone", runAPI},
		{"worker", "run the Temporal worker alone", runWorker},
		{"provision", "validate a blueprint and provision the pipeline from it (Provision workflow)", runProvision},
		{"backfill", "rebuild a range of days from bronze (Backfill workflow)", runBackfill},
		{"aggregate", "run NightlyAggregation for one day now", runAggregate},
		{"maintain", "compact silver.events and expire its old snapshots now (SilverMaintenance workflow)", runMaintain},
		{"status", "pipeline health at a glance: lag, freshness, last loads, open alerts", runStatus},
		{"incarnation", "the topic's incarnations; --start-new streams a topic deleted and created again, keeping the old one's data", runIncarnation},
	}
}

// errUsage marks a usage error: the message is printed with the usage hint and
// the exit code is 2.
var errUsage = errors.New("usage")

func usage() {
	fmt.Fprintf(os.Stderr, "pipeline: the analytics pipeline (event API → Kafka → S3 lake → PostgreSQL, orchestrated by Temporal)\n\nUsage: pipeline <command> [flags]\n\nCommands:\n")
	for _, c := range commands {
		fmt.Fprintf(os.Stderr, "  %-12s %s\n", c.name, c.summary)
	}
	fmt.Fprintf(os.Stderr, "\nRun `pipeline <command> --help` for a command's flags.\n")
}

func main() {
	slog.SetDefault(slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo})))
	if len(os.Args) < 2 || os.Args[1] == "-h" || os.Args[1] == "--help" || os.Args[1] == "help" {
		usage()
		if len(os.Args) < 2 {
			os.Exit(2)
		}
		return
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	for _, c := range commands {
		if c.name != os.Args[1] {
			continue
		}
		err := c.run(ctx, os.Args[2:])
		switch {
		case err == nil, errors.Is(err, flag.ErrHelp):
			return
		case errors.Is(err, errUsage):
			fmt.Fprintf(os.Stderr, "pipeline %s: %v\nRun `pipeline %s --help` for usage.\n", c.name, err, c.name)
			os.Exit(2)
		default:
			fmt.Fprintf(os.Stderr, "pipeline %s: %v\n", c.name, err)
			os.Exit(1)
		}
	}
	fmt.Fprintf(os.Stderr, "pipeline: unknown command %q\n\n", os.Args[1])
	usage()
	os.Exit(2)
}

// newFlagSet returns a flag set whose --help prints the command's summary.
func newFlagSet(name, args string) *flag.FlagSet {
	fs := flag.NewFlagSet("pipeline "+name, flag.ContinueOnError)
	fs.Usage = func() {
		for _, c := range commands {
			if c.name == name {
				fmt.Fprintf(fs.Output(), "pipeline %s %s\n\n%s.\n\nFlags (flags win over environment variables):\n", name, args, c.summary)
			}
		}
		fs.PrintDefaults()
	}
	return fs
}

// parse parses flags, turning a flag error into a usage error.
func parse(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return fmt.Errorf("%w: %v", errUsage, err)
	}
	if afterParse != nil {
		return afterParse(fs)
	}
	return nil
}

// afterParse, when set (by tests), sees every flag set once parsed, and an
// error it returns ends the subcommand there: the deployment files'
// arguments are checked against the real flag sets without running anything.
var afterParse func(fs *flag.FlagSet) error
