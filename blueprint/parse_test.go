package blueprint

import (
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite testdata/invalid/*.txt from the current messages")

// want is one expected problem: resource and field exactly, message by a
// fragment.
type want struct {
	res, field, msg string
}

// seedJSON is the seed's blueprint, shipped with the project.
func seedJSON(t *testing.T) string {
	t.Helper()
	data, err := os.ReadFile("../deploy/blueprint.json")
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}

// edit returns the seed with each old string replaced by the new one that
// follows it; each old string must occur exactly once.
func edit(t *testing.T, pairs ...string) string {
	t.Helper()
	s := seedJSON(t)
	for i := 0; i+1 < len(pairs); i += 2 {
		if n := strings.Count(s, pairs[i]); n != 1 {
			t.Fatalf("edit: %q occurs %d times in the seed", pairs[i], n)
		}
		s = strings.Replace(s, pairs[i], pairs[i+1], 1)
	}
	return s
}

// problemsOf parses data and returns the problems, failing when there are none.
func problemsOf(t *testing.T, data, source string) Errors {
	t.Helper()
	b, err := Parse([]byte(data), source)
	if err == nil {
		t.Fatalf("parsed without problems: %+v", b)
	}
	if b != nil {
		t.Errorf("returned a blueprint along with the error")
	}
	var errs Errors
	if !errors.As(err, &errs) {
		t.Fatalf("error %T is not Errors: %v", err, err)
	}
	return errs
}

func checkProblems(t *testing.T, got Errors, wants []want) {
	t.Helper()
	if len(got) != len(wants) {
		t.Errorf("got %d problems, want %d:\n%v", len(got), len(wants), got)
	}
	for i := range min(len(got), len(wants)) {
		g, w := got[i], wants[i]
		if g.Resource != w.res || g.Field != w.field || !strings.Contains(g.Message, w.msg) {
			t.Errorf("problem %d:\n got  %q %q %q\n want %q %q (message containing %q)", i, g.Resource, g.Field, g.Message, w.res, w.field, w.msg)
		}
	}
}

// TestInvalidFiles parses each example under testdata/invalid. Next to every
// NAME.json, NAME.txt holds the message as a user sees it (go test -update
// rewrites them).
func TestInvalidFiles(t *testing.T) {
	cases := map[string][]want{
		"malformed_json":     {{"", "", "malformed JSON at line 11, column 6: invalid character '}'"}},
		"unknown_tipo":       {{"events", "tipo", `unknown tipo "condiut"; did you mean "conduit"?`}},
		"missing_nome":       {{"recursos[2]", "nome", "is required"}},
		"duplicate_nome":     {{"recursos[3]", "nome", `duplicate nome "ingest-api": recursos[0] already uses it`}},
		"duplicate_key":      {{"events", "config.particoes", "appears more than once"}},
		"quoted_number":      {{"events", "config.particoes", `must be a number, got a string ("12"); write 12 without quotes`}},
		"zero_partitions":    {{"events", "config.particoes", "must be at least 1 partition, got 0"}},
		"negative_retention": {{"events", "config.retencao_horas", "must be at least 1 hour, got -24"}},
		"port_out_of_range":  {{"ingest-api", "config.porta", "must be a TCP port from 1 to 65535, got 80800"}},
		"replicas_inverted":  {{"etl-worker", "config.replicas_min", "must not exceed replicas_max: 12 > 4"}},
		"prefetch_zero":      {{"batch-jobs", "config.prefetch", "must be at least 1, got 0"}},
		"size_not_positive": {
			{"datalake", "config.tamanho_gb", "must be at least 1 GB, got 0"},
			{"warehouse", "config.tamanho_gb", "must be at least 1 GB, got -100"},
		},
		"malformed_domain":    {{"ingest-dns", "config.dominio", `"ingest..acme.io" is a malformed domain: empty label`}},
		"engine_mysql":        {{"warehouse", "config.engine", `unknown engine "mysql" (the only one supported is postgres)`}},
		"english_key":         {{"events", "config.partitions", `unknown key "partitions"; did you mean "particoes"?`}},
		"key_of_other_kind":   {{"events", "config.prefetch", "unknown key: prefetch is not a conduit setting, it belongs to lane (allowed here: particoes, retencao_horas, replicacao, min_sincronas)"}},
		"missing_conduit":     {{"ingest-api", "config.subtipo", "an api compute publishes events to a conduit, and the blueprint declares none"}},
		"two_conduits":        {{"events-replay", "tipo", "a blueprint has at most one conduit (the event log); events already is"}},
		"public_archive":      {{"datalake", "config.publico", "must be false: the data lake holds raw events"}},
		"worker_with_port":    {{"etl-worker", "config.porta", "a worker does not listen on a port"}},
		"lane_without_worker": {{"batch-jobs", "tipo", "a lane's jobs run on a worker compute, and the blueprint declares none"}},
		"not_a_blueprint": {
			{"", "name", `unknown key "name"; did you mean "nome"?`},
			{"", "resources", `unknown key "resources"; did you mean "recursos"?`},
		},
		"wrong_shapes": {
			{"recursos[0]", "", `a resource must be an object with tipo, nome and config, got a string ("conduit")`},
			{"events", "config", "must be an object, got an array"},
			{"recursos[2]", "nome", "must be a string, got a number (7)"},
			{"warehouse", "config.ha", "must be true or false, got null; omit the key for the default (false)"},
			{"ingest-dns", "config.tls", `must be true or false, got a string ("true"); write true without quotes`},
			{"ingest-api", "config.replicas_min", "must be a whole number, got 1.5"},
		},
		"many_problems": {
			{"", "modo", `unknown modo "avançado"; did you mean "avancado"?`},
			{"ingest-api", "config.porta", "must be a TCP port from 1 to 65535, got 0"},
			{"ingest-api", "config.replicas_min", "must not exceed replicas_max: 2 > 1"},
			{"events", "config.particoes", `must be a number, got a string ("doze")`},
			{"events", "config.retencao_horas", "must be at least 1 hour, got -1"},
			{"batch-jobs", "tipo", `unknown tipo "queue"; did you mean "lane"?`},
			{"recursos[4]", "nome", `must be lower case: "DataLake" (write "datalake")`},
			{"warehouse", "config.ha", `must be true or false, got a string ("yes")`},
			{"ingest-dns", "config.dominio", `must be a domain name, not a URL: "https://ingest.acme.io/"`},
			{"pipeline-obs", "config.retencao_dias", "must be a number, got null; omit the key for the default (30)"},
			{"pipeline-obs", "config.alerts", `unknown key "alerts"; did you mean "alertas"?`},
		},
	}
	files, err := filepath.Glob("testdata/invalid/*.json")
	if err != nil {
		t.Fatal(err)
	}
	if len(files) < 15 {
		t.Fatalf("only %d example files", len(files))
	}
	for _, f := range files {
		name := strings.TrimSuffix(filepath.Base(f), ".json")
		t.Run(name, func(t *testing.T) {
			wants, ok := cases[name]
			if !ok {
				t.Fatalf("no expectations for %s: add them to the table", f)
			}
			delete(cases, name)
			data, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			got := problemsOf(t, string(data), filepath.Base(f))
			checkProblems(t, got, wants)

			_, err = Parse(data, filepath.Base(f))
			golden := strings.TrimSuffix(f, ".json") + ".txt"
			if *update {
				if err := os.WriteFile(golden, []byte(err.Error()+"\n"), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			g, rerr := os.ReadFile(golden)
			if rerr != nil {
				t.Fatalf("%v (run go test -update to write it)", rerr)
			}
			if string(g) != err.Error()+"\n" {
				t.Errorf("message differs from %s:\n got:\n%s\nwant:\n%s", golden, err, g)
			}
		})
	}
	for name := range cases {
		t.Errorf("no file testdata/invalid/%s.json", name)
	}
}

// TestInvalidInline covers problems best shown as a small edit of the seed.
func TestInvalidInline(t *testing.T) {
	cases := []struct {
		name  string
		data  func(t *testing.T) string
		wants []want
	}{
		{"empty file", lit("  \n"), []want{{"", "", "the blueprint is empty"}}},
		{"not an object", lit(`[{"tipo": "conduit"}]`), []want{{"", "", "the blueprint must be a JSON object with nome and recursos, got an array"}}},
		{"unclosed", lit("{\n  \"nome\": \"x\",\n  \"recursos\": [\n"), []want{{"", "", "malformed JSON at line 4, column 1: unexpected end of input"}}},
		{"trailing data", lit(`{"nome": "x", "recursos": []} {}`), []want{{"", "", "malformed JSON at line 1, column 31: unexpected data after the end of the document"}}},
		{"recursos empty", lit(`{"nome": "x", "recursos": []}`), []want{{"", "recursos", "must list at least one resource"}}},
		{"recursos not an array", lit(`{"nome": "x", "recursos": {"tipo": "conduit"}}`), []want{{"", "recursos", "must be an array of resources, got an object"}}},
		{"top nome empty and not a string", lit(`{"nome": 3, "recursos": [], "modo": "turbo"}`), []want{
			{"", "nome", "must be a string, got a number (3)"},
			{"", "modo", `unknown modo "turbo" (allowed: simples, avancado)`},
			{"", "recursos", "must list at least one resource"},
		}},
		{"top nome blank", edit2(`"nome": "Analytics Pipeline"`, `"nome": " "`), []want{{"", "nome", "must not be empty"}}},
		{"accented key", edit2(`"retencao_horas": 168`, `"retenção_horas": 168`), []want{{"events", "config.retenção_horas", `did you mean "retencao_horas"?`}}},
		{"unknown key without suggestion", edit2(`"prefetch": 5`, `"prefetch": 5, "color": "blue"`), []want{{"batch-jobs", "config.color", `unknown key "color" (allowed here: duravel, prefetch)`}}},
		{"unknown resource key", edit2(`"nome": "events",`, `"nome": "events", "descricao": "x",`), []want{{"events", "descricao", `unknown key "descricao" (allowed here: tipo, nome, config)`}}},
		{"setting outside config", edit2(`"nome": "events",`, `"nome": "events", "particoes": 24,`), []want{{"events", "particoes", `unknown key "particoes": a resource's settings go inside config`}}},
		{"tipo without suggestion", edit2(`"tipo": "insight"`, `"tipo": "beacon"`), []want{{"pipeline-obs", "tipo", `unknown tipo "beacon" (allowed: compute, conduit, lane, archive, datastore, gateway, insight)`}}},
		{"tipo missing", edit2(`"tipo": "insight",`, ``), []want{{"pipeline-obs", "tipo", "is required"}}},
		{"misspelt subtipo counts as its suggestion", edit2(`"subtipo": "worker"`, `"subtipo": "wroker"`), []want{{"etl-worker", "config.subtipo", `unknown subtipo "wroker"; did you mean "worker"?`}}},
		{"subtipo missing", edit2(`"subtipo": "api",`, ``), []want{{"ingest-api", "config.subtipo", "is required"}}},
		{"upper-case nome", edit2(`"nome": "events"`, `"nome": "Events"`), []want{{"recursos[1]", "nome", `must be lower case: "Events" (write "events")`}}},
		{"nome with underscore", edit2(`"nome": "events"`, `"nome": "raw_events"`), []want{{"recursos[1]", "nome", `"raw_events" is not a valid name`}}},
		{"nome too long", edit2(`"nome": "events"`, `"nome": "`+strings.Repeat("e", 64)+`"`), []want{{"recursos[1]", "nome", "must be at most 63 characters, got 64"}}},
		{"archive nome too short", edit2(`"nome": "datalake"`, `"nome": "dl"`), []want{{"dl", "nome", "must be at least 3 characters"}}},
		{"domain is an IP address", edit2(`"ingest.acme.io"`, `"10.0.0.1"`), []want{{"ingest-dns", "config.dominio", "not an IP address"}}},
		{"domain with a port", edit2(`"ingest.acme.io"`, `"ingest.acme.io:443"`), []want{{"ingest-dns", "config.dominio", "without a port"}}},
		{"domain upper case", edit2(`"ingest.acme.io"`, `"Ingest.Acme.io"`), []want{{"ingest-dns", "config.dominio", `must be lower case: "Ingest.Acme.io" (write "ingest.acme.io")`}}},
		{"domain single label", edit2(`"ingest.acme.io"`, `"localhost"`), []want{{"ingest-dns", "config.dominio", "not a fully qualified domain name"}}},
		{"domain wildcard", edit2(`"ingest.acme.io"`, `"*.acme.io"`), []want{{"ingest-dns", "config.dominio", "is a wildcard"}}},
		{"domain bad label", edit2(`"ingest.acme.io"`, `"-ingest.acme.io"`), []want{{"ingest-dns", "config.dominio", `label "-ingest"`}}},
		{"domain numeric tld", edit2(`"ingest.acme.io"`, `"ingest.acme.123"`), []want{{"ingest-dns", "config.dominio", `top-level domain "123" must be letters`}}},
		{"domain empty", edit2(`"ingest.acme.io"`, `""`), []want{{"ingest-dns", "config.dominio", "must not be empty"}}},
		{"domain missing", edit2(`"dominio": "ingest.acme.io",`, ``), []want{{"ingest-dns", "config.dominio", "is required"}}},
		{"number too large", edit2(`"particoes": 12`, `"particoes": 1e12`), []want{{"events", "config.particoes", "is out of range: 1e12"}}},
		{"boolean as number", edit2(`"duravel": true`, `"duravel": 1`), []want{{"batch-jobs", "config.duravel", "must be true or false, got a number (1)"}}},
		{"number as boolean", edit2(`"particoes": 12`, `"particoes": true`), []want{{"events", "config.particoes", "must be a number, got a boolean (true)"}}},
		{"required number null", edit2(`"particoes": 12`, `"particoes": null`), []want{{"events", "config.particoes", "must be a number, got null"}}},
		{"conduit without config", edit2(`"config": {
        "particoes": 12,
        "retencao_horas": 168
      }`, `"config": {}`), []want{{"events", "config.particoes", "is required"}}},
		{"negative replicas_min", edit2(`"replicas_min": 2`, `"replicas_min": -1`), []want{{"ingest-api", "config.replicas_min", "must be at least 1, got -1"}}},
		{"replicas_min above the default max", edit2(`"replicas_max": 10`, `"replicas_max": 0`), []want{{"etl-worker", "config.replicas_max", "must be at least 1, got 0"}}},
		{"second api", edit2(`"subtipo": "worker"`, `"subtipo": "api"`), []want{
			{"etl-worker", "config.subtipo", "a blueprint has at most one api compute; ingest-api already is"},
			{"batch-jobs", "tipo", "a lane's jobs run on a worker compute"},
		}},
		{"gateway without api", edit2(`"subtipo": "api",
        "porta": 8080,`, `"subtipo": "worker",`), []want{
			{"etl-worker", "config.subtipo", "a blueprint has at most one worker compute; ingest-api already is"},
			{"ingest-dns", "tipo", "a gateway routes to an api compute, and the blueprint declares none"},
		}},
		{"second insight and gateway", edit2(`"tipo": "lane"`, `"tipo": "insight"`, `"duravel": true,
        "prefetch": 5`, ``, `"nome": "pipeline-obs"`, `"nome": "obs"`), []want{
			{"obs", "tipo", "a blueprint has at most one insight (pipeline monitoring); batch-jobs already is"},
		}},
		{"no datastore, no archive", edit2(`"tipo": "archive"`, `"tipo": "lane"`, `"tipo": "datastore"`, `"tipo": "lane"`), []want{
			{"datalake", "config.subtipo", `unknown key: subtipo is not a lane setting, it belongs to archive and compute (allowed here: duravel, prefetch)`},
			{"datalake", "config.tamanho_gb", `unknown key: tamanho_gb is not a lane setting, it belongs to datastore and archive`},
			{"datalake", "config.publico", `unknown key: publico is not a lane setting, it belongs to archive`},
			{"warehouse", "config.engine", `unknown key: engine is not a lane setting, it belongs to datastore`},
			{"warehouse", "config.tamanho_gb", `unknown key: tamanho_gb is not a lane setting, it belongs to datastore and archive`},
			{"warehouse", "config.ha", `unknown key: ha is not a lane setting, it belongs to datastore`},
			{"", "recursos", "a blueprint needs exactly one datastore (the warehouse); none is declared"},
			{"", "recursos", "a blueprint needs exactly one archive (the data lake); none is declared"},
			{"datalake", "tipo", "a blueprint has at most one lane (the batch task queue); batch-jobs already is"},
			{"warehouse", "tipo", "a blueprint has at most one lane (the batch task queue); batch-jobs already is"},
		}},
		{"no conduit and no api", edit2(`"tipo": "conduit"`, `"tipo": "insight"`, `"particoes": 12,
        "retencao_horas": 168`, `"retencao_dias": 7`, `"subtipo": "api",
        "porta": 8080,`, `"subtipo": "worker",`), []want{
			{"", "recursos", "a blueprint needs exactly one conduit (the event log); none is declared"},
			{"pipeline-obs", "tipo", "a blueprint has at most one insight (pipeline monitoring); events already is"},
			{"etl-worker", "config.subtipo", "at most one worker compute"},
			{"ingest-dns", "tipo", "a gateway routes to an api compute"},
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			checkProblems(t, problemsOf(t, tc.data(t), "x.json"), tc.wants)
		})
	}
}

func lit(s string) func(*testing.T) string { return func(*testing.T) string { return s } }

func edit2(pairs ...string) func(*testing.T) string {
	return func(t *testing.T) string { return edit(t, pairs...) }
}

// TestAccepted covers inputs that look odd but are fine.
func TestAccepted(t *testing.T) {
	cases := []struct {
		name  string
		data  func(t *testing.T) string
		check func(t *testing.T, b *Blueprint)
	}{
		{"byte order mark", func(t *testing.T) string { return "\xef\xbb\xbf" + seedJSON(t) }, nil},
		{"exponent", edit2(`"particoes": 12`, `"particoes": 1.2e1`), func(t *testing.T, b *Blueprint) {
			if _, p, _ := b.Topic(); p != 12 {
				t.Errorf("partitions = %d", p)
			}
		}},
		{"whole float", edit2(`"particoes": 12`, `"particoes": 24.0`), func(t *testing.T, b *Blueprint) {
			if _, p, _ := b.Topic(); p != 24 {
				t.Errorf("partitions = %d", p)
			}
		}},
		{"xn-- top-level domain", edit2(`"ingest.acme.io"`, `"ingest.acme.xn--p1ai"`), nil},
		{"minimal", lit(`{"nome": "m", "recursos": [
			{"tipo": "conduit", "nome": "events", "config": {"particoes": 3}},
			{"tipo": "archive", "nome": "datalake"},
			{"tipo": "datastore", "nome": "warehouse"}]}`), func(t *testing.T, b *Blueprint) {
			if b.Mode != ModeSimple {
				t.Errorf("mode = %q", b.Mode)
			}
			if n, p, r := b.Topic(); n != "events" || p != 3 || r.Hours() != DefaultRetentionHours {
				t.Errorf("topic = %s %d %v", n, p, r)
			}
			if _, c := b.Bucket(); c != (ArchiveConfig{Subtype: ArchiveFiles, SizeGB: DefaultArchiveSizeGB}) {
				t.Errorf("bucket = %+v", c)
			}
			if _, c := b.Datastore(); c != (DatastoreConfig{Engine: EnginePostgres, SizeGB: DefaultDatastoreSizeGB}) {
				t.Errorf("datastore = %+v", c)
			}
			for name, ok := range map[string]bool{"lane": okOf(b.Lane()), "api": okOf(b.API()), "worker": okOf(b.Worker()), "gateway": okOf(b.Gateway()), "insight": okOf(b.Insight())} {
				if ok {
					t.Errorf("%s reported present", name)
				}
			}
		}},
		{"defaults of optional kinds", lit(`{"nome": "m", "recursos": [
			{"tipo": "conduit", "nome": "events", "config": {"particoes": 3}},
			{"tipo": "archive", "nome": "datalake"},
			{"tipo": "datastore", "nome": "warehouse"},
			{"tipo": "compute", "nome": "api", "config": {"subtipo": "api"}},
			{"tipo": "compute", "nome": "worker", "config": {"subtipo": "worker", "replicas_min": 3}},
			{"tipo": "lane", "nome": "batch-jobs"},
			{"tipo": "gateway", "nome": "gw", "config": {"dominio": "a.example.com"}},
			{"tipo": "insight", "nome": "obs"}]}`), func(t *testing.T, b *Blueprint) {
			if _, c, _ := b.API(); c != (ComputeConfig{Subtype: SubtypeAPI, Port: DefaultPort, ReplicasMin: 1, ReplicasMax: 1}) {
				t.Errorf("api = %+v", c)
			}
			if _, c, _ := b.Worker(); c != (ComputeConfig{Subtype: SubtypeWorker, ReplicasMin: 3, ReplicasMax: 3}) {
				t.Errorf("worker = %+v", c)
			}
			if _, c, _ := b.Lane(); c != (LaneConfig{Durable: true, Prefetch: DefaultPrefetch}) {
				t.Errorf("lane = %+v", c)
			}
			if _, c, _ := b.Gateway(); c != (GatewayConfig{Domain: "a.example.com", TLS: true}) {
				t.Errorf("gateway = %+v", c)
			}
			if _, c, _ := b.Insight(); c != (InsightConfig{RetentionDays: 30, Alerts: true}) || c.Retention().Hours() != 720 {
				t.Errorf("insight = %+v", c)
			}
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			b, err := Parse([]byte(tc.data(t)), "x.json")
			if err != nil {
				t.Fatal(err)
			}
			if tc.check != nil {
				tc.check(t, b)
			}
		})
	}
}

func okOf[C any](_ string, _ C, ok bool) bool { return ok }

func TestErrorsAreTyped(t *testing.T) {
	data := []byte(edit(t, `"particoes": 12`, `"particoes": 0`, `"prefetch": 5`, `"prefetch": 0`))
	_, err := Parse(data, "deploy/blueprint.json")
	var errs Errors
	if !errors.As(err, &errs) || len(errs) != 2 {
		t.Fatalf("errors.As: %v", err)
	}
	want := "deploy/blueprint.json: 2 problems:\n" +
		"  events: config.particoes: must be at least 1 partition, got 0\n" +
		"  batch-jobs: config.prefetch: must be at least 1, got 0"
	if err.Error() != want {
		t.Errorf("message:\n%s\nwant:\n%s", err, want)
	}
	// Without a source the Errors come back as they are.
	if _, err := Parse(data, ""); err == nil {
		t.Fatal("no error")
	} else if _, ok := err.(Errors); !ok {
		t.Errorf("error is %T, want Errors", err)
	}
	if _, err := Load("testdata/does-not-exist.json"); err == nil || errors.As(err, &errs) {
		t.Errorf("Load of a missing file: %v", err)
	}
}

func TestTooManyProblems(t *testing.T) {
	var b strings.Builder
	b.WriteString(`{"nome": "x", "recursos": [`)
	for i := range 150 {
		if i > 0 {
			b.WriteString(",")
		}
		b.WriteString(`{"tipo": "beacon"}`)
	}
	b.WriteString(`]}`)
	errs := problemsOf(t, b.String(), "")
	if len(errs) != maxProblems+1 || !strings.Contains(errs[maxProblems].Message, "more problems") {
		t.Errorf("got %d problems, last %v", len(errs), errs[len(errs)-1])
	}
}

func TestSuggest(t *testing.T) {
	keys := configKeys[KindConduit]
	cases := []struct{ got, want string }{
		{"partitions", "particoes"},
		{"particoes ", "particoes"},
		{"PARTICOES", "particoes"},
		{"partições", "particoes"},
		{"particao", "particoes"},
		{"retencao-horas", "retencao_horas"},
		{"retencao_hora", "retencao_horas"},
		{"rentencao_horas", "retencao_horas"},
		{"replicas", "replicacao"},
		{"replication_factor", "replicacao"},
		{"min.insync.replicas", "min_sincronas"},
		{"color", ""},
	}
	for _, tc := range cases {
		if got := suggest(tc.got, keys, keyAlias); got != tc.want {
			t.Errorf("suggest(%q) = %q, want %q", tc.got, got, tc.want)
		}
	}
	if d := editDistance("wroker", "worker"); d != 1 {
		t.Errorf("a swap is %d edits", d)
	}
}
