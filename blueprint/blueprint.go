// Package blueprint reads the pipeline's declared state, the blueprint, and
// plans what provisioning must do to reach it.
//
// A blueprint is JSON with Portuguese keys, exactly as the seed's
// reference architecture spells it (deploy/blueprint.json):
//
//	{"nome": "Analytics Pipeline", "modo": "avancado", "recursos": [
//	  {"tipo": "conduit", "nome": "events", "config": {"particoes": 12, "retencao_horas": 168}},
//	  ...]}
//
// Parse validates the whole document before anything is provisioned and
// reports every problem at once (Errors), each naming the resource and the
// field. Diff compares a parsed blueprint with the catalog of provisioned
// resources and returns a Plan, the way terraform plan does.
//
// # Resources and their config
//
// Each tipo has a typed config. Omitted optional keys take the defaults below;
// a key that is present must have the right JSON type (a quoted "12" is not a
// number, null is not "use the default": omit the key instead). Unknown keys
// are refused, with a suggestion when one is close.
//
//	tipo       key             type     default         rule
//	compute    subtipo         string   (required)      api | worker
//	           porta           integer  8080            api only; 1–65535
//	           replicas_min    integer  1               >= 1
//	           replicas_max    integer  replicas_min    >= replicas_min (omitted: no autoscaling)
//	conduit    particoes       integer  (required)      >= 1; can grow later, never shrink
//	           retencao_horas  integer  168 (7 days)    >= 1
//	           replicacao      integer  3, or brokers   >= 1, at most the cluster's brokers
//	           min_sincronas   integer  replicacao - 1  >= 1, at most replicacao (min.insync.replicas)
//	lane       duravel         boolean  true
//	           prefetch        integer  5               >= 1 (max concurrent activities per worker)
//	archive    subtipo         string   arquivos        arquivos
//	           tamanho_gb      integer  100             >= 1 (capacity threshold for alerts)
//	           publico         boolean  false           must be false: the lake holds raw events
//	datastore  engine          string   postgres        postgres
//	           tamanho_gb      integer  100             >= 1 (capacity threshold for alerts)
//	           ha              boolean  false
//	gateway    dominio         string   (required)      a lower-case DNS name with at least two labels
//	           tls             boolean  true
//	insight    retencao_dias   integer  30              >= 1
//	           alertas         boolean  true
//
// particoes has no default on purpose: a topic's partition count can never be
// lowered, so it must be chosen, not inherited.
//
// replicacao and min_sincronas follow the cluster when omitted (DiffCluster):
// 3 copies, of which 2 must have a write before Kafka acknowledges it, where
// the cluster has at least 3 brokers; one copy on a single broker, as the
// dev stack runs, and the plan says so. Declared, they are refused when the
// cluster has fewer brokers than replicacao. The default never lowers a
// topic's recorded replication: a broker that is down while a plan runs
// does not cost the topic a copy.
//
// At the top level, nome (free text) and recursos (at least one resource) are
// required; modo is simples or avancado (default simples) and is recorded, not
// acted on. A resource's nome is lower-case letters, digits and hyphens,
// starting with a letter, at most 63 characters (an archive's at least 3: it
// names an S3 bucket), unique across the blueprint.
//
// Across resources: exactly one conduit, one archive and one datastore; at
// most one lane, gateway, insight, api compute and worker compute; an api
// compute needs the conduit (it publishes to it), a gateway needs an api
// compute (it routes to it), a lane needs a worker compute (its jobs run there).
package blueprint

import (
	"encoding/json"
	"slices"
	"time"
)

// Kind is a resource's tipo.
type Kind string

// The resource kinds, as blueprint.json spells them.
const (
	KindDatastore Kind = "datastore" // PostgreSQL warehouse
	KindArchive   Kind = "archive"   // S3 bucket, the data lake
	KindConduit   Kind = "conduit"   // Kafka topic, the event log
	KindLane      Kind = "lane"      // Temporal task queue for batch jobs
	KindInsight   Kind = "insight"   // SLOs, metrics retention, alerts
	KindGateway   Kind = "gateway"   // domain and TLS in front of the api
	KindCompute   Kind = "compute"   // the api and worker processes
)

// kindOrder is the dependency order: a kind is provisioned after every kind
// before it.
var kindOrder = []Kind{KindDatastore, KindArchive, KindConduit, KindLane, KindInsight, KindGateway, KindCompute}

// Kinds returns every kind in dependency order (datastore, archive, conduit,
// lane, insight, gateway, compute): the order in which resources are
// provisioned.
func Kinds() []Kind { return slices.Clone(kindOrder) }

// rank is k's position in the dependency order (unknown kinds last).
func (k Kind) rank() int {
	if i := slices.Index(kindOrder, k); i >= 0 {
		return i
	}
	return len(kindOrder)
}

