package status

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"
)

var sparkRunes = []rune("▁▂▃▄▅▆▇█")

// Sparkline draws counts as one rune each, ▁ for 0 (and the lowest), █ for
// the largest.
func Sparkline(counts []int64) string {
	var hi int64
	for _, c := range counts {
		hi = max(hi, c)
	}
	var b strings.Builder
	for _, c := range counts {
		i := 0
		if hi > 0 && c > 0 {
			i = int((c*int64(len(sparkRunes)-1) + hi - 1) / hi) // ceil: any traffic shows above ▁
		}
		b.WriteRune(sparkRunes[i])
	}
	return b.String()
}

func clock(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.UTC().Format("2006-01-02 15:04:05Z")
}

// Text renders the snapshot for a terminal: the verdict line first, then one
// section per topic with aligned columns.
func (s Snapshot) Text() string {
	var b strings.Builder
	fmt.Fprintln(&b, s.Verdict)
	fmt.Fprintf(&b, "as of %s, topic %s\n", clock(s.Taken), s.Topic)

	section := func(title string) { heading(&b, title) }
	table := func(write func(w *tabwriter.Writer)) {
		w := tabwriter.NewWriter(&b, 0, 0, 2, ' ', tabwriter.AlignRight)
		write(w)
		w.Flush()
	}

	section("Alerts")
	if len(s.Alerts) == 0 {
		fmt.Fprintln(&b, "none")
	}
	for _, a := range s.Alerts {
		state := "OPEN"
		if !a.Open() {
			state = "resolved " + clock(a.ResolvedAt)
		}
		fmt.Fprintf(&b, "#%d %s %s, opened %s, %s\n    %s\n", a.ID, a.SLO, a.Severity, clock(a.OpenedAt), state, a.Summary)
	}

	section("Service level objectives")
	if len(s.SLOs) == 0 {
		fmt.Fprintln(&b, "not measured yet (the SLOMonitor workflow starts with `pipeline provision`)")
	} else {
		w := tabwriter.NewWriter(&b, 0, 0, 2, ' ', 0)
		fmt.Fprintf(w, "slo	value	objective	met	measured	detail\n")
		for _, m := range s.SLOs {
			met := "yes"
			if !m.Good {
				met = "NO"
			}
			fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\n", m.SLO, SLOValue(m.SLO, m.Value), SLOValue(m.SLO, m.Objective), met, clock(m.MeasuredAt), m.Detail)
		}
		w.Flush()
	}

	section("Freshness")
	table(func(w *tabwriter.Writer) {
		if s.Freshness.NewestReceived.IsZero() {
			fmt.Fprintf(w, "newest event in gold\tnone\t\n")
		} else {
			fmt.Fprintf(w, "newest event in gold\t%s\treceived %s\t\n", Age(s.Freshness.Age)+" ago", clock(s.Freshness.NewestReceived))
			fmt.Fprintf(w, "its event time\t\t%s\t\n", clock(s.Freshness.NewestOccurred))
		}
		fmt.Fprintf(w, "last live load\t\t%s\t\n", clock(s.Freshness.LastLoad))
	})

	s.writeShards(&b)

	section("Consumer lag")
	if s.KafkaError != "" {
		fmt.Fprintf(&b, "unknown: %s\n", s.KafkaError)
	} else {
		table(func(w *tabwriter.Writer) {
			fmt.Fprintf(w, "partition\tend offset\tnext to load\tlag\t\n")
			for _, p := range s.Lag {
				next := fmt.Sprint(p.Next)
				if !p.Stored {
					next += "*"
				}
				fmt.Fprintf(w, "%d\t%d\t%s\t%d\t\n", p.Partition, p.End, next, p.Lag)
			}
			fmt.Fprintf(w, "total\t\t\t%d\t\n", s.LagTotal)
		})
		for _, p := range s.Lag {
			if !p.Stored {
				fmt.Fprintln(&b, "* nothing loaded from this partition yet: its first offset")
				break
			}
		}
	}

	section("Throughput (events loaded into gold, last hour, 5-minute buckets)")
	counts := make([]int64, len(s.Throughput))
	var peak int64
	for i, t := range s.Throughput {
		counts[i] = t.Events
		peak = max(peak, t.Events)
	}
	if len(s.Throughput) > 0 {
		fmt.Fprintf(&b, "%s  %s  %d events, peak %d per 5 min\n", s.Throughput[0].Start.UTC().Format("15:04"),
			Sparkline(counts), s.ThroughputTotal, peak)
	}

	section("Records per hour and layer (bronze, quarantined: arrival hour; silver, gold: event hour)")
	table(func(w *tabwriter.Writer) {
		fmt.Fprintf(w, "hour (UTC)\tbronze\tquarantined\tsilver\tgold\t\n")
		for _, h := range s.Layers {
			fmt.Fprintf(w, "%s\t%d\t%d\t%d\t%d\t\n", h.Hour.UTC().Format("2006-01-02 15:00"), h.Bronze, h.Quarantined, h.Silver, h.Gold)
		}
	})
	s.writeSilver(&b)

	if len(s.Arrivals) > 0 {
		section("Completeness per arrival hour (accepted → bronze → quarantined + cleaned → new in gold)")
		table(func(w *tabwriter.Writer) {
			fmt.Fprintf(w, "hour (UTC)\taccepted\tin bronze\tnot consumed\tquarantined\tcleaned\tnew in gold\tduplicates\t\n")
			for _, a := range s.Arrivals {
				acc := "-"
				if a.Accepted >= 0 {
					acc = fmt.Sprint(a.Accepted)
				}
				fmt.Fprintf(w, "%s\t%s\t%d\t%d\t%d\t%d\t%d\t%d\t\n", a.Hour.UTC().Format("2006-01-02 15:00"), acc, a.Records, a.Waiting(),
					a.Quarantined, a.Cleaned, a.Inserted, a.Duplicates())
			}
		})
	}

	s.writeLost(&b)
	s.writeIncarnations(&b)
	s.writeConflicts(&b)

	loads := func(title string, ls []Load, backfill bool) {
		section(title)
		if len(ls) == 0 {
			fmt.Fprintln(&b, "none")
			return
		}
		table(func(w *tabwriter.Writer) {
			if backfill {
				fmt.Fprintf(w, "load\tstarted\tdays\tdeleted\tinserted\ttook\t\n")
			} else {
				fmt.Fprintf(w, "load\tkind\tstarted\tseen\tinserted\tduplicate\tobjects\ttook\t\n")
			}
			for _, l := range ls {
				took := "running"
				if !l.Finished.IsZero() {
					took = l.Duration().Round(time.Millisecond).String()
				}
				if backfill {
					fmt.Fprintf(w, "%d\t%s\t%s..%s %s\t%d\t%d\t%s\t\n", l.ID, clock(l.Started), l.DayFrom, l.DayTo, l.TimeZone, l.Deleted, l.Inserted, took)
				} else {
					fmt.Fprintf(w, "%d\t%s\t%s\t%d\t%d\t%d\t%d\t%s\t\n", l.ID, l.Kind, clock(l.Started), l.Seen, l.Inserted, l.Duplicate, l.Sources, took)
				}
			}
		})
	}
	loads("Last loads", s.Loads, false)
	s.writeRebuilding(&b)
	loads("Recent backfills", s.Backfills, true)
	s.writeMarts(&b)

	section("Catalog (provisioned resources)")
	if len(s.Catalog) == 0 {
		fmt.Fprintln(&b, "none (run `pipeline provision FILE`)")
	} else {
		w := tabwriter.NewWriter(&b, 0, 0, 2, ' ', 0)
		fmt.Fprintf(w, "kind\tname\tstatus\tapplied\n")
		for _, c := range s.Catalog {
			st := c.Status
			if c.Error != "" {
				st += ": " + firstLine(c.Error)
			}
			fmt.Fprintf(w, "%s\t%s\t%s\t%s\n", c.Kind, c.Name, st, clock(c.AppliedAt))
		}
		w.Flush()
	}
	return b.String()
}

func firstLine(s string) string {
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		s = s[:i]
	}
	if r := []rune(s); len(r) > 120 {
		s = string(r[:119]) + "…"
	}
	return s
}

// listing writes a section that lists n things: its heading, then "none", or
// a table of header and one line per thing; it reports whether there were
// any.
func listing(b *strings.Builder, title string, n int, header string, line func(w io.Writer, i int)) bool {
	heading(b, title)
	if n == 0 {
		fmt.Fprintln(b, "none")
		return false
	}
	w := tabwriter.NewWriter(b, 0, 0, 2, ' ', 0)
	fmt.Fprintln(w, header)
	for i := range n {
		line(w, i)
	}
	w.Flush()
	return true
}

// heading writes a section's title, underlined, for the terminal.
func heading(b *strings.Builder, title string) {
	fmt.Fprintf(b, "\n%s\n%s\n", title, strings.Repeat("─", len([]rune(title))))
}
