package status

import (
	"context"
	"fmt"
	"html/template"
	"io"
	"strings"
	"time"

	"github.com/acme/pipeline/warehouse"
)

// LostWindow is how far back the page lists offsets lost to retention.
const LostWindow = 7 * 24 * time.Hour

// maxLost bounds the gaps a snapshot lists.
const maxLost = 20

// lostOffsets reads the offsets retention deleted before the stream read
// them (pipeline.lost_offsets), when the database has the table.
func (s Source) lostOffsets(ctx context.Context, snap *Snapshot) error {
	snap.Lost = []warehouse.LostRange{}
	return s.withTable(ctx, "pipeline.lost_offsets", "lost offsets", func(store *warehouse.Store) (err error) {
		snap.Lost, snap.LostTotal, err = store.LostOffsets(ctx, snap.Taken.Add(-LostWindow), maxLost)
		return err
	})
}

const lostTitle = "Offsets lost to retention (deleted from Kafka before the stream read them, last 7 days)"

const lostHelp = "these records are in no layer: look at the topic's retention (retencao_horas) and at why the stream fell behind"

// writeLost writes the gaps for the terminal.
func (s Snapshot) writeLost(b *strings.Builder) {
	if listing(b, lostTitle, len(s.Lost), "topic\tpartition\toffsets\trecords\tfound", func(w io.Writer, i int) {
		l := s.Lost[i]
		fmt.Fprintf(w, "%s\t%d\t%d..%d\t%d\t%s\n", l.Topic, l.Partition, l.First, l.Last, l.Records(), clock(l.Detected))
	}) {
		fmt.Fprintf(b, "%d records lost in all; %s\n", s.LostTotal, lostHelp)
	}
}

// The page's section, {{template "lost" .}} in page.
var _ = template.Must(page.New("lost").Parse(`
<h2>` + lostTitle + `</h2>
{{if .Lost}}<table id="lost-offsets">
<tr><th>Topic</th><th>Partition</th><th>Offsets</th><th>Records</th><th>Found</th></tr>
{{range .Lost}}<tr class="lagging"><td>{{.Topic}}</td><td>{{.Partition}}</td><td>{{.First}}..{{.Last}}</td><td>{{.Records}}</td><td>{{clock .Detected}}</td></tr>
{{end}}</table>
<p class="muted">{{.LostTotal}} records lost in all; ` + lostHelp + `</p>
{{else}}<p id="lost-offsets">none</p>{{end}}
`))
