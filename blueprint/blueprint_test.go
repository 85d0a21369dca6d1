package blueprint

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"testing"
	"time"
)

func loadSeed(t *testing.T) *Blueprint {
	t.Helper()
	b, err := Load("../deploy/blueprint.json")
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestSeedParses(t *testing.T) {
	b := loadSeed(t)
	if b.Name != "Analytics Pipeline" || b.Mode != ModeAdvanced || b.Source != "../deploy/blueprint.json" || len(b.Resources) != 8 {
		t.Fatalf("blueprint = %q %q %q, %d resources", b.Name, b.Mode, b.Source, len(b.Resources))
	}
	if name, parts, ret := b.Topic(); name != "events" || parts != 12 || ret != 168*time.Hour {
		t.Errorf("Topic() = %s, %d, %v", name, parts, ret)
	}
	checks := []struct {
		what       string
		name       string
		cfg        any
		wantName   string
		wantConfig any
	}{
		{"Conduit", first2(b.Conduit()), second2(b.Conduit()), "events", ConduitConfig{Partitions: 12, RetentionHours: 168}},
		{"Bucket", first2(b.Bucket()), second2(b.Bucket()), "datalake", ArchiveConfig{Subtype: "arquivos", SizeGB: 500}},
		{"Datastore", first2(b.Datastore()), second2(b.Datastore()), "warehouse", DatastoreConfig{Engine: "postgres", SizeGB: 100, HA: true}},
		{"Lane", first3(b.Lane()), second3(b.Lane()), "batch-jobs", LaneConfig{Durable: true, Prefetch: 5}},
		// replicas_max is omitted in the seed: no autoscaling, max = min.
		{"API", first3(b.API()), second3(b.API()), "ingest-api", ComputeConfig{Subtype: "api", Port: 8080, ReplicasMin: 2, ReplicasMax: 2}},
		{"Worker", first3(b.Worker()), second3(b.Worker()), "etl-worker", ComputeConfig{Subtype: "worker", ReplicasMin: 1, ReplicasMax: 10}},
		{"Gateway", first3(b.Gateway()), second3(b.Gateway()), "ingest-dns", GatewayConfig{Domain: "ingest.acme.io", TLS: true}},
		{"Insight", first3(b.Insight()), second3(b.Insight()), "pipeline-obs", InsightConfig{RetentionDays: 30, Alerts: true}},
	}
	for _, c := range checks {
		if c.name != c.wantName || !reflect.DeepEqual(c.cfg, c.wantConfig) {
			t.Errorf("%s() = %s %+v, want %s %+v", c.what, c.name, c.cfg, c.wantName, c.wantConfig)
		}
	}
	for _, r := range b.Resources {
		if r.Config.Kind() != r.Kind {
			t.Errorf("%s: config of kind %s", r.Name, r.Config.Kind())
		}
	}
	if r, ok := b.Resource("events"); !ok || r.Kind != KindConduit {
		t.Errorf("Resource(events) = %+v, %t", r, ok)
	}
	if _, ok := b.Resource("nope"); ok {
		t.Error("Resource(nope) found")
	}
	var kinds []Kind
	for _, r := range b.Ordered() {
		kinds = append(kinds, r.Kind)
	}
	want := []Kind{KindDatastore, KindArchive, KindConduit, KindLane, KindInsight, KindGateway, KindCompute, KindCompute}
	if !reflect.DeepEqual(kinds, want) {
		t.Errorf("Ordered kinds = %v", kinds)
	}
	if !reflect.DeepEqual(Kinds(), want[:7]) {
		t.Errorf("Kinds() = %v", Kinds())
	}
}

func first2[C any](n string, _ C) string         { return n }
func second2[C any](_ string, c C) any           { return c }
func first3[C any](n string, _ C, _ bool) string { return n }
func second3[C any](_ string, c C, ok bool) any {
	if !ok {
		return nil
	}
	return c
}

// The shipped blueprint is the seed's, byte for byte.
func TestDeployBlueprintIsTheSeed(t *testing.T) {
	seed, err := os.ReadFile("../../shared/blueprint.json")
	if err != nil {
		t.Skipf("no shared seed beside the repository: %v", err)
	}
	ours, err := os.ReadFile("../deploy/blueprint.json")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(seed, ours) {
		t.Error("deploy/blueprint.json differs from the seed's blueprint.json")
	}
}

// A Blueprint survives a JSON round trip (as a workflow input does), with its
// defaults written out.
func TestJSONRoundTrip(t *testing.T) {
	b := loadSeed(t)
	data, err := json.Marshal(b)
	if err != nil {
		t.Fatal(err)
	}
	var back Blueprint
	if err := json.Unmarshal(data, &back); err != nil {
		t.Fatalf("%v\n%s", err, data)
	}
	b.Source = ""
	if !reflect.DeepEqual(&back, b) {
		t.Errorf("round trip:\n got %+v\nwant %+v", back, *b)
	}
	if !bytes.Contains(data, []byte(`{"tipo":"compute","nome":"ingest-api","config":{"subtipo":"api","porta":8080,"replicas_min":2,"replicas_max":2}}`)) {
		t.Errorf("marshalled form: %s", data)
	}

	// Unmarshalling validates.
	if err := json.Unmarshal([]byte(`{"nome": "x", "recursos": []}`), &back); err == nil {
		t.Error("an invalid blueprint unmarshalled")
	}

	// So does a single resource.
	var r Resource
	if err := json.Unmarshal([]byte(`{"tipo": "conduit", "nome": "events", "config": {"particoes": 3}}`), &r); err != nil {
		t.Fatal(err)
	}
	if r != (Resource{Kind: KindConduit, Name: "events", Config: ConduitConfig{Partitions: 3, RetentionHours: 168}}) {
		t.Errorf("resource = %+v", r)
	}
	err = json.Unmarshal([]byte(`{"tipo": "conduit", "nome": "events", "config": {"particoes": 0}}`), &r)
	if errs, ok := err.(Errors); !ok || len(errs) != 1 || errs[0].Field != "config.particoes" {
		t.Errorf("invalid resource: %v", err)
	}
	if err := json.Unmarshal([]byte(`{"tipo": "conduit",`), &r); err == nil {
		t.Error("malformed resource unmarshalled")
	}
}

func TestCanonicalConfig(t *testing.T) {
	b := loadSeed(t)
	want := map[string]string{
		"warehouse":    `{"engine":"postgres","tamanho_gb":100,"ha":true}`,
		"datalake":     `{"subtipo":"arquivos","tamanho_gb":500,"publico":false}`,
		"events":       `{"particoes":12,"retencao_horas":168}`,
		"batch-jobs":   `{"duravel":true,"prefetch":5}`,
		"pipeline-obs": `{"retencao_dias":30,"alertas":true}`,
		"ingest-dns":   `{"dominio":"ingest.acme.io","tls":true}`,
		"ingest-api":   `{"subtipo":"api","porta":8080,"replicas_min":2,"replicas_max":2}`,
		"etl-worker":   `{"subtipo":"worker","replicas_min":1,"replicas_max":10}`,
	}
	entries := b.Entries()
	if len(entries) != len(want) {
		t.Fatalf("%d entries", len(entries))
	}
	for _, e := range entries {
		if string(e.Config) != want[e.Name] {
			t.Errorf("%s: %s, want %s", e.Name, e.Config, want[e.Name])
		}
	}
	if got := (Resource{}).CanonicalConfig(); string(got) != "{}" {
		t.Errorf("empty resource: %s", got)
	}
}

// FuzzParse: Parse never panics, and what it accepts marshals to a blueprint
// that parses back to the same thing.
func FuzzParse(f *testing.F) {
	files, _ := filepath.Glob("testdata/invalid/*.json")
	files = append(files, "../deploy/blueprint.json")
	for _, name := range files {
		if data, err := os.ReadFile(name); err == nil {
			f.Add(data)
		}
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		b, err := Parse(data, "fuzz.json")
		if err != nil {
			var errs Errors
			if !errors.As(err, &errs) || len(errs) == 0 {
				t.Fatalf("error without problems: %v", err)
			}
			return
		}
		out, err := json.Marshal(b)
		if err != nil {
			t.Fatal(err)
		}
		back, err := Parse(out, "")
		if err != nil {
			t.Fatalf("re-parse of %s: %v", out, err)
		}
		back.Source = b.Source
		if !reflect.DeepEqual(back, b) {
			t.Fatalf("round trip differs:\n%+v\n%+v", b, back)
		}
		if p := Diff(b, back.Entries()); p.HasChanges() || p.Count(ActionUnchanged) != len(b.Resources) {
			t.Fatalf("plan against its own entries:\n%s", p)
		}
	})
}
