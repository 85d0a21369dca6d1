package status

import (
	"context"
	"fmt"
	"html/template"
	"io"
	"strings"

	"github.com/acme/pipeline/warehouse"
)

// streamShards reads the stream's shards as the SLO monitor last read them
// from Temporal (pipeline.stream_shards), when the database has the table.
// The status page holds no Temporal client of its own.
func (s Source) streamShards(ctx context.Context, snap *Snapshot) error {
	snap.Shards = []warehouse.StreamShard{}
	return s.withTable(ctx, "pipeline.stream_shards", "stream shards", func(store *warehouse.Store) error {
		shards, err := store.StreamShards(ctx, s.Topic)
		snap.Shards = append(snap.Shards, shards...)
		return err
	})
}

// StoppedShards lists the shards that load nothing, for the verdict.
func (s Snapshot) StoppedShards() []string {
	var out []string
	for _, sh := range s.Shards {
		if sh.Stopped() {
			out = append(out, fmt.Sprintf("%s %s", sh.WorkflowID, sh.State))
		}
	}
	return out
}

const shardsTitle = "Stream shards (StreamCompaction workflows, as the SLO monitor last read them from Temporal)"

const shardsHelp = "a stopped shard loads nothing: `pipeline provision` starts it again from pipeline.stream_offsets; `temporal workflow show -w ID` has its history"

const shardsUnread = "not read yet (the SLOMonitor workflow reads them every minute; it starts with `pipeline provision`)"

// writeShards writes the shards for the terminal.
func (s Snapshot) writeShards(b *strings.Builder) {
	if len(s.Shards) == 0 {
		heading(b, shardsTitle)
		fmt.Fprintln(b, shardsUnread)
		return
	}
	listing(b, shardsTitle, len(s.Shards), "shard\tworkflow id\tstate\tsince\treason", func(w io.Writer, i int) {
		sh := s.Shards[i]
		state := sh.State
		if sh.Stopped() {
			state = strings.ToUpper(state)
		}
		fmt.Fprintf(w, "%d of %d\t%s\t%s\t%s\t%s\n", sh.Shard, sh.Shards, sh.WorkflowID, state, clock(sh.Since), sh.Reason)
	})
	fmt.Fprintf(b, "read %s ago; %s\n", Age(s.Taken.Sub(s.Shards[0].Checked)), shardsHelp)
}

// The page's section, {{template "shards" .}} in page.
var _ = template.Must(page.New("shards").Parse(`
<h2>Stream shards</h2>
{{if .Shards}}<table id="shards">
<tr><th>Shard</th><th>Workflow id</th><th>State</th><th>Since</th><th>Reason</th></tr>
{{range .Shards}}<tr{{if .Stopped}} class="lagging"{{end}}><td>{{.Shard}} of {{.Shards}}</td><td>{{.WorkflowID}}</td><td>{{.State}}</td><td>{{clock .Since}}</td><td class="detail">{{.Reason}}</td></tr>
{{end}}</table>
<p class="muted">as the SLO monitor read them from Temporal at {{clock (index .Shards 0).Checked}}; ` + shardsHelp + `</p>
{{else}}<p id="shards">` + shardsUnread + `</p>{{end}}
`))
