package blueprint_test

import (
	"errors"
	"fmt"

	"github.com/acme/pipeline/blueprint"
)

func ExampleParse() {
	_, err := blueprint.Parse([]byte(`{
  "nome": "Analytics Pipeline",
  "recursos": [
    {"tipo": "conduit", "nome": "events", "config": {"partitions": 12, "retencao_horas": -1}},
    {"tipo": "archive", "nome": "datalake", "config": {"tamanho_gb": "500"}},
    {"tipo": "datastore", "nome": "warehouse", "config": {"engine": "mysql"}}
  ]
}`), "blueprint.json")

	var problems blueprint.Errors
	if errors.As(err, &problems) {
		for _, p := range problems {
			fmt.Printf("%s | %s | %s\n", p.Resource, p.Field, p.Message)
		}
	}
	// Output:
	// events | config.retencao_horas | must be at least 1 hour, got -1
	// events | config.partitions | unknown key "partitions"; did you mean "particoes"?
	// datalake | config.tamanho_gb | must be a number, got a string ("500"); write 500 without quotes
	// warehouse | config.engine | unknown engine "mysql" (the only one supported is postgres)
}

func ExampleDiff() {
	current, _ := blueprint.Parse([]byte(`{"nome": "p", "recursos": [
		{"tipo": "conduit", "nome": "events", "config": {"particoes": 12}},
		{"tipo": "archive", "nome": "datalake"},
		{"tipo": "datastore", "nome": "warehouse"}]}`), "")
	desired, _ := blueprint.Parse([]byte(`{"nome": "p", "recursos": [
		{"tipo": "conduit", "nome": "events", "config": {"particoes": 24}},
		{"tipo": "lane", "nome": "batch-jobs", "config": {"prefetch": 4}},
		{"tipo": "compute", "nome": "etl-worker", "config": {"subtipo": "worker", "replicas_max": 4}},
		{"tipo": "archive", "nome": "datalake"},
		{"tipo": "datastore", "nome": "warehouse"}]}`), "")

	plan := blueprint.Diff(desired, current.Entries())
	fmt.Print(plan)
	fmt.Println(plan.HasChanges(), len(plan.Refusals()))
	// Output:
	// = unchanged datastore warehouse
	// = unchanged archive datalake
	// ~ update conduit events: particoes 12 → 24
	// + create lane batch-jobs (duravel=true, prefetch=4)
	// + create compute etl-worker (subtipo=worker, replicas_min=1, replicas_max=4)
	//
	// Plan: 2 to create, 1 to change, 2 unchanged.
	// true 0
}
