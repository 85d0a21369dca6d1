package blueprint

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"
)

// conduitOf returns the plan's change for the conduit events.
func conduitOf(t *testing.T, p Plan) Change {
	t.Helper()
	for _, c := range p.Changes {
		if c.Kind == KindConduit {
			return c
		}
	}
	t.Fatalf("no conduit in the plan:\n%s", p)
	return Change{}
}

func TestDiffClusterResolvesReplication(t *testing.T) {
	const conduit = `"particoes": 12,`
	recorded := func(cfg string) []CatalogEntry {
		return withConfig(loadSeed(t).Entries(), "events", cfg)
	}
	cases := []struct {
		name     string
		edit     []string // edits of the seed
		current  []CatalogEntry
		brokers  int
		action   Action
		rf, isr  int      // in the desired config
		line     string   // in Plan.String()
		notes    []string // substrings, one per note
		refusals []string
	}{
		{name: "three brokers: 3 copies, 2 in sync", brokers: 3, action: ActionCreate, rf: 3, isr: 2,
			line: "+ create conduit events (particoes=12, retencao_horas=168, replicacao=3, min_sincronas=2)"},
		{name: "five brokers stay at the plan's 3", brokers: 5, action: ActionCreate, rf: 3, isr: 2},
		{name: "the dev stack's one broker keeps 1 and says so", brokers: 1, action: ActionCreate, rf: 1, isr: 1,
			line:  "replicacao=1, min_sincronas=1)\n    note: replicacao 1: the cluster has 1 broker",
			notes: []string{"a lost broker disk loses events already acknowledged; with 3 brokers the plan gives replicacao 3, min_sincronas 2"}},
		{name: "two brokers: 2 copies, a note on min_sincronas 1", brokers: 2, action: ActionCreate, rf: 2, isr: 1,
			notes: []string{"min_sincronas 1: Kafka acknowledges a write once one broker has it"}},
		{name: "declared more than the cluster holds is refused", edit: []string{conduit, conduit + ` "replicacao": 3,`},
			brokers: 1, action: ActionRefused, rf: 3, isr: 2,
			line:     "! refused conduit events: replicacao 3: the cluster has 1 broker",
			refusals: []string{"add brokers or declare replicacao 1 at most"}},
		{name: "min_sincronas above what the cluster resolves to is refused", edit: []string{conduit, conduit + ` "min_sincronas": 2,`},
			brokers: 1, action: ActionRefused, rf: 1, isr: 2, notes: []string{"replicacao 1: the cluster has 1 broker"},
			refusals: []string{"min_sincronas 2: replicacao resolves to 1 on a cluster of 1 broker"}},
		{name: "declared 1 on a big cluster", edit: []string{conduit, conduit + ` "replicacao": 1,`},
			brokers: 3, action: ActionCreate, rf: 1, isr: 1, notes: []string{"replicacao 1 as declared"}},
		{name: "a catalog from before replication plans an update",
			current: recorded(`{"particoes":12,"retencao_horas":168}`), brokers: 3, action: ActionUpdate, rf: 3, isr: 2,
			line: "~ update conduit events: replicacao (unset) → 3, min_sincronas (unset) → 2"},
		{name: "as recorded: unchanged", current: recorded(`{"particoes":12,"retencao_horas":168,"replicacao":3,"min_sincronas":2}`),
			brokers: 3, action: ActionUnchanged, rf: 3, isr: 2},
		{name: "a broker down does not lower the recorded replication",
			current: recorded(`{"particoes":12,"retencao_horas":168,"replicacao":3,"min_sincronas":2}`),
			brokers: 2, action: ActionUnchanged, rf: 3, isr: 2,
			notes: []string{"replicacao 3 as recorded: the cluster lists 2 brokers now"}},
		{name: "the cluster grew: 1 → 3 copies is an update",
			current: recorded(`{"particoes":12,"retencao_horas":168,"replicacao":1,"min_sincronas":1}`),
			brokers: 3, action: ActionUpdate, rf: 3, isr: 2,
			line: "~ update conduit events: replicacao 1 → 3, min_sincronas 1 → 2"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			bp := loadSeed(t)
			if tc.edit != nil {
				bp = parseEdit(t, tc.edit...)
			}
			p := DiffCluster(bp, tc.current, Cluster{Brokers: tc.brokers})
			ch := conduitOf(t, p)
			if ch.Action != tc.action {
				t.Errorf("action %s, want %s\n%s", ch.Action, tc.action, p)
			}
			var got ConduitConfig
			if err := json.Unmarshal(ch.Desired, &got); err != nil {
				t.Fatal(err)
			}
			if got.Replication != tc.rf || got.MinInsync != tc.isr {
				t.Errorf("replicacao %d, min_sincronas %d; want %d, %d", got.Replication, got.MinInsync, tc.rf, tc.isr)
			}
			if tc.line != "" && !strings.Contains(p.String(), tc.line) {
				t.Errorf("plan lacks %q:\n%s", tc.line, p)
			}
			if len(ch.Notes) != len(tc.notes) {
				t.Errorf("notes %q, want %d", ch.Notes, len(tc.notes))
			}
			for i, n := range tc.notes {
				if i < len(ch.Notes) && !strings.Contains(ch.Notes[i], n) {
					t.Errorf("note %d %q lacks %q", i, ch.Notes[i], n)
				}
			}
			for _, r := range tc.refusals {
				if !slices.ContainsFunc(ch.Reasons, func(s string) bool { return strings.Contains(s, r) }) {
					t.Errorf("reasons %q lack %q", ch.Reasons, r)
				}
			}
			if (p.Err() != nil) != (tc.action == ActionRefused) {
				t.Errorf("Err() = %v with action %s", p.Err(), ch.Action)
			}
		})
	}
}

// An unknown cluster plans as Diff does: the blueprint's keys only, so a
// workflow started before the cluster was asked replays the same plan.
func TestDiffClusterUnknownIsDiff(t *testing.T) {
	bp := loadSeed(t)
	if got, want := DiffCluster(bp, nil, Cluster{}).String(), Diff(bp, nil).String(); got != want {
		t.Fatalf("unknown cluster:\n%s\nDiff:\n%s", got, want)
	}
	if !strings.Contains(Diff(bp, nil).String(), "(particoes=12, retencao_horas=168)") {
		t.Fatal("Diff without a cluster shows replication keys")
	}
}