// Compute subtypes.
const (
	SubtypeAPI    = "api"
	SubtypeWorker = "worker"
)

// Values accepted for fixed-choice fields.
const (
	ModeSimple   = "simples"
	ModeAdvanced = "avancado"

	ArchiveFiles   = "arquivos"
	EnginePostgres = "postgres"
)

// Defaults for omitted optional fields. See the package doc for the table.
const (
	DefaultPort            = 8080
	DefaultReplicasMin     = 1
	DefaultRetentionHours  = 168
	DefaultReplication     = 3
	DefaultDurable         = true
	DefaultPrefetch        = 5
	DefaultArchiveSizeGB   = 100
	DefaultDatastoreSizeGB = 100
	DefaultTLS             = true
	DefaultRetentionDays   = 30
	DefaultAlerts          = true
	DefaultMode            = ModeSimple
)

// Blueprint is a parsed, validated blueprint. Every default is filled in. It
// marshals to JSON in the blueprint's own format (Portuguese keys, defaults
// written out) and unmarshals through Parse, so it can travel as a workflow
// input.
type Blueprint struct {
	Name      string     `json:"nome"`
	Mode      string     `json:"modo"`
	Resources []Resource `json:"recursos"` // in document order
	// Source names where the blueprint came from (a path), for messages. It
	// is not part of the JSON form.
	Source string `json:"-"`
}

// Resource is one entry of recursos. Config holds the typed config for Kind:
// ComputeConfig, ConduitConfig, LaneConfig, ArchiveConfig, DatastoreConfig,
// GatewayConfig or InsightConfig (values, not pointers).
type Resource struct {
	Kind   Kind   `json:"tipo"`
	Name   string `json:"nome"`
	Config Config `json:"config"`
}

// Config is the typed config of one resource kind.
type Config interface {
	Kind() Kind
}

// ComputeConfig is a compute's config: the event API (subtipo api) or the
// Temporal worker (subtipo worker). Replicas are recorded for the deploy
// manifests; ReplicasMax == ReplicasMin means no autoscaling.
type ComputeConfig struct {
	Subtype     string `json:"subtipo"`
	Port        int    `json:"porta,omitempty"` // api only
	ReplicasMin int    `json:"replicas_min"`
	ReplicasMax int    `json:"replicas_max"`
}

// ConduitConfig is the Kafka topic's config. Replication (the topic's
// replication factor) and MinInsync (its min.insync.replicas) are 0 until
// the plan resolves them against the cluster (ResolveReplication): a
// blueprint that omits them gets DefaultReplication where the cluster has
// the brokers, and what it has where not.
type ConduitConfig struct {
	Partitions     int `json:"particoes"`
	RetentionHours int `json:"retencao_horas"`
	Replication    int `json:"replicacao,omitempty"`
	MinInsync      int `json:"min_sincronas,omitempty"`
}

// LaneConfig is the batch task queue's config. Prefetch is the maximum number
// of concurrent activities a worker runs from the queue.
type LaneConfig struct {
	Durable  bool `json:"duravel"`
	Prefetch int  `json:"prefetch"`
}

// ArchiveConfig is the data lake bucket's config. SizeGB is a capacity
// threshold for Insight, not a quota.
type ArchiveConfig struct {
	Subtype string `json:"subtipo"`
	SizeGB  int    `json:"tamanho_gb"`
	Public  bool   `json:"publico"`
}

// DatastoreConfig is the warehouse's config. SizeGB is a capacity threshold
// for Insight; HA is recorded and reported.
type DatastoreConfig struct {
	Engine string `json:"engine"`
	SizeGB int    `json:"tamanho_gb"`
	HA     bool   `json:"ha"`
}

// GatewayConfig is the domain and TLS in front of the event API.
type GatewayConfig struct {
	Domain string `json:"dominio"`
	TLS    bool   `json:"tls"`
}

// InsightConfig is pipeline monitoring: how long measurements are kept and
// whether alerts fire.
type InsightConfig struct {
	RetentionDays int  `json:"retencao_dias"`
	Alerts        bool `json:"alertas"`
}

func (ComputeConfig) Kind() Kind   { return KindCompute }
func (ConduitConfig) Kind() Kind   { return KindConduit }
func (LaneConfig) Kind() Kind      { return KindLane }
func (ArchiveConfig) Kind() Kind   { return KindArchive }
func (DatastoreConfig) Kind() Kind { return KindDatastore }
func (GatewayConfig) Kind() Kind   { return KindGateway }
func (InsightConfig) Kind() Kind   { return KindInsight }

// Retention is retencao_horas as a duration.
func (c ConduitConfig) Retention() time.Duration {
	return time.Duration(c.RetentionHours) * time.Hour
}

