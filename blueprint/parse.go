package blueprint

import (
	"bytes"
	"fmt"
	"math"
	"net/netip"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
)

// Problem is one thing wrong with a blueprint.
type Problem struct {
	// Resource is the resource's nome, or recursos[i] when it has no usable
	// nome (missing, not a string, or a duplicate). Empty for the top level.
	Resource string `json:"resource,omitempty"`
	// Field is the key's path inside the resource or document, such as
	// "config.particoes", "tipo" or "recursos". Empty for malformed JSON.
	Field   string `json:"field,omitempty"`
	Message string `json:"message"`
}

func (p Problem) Error() string {
	var b strings.Builder
	if p.Resource != "" {
		b.WriteString(p.Resource)
		b.WriteString(": ")
	}
	if p.Field != "" {
		b.WriteString(p.Field)
		b.WriteString(": ")
	}
	b.WriteString(p.Message)
	return b.String()
}

// Errors is every problem found in a blueprint, in document order (rules that
// span resources last). Parse and Load return it wrapped with the source name:
// get it back with errors.As.
type Errors []Problem

func (e Errors) Error() string {
	switch len(e) {
	case 0:
		return "no problems"
	case 1:
		return e[0].Error()
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%d problems:", len(e))
	for _, p := range e {
		b.WriteString("\n  ")
		b.WriteString(p.Error())
	}
	return b.String()
}

// maxProblems caps the list; a file that is wrong everywhere is usually the
// wrong file.
const maxProblems = 100

// Load reads and parses the blueprint at path.
func Load(path string) (*Blueprint, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read blueprint: %w", err)
	}
	return Parse(data, path)
}

// Parse decodes and validates a blueprint. source names it in messages (a
// path, or "" when there is none). It checks the whole document and returns
// every problem at once, as Errors wrapped with source; nothing is returned
// half-valid.
func Parse(data []byte, source string) (*Blueprint, error) {
	b, errs := parse(data)
	if len(errs) > 0 {
		if source == "" {
			return nil, errs
		}
		return nil, fmt.Errorf("%s: %w", source, errs)
	}
	b.Source = source
	return b, nil
}

func parse(data []byte) (*Blueprint, Errors) {
	data = bytes.TrimPrefix(data, []byte("\xef\xbb\xbf")) // a BOM some editors write
	if len(bytes.TrimSpace(data)) == 0 {
		return nil, Errors{{Message: "the blueprint is empty"}}
	}
	root, err := decodeTree(data)
	if err != nil {
		return nil, Errors{syntaxProblem(data, err)}
	}
	v := &validator{}
	b := v.document(root)
	if len(v.problems) > maxProblems {
		n := len(v.problems) - maxProblems
		v.problems = append(v.problems[:maxProblems], Problem{Message: fmt.Sprintf("… and %d more problems", n)})
	}
	if len(v.problems) > 0 {
		return nil, v.problems
	}
	return b, nil
}

type validator struct {
	problems Errors
}

func (v *validator) add(resource, field, format string, args ...any) {
	v.problems = append(v.problems, Problem{Resource: resource, Field: field, Message: fmt.Sprintf(format, args...)})
}

var topKeys = []string{"nome", "modo", "recursos"}

// document validates the whole blueprint.
func (v *validator) document(root *jvalue) *Blueprint {
	if root.kind != jObject {
		v.add("", "", "the blueprint must be a JSON object with nome and recursos, got %s", root.describe())
		return nil
	}
	o := v.object("", "", root, topKeys, nil)
	b := &Blueprint{}
	if s, ok := o.str("nome", "", true); ok {
		if strings.TrimSpace(s) == "" {
			v.add("", "nome", "must not be empty")
		}
		b.Name = s
	}
	b.Mode, _ = o.enum("modo", DefaultMode, false, []string{ModeSimple, ModeAdvanced}, nil)

	list := o.get("recursos")
	switch {
	case list == nil:
		o.missing("recursos", "is required: the list of resources")
	case list.kind != jArray:
		v.add("", "recursos", "must be an array of resources, got %s", list.describe())
	case len(list.elems) == 0:
		v.add("", "recursos", "must list at least one resource")
	}
	o.finish()
	if list == nil || list.kind != jArray || len(list.elems) == 0 {
		return b
	}

	names := map[string]int{} // nome → index of its first use
	var all []placed
	for i, el := range list.elems {
		r, p := v.resource(i, el, names)
		all = append(all, p)
		if r.Config != nil {
			b.Resources = append(b.Resources, r)
		}
	}
	v.crossRules(all)
	return b
}

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
		KindConduit:   {"particoes", "retencao_horas"},
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

