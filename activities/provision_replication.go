package activities

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"time"

	"github.com/segmentio/kafka-go"
	"go.temporal.io/sdk/activity"

	"github.com/acme/pipeline/blueprint"
)

// The conduit's replication: how many brokers the cluster has (the plan
// resolves replicacao against it), the copies each partition has, and the
// reassignment that gives an existing topic more or fewer of them.

// reassignPoll is how often a running reassignment is checked, and
// reassignWait how long one attempt of ApplyConduit waits for it before it
// fails retryably (the next attempt finds the reassignment running and
// waits again).
var (
	reassignPoll = 2 * time.Second
	reassignWait = 4 * time.Minute
)

// DescribeCluster tells the plan how many brokers the conduit's cluster
// lists in its metadata.
func (p *Provisioner) DescribeCluster(ctx context.Context) (blueprint.Cluster, error) {
	kc, done, err := p.kafkaClient()
	if err != nil {
		return blueprint.Cluster{}, err
	}
	defer done()
	md, err := kc.Metadata(ctx, &kafka.MetadataRequest{Topics: []string{}})
	if err != nil {
		return blueprint.Cluster{}, fmt.Errorf("read the cluster's brokers: %w", p.cfg.KafkaConn.Explain(err))
	}
	return blueprint.Cluster{Brokers: len(md.Brokers)}, nil
}

// kafkaClient returns an admin client on the bootstrap brokers and the
// function that closes its connections.
func (p *Provisioner) kafkaClient() (*kafka.Client, func(), error) {
	transport, err := p.cfg.KafkaConn.Transport(&kafka.Transport{ClientID: "pipeline-provision"})
	if err != nil {
		return nil, nil, err
	}
	kc := &kafka.Client{Addr: kafka.TCP(p.cfg.KafkaBrokers...), Timeout: 15 * time.Second, Transport: transport}
	return kc, transport.CloseIdleConnections, nil
}

// topicLayout is a topic's replica sets by partition, leader first, and
// the ids of the brokers the cluster lists.
type topicLayout struct {
	replicas map[int][]int
	brokers  []int
}

// layout reads the topic's replicas and the cluster's brokers from a
// broker directly: kafka.Client serves Metadata from its transport's cache,
// which lags a CreatePartitions or a finished reassignment by up to its
// TTL. An unknown topic is kafka.UnknownTopicOrPartition.
func (p *Provisioner) layout(ctx context.Context, topic string) (topicLayout, error) {
	dialer, err := p.cfg.KafkaConn.Dialer(&kafka.Dialer{Timeout: 10 * time.Second, ClientID: "pipeline-provision"})
	if err != nil {
		return topicLayout{}, err
	}
	var lastErr error
	for _, b := range p.cfg.KafkaBrokers {
		conn, err := dialer.DialContext(ctx, "tcp", b)
		if err != nil {
			lastErr = p.cfg.KafkaConn.Explain(err)
			continue
		}
		ps, err := conn.ReadPartitions(topic)
		var bs []kafka.Broker
		if err == nil {
			bs, err = conn.Brokers()
		}
		conn.Close()
		if err != nil {
			lastErr = err
			continue
		}
		l := topicLayout{replicas: map[int][]int{}}
		for _, b := range bs {
			l.brokers = append(l.brokers, b.ID)
		}
		slices.Sort(l.brokers)
		for _, pt := range ps {
			ids := make([]int, 0, len(pt.Replicas))
			for _, r := range pt.Replicas {
				ids = append(ids, r.ID)
			}
			l.replicas[pt.ID] = ids
		}
		return l, nil
	}
	return topicLayout{}, fmt.Errorf("read the partitions of topic %s: %w", topic, lastErr)
}

// short returns the partitions whose replica count is not rf, in order.
func (l topicLayout) short(rf int) []int {
	var out []int
	for id, rs := range l.replicas {
		if len(rs) != rf {
			out = append(out, id)
		}
	}
	slices.Sort(out)
	return out
}

// targetReplicas returns the new replica set of every partition that does
// not have rf copies. A partition keeps its replicas in order (its leader
// first) while they fit, and gains the brokers that hold the fewest of the
// topic's replicas, lowest id first, so that the copies spread evenly and
// a reassignment moves as little data as it can.
func targetReplicas(l topicLayout, rf int) map[int][]int {
	load := map[int]int{}
	for _, b := range l.brokers {
		load[b] = 0
	}
	for _, rs := range l.replicas {
		for _, r := range rs {
			load[r]++
		}
	}
	out := map[int][]int{}
	for _, id := range l.short(rf) {
		cur := l.replicas[id]
		next := slices.Clone(cur[:min(len(cur), rf)])
		for _, r := range cur[len(next):] {
			load[r]--
		}
		for len(next) < rf {
			best := -1
			for _, b := range l.brokers {
				if slices.Contains(next, b) {
					continue
				}
				if best < 0 || load[b] < load[best] {
					best = b
				}
			}
			if best < 0 {
				break // fewer brokers than rf: the plan refuses that first
			}
			next = append(next, best)
			load[best]++
		}
		out[id] = next
	}
	return out
}

