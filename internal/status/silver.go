package status

import (
	"context"
	"fmt"
	"html/template"
	"maps"
	"slices"
	"strings"

	"github.com/acme/pipeline/warehouse"
)

// SilverTable is silver.events as status shows it (warehouse.SilverTable),
// with Published false until a commit of this version has summarized it.
type SilverTable struct {
	warehouse.SilverTable
	Published bool `json:"published"`
}

// silverTable reads the summary of silver.events and its pending loads,
// when the database has the table (a worker of this version migrated it).
func (s Source) silverTable(ctx context.Context, snap *Snapshot) error {
	return s.withTable(ctx, "pipeline.silver_table", "silver.events", func(store *warehouse.Store) (err error) {
		snap.Silver.SilverTable, snap.Silver.Published, err = store.SilverTableStatus(ctx)
		return err
	})
}

// silverTitle heads the section in the terminal and on the page.
const silverTitle = "silver.events (Iceberg table; catalog \"pipeline\" in the warehouse)"

// silverHelp says how to read it and what to do.
const silverHelp = "read it through its catalog or metadata file, never a listing of silver/events/; " +
	"compaction and snapshot expiry: schedule silver-maintenance (every 15 min), `pipeline maintain` now"

// OffsetsText is the last append's offsets, "1/0: 100..230, 1/1: …".
func (t SilverTable) OffsetsText() string {
	if len(t.LastAppendOffsets) == 0 {
		return "-"
	}
	var parts []string
	for _, k := range slices.Sorted(maps.Keys(t.LastAppendOffsets)) {
		r := t.LastAppendOffsets[k]
		parts = append(parts, fmt.Sprintf("%s: %d..%d", k, r[0], r[1]))
	}
	return strings.Join(parts, ", ")
}

// PendingText says which loads silver.events does not hold yet.
func (t SilverTable) PendingText() string {
	if t.PendingLoads == 0 {
		return "none: silver.events holds every row gold holds"
	}
	return fmt.Sprintf("%d loads (%d rows), oldest since %s", t.PendingLoads, t.PendingRows, clock(t.PendingSince))
}

// writeSilver writes the table's section for the terminal.
func (s Snapshot) writeSilver(b *strings.Builder) {
	heading(b, silverTitle)
	t := s.Silver
	if !t.Published {
		fmt.Fprintln(b, "no commit recorded yet (pipeline.silver_table): provision the pipeline, then the stream's first append fills this")
		fmt.Fprintf(b, "loads pending: %s\n", t.PendingText())
		return
	}
	fmt.Fprintf(b, "snapshot %d (%s) at %s; %d snapshots kept, since %s (time travel)\n",
		t.SnapshotID, orDash(t.Operation), clock(t.CommittedAt), t.Snapshots, clock(t.OldestSnapshot))
	fmt.Fprintf(b, "%d rows in %d files, %s in all, mean file %s\n", t.Rows, t.Files, Bytes(t.Bytes), Bytes(t.MeanFileBytes()))
	if t.LastAppendSnapshot != 0 {
		fmt.Fprintf(b, "last append: snapshot %d at %s, gold loads %s, offsets %s\n",
			t.LastAppendSnapshot, clock(t.LastAppendAt), t.LastAppendLoads, t.OffsetsText())
	}
	fmt.Fprintf(b, "loads pending: %s\n", t.PendingText())
	fmt.Fprintf(b, "metadata: %s\n%s\n", t.MetadataLocation, silverHelp)
}

// Bytes prints a size with a binary unit.
func Bytes(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// The page's section, {{template "silver" .}} in page.
var _ = template.Must(page.New("silver").Parse(`
<h2>` + silverTitle + `</h2>
{{with .Silver}}{{if .Published}}<table id="silver-table">
<tr><th>Snapshot</th><td>{{.SnapshotID}} ({{.Operation}}) at {{clock .CommittedAt}}</td></tr>
<tr><th>Snapshots kept</th><td>{{.Snapshots}}, since {{clock .OldestSnapshot}} (time travel)</td></tr>
<tr><th>Rows</th><td>{{.Rows}}</td></tr>
<tr><th>Files</th><td>{{.Files}}, {{bytes .Bytes}} in all, mean {{bytes .MeanFileBytes}}</td></tr>
{{if .LastAppendSnapshot}}<tr><th>Last append</th><td>snapshot {{.LastAppendSnapshot}} at {{clock .LastAppendAt}}, gold loads {{.LastAppendLoads}}</td></tr>
<tr><th>Its offsets</th><td>{{.OffsetsText}}</td></tr>{{end}}
<tr><th>Loads pending</th><td{{if .PendingLoads}} class="lagging"{{end}}>{{.PendingText}}</td></tr>
<tr><th>Metadata</th><td class="detail">{{.MetadataLocation}}</td></tr>
</table>{{else}}<p id="silver-table">no commit recorded yet (pipeline.silver_table); loads pending: {{.PendingText}}</p>{{end}}{{end}}
<p class="muted">` + silverHelp + `</p>
`))
