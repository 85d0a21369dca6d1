package activities

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/segmentio/kafka-go"
	"go.temporal.io/sdk/temporal"

	"github.com/acme/pipeline/blueprint"
)

// ApplyConduit creates the topic with particoes partitions and retencao_horas
// retention, adds partitions when particoes was raised (Kafka cannot shrink a
// topic: fewer partitions than the topic has is refused), and sets
// retention.ms.
func (p *Provisioner) ApplyConduit(ctx context.Context, in ResourceInput) (ResourceResult, error) {
	return apply(ctx, p, in, blueprint.KindConduit, func(ctx context.Context, cfg blueprint.ConduitConfig) (string, error) {
		if cfg.Partitions < 1 || cfg.RetentionHours < 1 {
			return "", temporal.NewNonRetryableApplicationError(
				fmt.Sprintf("particoes %d, retencao_horas %d: both must be at least 1", cfg.Partitions, cfg.RetentionHours), ErrTypeInvalid, nil)
		}
		topic := in.Name
		retentionMS := strconv.FormatInt(cfg.Retention().Milliseconds(), 10)
		transport, err := p.cfg.KafkaConn.Transport(&kafka.Transport{ClientID: "pipeline-provision"})
		if err != nil {
			return "", err
		}
		defer transport.CloseIdleConnections()
		kc := &kafka.Client{Addr: kafka.TCP(p.cfg.KafkaBrokers...), Timeout: 15 * time.Second, Transport: transport}
		created, err := kc.CreateTopics(ctx, &kafka.CreateTopicsRequest{Topics: []kafka.TopicConfig{{
			Topic: topic, NumPartitions: cfg.Partitions, ReplicationFactor: 1,
			ConfigEntries: []kafka.ConfigEntry{{ConfigName: "retention.ms", ConfigValue: retentionMS}},
		}}})
		if err != nil {
			return "", fmt.Errorf("create topic: %w", p.cfg.KafkaConn.Explain(err))
		}
		isNew := true
		if terr := created.Errors[topic]; terr != nil {
			if !errors.Is(terr, kafka.TopicAlreadyExists) {
				return "", fmt.Errorf("create topic (%d partitions): %w", cfg.Partitions, terr)
			}
			isNew = false
		}
		have, err := p.partitions(ctx, topic)
		if err != nil {
			return "", err
		}
		var did []string
		if isNew {
			did = append(did, "created")
		}
		switch {
		case have > cfg.Partitions:
			return "", refused("particoes %d: the topic has %d partitions and Kafka cannot shrink a topic; declare at least %d",
				cfg.Partitions, have, have)
		case have < cfg.Partitions:
			resp, err := kc.CreatePartitions(ctx, &kafka.CreatePartitionsRequest{Topics: []kafka.TopicPartitionsConfig{{
				Name: topic, Count: int32(cfg.Partitions),
			}}})
			if err != nil {
				return "", fmt.Errorf("add partitions %d → %d: %w", have, cfg.Partitions, err)
			}
			if perr := resp.Errors[topic]; perr != nil {
				return "", fmt.Errorf("add partitions %d → %d: %w", have, cfg.Partitions, perr)
			}
			did = append(did, fmt.Sprintf("partitions %d → %d", have, cfg.Partitions))
		}
		if !isNew {
			resp, err := kc.AlterConfigs(ctx, &kafka.AlterConfigsRequest{Resources: []kafka.AlterConfigRequestResource{{
				ResourceType: kafka.ResourceTypeTopic, ResourceName: topic,
				Configs: []kafka.AlterConfigRequestConfig{{Name: "retention.ms", Value: retentionMS}},
			}}})
			if err != nil {
				return "", fmt.Errorf("set retention.ms=%s: %w", retentionMS, err)
			}
			for _, rerr := range resp.Errors {
				if rerr != nil {
					return "", fmt.Errorf("set retention.ms=%s: %w", retentionMS, rerr)
				}
			}
		}
		if len(did) == 0 {
			did = append(did, "in place")
		}
		return fmt.Sprintf("topic %s: %s; %d partitions, retention %dh (retention.ms=%s)",
			topic, strings.Join(did, ", "), cfg.Partitions, cfg.RetentionHours, retentionMS), nil
	})
}

// partitions returns the topic's partition count, asked of a broker directly
// (kafka.Client caches metadata).
func (p *Provisioner) partitions(ctx context.Context, topic string) (int, error) {
	dialer, err := p.cfg.KafkaConn.Dialer(&kafka.Dialer{Timeout: 10 * time.Second, ClientID: "pipeline-provision"})
	if err != nil {
		return 0, err
	}
	var lastErr error
	for _, b := range p.cfg.KafkaBrokers {
		conn, err := dialer.DialContext(ctx, "tcp", b)
		if err != nil {
			lastErr = p.cfg.KafkaConn.Explain(err)
			continue
		}
		ps, err := conn.ReadPartitions(topic)
		conn.Close()
		if err != nil {
			lastErr = err
			continue
		}
		return len(ps), nil
	}
	return 0, fmt.Errorf("read partitions of topic %s: %w", topic, lastErr)
}
