package blueprint

import (
	"fmt"
	"net/netip"
	"regexp"
	"strings"
)

// One resource of the blueprint: its tipo, nome and config, each kind's
// config read into its Config type.

// placed is what the rules that span resources know of one resource. kind is
// its tipo, or the tipo suggested for a misspelt one (so that "condiut" does
// not also count as a missing conduit), or "" when it cannot be told. For a
// compute, subtype is its subtipo (or the suggested one), "" when unknown.
type placed struct {
	label   string
	kind    Kind
	subtype string
}

var (
	nameRe     = regexp.MustCompile(`^[a-z]([a-z0-9-]*[a-z0-9])?$`)
	resKeys    = []string{"tipo", "nome", "config"}
	kindNames  = []string{"compute", "conduit", "lane", "archive", "datastore", "gateway", "insight"}
	kindAlias  = map[string]string{"topic": "conduit", "kafka": "conduit", "stream": "conduit", "bucket": "archive", "s3": "archive", "storage": "archive", "lake": "archive", "database": "datastore", "db": "datastore", "postgres": "datastore", "warehouse": "datastore", "queue": "lane", "temporal": "lane", "dns": "gateway", "ingress": "gateway", "monitoring": "insight", "observability": "insight", "api": "compute", "worker": "compute", "service": "compute"}
	configKeys = map[Kind][]string{
		KindCompute:   {"subtipo", "porta", "replicas_min", "replicas_max"},
		KindConduit:   {"particoes", "retencao_horas", "replicacao", "min_sincronas"},
		KindLane:      {"duravel", "prefetch"},
		KindArchive:   {"subtipo", "tamanho_gb", "publico"},
		KindDatastore: {"engine", "tamanho_gb", "ha"},
		KindGateway:   {"dominio", "tls"},
		KindInsight:   {"retencao_dias", "alertas"},
	}
)

// resource validates recursos[i]. names, when not nil, tracks nome across
// resources for duplicates. r.Config is nil when the kind is unknown or the
// config is not an object.
func (v *validator) resource(i int, el *jvalue, names map[string]int) (r Resource, p placed) {
	label := fmt.Sprintf("recursos[%d]", i)
	p.label = label
	if el.kind != jObject {
		v.add(label, "", "a resource must be an object with tipo, nome and config, got %s", el.describe())
		return r, p
	}
	o := v.object(label, "", el, resKeys, configKeys)

	// nome first: it labels every other problem of this resource.
	if n := o.get("nome"); n == nil {
		o.missing("nome", "is required")
	} else if n.kind != jString {
		v.add(label, "nome", "must be a string, got %s", n.describe())
	} else if first, dup := names[n.str]; dup {
		v.add(label, "nome", "duplicate nome %q: recursos[%d] already uses it", n.str, first)
	} else {
		if names != nil {
			names[n.str] = i
		}
		if msg := checkName(n.str); msg != "" {
			v.add(label, "nome", "%s", msg)
		} else {
			label = n.str
		}
		r.Name = n.str
	}
	o.res, p.label = label, label

	kind, kindOK := o.enum("tipo", "", true, kindNames, kindAlias)
	r.Kind, p.kind = Kind(kind), Kind(kind)
	if !kindOK {
		p.kind = Kind(suggest(kind, kindNames, kindAlias))
	}
	if kindOK && r.Kind == KindArchive && label == r.Name && len(r.Name) < 3 {
		v.add(label, "nome", "an archive's nome names its S3 bucket and must be at least 3 characters, got %q", r.Name)
	}

	cfg := o.get("config")
	o.finish()
	if cfg == nil {
		cfg = &jvalue{kind: jObject}
	} else if cfg.kind != jObject {
		v.add(label, "config", "must be an object, got %s", cfg.describe())
		return r, p
	}
	if !kindOK {
		return r, p
	}
	c := v.object(label, "config.", cfg, configKeys[r.Kind], configKeys)
	c.kind = r.Kind
	switch r.Kind {
	case KindCompute:
		var cc ComputeConfig
		cc, p.subtype = c.compute()
		r.Config = cc
	case KindConduit:
		r.Config = c.conduit()
	case KindLane:
		r.Config = c.lane()
	case KindArchive:
		r.Config = c.archive()
	case KindDatastore:
		r.Config = c.datastore()
	case KindGateway:
		r.Config = c.gateway()
	case KindInsight:
		r.Config = c.insight()
	}
	c.finish()
	return r, p
}

