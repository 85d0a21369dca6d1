package blueprint

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
)

const seedPlan = `+ create datastore warehouse (engine=postgres, tamanho_gb=100, ha=true)
+ create archive datalake (subtipo=arquivos, tamanho_gb=500, publico=false)
+ create conduit events (particoes=12, retencao_horas=168)
+ create lane batch-jobs (duravel=true, prefetch=5)
+ create insight pipeline-obs (retencao_dias=30, alertas=true)
+ create gateway ingest-dns (dominio=ingest.acme.io, tls=true)
+ create compute ingest-api (subtipo=api, porta=8080, replicas_min=2, replicas_max=2)
+ create compute etl-worker (subtipo=worker, replicas_min=1, replicas_max=10)

Plan: 8 to create, 0 to change, 0 unchanged.
`

// parseEdit parses the seed with edits (see edit).
func parseEdit(t *testing.T, pairs ...string) *Blueprint {
	t.Helper()
	b, err := Parse([]byte(edit(t, pairs...)), "edited.json")
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// withConfig returns entries with name's config replaced.
func withConfig(entries []CatalogEntry, name, config string) []CatalogEntry {
	out := make([]CatalogEntry, len(entries))
	copy(out, entries)
	for i := range out {
		if out[i].Name == name {
			out[i].Config = json.RawMessage(config)
		}
	}
	return out
}

func TestDiff(t *testing.T) {
	seed := loadSeed(t)
	provisioned := seed.Entries() // the catalog after the seed was applied

	cases := []struct {
		name      string
		desired   *Blueprint
		current   []CatalogEntry
		want      string // in Plan.String()
		exact     bool   // want is all of Plan.String()
		changes   bool
		refusals  int
		actionsOf map[string]Action
	}{
		{
			name: "fresh catalog", desired: seed, current: nil,
			want: seedPlan, exact: true, changes: true,
		},
		{
			name: "identical catalog", desired: seed, current: provisioned,
			want: `= unchanged datastore warehouse
= unchanged archive datalake
= unchanged conduit events
= unchanged lane batch-jobs
= unchanged insight pipeline-obs
= unchanged gateway ingest-dns
= unchanged compute ingest-api
= unchanged compute etl-worker

Plan: 0 to create, 0 to change, 8 unchanged.
`, exact: true,
		},
		{
			name:    "partitions raised 12 to 24",
			desired: parseEdit(t, `"particoes": 12`, `"particoes": 24`), current: provisioned,
			want:      "~ update conduit events: particoes 12 → 24\n",
			changes:   true,
			actionsOf: map[string]Action{"events": ActionUpdate, "warehouse": ActionUnchanged},
		},
		{
			name:    "partitions lowered 12 to 6",
			desired: parseEdit(t, `"particoes": 12`, `"particoes": 6`), current: provisioned,
			want:      "! refused conduit events: Kafka cannot shrink a topic: 12 → 6 partitions refused\n",
			refusals:  1,
			actionsOf: map[string]Action{"events": ActionRefused},
		},
		{
			name:    "retention changed",
			desired: parseEdit(t, `"retencao_horas": 168`, `"retencao_horas": 72`), current: provisioned,
			want:    "~ update conduit events: retencao_horas 168 → 72\n",
			changes: true,
		},
		{
			name:    "partitions lowered with a retention change",
			desired: parseEdit(t, `"particoes": 12`, `"particoes": 6`, `"retencao_horas": 168`, `"retencao_horas": 72`), current: provisioned,
			want: "! refused conduit events: Kafka cannot shrink a topic: 12 → 6 partitions refused\n" +
				"    also requested, not applied: retencao_horas 168 → 72\n",
			refusals: 1,
		},
		{
			name: "several updates in one resource",
			desired: parseEdit(t, `"replicas_min": 1,
        "replicas_max": 10`, `"replicas_min": 2,
        "replicas_max": 20`), current: provisioned,
			want:    "~ update compute etl-worker: replicas_min 1 → 2, replicas_max 10 → 20\n",
			changes: true,
		},
		{
			name: "partly provisioned", desired: seed, current: provisioned[:3],
			want:    "+ create lane batch-jobs (duravel=true, prefetch=5)\n",
			changes: true,
			actionsOf: map[string]Action{"warehouse": ActionUnchanged, "events": ActionUnchanged,
				"batch-jobs": ActionCreate, "etl-worker": ActionCreate},
		},
		{
			name: "catalog written with other key order and spacing", desired: seed,
			current: withConfig(provisioned, "events", `{ "retencao_horas": 168.0, "particoes": 12 }`),
			want:    "= unchanged conduit events\n",
		},
		{
			name: "catalog from before a key existed", desired: seed,
			current: withConfig(provisioned, "pipeline-obs", `{"retencao_dias":30}`),
			want:    "~ update insight pipeline-obs: alertas (unset) → true\n",
			changes: true,
		},
		{
			name: "catalog with a key the blueprint dropped", desired: seed,
			current: withConfig(provisioned, "etl-worker", `{"subtipo":"worker","porta":9090,"replicas_min":1,"replicas_max":10}`),
			want:    "~ update compute etl-worker: porta 9090 → (unset)\n",
			changes: true,
		},
		{
			name: "unreadable catalog config", desired: seed,
			current: withConfig(provisioned, "ingest-dns", `not json`),
			want:    "~ update gateway ingest-dns: dominio (unset) → ingest.acme.io, tls (unset) → true\n",
			changes: true,
		},
		{
			name: "compute changes role", desired: seed,
			current: withConfig(provisioned, "etl-worker", `{"subtipo":"api","porta":8080,"replicas_min":1,"replicas_max":10}`),
			want: "! refused compute etl-worker: a compute cannot change subtipo in place: api → worker refused (declare it under a new nome)\n" +
				"    also requested, not applied: porta 8080 → (unset)\n",
			refusals: 1,
		},
		{
			name: "datastore engine changes", desired: seed,
			current:  withConfig(provisioned, "warehouse", `{"engine":"mysql","tamanho_gb":100,"ha":true}`),
			want:     "! refused datastore warehouse: a datastore cannot change engine in place: mysql → postgres refused\n",
			refusals: 1,
		},
		{
			name: "resource gone from the blueprint", desired: seed,
			current: append(append([]CatalogEntry{}, provisioned...),
				CatalogEntry{Kind: KindLane, Name: "old-jobs", Config: json.RawMessage(`{"duravel":true,"prefetch":1}`)},
				CatalogEntry{Kind: KindArchive, Name: "old-lake", Config: json.RawMessage(`{}`)}),
			want: "= unchanged compute etl-worker\n" +
				"? orphaned archive old-lake: in the catalog, not in the blueprint; left in place\n" +
				"? orphaned lane old-jobs: in the catalog, not in the blueprint; left in place\n" +
				"\nPlan: 0 to create, 0 to change, 8 unchanged, 2 not in the blueprint.\n",
			actionsOf: map[string]Action{"old-jobs": ActionOrphaned},
		},
		{
			name: "same name, other kind", desired: seed,
			current: withKind(provisioned, "batch-jobs", KindConduit),
			want: "+ create lane batch-jobs (duravel=true, prefetch=5)\n" +
				"= unchanged insight pipeline-obs\n",
			changes: true,
		},
		{
			name: "duplicate catalog entries", desired: seed,
			current: append(append([]CatalogEntry{}, provisioned...), provisioned[2]),
			want:    "Plan: 0 to create, 0 to change, 8 unchanged.\n",
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p := Diff(tc.desired, tc.current)
			got := p.String()
			if tc.exact && got != tc.want || !strings.Contains(got, tc.want) {
				t.Errorf("plan:\n%s\nwant (exact: %t):\n%s", got, tc.exact, tc.want)
			}
			if p.HasChanges() != tc.changes {
				t.Errorf("HasChanges() = %t", p.HasChanges())
			}
			if n := len(p.Refusals()); n != tc.refusals {
				t.Errorf("%d refusals", n)
			}
			if (p.Err() != nil) != (tc.refusals > 0) {
				t.Errorf("Err() = %v", p.Err())
			}
			if tc.refusals > 0 && !strings.HasSuffix(got, "refused.\nNothing will be applied until the refused changes are taken out of the blueprint.\n") {
				t.Errorf("no refusal summary:\n%s", got)
			}
			for name, a := range tc.actionsOf {
				if got := actionOf(p, name); got != a {
					t.Errorf("%s: %s, want %s", name, got, a)
				}
			}
		})
	}
}

