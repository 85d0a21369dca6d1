package devstack

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"
)

// child is a process the stack started. It dies with the parent (Pdeathsig), so
// even a kill -9 of `pipeline dev` leaves nothing listening.
type child struct {
	name   string
	cmd    *exec.Cmd
	exited chan struct{}
}

// startChild starts bin with args and a clean environment (childEnv) plus
// env, so that no secret needs to go on its command line.
func startChild(name, logPath string, bin string, env []string, args ...string) (*child, error) {
	if _, err := os.Stat(bin); err != nil {
		return nil, fmt.Errorf("%s binary %s is missing (run `make tools`): %w", name, bin, err)
	}
	logf, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, fmt.Errorf("%s log %s: %w", name, logPath, err)
	}
	cmd := exec.Command(bin, args...)
	cmd.Env = append(childEnv(os.Environ()), env...)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		logf.Close()
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	c := &child{name: name, cmd: cmd, exited: make(chan struct{})}
	go func() {
		_ = cmd.Wait()
		logf.Close()
		close(c.exited)
	}()
	return c, nil
}

// childEnv is the environment the stack's servers get: the process's, less
// what configures the pipeline. The pipeline's OpenTelemetry settings
// (OTEL_TRACES_EXPORTER=console, which the Temporal server refuses) and its
// credentials (the API keys, DATABASE_URL, the S3 and Temporal keys) are for
// the pipeline alone.
func childEnv(environ []string) []string {
	out := make([]string, 0, len(environ))
	for _, kv := range environ {
		k, _, _ := strings.Cut(kv, "=")
		if slices.ContainsFunc(pipelineEnvPrefixes, func(p string) bool { return strings.HasPrefix(k, p) }) {
			continue
		}
		out = append(out, kv)
	}
	return out
}

// pipelineEnvPrefixes name the variables childEnv leaves out.
var pipelineEnvPrefixes = []string{"OTEL_", "PIPELINE_", "DATABASE_URL", "AWS_", "TEMPORAL_", "KAFKA_", "S3_", "PG"}

// stop sends SIGTERM to the child's process group and SIGKILL after a grace period.
func (c *child) stop() error {
	select {
	case <-c.exited:
		return nil
	default:
	}
	_ = syscall.Kill(-c.cmd.Process.Pid, syscall.SIGTERM)
	select {
	case <-c.exited:
	case <-time.After(10 * time.Second):
		_ = syscall.Kill(-c.cmd.Process.Pid, syscall.SIGKILL)
		<-c.exited
	}
	return nil
}

func (s *Stack) bin(name string) (string, error) {
	p := filepath.Join(s.cfg.BinDir, name)
	abs, err := filepath.Abs(p)
	if err != nil {
		return "", err
	}
	return abs, nil
}

func (s *Stack) startTemporal(ctx context.Context) error {
	addr := hostPort(s.cfg.TemporalPort)
	if !portFree(addr) {
		return fmt.Errorf("port %s is taken: another Temporal server or `pipeline dev` is running", addr)
	}
	bin, err := s.bin("temporal")
	if err != nil {
		return err
	}
	c, err := startChild("temporal", filepath.Join(s.cfg.Dir, "temporal.log"), bin, nil,
		"server", "start-dev",
		"--ip", "127.0.0.1", "--port", fmt.Sprint(s.cfg.TemporalPort),
		"--ui-port", fmt.Sprint(s.cfg.TemporalUIPort),
		"--db-filename", filepath.Join(s.cfg.Dir, "temporal.db"),
		"--namespace", "default",
		"--log-level", "warn")
	if err != nil {
		return err
	}
	s.onClose(c.stop)
	if err := waitPort(ctx, addr, 60*time.Second, c.exited); err != nil {
		return fmt.Errorf("%w (see %s)", err, filepath.Join(s.cfg.Dir, "temporal.log"))
	}
	s.TemporalAddress = addr
	s.TemporalUI = fmt.Sprintf("http://127.0.0.1:%d", s.cfg.TemporalUIPort)
	return nil
}