// Retention is retencao_dias as a duration.
func (c InsightConfig) Retention() time.Duration {
	return time.Duration(c.RetentionDays) * 24 * time.Hour
}

// Resource returns the resource named name.
func (b *Blueprint) Resource(name string) (Resource, bool) {
	for _, r := range b.Resources {
		if r.Name == name {
			return r, true
		}
	}
	return Resource{}, false
}

// Ordered returns the resources in dependency order (see Kinds); resources of
// one kind keep their document order.
func (b *Blueprint) Ordered() []Resource {
	rs := slices.Clone(b.Resources)
	slices.SortStableFunc(rs, func(a, b Resource) int { return a.Kind.rank() - b.Kind.rank() })
	return rs
}

// first returns the first resource of kind k whose config passes keep.
func first[C Config](b *Blueprint, keep func(C) bool) (string, C, bool) {
	if b != nil {
		for _, r := range b.Resources {
			if c, ok := r.Config.(C); ok && (keep == nil || keep(c)) {
				return r.Name, c, true
			}
		}
	}
	var zero C
	return "", zero, false
}

// Topic returns the conduit as the Kafka topic's name, partition count and
// retention.
func (b *Blueprint) Topic() (name string, partitions int, retention time.Duration) {
	name, c, _ := first[ConduitConfig](b, nil)
	return name, c.Partitions, c.Retention()
}

// Conduit returns the conduit (a valid blueprint has exactly one).
func (b *Blueprint) Conduit() (name string, cfg ConduitConfig) {
	name, cfg, _ = first[ConduitConfig](b, nil)
	return name, cfg
}

// Bucket returns the archive: the data lake bucket's name and config (a valid
// blueprint has exactly one).
func (b *Blueprint) Bucket() (name string, cfg ArchiveConfig) {
	name, cfg, _ = first[ArchiveConfig](b, nil)
	return name, cfg
}

// Datastore returns the warehouse (a valid blueprint has exactly one).
func (b *Blueprint) Datastore() (name string, cfg DatastoreConfig) {
	name, cfg, _ = first[DatastoreConfig](b, nil)
	return name, cfg
}

// Lane returns the batch task queue, if the blueprint declares one.
func (b *Blueprint) Lane() (name string, cfg LaneConfig, ok bool) {
	return first[LaneConfig](b, nil)
}

// API returns the api compute, if the blueprint declares one.
func (b *Blueprint) API() (name string, cfg ComputeConfig, ok bool) {
	return first(b, func(c ComputeConfig) bool { return c.Subtype == SubtypeAPI })
}

// Worker returns the worker compute, if the blueprint declares one.
func (b *Blueprint) Worker() (name string, cfg ComputeConfig, ok bool) {
	return first(b, func(c ComputeConfig) bool { return c.Subtype == SubtypeWorker })
}

// Gateway returns the gateway, if the blueprint declares one.
func (b *Blueprint) Gateway() (name string, cfg GatewayConfig, ok bool) {
	return first[GatewayConfig](b, nil)
}

// Insight returns pipeline monitoring, if the blueprint declares it.
func (b *Blueprint) Insight() (name string, cfg InsightConfig, ok bool) {
	return first[InsightConfig](b, nil)
}

// UnmarshalJSON parses and validates data with Parse.
func (b *Blueprint) UnmarshalJSON(data []byte) error {
	p, err := Parse(data, "")
	if err != nil {
		return err
	}
	*b = *p
	return nil
}

// UnmarshalJSON parses and validates one resource (without the rules that
// span resources).
func (r *Resource) UnmarshalJSON(data []byte) error {
	root, err := decodeTree(data)
	if err != nil {
		return Errors{syntaxProblem(data, err)}
	}
	v := &validator{}
	res, _ := v.resource(0, root, nil)
	if len(v.problems) > 0 {
		return v.problems
	}
	*r = res
	return nil
}

// CanonicalConfig returns the resource's config as canonical JSON: defaults
// filled in, keys in the order this package declares them, no whitespace.
// Equal configs give equal bytes.
func (r Resource) CanonicalConfig() json.RawMessage {
	if r.Config == nil {
		return json.RawMessage("{}")
	}
	out, err := json.Marshal(r.Config)
	if err != nil { // plain structs of ints, strings and bools
		panic("blueprint: marshal config: " + err.Error())
	}
	return out
}

// Entry returns the resource as a catalog entry, the form the catalog records
// once the resource is provisioned.
func (r Resource) Entry() CatalogEntry {
	return CatalogEntry{Kind: r.Kind, Name: r.Name, Config: r.CanonicalConfig()}
}

// Entries returns every resource as a catalog entry, in dependency order.
func (b *Blueprint) Entries() []CatalogEntry {
	var out []CatalogEntry
	for _, r := range b.Ordered() {
		out = append(out, r.Entry())
	}
	return out
}
