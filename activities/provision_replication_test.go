package activities

import (
	"context"
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"

	"github.com/acme/pipeline/blueprint"
	"github.com/acme/pipeline/internal/devstack"
	"github.com/acme/pipeline/internal/streamtest"
)

// TestConduitReplicationOnRealBrokers provisions the seed's conduit the way
// Provision does (DescribeCluster, the plan, ApplyConduit) on a 1-broker
// and a 3-broker kfake cluster and reads the topic back with franz-go's
// raw protocol, not the code under test: each partition's replicas and
// min.insync.replicas.
func TestConduitReplicationOnRealBrokers(t *testing.T) {
	store, _ := streamtest.Database(t)
	seed, err := blueprint.Load("../deploy/blueprint.json")
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name     string
		brokers  int
		existing int16 // a topic already there with this many replicas (0: none)
		edit     func(*blueprint.ConduitConfig)
		rf, isr  int
		errText  string // ApplyConduit's error, when it must fail
		retry    bool   // the error is retryable
	}{
		{name: "one broker: one copy", brokers: 1, rf: 1, isr: 1},
		{name: "three brokers: three copies, two in sync", brokers: 3, rf: 3, isr: 2},
		{name: "min_sincronas raised on the existing topic", brokers: 3, existing: 3,
			edit: func(c *blueprint.ConduitConfig) { c.MinInsync = 3 }, rf: 3, isr: 3},
		{name: "more copies than brokers is refused", brokers: 1,
			edit:    func(c *blueprint.ConduitConfig) { c.Replication, c.MinInsync = 3, 2 },
			errText: "replicacao 3: the brokers refused it"},
		// kfake accepts a reassignment and never moves a replica: the wait
		// ends in a retryable error that names the partitions.
		{name: "a reassignment the brokers do not finish", brokers: 3, existing: 1,
			errText: "partitions [0 1 2 3 4 5 6 7 8 9 10 11] lack 3 replicas", retry: true},
	}
	defer func(p, w time.Duration) { reassignPoll, reassignWait = p, w }(reassignPoll, reassignWait)
	reassignPoll, reassignWait = 50*time.Millisecond, 500*time.Millisecond

	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cluster, err := kfake.NewCluster(kfake.NumBrokers(tc.brokers))
			if err != nil {
				t.Fatal(err)
			}
			defer cluster.Close()
			topic := "events"
			raw, err := kgo.NewClient(kgo.SeedBrokers(cluster.ListenAddrs()...))
			if err != nil {
				t.Fatal(err)
			}
			defer raw.Close()
			if tc.existing > 0 {
				req := kmsg.NewCreateTopicsRequest()
				rt := kmsg.NewCreateTopicsRequestTopic()
				rt.Topic, rt.NumPartitions, rt.ReplicationFactor = topic, 12, tc.existing
				req.Topics = append(req.Topics, rt)
				if _, err := req.RequestWith(context.Background(), raw); err != nil {
					t.Fatal(err)
				}
			}
			p, err := NewProvisioner(ProvisionerConfig{Store: store, KafkaBrokers: cluster.ListenAddrs(),
				S3: devstack.S3Client("http://127.0.0.1:1", "us-east-1", "unused", "unused")})
			if err != nil {
				t.Fatal(err)
			}
			var suite testsuite.WorkflowTestSuite
			env := suite.NewTestActivityEnvironment()
			env.RegisterActivity(p)

			v, err := env.ExecuteActivity(p.DescribeCluster)
			if err != nil {
				t.Fatal(err)
			}
			var cl blueprint.Cluster
			if err := v.Get(&cl); err != nil || cl.Brokers != tc.brokers {
				t.Fatalf("DescribeCluster = %+v, %v; want %d brokers", cl, err, tc.brokers)
			}
			plan := blueprint.DiffCluster(seed, nil, cl)
			var cfg blueprint.ConduitConfig
			for _, ch := range plan.Changes {
				if ch.Kind == blueprint.KindConduit {
					_ = json.Unmarshal(ch.Desired, &cfg)
				}
			}
			if tc.edit != nil {
				tc.edit(&cfg)
			}
			conf, _ := json.Marshal(cfg)
			_, err = env.ExecuteActivity(p.ApplyConduit, ResourceInput{Kind: blueprint.KindConduit, Name: topic, Config: conf})
			if tc.errText != "" {
				var appErr *temporal.ApplicationError
				if err == nil || !strings.Contains(err.Error(), tc.errText) || !errors.As(err, &appErr) || appErr.NonRetryable() == tc.retry {
					t.Fatalf("error %v; want %q, retryable %v", err, tc.errText, tc.retry)
				}
				t.Logf("refused as wanted: %v", err)
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			replicas, isr := readBack(t, raw, topic)
			if len(replicas) != 12 {
				t.Fatalf("%d partitions, want 12", len(replicas))
			}
			for id, rs := range replicas {
				distinct := map[int32]bool{}
				for _, r := range rs {
					distinct[r] = true
				}
				if len(rs) != tc.rf || len(distinct) != tc.rf {
					t.Errorf("partition %d: replicas %v, want %d on different brokers", id, rs, tc.rf)
				}
			}
			if isr != tc.isr {
				t.Errorf("min.insync.replicas %d, want %d", isr, tc.isr)
			}
			rows, err := store.Catalog(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			for _, r := range rows {
				var got blueprint.ConduitConfig
				if r.Kind == "conduit" && r.Name == topic && (json.Unmarshal(r.Config, &got) != nil || !reflect.DeepEqual(got, cfg)) {
					t.Errorf("catalog records %s, want %s", r.Config, conf)
				}
			}
		})
	}
}

