package blueprint

import (
	"bytes"
	"fmt"
	"os"
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