// crossRules checks the rules that span resources: how many of each kind, and
// what each needs.
func (v *validator) crossRules(all []placed) {
	byKind := map[Kind][]placed{}
	var apis, workers []placed
	roleUnknown := false // a compute whose subtipo cannot be told
	for _, p := range all {
		byKind[p.kind] = append(byKind[p.kind], p)
		if p.kind != KindCompute {
			continue
		}
		switch p.subtype {
		case SubtypeAPI:
			apis = append(apis, p)
		case SubtypeWorker:
			workers = append(workers, p)
		default:
			roleUnknown = true
		}
	}
	role := map[Kind]string{
		KindConduit:   "the event log",
		KindArchive:   "the data lake",
		KindDatastore: "the warehouse",
		KindLane:      "the batch task queue",
		KindGateway:   "the domain in front of the api",
		KindInsight:   "pipeline monitoring",
	}
	atMostOne := func(ps []placed, field, what string) {
		for _, p := range ps[min(1, len(ps)):] {
			v.add(p.label, field, "a blueprint has at most one %s; %s already is", what, ps[0].label)
		}
	}
	for _, k := range []Kind{KindDatastore, KindArchive, KindConduit, KindLane, KindInsight, KindGateway} {
		ps := byKind[k]
		atMostOne(ps, "tipo", fmt.Sprintf("%s (%s)", k, role[k]))
		required := k == KindDatastore || k == KindArchive || k == KindConduit
		// A missing conduit is reported on the api that needs it, below.
		if required && len(ps) == 0 && !(k == KindConduit && len(apis) > 0) {
			v.add("", "recursos", "a blueprint needs exactly one %s (%s); none is declared", k, role[k])
		}
	}
	atMostOne(apis, "config.subtipo", "api compute")
	atMostOne(workers, "config.subtipo", "worker compute")

	if len(byKind[KindConduit]) == 0 {
		for _, p := range apis {
			v.add(p.label, "config.subtipo", "an api compute publishes events to a conduit, and the blueprint declares none: add a resource with tipo conduit")
		}
	}
	if len(apis) == 0 && !roleUnknown {
		for _, p := range byKind[KindGateway] {
			v.add(p.label, "tipo", "a gateway routes to an api compute, and the blueprint declares none: add a compute with subtipo api")
		}
	}
	if len(workers) == 0 && !roleUnknown {
		for _, p := range byKind[KindLane] {
			v.add(p.label, "tipo", "a lane's jobs run on a worker compute, and the blueprint declares none: add a compute with subtipo worker")
		}
	}
}

// objReader reads the keys of one JSON object, records a problem for each
// wrong one, and finally refuses the keys nobody asked for.
type objReader struct {
	v       *validator
	res     string // Problem.Resource
	prefix  string // Problem.Field prefix: "" or "config."
	obj     *jvalue
	known   []string
	kind    Kind              // the resource's kind, for its config; "" elsewhere
	others  map[Kind][]string // config keys of every kind, for a better message
	used    map[string]bool
	counted map[string]int
}

func (v *validator) object(res, prefix string, obj *jvalue, known []string, others map[Kind][]string) *objReader {
	o := &objReader{v: v, res: res, prefix: prefix, obj: obj, known: known, others: others, used: map[string]bool{}, counted: map[string]int{}}
	for _, m := range obj.members {
		if o.counted[m.key]++; o.counted[m.key] == 2 {
			v.add(res, prefix+m.key, "appears more than once in the same object")
		}
	}
	return o
}

func (o *objReader) has(key string) bool { return o.counted[key] > 0 }

// get returns the value of key (the last one, as encoding/json would), or nil.
func (o *objReader) get(key string) *jvalue {
	o.used[key] = true
	var v *jvalue
	for _, m := range o.obj.members {
		if m.key == key {
			v = m.val
		}
	}
	return v
}

// finish refuses every key that was not read.
func (o *objReader) finish() {
	seen := map[string]bool{}
	for _, m := range o.obj.members {
		if o.used[m.key] || seen[m.key] {
			continue
		}
		seen[m.key] = true
		o.v.add(o.res, o.prefix+m.key, "%s", o.unknownKey(m.key))
	}
}

func (o *objReader) unknownKey(key string) string {
	if o.kind == "" && o.others != nil && len(o.ownerKinds(key)) > 0 {
		return fmt.Sprintf("unknown key %q: a resource's settings go inside config", key)
	}
	if owners := o.ownerKinds(key); len(owners) > 0 {
		return fmt.Sprintf("unknown key: %s is not a %s setting, it belongs to %s (allowed here: %s)", key, o.kind, strings.Join(owners, " and "), strings.Join(o.known, ", "))
	}
	if s := suggest(key, o.known, keyAlias); s != "" {
		return fmt.Sprintf("unknown key %q; did you mean %q?", key, s)
	}
	return fmt.Sprintf("unknown key %q (allowed here: %s)", key, strings.Join(o.known, ", "))
}

// ownerKinds returns the other kinds that have key in their config.
func (o *objReader) ownerKinds(key string) []string {
	var out []string
	for _, k := range kindOrder {
		if k != o.kind && slices.Contains(o.others[k], key) {
			out = append(out, string(k))
		}
	}
	return out
}

