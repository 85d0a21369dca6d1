package status

import (
	"context"
	"fmt"
	"html/template"
	"io"
	"strings"

	"github.com/acme/pipeline/warehouse"
)

// incarnations reads the topic's incarnations (pipeline.topic_incarnations,
// oldest first), so that a recreated topic, and which incarnation the stream
// streams, show without a query.
func (s Source) incarnations(ctx context.Context, snap *Snapshot) error {
	snap.Incarnations = []warehouse.Incarnation{}
	return s.withTable(ctx, "pipeline.topic_incarnations", "topic incarnations", func(store *warehouse.Store) error {
		ins, err := store.Incarnations(ctx, s.Topic)
		snap.Incarnations = append(snap.Incarnations, ins...)
		return err
	})
}

const incarnationsTitle = "Topic incarnations (a topic deleted and created again is a new incarnation)"

const incarnationsHelp = "a shard that stopped with TopicRecreated names the new topic id: `pipeline incarnation --topic TOPIC` compares them, `--start-new ID` starts it"

// writeIncarnations writes the incarnations for the terminal.
func (s Snapshot) writeIncarnations(b *strings.Builder) {
	if listing(b, incarnationsTitle, len(s.Incarnations), "incarnation\ttopic id\tfirst seen\tretired", func(w io.Writer, i int) {
		in := s.Incarnations[i]
		id, retired := in.TopicID, "current"
		if id == "" {
			id = "(none reported)"
		}
		if !in.RetiredAt.IsZero() {
			retired = clock(in.RetiredAt)
		}
		fmt.Fprintf(w, "%d\t%s\t%s\t%s\n", in.Number, id, clock(in.FirstSeen), retired)
	}) {
		fmt.Fprintln(b, incarnationsHelp)
	}
}

// The page's section, {{template "incarnations" .}} in page.
var _ = template.Must(page.New("incarnations").Parse(`
<h2>` + incarnationsTitle + `</h2>
{{if .Incarnations}}<table id="incarnations">
<tr><th>Incarnation</th><th>Topic id</th><th>First seen</th><th>Retired</th></tr>
{{range .Incarnations}}<tr><td>{{.Number}}</td><td>{{if .TopicID}}{{.TopicID}}{{else}}(none reported){{end}}</td><td>{{clock .FirstSeen}}</td><td>{{if .RetiredAt.IsZero}}current{{else}}{{clock .RetiredAt}}{{end}}</td></tr>
{{end}}</table>
<p class="muted">` + incarnationsHelp + `</p>
{{else}}<p id="incarnations">none yet (the stream records the topic at its start)</p>{{end}}
`))
