package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/segmentio/kafka-go"

	"github.com/acme/pipeline/event"
	"github.com/acme/pipeline/ingest"
)

// The events both sides send: the same content as an API request body and
// as the records the API would write.

var occurred = time.Date(2026, 11, 24, 14, 5, 9, 0, time.UTC)

func makeEvent(seed, i int) event.Event {
	return event.Event{
		EventID:    uuid.Must(uuid.NewV7()).String(),
		Type:       "page_view",
		OccurredAt: occurred.Add(time.Duration(i) * time.Millisecond),
		ReceivedAt: time.Now().UTC(),
		Source:     "web",
		UserID:     fmt.Sprintf("user-%d-%d", seed, i%97),
		Properties: json.RawMessage(fmt.Sprintf(`{"path":"/products/%d","referrer":"https://www.example.com/search?q=item+%d","screen":"1920x1080","session":"s-%d-%d"}`, i, i, seed, i/10)),
	}
}

// apiBody is a JSON array of batch events as a client sends them: no
// event_id or received_at (the API assigns them).
func apiBody(seed, batch int) []byte {
	var b bytes.Buffer
	b.WriteByte('[')
	for i := range batch {
		if i > 0 {
			b.WriteByte(',')
		}
		e := makeEvent(seed, i)
		fmt.Fprintf(&b, `{"type":%q,"occurred_at":%q,"source":%q,"user_id":%q,"properties":%s}`,
			e.Type, e.OccurredAt.Format(time.RFC3339Nano), e.Source, e.UserID, e.Properties)
	}
	b.WriteByte(']')
	return b.Bytes()
}

// kafkaBatch is the same events as records, as the API writes them.
func kafkaBatch(seed, batch int) []kafka.Message {
	now := time.Now().UTC()
	headers := []kafka.Header{
		{Key: "traceparent", Value: []byte("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")},
		{Key: ingest.HeaderReceivedAt, Value: []byte(now.Format(time.RFC3339Nano))},
		{Key: ingest.HeaderAPIKeyName, Value: []byte("bench")},
	}
	msgs := make([]kafka.Message, batch)
	for i := range msgs {
		e := makeEvent(seed, i)
		v, err := e.Marshal()
		if err != nil {
			panic(err)
		}
		msgs[i] = kafka.Message{Key: e.Key(), Value: v, Headers: headers, Time: now}
	}
	return msgs
}
