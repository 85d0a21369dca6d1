// Package kafkaread reads Kafka partitions in batches at explicit offsets and
// commits offsets to a consumer group, for the stream's writers: each
// partition has exactly one writer, which holds its position itself (in
// workflow state), so no group membership or rebalancing is involved. Commits
// only make the position visible to standard Kafka tools (lag).
package kafkaread

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"sync"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/segmentio/kafka-go/protocol"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/acme/pipeline/internal/kafkaconn"
	"github.com/acme/pipeline/internal/record"
)

// Config configures a Client.
type Config struct {
	// Brokers are the bootstrap brokers, host:port. Required.
	Brokers []string
	// ClientID names the client to the brokers. Default "pipeline-stream".
	ClientID string
	// Timeout bounds each request other than fetches (metadata, offsets,
	// commits). Default 10s.
	Timeout time.Duration
	// Conn is the connections' TLS and SASL (KAFKA_TLS, KAFKA_SASL_*). The
	// zero value is plaintext without authentication.
	Conn kafkaconn.Config
}

// Client reads partitions and commits offsets. It is safe for concurrent use
// and keeps its connections between calls.
type Client struct {
	c        *kafka.Client
	conn     kafkaconn.Config
	brokers  []string
	clientID string

	franzMu sync.Mutex
	franz   *kgo.Client // for TopicID (topicid.go); nil until first used
}

// New builds a Client; it connects on first use.
func New(cfg Config) (*Client, error) {
	if len(cfg.Brokers) == 0 {
		return nil, errors.New("kafkaread: Brokers (KAFKA_BROKERS) is required")
	}
	if cfg.ClientID == "" {
		cfg.ClientID = "pipeline-stream"
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 10 * time.Second
	}
	t, err := cfg.Conn.Transport(&kafka.Transport{
		ClientID:    cfg.ClientID,
		IdleTimeout: 5 * time.Minute,
		MetadataTTL: 30 * time.Second,
	})
	if err != nil {
		return nil, fmt.Errorf("kafkaread: %w", err)
	}
	return &Client{c: &kafka.Client{
		Addr:      kafka.TCP(cfg.Brokers...),
		Timeout:   cfg.Timeout,
		Transport: t,
	}, conn: cfg.Conn, brokers: cfg.Brokers, clientID: cfg.ClientID}, nil
}

// Close releases idle connections.
func (c *Client) Close() {
	if t, ok := c.c.Transport.(*kafka.Transport); ok {
		t.CloseIdleConnections()
	}
	c.closeFranz()
}

// Partitions lists the partitions of topic, in order.
func (c *Client) Partitions(ctx context.Context, topic string) ([]int32, error) {
	md, err := c.c.Metadata(ctx, &kafka.MetadataRequest{Topics: []string{topic}})
	if err != nil {
		return nil, fmt.Errorf("metadata of topic %s: %w", topic, c.conn.Explain(err))
	}
	for _, t := range md.Topics {
		if t.Name != topic {
			continue
		}
		if t.Error != nil {
			return nil, fmt.Errorf("metadata of topic %s: %w", topic, t.Error)
		}
		ps := make([]int32, 0, len(t.Partitions))
		for _, p := range t.Partitions {
			ps = append(ps, int32(p.ID))
		}
		slices.Sort(ps)
		return ps, nil
	}
	return nil, fmt.Errorf("metadata of topic %s: %w", topic, kafka.UnknownTopicOrPartition)
}

// Position is where a consumer stands in one partition.
type Position struct {
	Partition int32
	First     int64 // the oldest offset the partition still retains
	End       int64 // the partition's next offset (the high watermark)
	Next      int64 // the consumer's next offset; First when it has none
	Stored    bool  // the consumer has an offset for the partition
	Lag       int64 // End − Next, never negative
}

