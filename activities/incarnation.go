package activities

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"

	"go.temporal.io/sdk/temporal"

	"github.com/acme/pipeline/internal/kafkaread"
	"github.com/acme/pipeline/warehouse"
)

// NoTopicID is what an operator confirms for a topic whose brokers report
// no topic id (Kafka before 2.8), in place of the id.
const NoTopicID = "none"

// incarnation returns the incarnation of topic the stream streams, after
// making sure Kafka still serves that incarnation under the name, and a
// guard that checks it again after the cycle's reads. A topic the pipeline
// has no incarnation of is adopted as it is now (a new topic, or a
// deployment from before incarnations). A recreated topic is an
// ErrTypeTopicRecreated error. When the brokers report no topic id there is
// nothing to compare: the stream goes on, and the offsets check of
// outOfRange is the only net (it catches a new topic shorter than the
// stream's position). atStart logs that once per stream run.
func (a *Stream) incarnation(ctx context.Context, topic string, atStart bool) (warehouse.Incarnation, *topicGuard, error) {
	began := time.Now()
	id, err := a.kafka.TopicID(ctx, topic)
	if err != nil {
		return warehouse.Incarnation{}, nil, err
	}
	inc, ok, err := a.wh.CurrentIncarnation(ctx, topic)
	if err == nil && !ok {
		if inc, err = a.wh.AdoptIncarnation(ctx, topic, id.String()); err == nil && inc.TopicID == id.String() {
			a.logger(ctx).Info("topic adopted: the stream streams it as its first incarnation", "topic", topic,
				"incarnation", inc.Number, "topic_id", inc.TopicID)
		}
	}
	if err != nil {
		return warehouse.Incarnation{}, nil, err
	}
	switch {
	case id.IsZero():
		if inc.TopicID != "" || atStart {
			a.logger(ctx).Warn("the brokers report no topic id (Kafka before 2.8): a recreated topic is caught only once it is shorter than the stream's offsets",
				"topic", topic, "incarnation", inc.Number, "recorded_topic_id", inc.TopicID)
		}
		inc.TopicID = "" // nothing to compare the guard's checks with
	case inc.TopicID == "":
		// Adopted on brokers without ids, which report them now. A topic
		// recreated during that upgrade cannot be told apart.
		if _, err := a.wh.LearnTopicID(ctx, topic, inc.Number, id.String()); err != nil {
			return warehouse.Incarnation{}, nil, err
		}
		a.logger(ctx).Warn("the brokers report topic ids now: recorded this topic's id for the incarnation adopted without one",
			"topic", topic, "incarnation", inc.Number, "topic_id", id.String())
		inc.TopicID = id.String()
	case inc.TopicID != id.String():
		return inc, nil, a.recreated(ctx, inc, id)
	}
	return inc, &topicGuard{a: a, inc: inc, since: began}, nil
}

// recreated is the ErrTypeTopicRecreated error of inc, now that Kafka's
// topic under its name has id now: what the pipeline holds of the old
// topic, and the command that starts the new one.
func (a *Stream) recreated(ctx context.Context, inc warehouse.Incarnation, now kafkaread.TopicID) error {
	held := "what the stream holds of it could not be read"
	if u, err := a.wh.IncarnationUsage(ctx, inc); err == nil {
		held = fmt.Sprintf("stored offsets %s, %d bronze objects with %d records", offsetsText(u.Offsets), u.BronzeObjects, u.BronzeRecords)
	}
	newID := now.String()
	if now.IsZero() {
		newID = NoTopicID
	}
	msg := fmt.Sprintf("topic %s was deleted and created again: Kafka's topic id is now %s, but the stream streams incarnation %d "+
		"of the topic (topic id %s, since %s; %s). The new topic numbers its records from offset 0 again, so reading on would "+
		"skip its first records and reuse the old topic's bronze objects; the shard stops before writing anything of it. "+
		"If the new topic is meant to be streamed, start its incarnation: `pipeline incarnation --topic %s --start-new %s` "+
		"(incarnation %d is retired: its bronze, silver, quarantine and gold rows stay, and backfills of its days read them), "+
		"then start the stream again (`pipeline provision BLUEPRINT`): it reads the new topic from its earliest offset. "+
		"If not, leave the stream stopped: every record it read of the old topic is in bronze",
		inc.Topic, now, inc.Number, inc.TopicID, inc.FirstSeen.UTC().Format(time.RFC3339), held, inc.Topic, newID, inc.Number)
	a.logger(ctx).Error("topic recreated: the shard stops until an operator starts the new incarnation", "topic", inc.Topic,
		"incarnation", inc.Number, "topic_id", inc.TopicID, "kafka_topic_id", now.String())
	return temporal.NewNonRetryableApplicationError(msg, ErrTypeTopicRecreated, nil)
}