// keyAlias maps the English (and a few accented) spellings people write to
// the blueprint's keys.
var keyAlias = map[string]string{
	"name": "nome", "type": "tipo", "kind": "tipo", "mode": "modo", "resources": "recursos",
	"partitions": "particoes", "retention_hours": "retencao_horas", "retention": "retencao_horas",
	"port": "porta", "min_replicas": "replicas_min", "max_replicas": "replicas_max",
	"replicas": "replicas_min", "subtype": "subtipo", "durable": "duravel",
	"size_gb": "tamanho_gb", "size": "tamanho_gb", "public": "publico", "domain": "dominio",
	"retention_days": "retencao_dias", "alerts": "alertas", "database": "engine",
	"concurrency": "prefetch",
}

// missing reports a required key that is absent, unless an unknown key of
// the same object is its likely misspelling: that key's own message says so.
func (o *objReader) missing(key, msg string) {
	for _, m := range o.obj.members {
		if !slices.Contains(o.known, m.key) && suggest(m.key, o.known, keyAlias) == key {
			return
		}
	}
	o.v.add(o.res, o.prefix+key, "%s", msg)
}

// str reads a string. ok is false when the key is missing or not a string.
func (o *objReader) str(key, def string, required bool) (string, bool) {
	val := o.get(key)
	if val == nil {
		if required {
			o.missing(key, "is required")
			return def, false
		}
		return def, true
	}
	if val.kind != jString {
		o.v.add(o.res, o.prefix+key, "must be a string, got %s", val.describe())
		return def, false
	}
	return val.str, true
}

// enum reads a string that must be one of allowed.
func (o *objReader) enum(key, def string, required bool, allowed []string, alias map[string]string) (string, bool) {
	s, ok := o.str(key, def, required)
	if !ok || s == def && !required {
		return s, ok
	}
	for _, a := range allowed {
		if s == a {
			return s, true
		}
	}
	msg := fmt.Sprintf("unknown %s %q", key, s)
	if sug := suggest(s, allowed, alias); sug != "" {
		msg += fmt.Sprintf("; did you mean %q?", sug)
	}
	if len(allowed) == 1 {
		msg += fmt.Sprintf(" (the only one supported is %s)", allowed[0])
	} else {
		msg += fmt.Sprintf(" (allowed: %s)", strings.Join(allowed, ", "))
	}
	o.v.add(o.res, o.prefix+key, "%s", msg)
	return s, false
}

func (o *objReader) boolean(key string, def bool) (bool, bool) {
	val := o.get(key)
	if val == nil {
		return def, true
	}
	if val.kind != jBool {
		msg := fmt.Sprintf("must be true or false, got %s", val.describe())
		if val.kind == jString && (val.str == "true" || val.str == "false") {
			msg += fmt.Sprintf("; write %s without quotes", val.str)
		}
		if val.kind == jNull {
			msg += fmt.Sprintf("; omit the key for the default (%t)", def)
		}
		o.v.add(o.res, o.prefix+key, "%s", msg)
		return def, false
	}
	return val.b, true
}

// integer reads a whole number. ok is false when the key is missing
// (required) or not a whole number; the range is the caller's to check.
func (o *objReader) integer(key string, def int, required bool) (int, bool) {
	val := o.get(key)
	if val == nil {
		if required {
			o.missing(key, "is required")
			return def, false
		}
		return def, true
	}
	field := o.prefix + key
	switch val.kind {
	case jNumber:
	case jString:
		msg := fmt.Sprintf("must be a number, got %s", val.describe())
		if _, err := strconv.ParseFloat(strings.TrimSpace(val.str), 64); err == nil {
			msg += fmt.Sprintf("; write %s without quotes", strings.TrimSpace(val.str))
		}
		o.v.add(o.res, field, "%s", msg)
		return def, false
	case jNull:
		if required {
			o.v.add(o.res, field, "must be a number, got null")
		} else {
			o.v.add(o.res, field, "must be a number, got null; omit the key for the default (%d)", def)
		}
		return def, false
	default:
		o.v.add(o.res, field, "must be a number, got %s", val.describe())
		return def, false
	}
	if n, err := strconv.ParseInt(val.num.String(), 10, 32); err == nil {
		return int(n), true
	}
	f, err := strconv.ParseFloat(val.num.String(), 64)
	switch {
	case err == nil && f != math.Trunc(f):
		o.v.add(o.res, field, "must be a whole number, got %s", val.num)
	case err == nil && math.Abs(f) <= math.MaxInt32:
		return int(f), true // 1e3, 12.0
	default:
		o.v.add(o.res, field, "is out of range: %s", val.num)
	}
	return def, false
}

// atLeast reads an integer that must be >= lo; unit (" hour", " GB", ...)
// words the message, in the singular (lo is 1 everywhere).
func (o *objReader) atLeast(key string, def int, required bool, lo int, unit string) (int, bool) {
	n, ok := o.integer(key, def, required)
	if ok && n < lo {
		o.v.add(o.res, o.prefix+key, "must be at least %d%s, got %d", lo, unit, n)
		return n, false
	}
	return n, ok
}
