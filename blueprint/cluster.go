package blueprint

import (
	"encoding/json"
	"fmt"
)

// Cluster is what the plan needs to know of the Kafka cluster the conduit
// lives on. The zero Cluster is "unknown": DiffCluster then leaves
// replication as the blueprint declares it, as plans made before the
// cluster was asked did.
type Cluster struct {
	// Brokers is how many brokers the cluster's metadata lists.
	Brokers int `json:"brokers"`
}

// DiffCluster is Diff with the conduit's replication resolved against the
// cluster first (resolveReplication): the plan's desired config carries the
// replicacao and min_sincronas that provisioning will set, a declared
// replicacao the cluster cannot hold is refused, and a topic with fewer
// than DefaultReplication copies gets a note saying what that risks.
func DiffCluster(desired *Blueprint, current []CatalogEntry, cl Cluster) Plan {
	if desired == nil || cl.Brokers < 1 {
		return Diff(desired, current)
	}
	resolved := *desired
	resolved.Resources = make([]Resource, len(desired.Resources))
	copy(resolved.Resources, desired.Resources)
	type verdict struct{ notes, refusals []string }
	verdicts := map[string]verdict{}
	for i, r := range resolved.Resources {
		cc, ok := r.Config.(ConduitConfig)
		if !ok {
			continue
		}
		recorded := recordedReplication(current, r.Name)
		var v verdict
		resolved.Resources[i].Config, v.notes, v.refusals = resolveReplication(cc, recorded, cl)
		verdicts[r.Name] = v
	}
	p := Diff(&resolved, current)
	for i, ch := range p.Changes {
		v, ok := verdicts[ch.Name]
		if ch.Kind != KindConduit || !ok {
			continue
		}
		p.Changes[i].Notes = v.notes
		if len(v.refusals) > 0 {
			p.Changes[i].Action = ActionRefused
			p.Changes[i].Reasons = append(p.Changes[i].Reasons, v.refusals...)
		}
	}
	return p
}

// recordedReplication returns the replicacao the catalog records for the
// conduit name, 0 when none.
func recordedReplication(current []CatalogEntry, name string) int {
	for _, e := range current {
		if e.Kind != KindConduit || e.Name != name {
			continue
		}
		var c ConduitConfig
		if json.Unmarshal(e.Config, &c) == nil {
			return c.Replication
		}
	}
	return 0
}

// resolveReplication fills in the replication the plan will apply. An
// omitted replicacao is DefaultReplication capped at the brokers the
// cluster has, but never below what the catalog records (a broker down
// during the plan must not lower it); an omitted min_sincronas is one less
// than replicacao, at least 1, so one broker can be lost without refusing
// writes and no acknowledged write lives on one disk alone once there are
// three copies.
func resolveReplication(cc ConduitConfig, recorded int, cl Cluster) (out ConduitConfig, notes, refusals []string) {
	out = cc
	declared := cc.Replication > 0
	if !declared {
		out.Replication = max(min(DefaultReplication, cl.Brokers), recorded)
	}
	if out.MinInsync == 0 {
		out.MinInsync = max(1, min(out.Replication-1, DefaultReplication-1))
	}
	brokers := plural(cl.Brokers, "broker")
	switch {
	case declared && out.Replication > cl.Brokers:
		refusals = append(refusals, fmt.Sprintf(
			"replicacao %d: the cluster has %s, and Kafka keeps each copy on a different broker; add brokers or declare replicacao %d at most",
			out.Replication, brokers, cl.Brokers))
	case out.MinInsync > out.Replication:
		refusals = append(refusals, fmt.Sprintf(
			"min_sincronas %d: replicacao resolves to %d on a cluster of %s, and a write cannot wait for more copies than the topic has",
			out.MinInsync, out.Replication, brokers))
	}
	switch {
	case out.Replication == 1 && declared:
		notes = append(notes, "replicacao 1 as declared: each event has one copy, and a lost broker disk loses events already acknowledged")
	case out.Replication == 1:
		notes = append(notes, fmt.Sprintf(
			"replicacao 1: the cluster has %s, so each event has one copy and a lost broker disk loses events already acknowledged; with %d brokers the plan gives replicacao %d, min_sincronas %d",
			brokers, DefaultReplication, DefaultReplication, DefaultReplication-1))
	case out.MinInsync < 2:
		notes = append(notes, fmt.Sprintf(
			"min_sincronas %d: Kafka acknowledges a write once one broker has it, so losing that broker's disk before the others copy it loses the event; min_sincronas 2 needs replicacao 3 to survive a broker down",
			out.MinInsync))
	}
	if !declared && out.Replication > cl.Brokers {
		notes = append(notes, fmt.Sprintf(
			"replicacao %d as recorded: the cluster lists %s now, and the plan does not lower replication for a broker that is down",
			out.Replication, brokers))
	}
	return out, notes, refusals
}

func plural(n int, unit string) string {
	if n == 1 {
		return "1 " + unit
	}
	return fmt.Sprintf("%d %ss", n, unit)
}