// checkName returns what is wrong with a resource nome, or "".
func checkName(s string) string {
	switch {
	case s == "":
		return "must not be empty"
	case len(s) > 63:
		return fmt.Sprintf("must be at most 63 characters, got %d", len(s))
	case nameRe.MatchString(s):
		return ""
	case nameRe.MatchString(strings.ToLower(s)):
		return fmt.Sprintf("must be lower case: %q (write %q)", s, strings.ToLower(s))
	default:
		return fmt.Sprintf("%q is not a valid name: use lower-case letters, digits and hyphens, starting with a letter and not ending with a hyphen", s)
	}
}

// compute reads a compute's config. role is its subtipo, the suggested one
// when it is misspelt, or "" when it cannot be told.
func (c *objReader) compute() (cc ComputeConfig, role string) {
	subtypes := []string{SubtypeAPI, SubtypeWorker}
	sub, subOK := c.enum("subtipo", "", true, subtypes, nil)
	cc.Subtype, role = sub, sub
	if !subOK {
		role = suggest(sub, subtypes, nil)
	}
	switch {
	case sub == SubtypeWorker && c.has("porta"):
		c.get("porta")
		c.v.add(c.res, "config.porta", "a worker does not listen on a port: porta is for subtipo api only")
	case sub == SubtypeAPI || !subOK:
		if p, ok := c.integer("porta", DefaultPort, false); ok {
			if p < 1 || p > 65535 {
				c.v.add(c.res, "config.porta", "must be a TCP port from 1 to 65535, got %d", p)
			}
			if sub == SubtypeAPI {
				cc.Port = p
			}
		}
	}
	minR, minOK := c.atLeast("replicas_min", DefaultReplicasMin, false, 1, "")
	maxR, maxOK := c.atLeast("replicas_max", max(minR, 1), false, 1, "")
	if minOK && maxOK && minR > maxR {
		c.v.add(c.res, "config.replicas_min", "must not exceed replicas_max: %d > %d", minR, maxR)
	}
	cc.ReplicasMin, cc.ReplicasMax = minR, maxR
	return cc, role
}

func (c *objReader) conduit() ConduitConfig {
	var cc ConduitConfig
	cc.Partitions, _ = c.atLeast("particoes", 0, true, 1, " partition")
	cc.RetentionHours, _ = c.atLeast("retencao_horas", DefaultRetentionHours, false, 1, " hour")
	// 0 is "not declared": the plan resolves it against the cluster
	// (ResolveReplication).
	var rf, isr int
	rfOK, isrOK := true, true
	if c.has("replicacao") {
		rf, rfOK = c.atLeast("replicacao", 0, false, 1, " replica")
	}
	if c.has("min_sincronas") {
		isr, isrOK = c.atLeast("min_sincronas", 0, false, 1, " replica")
	}
	if rfOK && isrOK && rf > 0 && isr > rf {
		c.v.add(c.res, "config.min_sincronas", "must not exceed replicacao: %d > %d (a write cannot wait for more copies than the topic has)", isr, rf)
	}
	cc.Replication, cc.MinInsync = rf, isr
	return cc
}

func (c *objReader) lane() LaneConfig {
	var lc LaneConfig
	lc.Durable, _ = c.boolean("duravel", DefaultDurable)
	lc.Prefetch, _ = c.atLeast("prefetch", DefaultPrefetch, false, 1, "")
	return lc
}