// replicate gives every partition of topic rf copies: it submits the
// reassignment of the partitions that have another count, waits for the
// brokers to finish copying (heartbeating), and reads the replicas back.
// It returns what it did ("" when every partition had rf copies already).
func (p *Provisioner) replicate(ctx context.Context, kc *kafka.Client, topic string, rf int) (string, error) {
	l, err := p.layout(ctx, topic)
	if err != nil {
		return "", err
	}
	if len(l.brokers) < rf {
		return "", refused("replicacao %d: the cluster lists %d brokers, and Kafka keeps each copy on a different broker", rf, len(l.brokers))
	}
	target := targetReplicas(l, rf)
	if len(target) == 0 {
		return "", nil
	}
	from := len(l.replicas[l.short(rf)[0]])
	var as []kafka.AlterPartitionReassignmentsRequestAssignment
	for id, rs := range target {
		as = append(as, kafka.AlterPartitionReassignmentsRequestAssignment{Topic: topic, PartitionID: id, BrokerIDs: rs})
	}
	slices.SortFunc(as, func(a, b kafka.AlterPartitionReassignmentsRequestAssignment) int {
		return a.PartitionID - b.PartitionID
	})
	if activity.IsActivity(ctx) {
		activity.GetLogger(ctx).Info("reassigning partitions", "topic", topic, "partitions", len(as), "replicas_from", from, "replicas_to", rf)
	}
	resp, err := kc.AlterPartitionReassignments(ctx, &kafka.AlterPartitionReassignmentsRequest{Assignments: as, Timeout: 30 * time.Second})
	if err == nil {
		err = resp.Error
	}
	if err != nil {
		return "", fmt.Errorf("reassign %d partitions of topic %s to %d replicas: %w", len(as), topic, rf, err)
	}
	for _, r := range resp.PartitionResults {
		if r.Error != nil {
			return "", fmt.Errorf("reassign partition %d of topic %s to %d replicas: %w", r.PartitionID, topic, rf, r.Error)
		}
	}
	if err := p.awaitReassignment(ctx, kc, topic, l.ids(), rf); err != nil {
		return "", err
	}
	return fmt.Sprintf("replicas %d → %d on %d partitions", from, rf, len(as)), nil
}

// awaitReassignment polls until the brokers report no reassignment of
// topic and every partition has rf replicas.
func (p *Provisioner) awaitReassignment(ctx context.Context, kc *kafka.Client, topic string, ids []int, rf int) error {
	deadline := time.Now().Add(reassignWait)
	for {
		lr, err := kc.ListPartitionReassignments(ctx, &kafka.ListPartitionReassignmentsRequest{
			Topics: map[string]kafka.ListPartitionReassignmentsRequestTopic{topic: {PartitionIndexes: ids}}})
		if err == nil {
			err = lr.Error
		}
		if err != nil {
			return fmt.Errorf("list the reassignments of topic %s: %w", topic, err)
		}
		moving := len(lr.Topics[topic].Partitions)
		var short []int
		if moving == 0 {
			l, err := p.layout(ctx, topic)
			if err != nil {
				return err
			}
			if short = l.short(rf); len(short) == 0 {
				return nil
			}
		}
		if activity.IsActivity(ctx) {
			activity.RecordHeartbeat(ctx, fmt.Sprintf("topic %s: %d partitions moving, %d short of %d replicas", topic, moving, len(short), rf))
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("topic %s: after %s, %d partitions are still moving and partitions %v lack %d replicas; the brokers go on copying, and the next attempt waits again",
				topic, reassignWait, moving, short, rf)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(reassignPoll):
		}
	}
}

// ids returns the topic's partition ids in order.
func (l topicLayout) ids() []int {
	ids := make([]int, 0, len(l.replicas))
	for id := range l.replicas {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	return ids
}

// minInsync reads the topic's min.insync.replicas back from the brokers.
func minInsync(ctx context.Context, kc *kafka.Client, topic string) (int, error) {
	resp, err := kc.DescribeConfigs(ctx, &kafka.DescribeConfigsRequest{Resources: []kafka.DescribeConfigRequestResource{{
		ResourceType: kafka.ResourceTypeTopic, ResourceName: topic, ConfigNames: []string{"min.insync.replicas"}}}})
	if err != nil {
		return 0, fmt.Errorf("read min.insync.replicas of topic %s: %w", topic, err)
	}
	for _, r := range resp.Resources {
		if r.Error != nil {
			return 0, fmt.Errorf("read min.insync.replicas of topic %s: %w", topic, r.Error)
		}
		for _, e := range r.ConfigEntries {
			if e.ConfigName == "min.insync.replicas" {
				n, err := strconv.Atoi(e.ConfigValue)
				if err != nil {
					return 0, fmt.Errorf("topic %s: min.insync.replicas %q is not a number", topic, e.ConfigValue)
				}
				return n, nil
			}
		}
	}
	return 0, fmt.Errorf("topic %s: the brokers did not return min.insync.replicas", topic)
}
