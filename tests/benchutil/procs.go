package benchutil

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Where a benchmark's CPU goes: every process of the machine sampled from
// /proc before and after the measured span, grouped by what it is (the
// pipeline's processes, the Temporal server, the S3 store, PostgreSQL's
// backends), so that a run says which process the two cores worked for.

// clockTick is Linux's USER_HZ, the unit of /proc/PID/stat's times.
const clockTick = 100

// Proc is one process as /proc shows it.
type Proc struct {
	PID, PPID int
	Comm      string
	CPU       time.Duration // user + system since it started
	PeakRSS   int64         // VmHWM, bytes
}

// Procs reads every process of the machine.
func Procs() map[int]Proc {
	out := map[int]Proc{}
	dirs, _ := filepath.Glob("/proc/[0-9]*")
	for _, d := range dirs {
		pid, err := strconv.Atoi(filepath.Base(d))
		if err != nil {
			continue
		}
		b, err := os.ReadFile(filepath.Join(d, "stat"))
		if err != nil {
			continue
		}
		// comm is in parentheses and may hold spaces: the fields after the
		// last ')' are fixed.
		s := string(b)
		open, end := strings.IndexByte(s, '('), strings.LastIndexByte(s, ')')
		if open < 0 || end < open {
			continue
		}
		f := strings.Fields(s[end+1:])
		if len(f) < 13 {
			continue
		}
		ppid, _ := strconv.Atoi(f[1])
		utime, _ := strconv.ParseInt(f[11], 10, 64)
		stime, _ := strconv.ParseInt(f[12], 10, 64)
		p := Proc{PID: pid, PPID: ppid, Comm: s[open+1 : end], CPU: time.Duration(utime+stime) * time.Second / clockTick}
		if st, err := os.ReadFile(filepath.Join(d, "status")); err == nil {
			for _, l := range strings.Split(string(st), "\n") {
				if v, ok := strings.CutPrefix(l, "VmHWM:"); ok {
					kb, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
					p.PeakRSS = kb << 10
				}
			}
		}
		out[pid] = p
	}
	return out
}

// Group names a set of processes: Match says whether a process belongs
// to it, given all of them.
type Group struct {
	Name  string
	Match func(p Proc, all map[int]Proc) bool
}

// Descends reports whether p is root or one of its descendants.
func Descends(p Proc, all map[int]Proc, root int) bool {
	for i := 0; i < 64 && p.PID > 1; i++ {
		if p.PID == root {
			return true
		}
		q, ok := all[p.PPID]
		if !ok {
			return false
		}
		p = q
	}
	return false
}

// Usage is a group's CPU time over a span and its largest process's peak RSS.
type Usage struct {
	Name    string
	CPU     time.Duration
	PeakRSS int64
	Procs   int
	// Top names the group's busiest commands ("other" only).
	Top string
}

// CPUUsage returns each group's CPU time between before and after (a
// process is counted in the first group that matches it; processes that
// started in between count from zero) and the peak RSS of its largest
// process, then "other" for what no group matched.
func CPUUsage(before, after map[int]Proc, groups []Group) []Usage {
	out := make([]Usage, len(groups)+1)
	for i, g := range groups {
		out[i].Name = g.Name
	}
	out[len(groups)].Name = "other"
	byComm := map[string]time.Duration{}
	for pid, p := range after {
		i := slices.IndexFunc(groups, func(g Group) bool { return g.Match(p, after) })
		if i < 0 {
			i = len(groups)
		}
		d := p.CPU
		if b, ok := before[pid]; ok && b.Comm == p.Comm {
			d -= b.CPU
		}
		out[i].CPU += d
		out[i].PeakRSS = max(out[i].PeakRSS, p.PeakRSS)
		out[i].Procs++
		if i == len(groups) {
			byComm[p.Comm] += d
		}
	}
	comms := make([]string, 0, len(byComm))
	for c := range byComm {
		comms = append(comms, c)
	}
	slices.SortFunc(comms, func(a, b string) int { return int(byComm[b] - byComm[a]) })
	var top []string
	for _, c := range comms[:min(3, len(comms))] {
		if byComm[c] > 0 {
			top = append(top, fmt.Sprintf("%s %.1fs", c, byComm[c].Seconds()))
		}
	}
	out[len(groups)].Top = strings.Join(top, ", ")
	return out
}

// UsageTable renders usages for a span of wall time on cpus cores, as a
// Markdown table: CPU seconds, share of the cores, peak RSS.
func UsageTable(us []Usage, wall time.Duration, cpus int) string {
	var b strings.Builder
	fmt.Fprintf(&b, "| process | processes | CPU s | share of %d cores over %.1fs | largest peak RSS MiB |\n|---|---:|---:|---:|---:|\n", cpus, wall.Seconds())
	for _, u := range us {
		if u.CPU == 0 && u.Name == "other" {
			continue
		}
		name := u.Name
		if u.Top != "" {
			name += " (" + u.Top + ")"
		}
		fmt.Fprintf(&b, "| %s | %d | %.1f | %.0f%% | %.0f |\n", name, u.Procs, u.CPU.Seconds(),
			100*u.CPU.Seconds()/(wall.Seconds()*float64(max(cpus, 1))), float64(u.PeakRSS)/(1<<20))
	}
	return b.String()
}

// FetchProfile GETs a pprof endpoint's profile into path.
func FetchProfile(ctx context.Context, url, path string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	return os.WriteFile(path, b, 0o644)
}
