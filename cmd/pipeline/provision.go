package main

import (
	"context"
	"fmt"

	"github.com/acme/pipeline/blueprint"
)

func runProvision(ctx context.Context, args []string) error {
	fs := newFlagSet("provision", "[--dry-run] FILE")
	dry := fs.Bool("dry-run", false, "print the plan and change nothing")
	if err := parse(fs, args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return fmt.Errorf("%w: want exactly one blueprint file, got %d arguments", errUsage, fs.NArg())
	}
	bp, err := blueprint.Load(fs.Arg(0))
	if err != nil {
		return err
	}
	plan := blueprint.Diff(bp, nil)
	fmt.Printf("Blueprint %q is valid. Plan against an empty catalog:\n\n%s\n", bp.Name, plan)
	if *dry {
		return nil
	}
	return notYet("applying a blueprint (the Provision workflow)")
}
