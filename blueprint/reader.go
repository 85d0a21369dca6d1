package blueprint

import (
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
)

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
	"replication_factor": "replicacao", "replication": "replicacao", "min_insync_replicas": "min_sincronas",
	"min.insync.replicas": "min_sincronas",
	"retention_days":      "retencao_dias", "alerts": "alertas", "database": "engine",
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

// lookup returns key's value, or nil when the key is absent: then ok is
// false when the key is required (and reported missing), true when the
// caller takes its default.
func (o *objReader) lookup(key string, required bool) (val *jvalue, ok bool) {
	if val = o.get(key); val == nil && required {
		o.missing(key, "is required")
		return nil, false
	}
	return val, true
}

// str reads a string. ok is false when the key is missing or not a string.
func (o *objReader) str(key, def string, required bool) (string, bool) {
	val, ok := o.lookup(key, required)
	if val == nil {
		return def, ok
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
	val, ok := o.lookup(key, required)
	if val == nil {
		return def, ok
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
