package devstack

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strconv"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/twmb/franz-go/pkg/kfake"
)

// startKafka runs kfake in-process: a Kafka-protocol broker that speaks to any
// client over TCP and keeps its log under Dir/kafka, so offsets survive a
// restart together with Temporal's state.
func (s *Stack) startKafka(ctx context.Context) error {
	addr := hostPort(s.cfg.KafkaPort)
	if !portFree(addr) {
		return fmt.Errorf("port %s is taken: another broker or `pipeline dev` is running", addr)
	}
	opts := []kfake.Opt{
		kfake.Ports(s.cfg.KafkaPort),
		kfake.DataDir(filepath.Join(s.cfg.Dir, "kafka")),
		kfake.DefaultNumPartitions(s.cfg.Partitions),
	}
	if s.cfg.SyncWrites {
		opts = append(opts, kfake.SyncWrites())
	}
	cluster, err := kfake.NewCluster(opts...)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", addr, err)
	}
	s.onClose(func() error { cluster.Close(); return nil })
	s.KafkaBrokers = cluster.ListenAddrs()
	if !s.cfg.CreateResources {
		return nil
	}
	return EnsureTopic(ctx, s.KafkaBrokers, s.cfg.Topic, s.cfg.Partitions, s.cfg.Retention)
}

// EnsureTopic creates the topic when it is missing. An existing topic is left
// as it is: growing or refusing to shrink it is provisioning's job.
func EnsureTopic(ctx context.Context, brokers []string, topic string, partitions int, retention time.Duration) error {
	client := &kafka.Client{Addr: kafka.TCP(brokers...), Timeout: 10 * time.Second}
	resp, err := client.CreateTopics(ctx, &kafka.CreateTopicsRequest{
		Topics: []kafka.TopicConfig{{
			Topic:             topic,
			NumPartitions:     partitions,
			ReplicationFactor: 1,
			ConfigEntries: []kafka.ConfigEntry{
				{ConfigName: "retention.ms", ConfigValue: strconv.FormatInt(retention.Milliseconds(), 10)},
			},
		}},
	})
	if err != nil {
		return fmt.Errorf("create topic %s: %w", topic, err)
	}
	if terr := resp.Errors[topic]; terr != nil && !errors.Is(terr, kafka.TopicAlreadyExists) {
		return fmt.Errorf("create topic %s (%d partitions): %w", topic, partitions, terr)
	}
	return nil
}