func (c *objReader) archive() ArchiveConfig {
	var ac ArchiveConfig
	ac.Subtype, _ = c.enum("subtipo", ArchiveFiles, false, []string{ArchiveFiles}, nil)
	ac.SizeGB, _ = c.atLeast("tamanho_gb", DefaultArchiveSizeGB, false, 1, " GB")
	var ok bool
	if ac.Public, ok = c.boolean("publico", false); ok && ac.Public {
		c.v.add(c.res, "config.publico", "must be false: the data lake holds raw events and anonymous reads are refused")
	}
	return ac
}

func (c *objReader) datastore() DatastoreConfig {
	var dc DatastoreConfig
	dc.Engine, _ = c.enum("engine", EnginePostgres, false, []string{EnginePostgres}, map[string]string{"postgresql": EnginePostgres, "pg": EnginePostgres})
	dc.SizeGB, _ = c.atLeast("tamanho_gb", DefaultDatastoreSizeGB, false, 1, " GB")
	dc.HA, _ = c.boolean("ha", false)
	return dc
}

func (c *objReader) gateway() GatewayConfig {
	var gc GatewayConfig
	if d, ok := c.str("dominio", "", true); ok {
		if msg := checkDomain(d); msg != "" {
			c.v.add(c.res, "config.dominio", "%s", msg)
		}
		gc.Domain = d
	}
	gc.TLS, _ = c.boolean("tls", DefaultTLS)
	return gc
}

func (c *objReader) insight() InsightConfig {
	var ic InsightConfig
	ic.RetentionDays, _ = c.atLeast("retencao_dias", DefaultRetentionDays, false, 1, " day")
	ic.Alerts, _ = c.boolean("alertas", DefaultAlerts)
	return ic
}

var labelRe = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]*[a-z0-9])?$`)

// checkDomain returns what is wrong with a gateway domain, or "".
func checkDomain(d string) string {
	switch {
	case d == "":
		return "must not be empty"
	case strings.Contains(d, "://"):
		return fmt.Sprintf("must be a domain name, not a URL: %q", d)
	case strings.ContainsAny(d, "/?#"):
		return fmt.Sprintf("must be a domain name without a path: %q", d)
	case strings.ContainsRune(d, '@'):
		return fmt.Sprintf("must be a domain name, not an address: %q", d)
	}
	if _, err := netip.ParseAddr(d); err == nil {
		return fmt.Sprintf("must be a domain name, not an IP address: %q", d)
	}
	if strings.Contains(d, ":") {
		return fmt.Sprintf("must be a domain name without a port: %q (the port is the api's porta)", d)
	}
	if strings.ToLower(d) != d {
		return fmt.Sprintf("must be lower case: %q (write %q)", d, strings.ToLower(d))
	}
	if len(d) > 253 {
		return fmt.Sprintf("is %d characters long, a domain name has at most 253", len(d))
	}
	labels := strings.Split(d, ".")
	if len(labels) < 2 {
		return fmt.Sprintf("%q is not a fully qualified domain name such as ingest.example.com", d)
	}
	for _, l := range labels {
		switch {
		case l == "":
			return fmt.Sprintf("%q is a malformed domain: empty label (a leading, trailing or double dot)", d)
		case l == "*":
			return fmt.Sprintf("%q is a wildcard; the gateway needs one domain name", d)
		case len(l) > 63:
			return fmt.Sprintf("%q is a malformed domain: label %q is longer than 63 characters", d, l)
		case !labelRe.MatchString(l):
			return fmt.Sprintf("%q is a malformed domain: label %q may hold only letters, digits and inner hyphens", d, l)
		}
	}
	if tld := labels[len(labels)-1]; strings.Trim(tld, "abcdefghijklmnopqrstuvwxyz") != "" && !strings.HasPrefix(tld, "xn--") {
		return fmt.Sprintf("%q is a malformed domain: top-level domain %q must be letters", d, tld)
	}
	return ""
}
