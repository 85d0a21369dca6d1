package main

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/acme/pipeline/internal/kafkaread"
	"github.com/acme/pipeline/internal/streamtest"
)

// TestIncarnationCommand runs `pipeline incarnation` against kfake over TCP
// and PostgreSQL: the listing of a recreated topic names the command and
// exits 1; --start-new with another id than Kafka's changes nothing; with
// Kafka's id it retires incarnation 1 and starts 2; run again, it has
// nothing to do, and the listing says the stream streams Kafka's topic.
func TestIncarnationCommand(t *testing.T) {
	ctx := context.Background()
	_, brokers := streamtest.Kafka(t, "events", 2)
	wh, dbURL := streamtest.Database(t)
	kc, err := kafkaread.New(kafkaread.Config{Brokers: brokers})
	if err != nil {
		t.Fatal(err)
	}
	defer kc.Close()
	oldID, err := kc.TopicID(ctx, "events")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := wh.AdoptIncarnation(ctx, "events", oldID.String()); err != nil {
		t.Fatal(err)
	}
	streamtest.RecreateTopic(t, brokers, "events", 2)
	newID, err := kc.TopicID(ctx, "events")
	if err != nil {
		t.Fatal(err)
	}
	run := func(extra ...string) error {
		return runIncarnation(ctx, append([]string{"--kafka-brokers", strings.Join(brokers, ","), "--database-url", dbURL, "--topic", "events"}, extra...))
	}

	steps := []struct {
		name string
		do   func(out *bytes.Buffer) error
		err  error    // nil: success
		want []string // fragments of the output
	}{
		{"the listing of a recreated topic", func(out *bytes.Buffer) error { return listIncarnations(ctx, out, kc, wh, "events") },
			errSilentExit1, []string{oldID.String(), "current", "was deleted and created again", "pipeline incarnation --topic events --start-new " + newID.String()}},
		{"another id than Kafka's", func(*bytes.Buffer) error { return run("--start-new", oldID.String()) }, errAny, nil},
		{"Kafka's id", func(out *bytes.Buffer) error { return startIncarnation(ctx, out, kc, wh, "events", newID.String()) },
			nil, []string{"incarnation 1 retired (topic id " + oldID.String(), "Incarnation 2 started (topic id " + newID.String(), "pipeline provision"}},
		{"again", func(out *bytes.Buffer) error { return startIncarnation(ctx, out, kc, wh, "events", newID.String()) },
			nil, []string{"Nothing to do"}},
		{"the listing now", func(out *bytes.Buffer) error { return listIncarnations(ctx, out, kc, wh, "events") },
			nil, []string{"Kafka's topic is incarnation 2: the stream streams it"}},
		{"the command line", func(*bytes.Buffer) error { return run() }, nil, nil},
	}
	for _, st := range steps {
		var out bytes.Buffer
		err := st.do(&out)
		switch {
		case st.err == errAny && err == nil, st.err != errAny && !errors.Is(err, st.err):
			t.Fatalf("%s: error %v, want %v\n%s", st.name, err, st.err, out.String())
		}
		for _, w := range st.want {
			if !strings.Contains(out.String(), w) {
				t.Errorf("%s: the output does not say %q:\n%s", st.name, w, out.String())
			}
		}
	}
}

// errAny stands for any error in TestIncarnationCommand's steps.
var errAny = errors.New("any error")
