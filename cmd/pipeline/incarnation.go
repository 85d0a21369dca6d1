package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"os/user"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/acme/pipeline/activities"
	"github.com/acme/pipeline/internal/config"
	"github.com/acme/pipeline/internal/kafkaread"
	"github.com/acme/pipeline/warehouse"
)

// runIncarnation is `pipeline incarnation [--start-new TOPIC_ID]`: the
// incarnations of the topic the pipeline has streamed, against the topic
// Kafka has now (DATABASE_URL, KAFKA_BROKERS). A topic deleted and created
// again stops the stream (TopicRecreated); --start-new, given the new
// topic's id as that error and this listing print it, retires the current
// incarnation and starts the next, which the stream, started again, reads
// from its earliest offset. Without --start-new it exits 1 when Kafka's
// topic is not the current incarnation, so scripts can check.
func runIncarnation(ctx context.Context, args []string) error {
	var cfg config.Config
	fs := newFlagSet("incarnation", "[--start-new TOPIC_ID] [flags]")
	cfg.Register(fs)
	startNew := fs.String("start-new", "", "start the topic's next incarnation: Kafka's topic id now, as the TopicRecreated error prints it ("+
		activities.NoTopicID+" when the brokers report no topic ids); the current incarnation is retired, its bronze, silver and gold kept")
	if err := parse(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("%w: unexpected arguments %q", errUsage, fs.Args())
	}
	if err := cfg.ValidateFor("incarnation"); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	wh, err := warehouse.Open(ctx, warehouse.Config{URL: cfg.DatabaseURL, MaxConns: 2})
	if err != nil {
		return err
	}
	defer wh.Close()
	kc, err := kafkaread.New(kafkaread.Config{Brokers: cfg.Brokers(), Conn: cfg.Kafka, ClientID: "pipeline-incarnation"})
	if err != nil {
		return err
	}
	defer kc.Close()
	if *startNew != "" {
		return startIncarnation(ctx, os.Stdout, kc, wh, cfg.Topic, *startNew)
	}
	return listIncarnations(ctx, os.Stdout, kc, wh, cfg.Topic)
}

// startIncarnation runs activities.StartIncarnation and says what changed
// and what the operator does next.
func startIncarnation(ctx context.Context, out io.Writer, kc *kafkaread.Client, wh *warehouse.Store, topic, confirm string) error {
	res, err := activities.StartIncarnation(ctx, kc, wh, activities.StartIncarnationInput{Topic: topic, Confirm: confirm, By: operator()})
	if errors.Is(err, activities.ErrNothingToStart) {
		fmt.Fprintf(out, "Nothing to do: %v.\n", err)
		return nil
	}
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "Topic %s: incarnation %d retired (topic id %s). It keeps its %d bronze objects (%d records), its silver, quarantine "+
		"and gold rows; backfills of its days read them. Its final offsets: %s.\n",
		topic, res.Retired.Number, orUnknown(res.Retired.TopicID), res.Held.BronzeObjects, res.Held.BronzeRecords, offsetsText(res.Retired.FinalOffsets))
	fmt.Fprintf(out, "Incarnation %d started (topic id %s): the stream reads it from its earliest offset.\n\n",
		res.Started.Number, orUnknown(res.Started.TopicID))
	fmt.Fprintf(out, "Now start the stream again: `pipeline provision BLUEPRINT` starts the stopped shards; a shard still running with "+
		"the old topic's offsets stops at its next cycle (StaleOffsets) and is started the same way.\n")
	return nil
}

// listIncarnations prints the topic's incarnations and whether Kafka's
// topic is the current one.
func listIncarnations(ctx context.Context, out io.Writer, kc *kafkaread.Client, wh *warehouse.Store, topic string) error {
	id, err := kc.TopicID(ctx, topic)
	if err != nil {
		return err
	}
	all, err := wh.Incarnations(ctx, topic)
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "Topic %s: Kafka's topic id is %s.\n\n", topic, orUnknown(id.String()))
	tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "incarnation\ttopic id\tsince\tretired\toffsets\tbronze objects (records)")
	var cur *warehouse.Incarnation
	for i := range all {
		in := all[i]
		u, err := wh.IncarnationUsage(ctx, in)
		if err != nil {
			return err
		}
		retired := "current"
		if !in.Current() {
			retired = in.RetiredAt.UTC().Format(time.RFC3339) + " by " + orUnknown(in.RetiredBy)
		} else {
			cur = &all[i]
		}
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%d (%d)\n", in.Number, orUnknown(in.TopicID), in.FirstSeen.UTC().Format(time.RFC3339),
			retired, offsetsText(u.Offsets), u.BronzeObjects, u.BronzeRecords)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintln(out)
	switch {
	case cur == nil:
		fmt.Fprintln(out, "The stream has not streamed the topic yet: it adopts it as it is when it starts.")
	case id.IsZero() || cur.TopicID == "":
		fmt.Fprintf(out, "The brokers report no topic id, or did not when incarnation %d began: a recreated topic shows only as offsets beyond its end (OffsetBeyondEnd).\n", cur.Number)
	case cur.TopicID == id.String():
		fmt.Fprintf(out, "Kafka's topic is incarnation %d: the stream streams it.\n", cur.Number)
	default:
		fmt.Fprintf(out, "Kafka's topic is not incarnation %d: it was deleted and created again, and the stream stops at it. To stream the new topic:\n"+
			"  pipeline incarnation --topic %s --start-new %s\n", cur.Number, topic, id)
		return errSilentExit1
	}
	return nil
}

// offsetsText is "p0=120 p1=98", or "none".
func offsetsText(m map[int32]int64) string {
	if len(m) == 0 {
		return "none"
	}
	parts := make([]string, 0, len(m))
	for _, p := range slices.Sorted(maps.Keys(m)) {
		parts = append(parts, fmt.Sprintf("p%d=%d", p, m[p]))
	}
	return strings.Join(parts, " ")
}

func orUnknown(s string) string {
	if s == "" {
		return "unknown"
	}
	return s
}

// operator names who runs the command, for retired_by.
func operator() string {
	who := "unknown user"
	if u, err := user.Current(); err == nil {
		who = u.Username
	}
	if h, err := os.Hostname(); err == nil {
		who += "@" + h
	}
	return "pipeline incarnation (" + who + ")"
}
