// Package record holds a Kafka record as the pipeline keeps it: what the
// stream reads (internal/kafkaread) and what bronze stores (lake). It sits
// apart so that reading Kafka does not depend on the lake, nor the lake on a
// Kafka client.
package record

import "time"

// Record is one Kafka record as consumed.
type Record struct {
	Partition int32
	Offset    int64
	Time      time.Time // the record's Kafka timestamp
	Key       []byte
	Value     []byte
	Headers   []Header
}

// Header is one Kafka record header.
type Header struct {
	Key   string
	Value []byte
}