// readBack returns each partition's replicas and the topic's
// min.insync.replicas, asked with raw Kafka requests.
func readBack(t *testing.T, cl *kgo.Client, topic string) (map[int32][]int32, int) {
	t.Helper()
	ctx := context.Background()
	md := kmsg.NewMetadataRequest()
	mt := kmsg.NewMetadataRequestTopic()
	mt.Topic = kmsg.StringPtr(topic)
	md.Topics = append(md.Topics, mt)
	mresp, err := md.RequestWith(ctx, cl)
	if err != nil || len(mresp.Topics) != 1 {
		t.Fatalf("metadata: %v", err)
	}
	out := map[int32][]int32{}
	for _, p := range mresp.Topics[0].Partitions {
		out[p.Partition] = p.Replicas
	}
	dc := kmsg.NewDescribeConfigsRequest()
	res := kmsg.NewDescribeConfigsRequestResource()
	res.ResourceType, res.ResourceName, res.ConfigNames = kmsg.ConfigResourceTypeTopic, topic, []string{"min.insync.replicas"}
	dc.Resources = append(dc.Resources, res)
	dresp, err := dc.RequestWith(ctx, cl)
	if err != nil || len(dresp.Resources) != 1 || len(dresp.Resources[0].Configs) != 1 {
		t.Fatalf("describe configs: %v %+v", err, dresp)
	}
	var isr int
	if v := dresp.Resources[0].Configs[0].Value; v != nil {
		_ = json.Unmarshal([]byte(*v), &isr)
	}
	return out, isr
}

func TestTargetReplicas(t *testing.T) {
	cases := []struct {
		name    string
		current map[int][]int
		brokers []int
		rf      int
		want    map[int][]int
	}{
		{name: "1 → 3 keeps the leader first and spreads the copies",
			current: map[int][]int{0: {1}, 1: {2}, 2: {3}}, brokers: []int{1, 2, 3}, rf: 3,
			want: map[int][]int{0: {1, 2, 3}, 1: {2, 1, 3}, 2: {3, 1, 2}}},
		{name: "1 → 2 on five brokers picks the least loaded",
			current: map[int][]int{0: {1}, 1: {1}, 2: {2}}, brokers: []int{1, 2, 3, 4, 5}, rf: 2,
			want: map[int][]int{0: {1, 3}, 1: {1, 4}, 2: {2, 5}}},
		{name: "partitions with rf copies are left alone",
			current: map[int][]int{0: {1, 2, 3}, 1: {2}}, brokers: []int{1, 2, 3}, rf: 3,
			want: map[int][]int{1: {2, 1, 3}}},
		{name: "3 → 1 keeps the leader",
			current: map[int][]int{0: {2, 1, 3}}, brokers: []int{1, 2, 3}, rf: 1,
			want: map[int][]int{0: {2}}},
		{name: "nothing to do", current: map[int][]int{0: {1}}, brokers: []int{1}, rf: 1, want: map[int][]int{}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := targetReplicas(topicLayout{replicas: tc.current, brokers: tc.brokers}, tc.rf)
			if !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("got %v, want %v", got, tc.want)
			}
		})
	}
}