// foreignOffsets returns the offsets that cannot be the current
// incarnation's. Every offset a shard holds is one its incarnation stored
// with a gold load (the load that advanced it), or the partition's earliest
// offset when the shard started (nothing stored yet). So an offset beyond
// the stored one, or beyond the earliest offset with none stored, comes from
// elsewhere: a shard still running with an incarnation an operator retired
// (StartIncarnation moves the stored offsets away), or a hand-edited
// pipeline.stream_offsets. Reading on from it would skip records of the
// current incarnation. It asks Kafka for bounds only of partitions with
// nothing stored.
func (a *Stream) foreignOffsets(ctx context.Context, topic string, held, stored map[int32]int64) (map[int32]int64, error) {
	out := map[int32]int64{}
	var unstored []int32
	for p, o := range held {
		s, ok := stored[p]
		switch {
		case !ok && o > 0:
			unstored = append(unstored, p)
		case ok && o > s:
			out[p] = o
		}
	}
	if len(unstored) == 0 {
		return out, nil
	}
	bounds, err := a.kafka.Bounds(ctx, topic, unstored)
	if err != nil {
		return nil, err
	}
	for _, p := range unstored {
		if held[p] > bounds[p].First {
			out[p] = held[p]
		}
	}
	return out, nil
}

// currentKnown returns the offsets a starting shard carries (in.Known)
// without those that cannot be the current incarnation's (inc): they are
// dropped, with a warning, and the shard takes the stored or earliest ones.
func (a *Stream) currentKnown(ctx context.Context, in StreamStartInput, inc warehouse.Incarnation, stored map[int32]int64) (map[int32]int64, error) {
	if len(in.Known) == 0 {
		return in.Known, nil
	}
	foreign := in.Known
	if in.Incarnation == 0 || in.Incarnation == inc.Number {
		var err error
		if foreign, err = a.foreignOffsets(ctx, in.Topic, in.Known, stored); err != nil {
			return nil, err
		}
	}
	if len(foreign) == 0 {
		return in.Known, nil
	}
	a.logger(ctx).Warn("carried offsets that cannot be the current incarnation's are dropped: the shard takes the stored or earliest ones",
		"topic", in.Topic, "incarnation", inc.Number, "dropped", foreign, "stored", stored)
	known := maps.Clone(in.Known)
	maps.DeleteFunc(known, func(p int32, _ int64) bool { _, drop := foreign[p]; return drop })
	return known, nil
}

// staleOffsets is the ErrTypeStaleOffsets error of a cycle whose offsets
// (foreign) cannot be those of inc, the current incarnation.
func staleOffsets(inc warehouse.Incarnation, foreign, stored map[int32]int64) error {
	return temporal.NewNonRetryableApplicationError(fmt.Sprintf(
		"topic %s: the shard's offsets %s are not those of incarnation %d, the current one (topic id %s, since %s; stored offsets %s): "+
			"they were carried from an incarnation retired since, or pipeline.stream_offsets was changed by hand. The shard stops "+
			"rather than skip records; start it again (`pipeline provision BLUEPRINT`) and it starts from the stored offsets, or the earliest ones",
		inc.Topic, offsetsText(foreign), inc.Number, inc.TopicID, inc.FirstSeen.UTC().Format(time.RFC3339), offsetsText(stored)),
		ErrTypeStaleOffsets, nil)
}

// wrapRetryable adds what to a retryable error; an ApplicationError is
// returned as it is, since Temporal reads its type and retryability only
// from the error itself, not from one it wraps.
func wrapRetryable(what string, err error) error {
	var ae *temporal.ApplicationError
	if errors.As(err, &ae) {
		return ae
	}
	return fmt.Errorf("%s: %w", what, err)
}

// offsetsText is "p0=120 p1=98" (at most 12 partitions, then a count).
func offsetsText(offsets map[int32]int64) string {
	if len(offsets) == 0 {
		return "none"
	}
	var b strings.Builder
	for i, p := range slices.Sorted(maps.Keys(offsets)) {
		if i == 12 {
			fmt.Fprintf(&b, " and %d more", len(offsets)-i)
			break
		}
		if i > 0 {
			b.WriteByte(' ')
		}
		fmt.Fprintf(&b, "p%d=%d", p, offsets[p])
	}
	return b.String()
}

