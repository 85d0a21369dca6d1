// Package cluster runs a local multi-process pipeline for tests and
// benchmarks, the way an operator runs one on a single machine:
// `pipeline dev --infra` (its own Temporal, broker, S3 store, on free ports)
// and, with the environment its export lines print, any number of
// `pipeline api` and `pipeline worker` processes, each logging to its own
// file.
//
// TestMultiWorker (kill -9 of a worker in the middle of a cycle) and
// benchworkers (throughput with 1..N worker processes) both need exactly
// this; keeping it in one place keeps the two measuring the same set-up.
// Its functions return errors rather than take a testing.T so that the
// benchmark program, which has none, can use them too.
package cluster

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/acme/pipeline/internal/devstack"
)

// Config says what a Cluster runs and where it keeps its files.
type Config struct {
	// Bin is the pipeline binary (see Build).
	Bin string
	// Root is the module root: `pipeline dev --infra` takes the pinned
	// servers from Root/bin and the blueprint from Root/deploy.
	Root string
	// Dir holds every process's log (<name>.log, infra-<attempt>.log) and
	// state; DumpLogs reads the logs from there.
	Dir string
	// DatabaseURL is the database `pipeline dev --infra` uses and prints.
	DatabaseURL string
	// InfraAttempts is how many times StartInfra tries (on other free ports)
	// when a port was taken between picking it and binding it; default 3.
	InfraAttempts int
	// InfraTimeout bounds one attempt of `pipeline dev --infra` until it
	// prints its export lines; default 90 s.
	InfraTimeout time.Duration
	// Logf, when set, hears about retried attempts.
	Logf func(format string, args ...any)
}

// Cluster is the processes of one run. Close stops them all.
type Cluster struct {
	cfg Config
	// Env is this process's environment plus the export lines of
	// `pipeline dev --infra`: what every api and worker process runs with.
	Env []string
	// APIKey is the first API key `pipeline dev --infra` printed.
	APIKey string

	mu    sync.Mutex
	cmds  map[string]*exec.Cmd
	byPID map[int]string
	stops []func()
}

// New returns a Cluster that runs nothing yet.
func New(cfg Config) *Cluster {
	if cfg.InfraAttempts <= 0 {
		cfg.InfraAttempts = 3
	}
	if cfg.InfraTimeout <= 0 {
		cfg.InfraTimeout = 90 * time.Second
	}
	return &Cluster{cfg: cfg, cmds: map[string]*exec.Cmd{}, byPID: map[int]string{}}
}

// Build compiles root/cmd/pipeline to out.
func Build(root, out string) error {
	if b, err := exec.Command("go", "build", "-o", out, filepath.Join(root, "cmd", "pipeline")).CombinedOutput(); err != nil {
		return fmt.Errorf("build: %v\n%s", err, b)
	}
	return nil
}

// ModuleRoot is the directory of go.mod, found upwards from the working
// directory (`go run` keeps the caller's).
func ModuleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("go.mod not found above the working directory")
		}
		dir = parent
	}
}

// Getenv is key's value in Env (the last one wins, as in exec).
func (c *Cluster) Getenv(key string) string {
	v := ""
	for _, kv := range c.Env {
		if k, val, ok := strings.Cut(kv, "="); ok && k == key {
			v = val
		}
	}
	return v
}

// Start runs `pipeline args...` with Env as process name, logging to
// Dir/<name>.log. Close stops it with SIGTERM, as an orchestrator does.
//
// `pipeline api` connects as pipeline_api and `pipeline worker` as
// pipeline_worker (016_process_roles), as they run in production, when
// DATABASE_URL carries no password (the roles have none: local trust
// authentication); other subcommands, and every one against a server with
// passwords, connect as DATABASE_URL says.
func (c *Cluster) Start(name string, args ...string) error {
	return c.StartNice(name, 0, args...)
}

