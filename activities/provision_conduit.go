package activities

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/segmentio/kafka-go"
	"go.temporal.io/sdk/temporal"

	"github.com/acme/pipeline/blueprint"
)

// ApplyConduit creates the topic with particoes partitions, replicacao
// copies and retencao_horas retention, adds partitions when particoes was
// raised (Kafka cannot shrink a topic: fewer partitions than the topic has
// is refused), reassigns the partitions when replicacao changed, sets
// retention.ms and min.insync.replicas (min_sincronas), and reads the
// replicas and min.insync.replicas back. A config without replicacao (a
// plan made before the cluster was asked) keeps the topic's replication as
// it is, and creates it with one copy, as those plans did.
func (p *Provisioner) ApplyConduit(ctx context.Context, in ResourceInput) (ResourceResult, error) {
	return apply(ctx, p, in, blueprint.KindConduit, func(ctx context.Context, cfg blueprint.ConduitConfig) (string, error) {
		if cfg.Partitions < 1 || cfg.RetentionHours < 1 {
			return "", temporal.NewNonRetryableApplicationError(
				fmt.Sprintf("particoes %d, retencao_horas %d: both must be at least 1", cfg.Partitions, cfg.RetentionHours), ErrTypeInvalid, nil)
		}
		if cfg.MinInsync > max(cfg.Replication, 1) {
			return "", refused("min_sincronas %d: more than replicacao %d", cfg.MinInsync, cfg.Replication)
		}
		topic := in.Name
		retentionMS := strconv.FormatInt(cfg.Retention().Milliseconds(), 10)
		settings := []kafka.ConfigEntry{{ConfigName: "retention.ms", ConfigValue: retentionMS}}
		if cfg.MinInsync > 0 {
			settings = append(settings, kafka.ConfigEntry{ConfigName: "min.insync.replicas", ConfigValue: strconv.Itoa(cfg.MinInsync)})
		}
		kc, closeIdle, err := p.kafkaClient()
		if err != nil {
			return "", err
		}
		defer closeIdle()
		created, err := kc.CreateTopics(ctx, &kafka.CreateTopicsRequest{Topics: []kafka.TopicConfig{{
			Topic: topic, NumPartitions: cfg.Partitions, ReplicationFactor: max(cfg.Replication, 1), ConfigEntries: settings,
		}}})
		if err != nil {
			return "", fmt.Errorf("create topic: %w", p.cfg.KafkaConn.Explain(err))
		}
		isNew := true
		if terr := created.Errors[topic]; terr != nil {
			switch {
			case errors.Is(terr, kafka.InvalidReplicationFactor):
				return "", refused("replicacao %d: the brokers refused it (%v); the cluster needs at least %d brokers", cfg.Replication, terr, cfg.Replication)
			case !errors.Is(terr, kafka.TopicAlreadyExists):
				return "", fmt.Errorf("create topic (%d partitions, %d replicas): %w", cfg.Partitions, max(cfg.Replication, 1), terr)
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
			if err := setTopicConfig(ctx, kc, topic, settings); err != nil {
				return "", err
			}
		}
		if cfg.Replication > 0 {
			moved, err := p.replicate(ctx, kc, topic, cfg.Replication)
			if err != nil {
				return "", err
			}
			if moved != "" {
				did = append(did, moved)
			}
		}
		if len(did) == 0 {
			did = append(did, "in place")
		}
		detail := fmt.Sprintf("topic %s: %s; %d partitions, retention %dh (retention.ms=%s)",
			topic, strings.Join(did, ", "), cfg.Partitions, cfg.RetentionHours, retentionMS)
		if cfg.Replication == 0 {
			return detail, nil
		}
		isr, err := minInsync(ctx, kc, topic)
		if err != nil {
			return "", err
		}
		if isr != cfg.MinInsync {
			return "", fmt.Errorf("topic %s: min.insync.replicas reads back as %d after setting %d", topic, isr, cfg.MinInsync)
		}
		return fmt.Sprintf("%s; replication %d, min.insync.replicas=%d", detail, cfg.Replication, isr), nil
	})
}

// setTopicConfig sets each setting on the topic and leaves its other
// configs as they are (IncrementalAlterConfigs; AlterConfigs would reset
// every config it is not given to the broker's default).
func setTopicConfig(ctx context.Context, kc *kafka.Client, topic string, settings []kafka.ConfigEntry) error {
	var cs []kafka.IncrementalAlterConfigsRequestConfig
	var names []string
	for _, e := range settings {
		cs = append(cs, kafka.IncrementalAlterConfigsRequestConfig{Name: e.ConfigName, Value: e.ConfigValue, ConfigOperation: kafka.ConfigOperationSet})
		names = append(names, e.ConfigName+"="+e.ConfigValue)
	}
	resp, err := kc.IncrementalAlterConfigs(ctx, &kafka.IncrementalAlterConfigsRequest{Resources: []kafka.IncrementalAlterConfigsRequestResource{{
		ResourceType: kafka.ResourceTypeTopic, ResourceName: topic, Configs: cs,
	}}})
	if err != nil {
		return fmt.Errorf("set %s on topic %s: %w", strings.Join(names, ", "), topic, err)
	}
	for _, r := range resp.Resources {
		if r.Error != nil {
			return fmt.Errorf("set %s on topic %s: %w", strings.Join(names, ", "), topic, r.Error)
		}
	}
	return nil
}

// partitions returns the topic's partition count (layout).
func (p *Provisioner) partitions(ctx context.Context, topic string) (int, error) {
	l, err := p.layout(ctx, topic)
	return len(l.replicas), err
}
