package blueprint

import (
	"bytes"
	"encoding/json"
	"fmt"
	"reflect"
	"regexp"
	"slices"
	"strings"
)

// CatalogEntry is one provisioned resource as the catalog records it: its
// kind, its nome and the config it was provisioned with, as canonical JSON
// (Resource.CanonicalConfig). Resources are identified by kind and name.
type CatalogEntry struct {
	Kind   Kind            `json:"kind"`
	Name   string          `json:"name"`
	Config json.RawMessage `json:"config"`
}

// Action is what a plan does with one resource.
type Action string

// Actions, with the mark Plan.String shows for each.
const (
	ActionCreate    Action = "create"    // + not in the catalog yet
	ActionUpdate    Action = "update"    // ~ in the catalog with another config
	ActionUnchanged Action = "unchanged" // = in the catalog as declared
	ActionRefused   Action = "refused"   // ! a change that cannot be made (a topic cannot shrink)
	ActionOrphaned  Action = "orphaned"  // ? in the catalog, not in the blueprint: left in place, never deleted
)

var marks = map[Action]string{
	ActionCreate: "+", ActionUpdate: "~", ActionUnchanged: "=", ActionRefused: "!", ActionOrphaned: "?",
}

// FieldChange is one config key whose value differs. Old and New are JSON
// values; nil means the key is absent on that side.
type FieldChange struct {
	Field string          `json:"field"`
	Old   json.RawMessage `json:"old,omitempty"`
	New   json.RawMessage `json:"new,omitempty"`
}

func (f FieldChange) String() string {
	return fmt.Sprintf("%s %s → %s", f.Field, display(f.Old), display(f.New))
}

// Change is the plan for one resource.
type Change struct {
	Action Action `json:"action"`
	Kind   Kind   `json:"kind"`
	Name   string `json:"name"`
	// Desired is the blueprint's canonical config (nil for ActionOrphaned).
	Desired json.RawMessage `json:"desired,omitempty"`
	// Current is the catalog's config (nil for ActionCreate).
	Current json.RawMessage `json:"current,omitempty"`
	// Fields lists the keys that differ (update and refused).
	Fields []FieldChange `json:"fields,omitempty"`
	// Reasons says why a refused change cannot be made, one per field.
	Reasons []string `json:"reasons,omitempty"`
	// Notes say what the resolved config risks or why it differs from the
	// blueprint's defaults (a single-broker cluster's replication).
	Notes []string `json:"notes,omitempty"`
}

// Plan is what provisioning must do to make the catalog match a blueprint,
// one Change per resource in dependency order, then the catalog's resources
// that the blueprint no longer declares. A plan with refusals must not be
// applied at all: the blueprint has to be fixed first.
type Plan struct {
	Changes []Change `json:"changes"`
}

type entryKey struct {
	kind Kind
	name string
}

// Diff plans how to go from the catalog's current entries to desired.
// Nothing is ever deleted: a catalog entry the blueprint does not declare is
// reported as orphaned and left in place.
func Diff(desired *Blueprint, current []CatalogEntry) Plan {
	cur := map[entryKey]CatalogEntry{}
	for _, e := range current {
		k := entryKey{e.Kind, e.Name}
		if _, dup := cur[k]; !dup {
			cur[k] = e
		}
	}
	var p Plan
	declared := map[entryKey]bool{}
	if desired != nil {
		for _, r := range desired.Ordered() {
			k := entryKey{r.Kind, r.Name}
			declared[k] = true
			ch := Change{Kind: r.Kind, Name: r.Name, Desired: r.CanonicalConfig()}
			e, ok := cur[k]
			if !ok {
				ch.Action = ActionCreate
				p.Changes = append(p.Changes, ch)
				continue
			}
			ch.Current = e.Config
			ch.Fields = diffFields(ch.Desired, e.Config)
			for _, f := range ch.Fields {
				if reason := refusal(r.Kind, f); reason != "" {
					ch.Reasons = append(ch.Reasons, reason)
				}
			}
			switch {
			case len(ch.Reasons) > 0:
				ch.Action = ActionRefused
			case len(ch.Fields) > 0:
				ch.Action = ActionUpdate
			default:
				ch.Action = ActionUnchanged
			}
			p.Changes = append(p.Changes, ch)
		}
	}
	var orphans []Change
	for _, e := range current {
		k := entryKey{e.Kind, e.Name}
		if declared[k] {
			continue
		}
		declared[k] = true // once per duplicate
		orphans = append(orphans, Change{Action: ActionOrphaned, Kind: e.Kind, Name: e.Name, Current: e.Config})
	}
	slices.SortStableFunc(orphans, func(a, b Change) int {
		if d := a.Kind.rank() - b.Kind.rank(); d != 0 {
			return d
		}
		return strings.Compare(a.Name, b.Name)
	})
	p.Changes = append(p.Changes, orphans...)
	return p
}