// StartNice is Start at CPU priority nice (nice(1) execs the binary, so the
// process keeps its pid): 0 is the default, higher yields the CPU to the
// others.
func (c *Cluster) StartNice(name string, nice int, args ...string) error {
	cmd := exec.Command(c.cfg.Bin, args...)
	if nice != 0 {
		cmd = exec.Command("nice", append([]string{"-n", strconv.Itoa(nice), c.cfg.Bin}, args...)...)
	}
	cmd.Env = c.Env
	if len(args) > 0 {
		if role := processRoles[args[0]]; role != "" {
			cmd.Env = c.envAs(role)
		}
	}
	f, err := os.Create(filepath.Join(c.cfg.Dir, name+".log"))
	if err != nil {
		return err
	}
	cmd.Stdout, cmd.Stderr = f, f
	if err := cmd.Start(); err != nil {
		f.Close()
		return err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.cmds[name] = cmd
	c.byPID[cmd.Process.Pid] = name
	c.stops = append(c.stops, func() { Stop(cmd, syscall.SIGTERM, 10*time.Second); f.Close() })
	return nil
}

// StartAPI starts `pipeline api` as process name on a free loopback port and
// returns its address; it does not wait for the port (devstack.WaitPort).
// extra are more flags (a later --admin-addr wins over the random one).
func (c *Cluster) StartAPI(name string, extra ...string) (addr string, err error) {
	port, err := devstack.FreePort()
	if err != nil {
		return "", err
	}
	addr = fmt.Sprintf("127.0.0.1:%d", port)
	// Each API's operators' listener on a port of its own.
	return addr, c.Start(name, append([]string{"api", "--addr", addr, "--admin-addr", "127.0.0.1:0"}, extra...)...)
}

// WorkerArgs are the arguments of a `pipeline worker` process: no metrics
// listener (several workers on one machine would contend for its port) and
// the state dir in Dir.
func (c *Cluster) WorkerArgs() []string {
	return []string{"worker", "--metrics-addr", "", "--state-dir", filepath.Join(c.cfg.Dir, "state")}
}

// Kill sends SIGKILL to process name: a crash, no clean shutdown. To start
// it again, Start it under another name.
func (c *Cluster) Kill(name string) error {
	c.mu.Lock()
	cmd := c.cmds[name]
	c.mu.Unlock()
	if cmd == nil {
		return fmt.Errorf("no process %q", name)
	}
	return cmd.Process.Signal(syscall.SIGKILL)
}

// ByIdentity maps a Temporal worker identity (pid@host@...) to the name of
// the process, "" if it is none of them.
func (c *Cluster) ByIdentity(identity string) string {
	pidText, _, _ := strings.Cut(identity, "@")
	pid, err := strconv.Atoi(pidText)
	if err != nil {
		return ""
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.byPID[pid]
}

// PIDs are the processes started, by pid.
func (c *Cluster) PIDs() map[int]string {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make(map[int]string, len(c.byPID))
	for k, v := range c.byPID {
		out[k] = v
	}
	return out
}

// DumpLogs hands the tail (4,000 bytes) of every log in Dir to logf.
func (c *Cluster) DumpLogs(logf func(format string, args ...any)) {
	entries, _ := os.ReadDir(c.cfg.Dir)
	for _, e := range entries {
		if !strings.HasSuffix(e.Name(), ".log") {
			continue
		}
		b, _ := os.ReadFile(filepath.Join(c.cfg.Dir, e.Name()))
		if len(b) > 4000 {
			b = b[len(b)-4000:]
		}
		logf("--- %s (tail)\n%s", e.Name(), b)
	}
}

// Close stops every process in the reverse order of their start: the api
// and workers before the infrastructure they use.
func (c *Cluster) Close() {
	c.mu.Lock()
	stops := slices.Clone(c.stops)
	c.stops = nil
	c.mu.Unlock()
	for i := len(stops) - 1; i >= 0; i-- {
		stops[i]()
	}
}

// Stop signals cmd and waits for it to exit, killing it after grace.
func Stop(cmd *exec.Cmd, sig os.Signal, grace time.Duration) {
	_ = cmd.Process.Signal(sig)
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(grace):
		_ = cmd.Process.Kill()
		<-done
	}
}
