package status

import (
	"context"
	"fmt"
	"html/template"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/acme/pipeline/warehouse"
)

// ConflictWindow is how far back the snapshot counts conflicting duplicates:
// a week, so that a client bug that comes and goes with a release is still
// seen the next working day.
const ConflictWindow = 7 * 24 * time.Hour

// MaxConflictingIDs bounds the conflicting ids a snapshot lists (Conflicts
// .IDs counts them all).
const MaxConflictingIDs = 20

// conflicts reads the conflicting duplicates of the last ConflictWindow:
// event ids that arrived again with other content. Nothing when the database
// lacks the table (no worker of this version migrated it yet).
func (s Source) conflicts(ctx context.Context, snap *Snapshot) error {
	snap.Conflicts = warehouse.Conflicts{Since: snap.Taken.Add(-ConflictWindow), Days: []warehouse.ConflictDay{},
		Recent: []warehouse.ConflictingID{}}
	return s.withTable(ctx, "pipeline.conflicting_ids", "conflicting event ids", func(store *warehouse.Store) error {
		c, err := store.ConflictingDuplicates(ctx, snap.Conflicts.Since, MaxConflictingIDs)
		if err == nil {
			snap.Conflicts = c
		}
		return err
	})
}

// conflictsTitle heads the section in the terminal and on the page.
const conflictsTitle = "Conflicting event ids, last 7 days (a known id arriving with other content)"

// conflictsHelp says what happened to them and what to do.
const conflictsHelp = "gold keeps the first record of an id, in events, payments and audit_log alike; " +
	"the others went nowhere. Usually a client bug (an id reused for another event): find the client by its source and the ids"

// ConflictsMore is how many conflicting ids the snapshot does not list.
func (s Snapshot) ConflictsMore() int64 {
	return max(0, s.Conflicts.IDs-int64(len(s.Conflicts.Recent)))
}

// writeConflicts writes the conflicting duplicates for the terminal: the
// count per day, then one line per id, or "none".
func (s Snapshot) writeConflicts(b *strings.Builder) {
	heading(b, conflictsTitle)
	c := s.Conflicts
	if c.Records == 0 && len(c.Recent) == 0 {
		fmt.Fprintln(b, "none")
		return
	}
	fmt.Fprintf(b, "conflicting duplicates: %d, of event ids: %d\n", c.Records, c.IDs)
	w := tabwriter.NewWriter(b, 0, 0, 2, ' ', 0)
	fmt.Fprintf(w, "day (UTC)\tconflicting\n")
	for _, d := range c.Days {
		fmt.Fprintf(w, "%s\t%d\n", d.Day, d.Records)
	}
	w.Flush()
	w = tabwriter.NewWriter(b, 0, 0, 2, ' ', 0)
	fmt.Fprintf(w, "event_id\tkept\tarrived as\tdiffers in\tsource\ttimes\tlast seen\n")
	for _, id := range c.Recent {
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%d\t%s\n", id.EventID, id.KeptType, id.OtherType, strings.Join(id.Fields, ","),
			orDash(id.OtherSource), id.Conflicts, clock(id.LastSeen))
	}
	w.Flush()
	if more := s.ConflictsMore(); more > 0 {
		fmt.Fprintf(b, "and %d more (pipeline.conflicting_ids)\n", more)
	}
	fmt.Fprintln(b, conflictsHelp)
}

// The page's section, {{template "conflicts" .}} in page.
var _ = template.Must(page.New("conflicts").Parse(`
<h2>` + conflictsTitle + `</h2>
{{with .Conflicts}}{{if or .Records .Recent}}<p id="conflicts-total" class="lagging">conflicting duplicates: {{.Records}}, of event ids: {{.IDs}}</p>
<table id="conflict-days">
<tr><th>Day (UTC)</th><th>Conflicting</th></tr>
{{range .Days}}<tr><td>{{.Day}}</td><td>{{.Records}}</td></tr>
{{end}}</table>
<table id="conflicts">
<tr><th>Event id</th><th>Kept</th><th>Arrived as</th><th>Differs in</th><th>Source</th><th>Times</th><th>Last seen</th></tr>
{{range .Recent}}<tr><td>{{.EventID}}</td><td>{{.KeptType}}</td><td>{{.OtherType}}</td><td>{{range $i, $f := .Fields}}{{if $i}}, {{end}}{{$f}}{{end}}</td><td>{{.OtherSource}}</td><td>{{.Conflicts}}</td><td>{{clock .LastSeen}}</td></tr>
{{end}}</table>
<p class="muted">{{with $.ConflictsMore}}and {{.}} more (pipeline.conflicting_ids) · {{end}}` + conflictsHelp + `</p>
{{else}}<p id="conflicts">none</p>{{end}}{{end}}
`))
