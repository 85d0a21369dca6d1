package kafkaread

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/segmentio/kafka-go/protocol"
	fetchapi "github.com/segmentio/kafka-go/protocol/fetch"
)

// This file reads with read_committed isolation. kafka-go's Client.Fetch
// sends the isolation level but drops the response's list of aborted
// transactions (segmentio/kafka-go#1332), so records of aborted transactions
// would reach the caller. Here the fetch goes through the transport itself
// and the response's record batches are walked with that list, the way the
// Java consumer does: a transactional batch is skipped while its producer is
// inside an aborted transaction, which ends at the producer's ABORT marker.
// Control batches (the COMMIT and ABORT markers) are never records either.
// Both still occupy offsets: Batch.Next moves past them, so a partition
// whose tail is a marker or an aborted transaction is read to its end.

// readCommitted is Kafka's isolation level 1.
const readCommitted = 1

// controlAbort is the type of an ABORT marker's control record (COMMIT is 1).
const controlAbort = 0

type fetched struct {
	hwm     int64
	err     error // the partition's error code, if any
	records protocol.RecordReader
	aborted []fetchapi.ResponseTransaction
}

// fetch sends one Fetch request for a partition with read_committed
// isolation; the transport routes it to the partition's leader.
func (c *Client) fetch(ctx context.Context, topic string, p int32, offset int64, minBytes, maxBytes int, wait time.Duration) (fetched, error) {
	m, err := c.c.Transport.RoundTrip(ctx, c.c.Addr, &fetchapi.Request{
		ReplicaID:      -1,
		MaxWaitTime:    int32(max(1, wait.Milliseconds())),
		MinBytes:       int32(minBytes),
		MaxBytes:       int32(maxBytes),
		IsolationLevel: readCommitted,
		SessionID:      -1,
		SessionEpoch:   -1,
		Topics: []fetchapi.RequestTopic{{
			Topic: topic,
			Partitions: []fetchapi.RequestPartition{{
				Partition:          p,
				CurrentLeaderEpoch: -1,
				FetchOffset:        offset,
				LogStartOffset:     -1,
				PartitionMaxBytes:  int32(maxBytes),
			}},
		}},
	})
	if err != nil {
		return fetched{}, c.conn.Explain(err)
	}
	res, ok := m.(*fetchapi.Response)
	if !ok {
		return fetched{}, fmt.Errorf("unexpected fetch response %T", m)
	}
	if res.ErrorCode != 0 {
		return fetched{}, kafka.Error(res.ErrorCode)
	}
	for _, t := range res.Topics {
		for _, pr := range t.Partitions {
			if t.Topic != topic || pr.Partition != p {
				continue
			}
			f := fetched{hwm: pr.HighWatermark, records: pr.RecordSet.Records, aborted: pr.AbortedTransactions}
			if pr.ErrorCode != 0 {
				f.err = kafka.Error(pr.ErrorCode)
			}
			return f, nil
		}
	}
	return fetched{}, errors.New("the fetch response holds no answer for the partition")
}

// abortFilter tracks, along one fetch response, which producers are inside
// an aborted transaction.
type abortFilter struct {
	pending []fetchapi.ResponseTransaction // by first offset, not yet reached
	open    map[int64]bool                 // producer ids inside an aborted transaction
}

func newAbortFilter(txns []fetchapi.ResponseTransaction) *abortFilter {
	pending := slices.Clone(txns)
	slices.SortFunc(pending, func(a, b fetchapi.ResponseTransaction) int { return cmp.Compare(a.FirstOffset, b.FirstOffset) })
	return &abortFilter{pending: pending, open: map[int64]bool{}}
}

// skip reports whether the records of a data batch are left out: the batch is
// transactional and its producer is inside an aborted transaction.
func (f *abortFilter) skip(b *protocol.RecordBatch) bool {
	if !b.Attributes.Transactional() {
		return false
	}
	// Batches never overlap, so an aborted transaction starting at or before
	// this batch's base offset has begun for its producer.
	for len(f.pending) > 0 && f.pending[0].FirstOffset <= b.BaseOffset {
		f.open[f.pending[0].ProducerID] = true
		f.pending = f.pending[1:]
	}
	return f.open[b.ProducerID]
}

// marker applies a control batch: an ABORT marker ends its producer's
// aborted transaction. It returns the offset past the batch (0 if empty).
func (f *abortFilter) marker(b *protocol.ControlBatch) (int64, error) {
	var next int64
	for {
		cr, err := b.ReadControlRecord()
		if errors.Is(err, io.EOF) {
			return next, nil
		}
		if err != nil {
			return next, fmt.Errorf("control record at base offset %d: %w", b.BaseOffset, err)
		}
		if cr.Type == controlAbort {
			delete(f.open, b.ProducerID)
		}
		next = cr.Offset + 1
	}
}

// batches lists the record batches of a fetch response, in offset order.
func batches(rr protocol.RecordReader) []protocol.RecordReader {
	switch r := rr.(type) {
	case nil:
		return nil
	case *protocol.RecordStream:
		return r.Records
	default:
		return []protocol.RecordReader{r}
	}
}

// drain reads and drops what is left of a batch, returning the offset past
// its last record (0 if it had none left).
func drain(rr protocol.RecordReader) (int64, error) {
	var next int64
	for {
		r, err := rr.ReadRecord()
		if errors.Is(err, io.EOF) {
			return next, nil
		}
		if err != nil {
			return next, err
		}
		next = r.Offset + 1
		discard(r)
	}
}