// topicGuard checks, during a cycle, that the topic Kafka serves under the
// name is still the incarnation the cycle streams. kafka-go fetches by name,
// so records of a topic deleted and created again mid-cycle would otherwise
// pass for the old topic's, at its offsets. A guard without a topic id (the
// brokers report none) checks nothing.
type topicGuard struct {
	a   *Stream
	inc warehouse.Incarnation

	mu    sync.Mutex
	since time.Time // when the last check that found the incarnation's id began
}

// after returns nil once a check that began after t found the incarnation's
// id, so that whatever was read from the topic before t was read from the
// incarnation; it makes that check when none has. Reads that end together
// share one metadata request.
func (g *topicGuard) after(ctx context.Context, t time.Time) error {
	if g == nil || g.inc.TopicID == "" {
		return nil
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if !g.since.Before(t) {
		return nil
	}
	began := time.Now()
	id, err := g.a.kafka.TopicID(ctx, g.inc.Topic)
	if err != nil {
		return fmt.Errorf("check that topic %s is still incarnation %d: %w", g.inc.Topic, g.inc.Number, err)
	}
	if !id.IsZero() && id.String() != g.inc.TopicID {
		return g.a.recreated(ctx, g.inc, id)
	}
	g.since = began
	return nil
}

// StartIncarnationInput asks StartIncarnation to start the next incarnation
// of a topic that was deleted and created again.
type StartIncarnationInput struct {
	// Topic is the topic's name. Required.
	Topic string
	// Confirm is the topic id the operator means to start, in Kafka's form
	// (the one the TopicRecreated error names), or NoTopicID when the
	// brokers report none. Required: if Kafka's topic is another one by
	// now, nothing happens.
	Confirm string
	// By says who starts it, for pipeline.topic_incarnations.retired_by.
	By string
}

// StartIncarnationResult reports a started incarnation.
type StartIncarnationResult struct {
	Retired warehouse.Incarnation      `json:"retired"`
	Started warehouse.Incarnation      `json:"started"`
	Held    warehouse.IncarnationUsage `json:"held"` // what the retired incarnation keeps
}

// ErrNothingToStart is returned by StartIncarnation when Kafka's topic is
// the current incarnation already (started before, or never recreated).
var ErrNothingToStart = errors.New("the topic's current incarnation is Kafka's topic already")

// StartIncarnation is what `pipeline incarnation --start-new` does once an
// operator has decided that a recreated topic is to be streamed: it checks
// that Kafka's topic is still the one confirmed, then retires the current
// incarnation and starts the next (warehouse.StartIncarnation). The retired
// incarnation keeps its bronze, silver, quarantine and gold rows and its
// lineage; its offsets become its final ones, so the stream, started
// again, reads the new topic from its earliest offset.
func StartIncarnation(ctx context.Context, kc *kafkaread.Client, wh *warehouse.Store, in StartIncarnationInput) (StartIncarnationResult, error) {
	if in.Topic == "" || in.Confirm == "" {
		return StartIncarnationResult{}, errors.New("start incarnation: the topic and the confirmed topic id are required")
	}
	id, err := kc.TopicID(ctx, in.Topic)
	if err != nil {
		return StartIncarnationResult{}, fmt.Errorf("start incarnation: %w", err)
	}
	seen := id.String()
	if id.IsZero() {
		seen = NoTopicID
	}
	if in.Confirm != seen {
		return StartIncarnationResult{}, fmt.Errorf("start incarnation of topic %s: Kafka's topic id is %s, not %s as confirmed: nothing changed; look at the topic again",
			in.Topic, seen, in.Confirm)
	}
	cur, ok, err := wh.CurrentIncarnation(ctx, in.Topic)
	if err != nil {
		return StartIncarnationResult{}, fmt.Errorf("start incarnation: %w", err)
	}
	if !ok {
		return StartIncarnationResult{}, fmt.Errorf("start incarnation of topic %s: the stream has never streamed it; it adopts the topic as it is when it starts", in.Topic)
	}
	if !id.IsZero() && cur.TopicID == seen {
		return StartIncarnationResult{Started: cur}, fmt.Errorf("topic %s incarnation %d (since %s) is topic id %s: %w",
			in.Topic, cur.Number, cur.FirstSeen.UTC().Format(time.RFC3339), seen, ErrNothingToStart)
	}
	var res StartIncarnationResult
	res.Retired, res.Started, err = wh.StartIncarnation(ctx, warehouse.NewIncarnationInput{Topic: in.Topic, Retiring: cur.Number,
		TopicID: id.String(), By: in.By})
	if err != nil {
		return res, err
	}
	if res.Held, err = wh.IncarnationUsage(ctx, res.Retired); err != nil {
		return res, err
	}
	return res, nil
}