// diffFields compares two config objects key by key, in the desired order
// and then the keys only the current config has. A current config that is
// not a JSON object counts as empty, so every key shows as changed.
func diffFields(desired, current json.RawMessage) []FieldChange {
	wantKeys, want := objectFields(desired)
	haveKeys, have := objectFields(current)
	seen := map[string]bool{}
	var out []FieldChange
	for _, k := range append(wantKeys, haveKeys...) {
		if seen[k] {
			continue
		}
		seen[k] = true
		w, inWant := want[k]
		h, inHave := have[k]
		if inWant && inHave && sameJSON(w, h) {
			continue
		}
		out = append(out, FieldChange{Field: k, Old: h, New: w})
	}
	return out
}

// objectFields returns an object's keys in order and their compact values.
func objectFields(raw json.RawMessage) ([]string, map[string]json.RawMessage) {
	vals := map[string]json.RawMessage{}
	if json.Unmarshal(raw, &vals) != nil {
		return nil, nil
	}
	root, err := decodeTree(raw)
	if err != nil || root.kind != jObject {
		return nil, nil
	}
	var keys []string
	for _, m := range root.members {
		if !slices.Contains(keys, m.key) {
			keys = append(keys, m.key)
		}
		var buf bytes.Buffer
		if json.Compact(&buf, vals[m.key]) == nil {
			vals[m.key] = buf.Bytes()
		}
	}
	return keys, vals
}

func sameJSON(a, b json.RawMessage) bool {
	var x, y any
	if json.Unmarshal(a, &x) != nil || json.Unmarshal(b, &y) != nil {
		return bytes.Equal(a, b)
	}
	return reflect.DeepEqual(x, y)
}

// refusal returns why a field change cannot be applied in place, or "".
func refusal(kind Kind, f FieldChange) string {
	if f.Old == nil || f.New == nil {
		return ""
	}
	switch {
	case kind == KindConduit && f.Field == "particoes":
		var old, nw float64
		if json.Unmarshal(f.Old, &old) == nil && json.Unmarshal(f.New, &nw) == nil && nw < old {
			return fmt.Sprintf("Kafka cannot shrink a topic: %s → %s partitions refused", display(f.Old), display(f.New))
		}
	case kind == KindCompute && f.Field == "subtipo":
		return fmt.Sprintf("a compute cannot change subtipo in place: %s → %s refused (declare it under a new nome)", display(f.Old), display(f.New))
	case kind == KindArchive && f.Field == "subtipo":
		return fmt.Sprintf("an archive cannot change subtipo in place: %s → %s refused", display(f.Old), display(f.New))
	case kind == KindDatastore && f.Field == "engine":
		return fmt.Sprintf("a datastore cannot change engine in place: %s → %s refused", display(f.Old), display(f.New))
	}
	return ""
}

var bareRe = regexp.MustCompile(`^[A-Za-z0-9._:/-]+$`)

// display renders a JSON value for the terminal: strings without quotes when
// that is unambiguous, "(unset)" for an absent key.
func display(v json.RawMessage) string {
	if v == nil {
		return "(unset)"
	}
	var s string
	if json.Unmarshal(v, &s) == nil && bareRe.MatchString(s) {
		return s
	}
	return string(v)
}

