package status

import (
	"context"
	"fmt"
	"html/template"
	"strings"
	"text/tabwriter"

	"github.com/acme/pipeline/warehouse"
)

// MaxPendingMarts bounds the pending mart days a snapshot lists (Marts
// .PendingTotal and the gauge pipeline_marts_pending counts them all).
const MaxPendingMarts = 20

// marts reads the marts' zone and the days whose marts wait for a rebuild
// (gold changed after they were built).
func (s Source) marts(ctx context.Context, snap *Snapshot) error {
	st, err := warehouse.FromPool(s.DB).MartStatus(ctx, MaxPendingMarts)
	if err != nil {
		return fmt.Errorf("status: %w", err)
	}
	snap.Marts = st
	return nil
}

// martsTitle heads the section in the terminal and on the page.
const martsTitle = "Marts pending a rebuild"

// martsHelp says what happens to them.
const martsHelp = "the schedule marts-refresh (workflow RefreshMarts) rebuilds them every 5 minutes. " +
	"dirty: gold changed since the build · rebuilding: claimed, not built yet (running, or died) · zone: built in another zone"

// pendingAge is how long a day has been pending at the snapshot.
func (s Snapshot) pendingAge(d warehouse.MartDay) string {
	return Age(max(0, s.Taken.Sub(d.Since)))
}

// writeMarts writes the pending mart days for the terminal: one line each,
// or "none".
func (s Snapshot) writeMarts(b *strings.Builder) {
	heading(b, martsTitle)
	if !s.Marts.Tracked {
		fmt.Fprintln(b, "not tracked (the warehouse is not migrated to this version yet)")
		return
	}
	fmt.Fprintf(b, "%d days built, cut in %s\n", s.Marts.Built, s.Marts.Zone)
	if len(s.Marts.Pending) == 0 {
		fmt.Fprintln(b, "none pending")
		return
	}
	w := tabwriter.NewWriter(b, 0, 0, 2, ' ', 0)
	fmt.Fprintf(w, "day\tzone\tstate\tpending since\tfor\tlast built\n")
	for _, d := range s.Marts.Pending {
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\n", d.Day, d.Zone, d.State, clock(d.Since), s.pendingAge(d), clock(d.BuiltAt))
	}
	w.Flush()
	if more := s.MartsMore(); more > 0 {
		fmt.Fprintf(b, "and %d more (pipeline.mart_days)\n", more)
	}
	fmt.Fprintln(b, martsHelp)
}

// MartsMore is how many pending mart days the snapshot does not list.
func (s Snapshot) MartsMore() int64 {
	return max(0, s.Marts.PendingTotal-int64(len(s.Marts.Pending)))
}

// The page's section, {{template "marts" .}} in page.
var _ = template.Must(page.New("marts").Funcs(template.FuncMap{
	"pendingFor": func(s Snapshot, d warehouse.MartDay) string { return s.pendingAge(d) },
}).Parse(`
<h2>` + martsTitle + `</h2>
{{if not .Marts.Tracked}}<p id="marts">not tracked (the warehouse is not migrated to this version yet)</p>
{{else}}<p class="muted">{{.Marts.Built}} days built, cut in {{.Marts.Zone}}</p>
{{if .Marts.Pending}}<table id="marts">
<tr><th>Day</th><th>Zone</th><th>State</th><th>Pending since</th><th>For</th><th>Last built</th></tr>
{{range .Marts.Pending}}<tr><td>{{.Day}}</td><td>{{.Zone}}</td><td>{{.State}}</td><td>{{clock .Since}}</td><td>{{pendingFor $ .}}</td><td>{{clock .BuiltAt}}</td></tr>
{{end}}</table>
<p class="muted">{{with .MartsMore}}and {{.}} more (pipeline.mart_days) · {{end}}` + martsHelp + `</p>
{{else}}<p id="marts">none pending</p>{{end}}{{end}}
`))
