package kafkaread

import (
	"context"
	"encoding/base64"
	"fmt"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// TopicID is Kafka's id of one incarnation of a topic (KIP-516, Kafka 2.8
// and later): a topic deleted and created again under the same name gets a
// new id, and numbers its records from offset 0 again. The zero value means
// the broker did not say.
type TopicID [16]byte

// IsZero reports whether the broker gave no id.
func (id TopicID) IsZero() bool { return id == TopicID{} }

// String is the id as Kafka prints it (`kafka-topics.sh --describe`:
// URL-safe base64 without padding, 22 characters); "" for the zero id.
func (id TopicID) String() string {
	if id.IsZero() {
		return ""
	}
	return base64.RawURLEncoding.EncodeToString(id[:])
}

// ParseTopicID parses an id printed by String (or by Kafka's tools).
func ParseTopicID(s string) (TopicID, error) {
	var id TopicID
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil || len(b) != len(id) {
		return id, fmt.Errorf("topic id %q: want Kafka's form, 22 characters of URL-safe base64", s)
	}
	copy(id[:], b)
	return id, nil
}

// TopicID asks the brokers for the id of topic's current incarnation. The
// request is Metadata v10 or later, which kafka-go does not speak, so it
// goes through a franz-go client with the same TLS and SASL, built on first
// use. A broker too old to know topic ids answers the zero TopicID and no
// error; a topic that does not exist is an error.
func (c *Client) TopicID(ctx context.Context, topic string) (TopicID, error) {
	cl, err := c.franzClient()
	if err != nil {
		return TopicID{}, err
	}
	ctx, cancel := context.WithTimeout(ctx, c.c.Timeout)
	defer cancel()
	req := kmsg.NewPtrMetadataRequest()
	rt := kmsg.NewMetadataRequestTopic()
	rt.Topic = kmsg.StringPtr(topic)
	req.Topics = append(req.Topics, rt)
	req.AllowAutoTopicCreation = false // asking for an id must never create the topic
	resp, err := req.RequestWith(ctx, cl)
	if err != nil {
		return TopicID{}, fmt.Errorf("topic id of %s: %w", topic, c.conn.Explain(err))
	}
	for _, t := range resp.Topics {
		if t.Topic == nil || *t.Topic != topic {
			continue
		}
		if err := kerr.ErrorForCode(t.ErrorCode); err != nil {
			return TopicID{}, fmt.Errorf("topic id of %s: %w", topic, err)
		}
		return TopicID(t.TopicID), nil
	}
	return TopicID{}, fmt.Errorf("topic id of %s: the brokers did not answer for it: %w", topic, kerr.UnknownTopicOrPartition)
}

// franzClient returns the franz-go client, building it on first use.
func (c *Client) franzClient() (*kgo.Client, error) {
	c.franzMu.Lock()
	defer c.franzMu.Unlock()
	if c.franz != nil {
		return c.franz, nil
	}
	opts, err := c.conn.FranzOpts()
	if err != nil {
		return nil, fmt.Errorf("kafkaread: %w", err)
	}
	opts = append(opts, kgo.SeedBrokers(c.brokers...), kgo.ClientID(c.clientID))
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		return nil, fmt.Errorf("kafkaread: %w", err)
	}
	c.franz = cl
	return cl, nil
}

// closeFranz closes the franz-go client, if one was built.
func (c *Client) closeFranz() {
	c.franzMu.Lock()
	defer c.franzMu.Unlock()
	if c.franz != nil {
		c.franz.Close()
		c.franz = nil
	}
}