// Count returns how many resources the plan gives action a.
func (p Plan) Count(a Action) int {
	n := 0
	for _, c := range p.Changes {
		if c.Action == a {
			n++
		}
	}
	return n
}

// HasChanges reports whether applying the plan would create or update
// anything. Refused and orphaned resources are not changes.
func (p Plan) HasChanges() bool {
	return p.Count(ActionCreate)+p.Count(ActionUpdate) > 0
}

// Refusals returns the refused changes; a plan with any must not be applied.
func (p Plan) Refusals() []Change {
	var out []Change
	for _, c := range p.Changes {
		if c.Action == ActionRefused {
			out = append(out, c)
		}
	}
	return out
}

// Err returns an error listing the refusals, or nil when the plan can be
// applied.
func (p Plan) Err() error {
	rs := p.Refusals()
	if len(rs) == 0 {
		return nil
	}
	var msgs []string
	for _, c := range rs {
		for _, r := range c.Reasons {
			msgs = append(msgs, fmt.Sprintf("%s %s: %s", c.Kind, c.Name, r))
		}
	}
	return fmt.Errorf("plan refused: %s", strings.Join(msgs, "; "))
}

// String renders the plan for a terminal, one line per resource and a
// summary:
//
//   - create conduit events (particoes=12, retencao_horas=168)
//     ~ update conduit events: particoes 12 → 24
//     = unchanged conduit events
//     ! refused conduit events: Kafka cannot shrink a topic: 12 → 6 partitions refused
//     ? orphaned lane old-jobs: in the catalog, not in the blueprint; left in place
//
//     Plan: 1 to create, 1 to change, 1 unchanged.
func (p Plan) String() string {
	var b strings.Builder
	for _, c := range p.Changes {
		fmt.Fprintf(&b, "%s %s %s %s", marks[c.Action], c.Action, c.Kind, c.Name)
		switch c.Action {
		case ActionCreate:
			keys, vals := objectFields(c.Desired)
			var kv []string
			for _, k := range keys {
				kv = append(kv, k+"="+display(vals[k]))
			}
			fmt.Fprintf(&b, " (%s)", strings.Join(kv, ", "))
		case ActionUpdate:
			fmt.Fprintf(&b, ": %s", joinFields(c.Fields, nil))
		case ActionRefused:
			fmt.Fprintf(&b, ": %s", strings.Join(c.Reasons, "; "))
			if rest := joinFields(c.Fields, func(f FieldChange) bool { return refusal(c.Kind, f) == "" }); rest != "" {
				fmt.Fprintf(&b, "\n    also requested, not applied: %s", rest)
			}
		case ActionOrphaned:
			b.WriteString(": in the catalog, not in the blueprint; left in place")
		}
		b.WriteByte('\n')
		for _, n := range c.Notes {
			fmt.Fprintf(&b, "    note: %s\n", n)
		}
	}
	if len(p.Changes) > 0 {
		b.WriteByte('\n')
	}
	fmt.Fprintf(&b, "Plan: %d to create, %d to change, %d unchanged", p.Count(ActionCreate), p.Count(ActionUpdate), p.Count(ActionUnchanged))
	if n := p.Count(ActionRefused); n > 0 {
		fmt.Fprintf(&b, ", %d refused", n)
	}
	if n := p.Count(ActionOrphaned); n > 0 {
		fmt.Fprintf(&b, ", %d not in the blueprint", n)
	}
	b.WriteString(".\n")
	if p.Count(ActionRefused) > 0 {
		b.WriteString("Nothing will be applied until the refused changes are taken out of the blueprint.\n")
	}
	return b.String()
}

func joinFields(fs []FieldChange, keep func(FieldChange) bool) string {
	var parts []string
	for _, f := range fs {
		if keep == nil || keep(f) {
			parts = append(parts, f.String())
		}
	}
	return strings.Join(parts, ", ")
}
