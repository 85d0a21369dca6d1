package status

import (
	"context"
	"fmt"
	"html/template"
	"io"
	"strings"

	"github.com/acme/pipeline/warehouse"
)

// MaxSetAside bounds the set-aside silver hours a snapshot lists (the
// gauge pipeline_silver_hours_set_aside counts them all).
const MaxSetAside = 50

// silverSetAside reads the silver hours that hour compaction set aside
// (pipeline.silver_set_aside), when the database has the table (a worker of
// this version migrated it).
func (s Source) silverSetAside(ctx context.Context, snap *Snapshot) error {
	snap.SilverSetAside = []warehouse.SetAsideHour{}
	return s.withTable(ctx, "pipeline.silver_set_aside", "set-aside silver hours", func(store *warehouse.Store) (err error) {
		if snap.SilverSetAside, err = store.SetAsideHours(ctx, MaxSetAside); err != nil {
			return err
		}
		snap.SilverSetAsideTotal, err = store.CountSetAsideHours(ctx)
		return err
	})
}

// setAsideTitle heads the section in the terminal and on the page.
const setAsideTitle = "Silver hours set aside by hour compaction"

// setAsideHelp says what to do about them.
const setAsideHelp = "compaction skips these (hour, partition) pairs and goes on with the others; " +
	"a backfill of the day (pipeline backfill --from DAY --to DAY) rewrites their silver and clears them"

// writeSilverSetAside writes the set-aside silver hours for the terminal:
// one line per pair with its reason, or "none".
func (s Snapshot) writeSilverSetAside(b *strings.Builder) {
	if !listing(b, setAsideTitle, len(s.SilverSetAside), "hour (UTC)\tpartition\tsince\tattempts\tretry at\tobject\treason", func(w io.Writer, i int) {
		h := s.SilverSetAside[i]
		fmt.Fprintf(w, "%s\t%d\t%s\t%d\t%s\t%s\t%s: %s\n", h.Hour.UTC().Format("2006-01-02 15:00"), h.Partition, clock(h.Since),
			h.Attempts, clock(h.RetryAt), orDash(h.Key), h.ErrorType, firstLine(h.Reason))
	}) {
		return
	}
	if more := s.SetAsideMore(); more > 0 {
		fmt.Fprintf(b, "and %d more (pipeline.silver_set_aside)\n", more)
	}
	fmt.Fprintln(b, setAsideHelp)
}

// SetAsideMore is how many set-aside pairs the snapshot does not list.
func (s Snapshot) SetAsideMore() int64 {
	return max(0, s.SilverSetAsideTotal-int64(len(s.SilverSetAside)))
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// The page's section, {{template "silver" .}} in page.
var _ = template.Must(page.New("silver").Parse(`
<h2>` + setAsideTitle + `</h2>
{{if .SilverSetAside}}<table id="silver-set-aside">
<tr><th>Hour</th><th>Partition</th><th>Since</th><th>Attempts</th><th>Retry at</th><th>Object</th><th>Reason</th></tr>
{{range .SilverSetAside}}<tr class="lagging"><td>{{hour .Hour}}</td><td>{{.Partition}}</td><td>{{clock .Since}}</td><td>{{.Attempts}}</td><td>{{clock .RetryAt}}</td><td class="detail">{{.Key}}</td><td class="detail">{{.ErrorType}}: {{.Reason}}</td></tr>
{{end}}</table>
<p class="muted">{{with .SetAsideMore}}and {{.}} more (pipeline.silver_set_aside) · {{end}}` + setAsideHelp + `</p>
{{else}}<p id="silver-set-aside">none</p>{{end}}
`))