func withKind(entries []CatalogEntry, name string, k Kind) []CatalogEntry {
	out := make([]CatalogEntry, len(entries))
	copy(out, entries)
	for i := range out {
		if out[i].Name == name {
			out[i].Kind = k
		}
	}
	return out
}

func actionOf(p Plan, name string) Action {
	for _, c := range p.Changes {
		if c.Name == name {
			return c.Action
		}
	}
	return ""
}

func TestDiffExactOutputs(t *testing.T) {
	seed := loadSeed(t)
	if got := Diff(seed, nil).String(); got != seedPlan {
		t.Errorf("seed against an empty catalog:\n%s\nwant:\n%s", got, seedPlan)
	}
	p := Diff(parseEdit(t, `"particoes": 12`, `"particoes": 6`), seed.Entries())
	want := `= unchanged datastore warehouse
= unchanged archive datalake
! refused conduit events: Kafka cannot shrink a topic: 12 → 6 partitions refused
= unchanged lane batch-jobs
= unchanged insight pipeline-obs
= unchanged gateway ingest-dns
= unchanged compute ingest-api
= unchanged compute etl-worker

Plan: 0 to create, 0 to change, 7 unchanged, 1 refused.
Nothing will be applied until the refused changes are taken out of the blueprint.
`
	if got := p.String(); got != want {
		t.Errorf("refused plan:\n%s\nwant:\n%s", got, want)
	}
	if err := p.Err(); err == nil || err.Error() != "plan refused: conduit events: Kafka cannot shrink a topic: 12 → 6 partitions refused" {
		t.Errorf("Err() = %v", err)
	}
	r := p.Refusals()[0]
	if r.Kind != KindConduit || r.Name != "events" || len(r.Fields) != 1 ||
		!reflect.DeepEqual(r.Fields[0], FieldChange{Field: "particoes", Old: json.RawMessage("12"), New: json.RawMessage("6")}) {
		t.Errorf("refusal = %+v", r)
	}
	if got := (Plan{}).String(); got != "Plan: 0 to create, 0 to change, 0 unchanged.\n" {
		t.Errorf("empty plan: %q", got)
	}
	if got := Diff(nil, nil); len(got.Changes) != 0 {
		t.Errorf("nil blueprint: %v", got)
	}
}

// A plan travels as JSON (a workflow result) and comes back equal.
func TestPlanJSON(t *testing.T) {
	seed := loadSeed(t)
	p := Diff(parseEdit(t, `"particoes": 12`, `"particoes": 24`), seed.Entries()[:4])
	data, err := json.Marshal(p)
	if err != nil {
		t.Fatal(err)
	}
	var back Plan
	if err := json.Unmarshal(data, &back); err != nil {
		t.Fatal(err)
	}
	if back.String() != p.String() {
		t.Errorf("round trip:\n%s\nvs\n%s", back, p)
	}
	if !strings.Contains(string(data), `{"action":"update","kind":"conduit","name":"events","desired":{"particoes":24,"retencao_horas":168},"current":{"particoes":12,"retencao_horas":168},"fields":[{"field":"particoes","old":12,"new":24}]}`) {
		t.Errorf("json: %s", data)
	}
}
