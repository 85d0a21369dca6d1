package kafkaread

import (
	"context"
	"errors"
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kversion"

	"github.com/acme/pipeline/internal/streamtest"
)

// TestTopicID: the id is stable while the topic lives, new once it is
// deleted and created again, an error for a topic that does not exist, and
// zero (no error) from a broker too old to know topic ids.
func TestTopicID(t *testing.T) {
	ctx := context.Background()
	brokers := startBroker(t, "events", 2)
	c, err := New(Config{Brokers: brokers})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	first, err := c.TopicID(ctx, "events")
	if err != nil || first.IsZero() {
		t.Fatalf("topic id %q, %v", first, err)
	}
	if again, err := c.TopicID(ctx, "events"); err != nil || again != first {
		t.Fatalf("asked again: %q, %v; want %q", again, err, first)
	}
	if back, err := ParseTopicID(first.String()); err != nil || back != first || len(first.String()) != 22 {
		t.Fatalf("ParseTopicID(%q) = %q, %v", first, back, err)
	}

	streamtest.RecreateTopic(t, brokers, "events", 2)
	second, err := c.TopicID(ctx, "events")
	if err != nil || second.IsZero() || second == first {
		t.Fatalf("recreated topic: id %q, %v; want a new id (the old one was %q)", second, err, first)
	}

	if _, err := c.TopicID(ctx, "nope"); !errors.Is(err, kerr.UnknownTopicOrPartition) {
		t.Fatalf("a topic that does not exist: %v", err)
	}
	for _, bad := range []string{"", "x", "AAAAAAAAAAAAAAAAAAAAAAAA"} {
		if _, err := ParseTopicID(bad); err == nil {
			t.Errorf("ParseTopicID(%q): no error", bad)
		}
	}

	old, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(1, "events"), kfake.MaxVersions(kversion.V2_7_0()))
	if err != nil {
		t.Fatal(err)
	}
	defer old.Close()
	oc, err := New(Config{Brokers: old.ListenAddrs()})
	if err != nil {
		t.Fatal(err)
	}
	defer oc.Close()
	if id, err := oc.TopicID(ctx, "events"); err != nil || !id.IsZero() {
		t.Fatalf("Kafka 2.7 (no topic ids): %q, %v; want the zero id and no error", id, err)
	}
}
