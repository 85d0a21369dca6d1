package kafkaread

import (
	"context"
	"fmt"
	"maps"
	"slices"

	"github.com/segmentio/kafka-go"
)

// Committing offsets to a consumer group, so that standard Kafka tools show
// the stream's lag; the stream's own position is in pipeline.stream_offsets.

// Commit stores offsets (partition → next offset to read) for group, as a
// simple consumer (no group membership), so that `kafka-consumer-groups
// --describe` and similar tools show the group's lag.
func (c *Client) Commit(ctx context.Context, group, topic string, offsets map[int32]int64) error {
	if len(offsets) == 0 {
		return nil
	}
	oc := make([]kafka.OffsetCommit, 0, len(offsets))
	for _, p := range slices.Sorted(maps.Keys(offsets)) {
		oc = append(oc, kafka.OffsetCommit{Partition: int(p), Offset: offsets[p]})
	}
	resp, err := c.c.OffsetCommit(ctx, &kafka.OffsetCommitRequest{
		GroupID:      group,
		GenerationID: -1,
		Topics:       map[string][]kafka.OffsetCommit{topic: oc},
	})
	if err != nil {
		return fmt.Errorf("commit offsets of topic %s for group %s: %w", topic, group, err)
	}
	for _, pr := range resp.Topics[topic] {
		if pr.Error != nil {
			return fmt.Errorf("commit offset of topic %s partition %d for group %s: %w", topic, pr.Partition, group, pr.Error)
		}
	}
	return nil
}

// Committed returns the offsets committed by group for topic (partitions
// without a commit are absent).
func (c *Client) Committed(ctx context.Context, group, topic string, partitions []int32) (map[int32]int64, error) {
	ps := make([]int, len(partitions))
	for i, p := range partitions {
		ps[i] = int(p)
	}
	resp, err := c.c.OffsetFetch(ctx, &kafka.OffsetFetchRequest{GroupID: group, Topics: map[string][]int{topic: ps}})
	if err != nil {
		return nil, fmt.Errorf("committed offsets of topic %s for group %s: %w", topic, group, err)
	}
	if resp.Error != nil {
		return nil, fmt.Errorf("committed offsets of topic %s for group %s: %w", topic, group, resp.Error)
	}
	out := map[int32]int64{}
	for _, pr := range resp.Topics[topic] {
		if pr.Error != nil {
			return nil, fmt.Errorf("committed offset of topic %s partition %d for group %s: %w", topic, pr.Partition, group, pr.Error)
		}
		if pr.CommittedOffset >= 0 {
			out[int32(pr.Partition)] = pr.CommittedOffset
		}
	}
	return out, nil
}
