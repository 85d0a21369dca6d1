package status

import (
	"context"
	"fmt"
	"html/template"
	"io"
	"strings"

	"github.com/acme/pipeline/warehouse"
)

// rebuilding reads the days a Backfill holds (pipeline.backfill_leases),
// when the database has the table (a worker of this version migrated it).
func (s Source) rebuilding(ctx context.Context, snap *Snapshot) error {
	snap.Rebuilding = []warehouse.Lease{}
	return s.withTable(ctx, "pipeline.backfill_leases", "days being rebuilt", func(store *warehouse.Store) (err error) {
		snap.Rebuilding, err = store.Leases(ctx)
		return err
	})
}

// rebuildingTitle heads the section in the terminal and on the page.
const rebuildingTitle = "Days being rebuilt (one backfill of a day at a time)"

// writeRebuilding writes the days held by backfills for the terminal.
func (s Snapshot) writeRebuilding(b *strings.Builder) {
	if listing(b, rebuildingTitle, len(s.Rebuilding), "day\tworkflow\tsince", func(w io.Writer, i int) {
		l := s.Rebuilding[i]
		fmt.Fprintf(w, "%s\t%s\t%s\n", l.Day, l.WorkflowID, clock(l.AcquiredAt))
	}) {
		fmt.Fprintln(b, "progress: temporal workflow query -w WORKFLOW --type progress")
	}
}

// The page's section, {{template "rebuilding" .}} in page.
var _ = template.Must(page.New("rebuilding").Parse(`
<h2>` + rebuildingTitle + `</h2>
{{if .Rebuilding}}<table id="rebuilding">
<tr><th>Day</th><th>Workflow</th><th>Since</th></tr>
{{range .Rebuilding}}<tr><td>{{.Day}}</td><td>{{.WorkflowID}}</td><td>{{clock .AcquiredAt}}</td></tr>
{{end}}</table>{{else}}<p id="rebuilding">none</p>{{end}}
`))
