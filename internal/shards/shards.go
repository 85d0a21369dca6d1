// Package shards names the live stream's shards and reads their state from
// Temporal. A shard is one StreamCompaction workflow, with the id
// stream-compaction-TOPIC-SHARD-of-SHARDS; whether each one runs is what
// Temporal knows, not the warehouse (a failed or terminated workflow writes
// nothing), so the SLO monitor asks Temporal every evaluation and pages on
// a shard that stopped.
package shards

import (
	"fmt"
	"strconv"
	"strings"
)

// WorkflowType is the workflow type of a shard.
const WorkflowType = "StreamCompaction"

// WorkflowID is the workflow id of one shard of topic cut into shards.
func WorkflowID(topic string, shard, shards int) string {
	return fmt.Sprintf("stream-compaction-%s-%d-of-%d", topic, shard, shards)
}

// Parse returns the shard and shard count of a shard's workflow id of
// topic; ok is false for any other id (another topic's, or not a shard's).
// Topic names may hold dashes, so the numbers are read from the end.
func Parse(id, topic string) (shard, shards int, ok bool) {
	rest, found := strings.CutPrefix(id, "stream-compaction-"+topic+"-")
	if !found {
		return 0, 0, false
	}
	a, b, found := strings.Cut(rest, "-of-")
	if !found {
		return 0, 0, false
	}
	shard, err1 := strconv.Atoi(a)
	shards, err2 := strconv.Atoi(b)
	if err1 != nil || err2 != nil || shards < 1 || shard < 0 || shard >= shards || WorkflowID(topic, shard, shards) != id {
		return 0, 0, false
	}
	return shard, shards, true
}

// Missing is the state of a shard of the current cut that Temporal knows
// no run of (never started, or past the namespace's retention).
const Missing = "missing"