// Positions compares a consumer's next offsets (by partition; pipeline's
// stream keeps them in pipeline.stream_offsets) with every partition of
// topic, in partition order.
func (c *Client) Positions(ctx context.Context, topic string, next map[int32]int64) ([]Position, error) {
	parts, err := c.Partitions(ctx, topic)
	if err == nil && len(parts) == 0 {
		err = fmt.Errorf("topic %s has no partitions", topic)
	}
	if err != nil {
		return nil, err
	}
	bounds, err := c.Bounds(ctx, topic, parts)
	if err != nil {
		return nil, err
	}
	out := make([]Position, 0, len(parts))
	for _, p := range parts {
		b := bounds[p]
		pos := Position{Partition: p, First: b.First, End: b.Next, Next: b.First}
		if n, ok := next[p]; ok {
			pos.Next, pos.Stored = n, true
		}
		pos.Lag = max(0, pos.End-pos.Next)
		out = append(out, pos)
	}
	slices.SortFunc(out, func(a, b Position) int { return int(a.Partition - b.Partition) })
	return out, nil
}

// Bounds is the range of offsets a partition holds: First is the oldest
// offset still retained, Next the offset the next record will get (the high
// watermark).
type Bounds struct {
	First, Next int64
}

// Bounds returns the bounds of partitions of topic.
func (c *Client) Bounds(ctx context.Context, topic string, partitions []int32) (map[int32]Bounds, error) {
	req := make([]kafka.OffsetRequest, 0, 2*len(partitions))
	for _, p := range partitions {
		req = append(req, kafka.FirstOffsetOf(int(p)), kafka.LastOffsetOf(int(p)))
	}
	resp, err := c.c.ListOffsets(ctx, &kafka.ListOffsetsRequest{Topics: map[string][]kafka.OffsetRequest{topic: req}})
	if err != nil {
		return nil, fmt.Errorf("list offsets of topic %s: %w", topic, c.conn.Explain(err))
	}
	out := make(map[int32]Bounds, len(partitions))
	for _, po := range resp.Topics[topic] {
		if po.Error != nil {
			return nil, fmt.Errorf("list offsets of topic %s partition %d: %w", topic, po.Partition, po.Error)
		}
		out[int32(po.Partition)] = Bounds{First: po.FirstOffset, Next: po.LastOffset}
	}
	for _, p := range partitions {
		if _, ok := out[p]; !ok {
			return nil, fmt.Errorf("list offsets of topic %s: no answer for partition %d", topic, p)
		}
	}
	return out, nil
}

// ReadRequest asks for the records of one partition from Offset on.
type ReadRequest struct {
	Topic     string
	Partition int32
	Offset    int64
	// MaxRecords stops the read once this many records are in. Required.
	MaxRecords int
	// Wait is how long to wait for MaxRecords in total; the read returns what
	// it has when the wait is over (possibly nothing). Required.
	Wait time.Duration
	// MaxBytes bounds one fetch response. Default 4 MiB.
	MaxBytes int
}

// Batch is the result of a read.
type Batch struct {
	Records []record.Record // in offset order
	// Next is the offset to read from next: one past the last offset
	// consumed (a record, a transaction marker or an aborted record), or the
	// requested offset when nothing was consumed. Records may therefore be
	// empty while Next moved.
	Next int64
	// HighWatermark is the partition's next offset as of the last fetch.
	HighWatermark int64
	// Fetches is the number of fetch round trips.
	Fetches int
}

// OutOfRangeError reports a read at an offset the partition no longer (or
// not yet) holds: retention deleted it, or the topic was recreated.
type OutOfRangeError struct {
	Topic     string
	Partition int32
	Offset    int64
}

func (e *OutOfRangeError) Error() string {
	return fmt.Sprintf("topic %s partition %d: offset %d is out of range", e.Topic, e.Partition, e.Offset)
}

// Read fetches the committed records of one partition in batches (one round
// trip brings up to MaxBytes) until MaxRecords are in or Wait has elapsed.
// Records of aborted transactions and transaction markers are not returned,
// but Next moves past them (committed.go).
func (c *Client) Read(ctx context.Context, req ReadRequest) (Batch, error) {
	if req.MaxBytes <= 0 {
		req.MaxBytes = 4 << 20
	}
	b := Batch{Next: req.Offset, HighWatermark: -1}
	deadline := time.Now().Add(req.Wait)
	var bytesIn int
	for len(b.Records) < req.MaxRecords {
		// The first fetch takes what is there at once; later ones wait for
		// about the bytes the missing records need (by the average size so
		// far), or until the deadline.
		wait := time.Millisecond
		minBytes := 1
		if b.Fetches > 0 {
			if wait = time.Until(deadline); wait < time.Millisecond {
				break
			}
			avg := 256
			if len(b.Records) > 0 {
				avg = max(1, bytesIn/len(b.Records))
			}
			minBytes = min(req.MaxBytes, (req.MaxRecords-len(b.Records))*avg)
		}
		fctx, cancel := context.WithTimeout(ctx, wait+c.c.Timeout)
		resp, err := c.fetch(fctx, req.Topic, req.Partition, b.Next, minBytes, req.MaxBytes, wait)
		b.Fetches++
		if err != nil {
			cancel()
			return b, fmt.Errorf("fetch topic %s partition %d at offset %d: %w", req.Topic, req.Partition, b.Next, err)
		}
		if resp.err != nil {
			cancel()
			if errors.Is(resp.err, kafka.OffsetOutOfRange) {
				return b, &OutOfRangeError{Topic: req.Topic, Partition: req.Partition, Offset: b.Next}
			}
			return b, fmt.Errorf("fetch topic %s partition %d at offset %d: %w", req.Topic, req.Partition, b.Next, resp.err)
		}
		b.HighWatermark = resp.hwm
		n0 := len(b.Records)
		err = c.collect(resp, req, &b)
		cancel()
		if err != nil {
			return b, fmt.Errorf("read topic %s partition %d at offset %d: %w", req.Topic, req.Partition, b.Next, err)
		}
		for _, r := range b.Records[n0:] {
			bytesIn += len(r.Value) + len(r.Key) + 24
		}
	}
	return b, nil
}

// collect appends the committed records of one fetch response to b and moves
// b.Next past what it consumed, markers and aborted records included.
func (c *Client) collect(resp fetched, req ReadRequest, b *Batch) error {
	f := newAbortFilter(resp.aborted)
	for _, rr := range batches(resp.records) {
		if len(b.Records) >= req.MaxRecords {
			return nil
		}
		var past int64
		var err error
		switch batch := rr.(type) {
		case *protocol.ControlBatch:
			past, err = f.marker(batch)
		case *protocol.RecordBatch:
			if f.skip(batch) {
				past, err = drain(batch)
			} else {
				err = c.keep(batch, req, b)
			}
		default:
			err = c.keep(rr, req, b)
		}
		if err != nil {
			return err
		}
		// Skipped offsets at or past the position are consumed; a batch
		// partly before it (Kafka returns whole batches) moves nothing back.
		b.Next = max(b.Next, past)
	}
	return nil
}

// keep appends the records of one data batch from b.Next on, up to
// req.MaxRecords.
func (c *Client) keep(rr protocol.RecordReader, req ReadRequest, b *Batch) error {
	for len(b.Records) < req.MaxRecords {
		r, err := rr.ReadRecord()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		if r.Offset < b.Next {
			// Kafka returns whole record batches: skip what precedes the
			// requested offset.
			discard(r)
			continue
		}
		key, err := protocol.ReadAll(r.Key)
		if err != nil {
			return fmt.Errorf("offset %d: key: %w", r.Offset, err)
		}
		val, err := protocol.ReadAll(r.Value)
		if err != nil {
			return fmt.Errorf("offset %d: value: %w", r.Offset, err)
		}
		rec := record.Record{Partition: req.Partition, Offset: r.Offset, Time: r.Time, Key: key, Value: val}
		if rec.Value == nil {
			rec.Value = []byte{}
		}
		for _, h := range r.Headers {
			rec.Headers = append(rec.Headers, record.Header{Key: h.Key, Value: slices.Clone(h.Value)})
		}
		b.Records = append(b.Records, rec)
		b.Next = r.Offset + 1
	}
	return nil
}

func discard(r *kafka.Record) {
	if r.Key != nil {
		r.Key.Close()
	}
	if r.Value != nil {
		r.Value.Close()
	}
}
