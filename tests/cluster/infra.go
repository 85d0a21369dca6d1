package cluster

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/acme/pipeline/internal/devstack"
	"github.com/acme/pipeline/lake"
	"github.com/acme/pipeline/silver"
	"github.com/acme/pipeline/warehouse"
)

// The infrastructure of a cluster: `pipeline dev --infra`, its export lines,
// and silver.events, which --infra does not provision.

// StartInfra runs `pipeline dev --infra` on free ports with its state in
// Dir and sets Env and APIKey from the export lines it prints.
func (c *Cluster) StartInfra(ctx context.Context) error {
	for attempt := 1; ; attempt++ {
		err := c.tryStartInfra(ctx, attempt)
		if err == nil {
			return c.ensureSilver(ctx)
		}
		// A free port can be taken by another process before the server
		// binds it: try again on other ports.
		if err == nil || attempt >= c.cfg.InfraAttempts || !strings.Contains(err.Error(), "is taken") {
			return err
		}
		if c.cfg.Logf != nil {
			c.cfg.Logf("pipeline dev --infra, attempt %d: a port was taken; trying other ports", attempt)
		}
	}
}

// ensureSilver creates the catalog's tables and silver.events on the
// cluster's database and S3 store, as provisioning does (dev --infra does
// not provision), so that the workers' stream and backfills can write it.
func (c *Cluster) ensureSilver(ctx context.Context) error {
	if err := warehouse.EnsureDatabase(ctx, c.cfg.DatabaseURL); err != nil {
		return err
	}
	lk, err := lake.New(lake.Config{Endpoint: c.Getenv("S3_ENDPOINT"), Region: c.Getenv("AWS_REGION"), AccessKeyID: c.Getenv("AWS_ACCESS_KEY_ID"),
		SecretAccessKey: c.Getenv("AWS_SECRET_ACCESS_KEY"), PathStyle: true})
	if err != nil {
		return err
	}
	if err := lk.EnsureBucket(ctx); err != nil {
		return err
	}
	_, _, err = silver.Provision(ctx, silver.Config{DatabaseURL: c.cfg.DatabaseURL, Bucket: lake.DefaultBucket,
		Endpoint: c.Getenv("S3_ENDPOINT"), Region: c.Getenv("AWS_REGION"), AccessKeyID: c.Getenv("AWS_ACCESS_KEY_ID"),
		SecretAccessKey: c.Getenv("AWS_SECRET_ACCESS_KEY")})
	return err
}

// requiredExports are what the api and worker processes cannot run without.
var requiredExports = []string{"TEMPORAL_ADDRESS", "KAFKA_BROKERS", "S3_ENDPOINT", "AWS_ACCESS_KEY_ID",
	"AWS_SECRET_ACCESS_KEY", "DATABASE_URL", "PIPELINE_API_KEYS"}

func (c *Cluster) tryStartInfra(ctx context.Context, attempt int) (err error) {
	devDir := filepath.Join(c.cfg.Dir, fmt.Sprintf("dev-%d", attempt))
	args := []string{"dev", "--infra", "--dir", devDir, "--bin", filepath.Join(c.cfg.Root, "bin"),
		"--blueprint", filepath.Join(c.cfg.Root, "deploy", "blueprint.json")}
	for _, name := range []string{"temporal-port", "ui-port", "kafka-port", "s3-port"} {
		p, err := devstack.FreePort()
		if err != nil {
			return err
		}
		args = append(args, fmt.Sprintf("--%s=%d", name, p))
	}
	if err := os.MkdirAll(devDir, 0o755); err != nil {
		return err
	}
	cmd := exec.Command(c.cfg.Bin, args...)
	// No API keys from this environment: dev --infra makes one and prints it.
	cmd.Env = append(os.Environ(), "DATABASE_URL="+c.cfg.DatabaseURL, "PIPELINE_API_KEYS=")
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return err
	}
	errLog, err := os.Create(filepath.Join(c.cfg.Dir, fmt.Sprintf("infra-%d.log", attempt)))
	if err != nil {
		return err
	}
	cmd.Stderr = errLog
	if err := cmd.Start(); err != nil {
		errLog.Close()
		return err
	}
	c.mu.Lock()
	c.byPID[cmd.Process.Pid] = "infra"
	c.mu.Unlock()
	// Ctrl-C: it stops the Temporal server and the S3 store it started.
	stop := func() { Stop(cmd, syscall.SIGINT, 30*time.Second); errLog.Close() }
	defer func() {
		if err != nil {
			stop()
		} else {
			c.mu.Lock()
			c.stops = append(c.stops, stop)
			c.mu.Unlock()
		}
	}()
	lines := make(chan string, 100)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	exports := map[string]string{}
	var printed []string
	deadline := time.After(c.cfg.InfraTimeout)
	for {
		select {
		case l, ok := <-lines:
			if !ok {
				b, _ := os.ReadFile(errLog.Name())
				return fmt.Errorf("pipeline dev --infra exited before it was ready; stdout:\n%s\nstderr:\n%s", strings.Join(printed, "\n"), b)
			}
			printed = append(printed, l)
			if rest, ok := strings.CutPrefix(l, "export "); ok {
				k, q, _ := strings.Cut(rest, "=")
				v, err := strconv.Unquote(q)
				if err != nil {
					return fmt.Errorf("pipeline dev --infra: export line %q: %v", l, err)
				}
				exports[k] = v
			}
			// The steps follow the exports: every export is printed.
			if strings.HasPrefix(l, "then, in order") {
				go func() {
					for range lines {
					}
				}()
				for _, k := range requiredExports {
					if exports[k] == "" {
						return fmt.Errorf("pipeline dev --infra printed no export of %s:\n%s", k, strings.Join(printed, "\n"))
					}
				}
				_, key, _ := strings.Cut(strings.Split(exports["PIPELINE_API_KEYS"], ",")[0], ":")
				if key == "" {
					return fmt.Errorf("pipeline dev --infra printed no API key:\n%s", strings.Join(printed, "\n"))
				}
				env := os.Environ()
				for k, v := range exports {
					env = append(env, k+"="+v)
				}
				c.Env, c.APIKey = env, key
				return nil
			}
		case <-deadline:
			return fmt.Errorf("pipeline dev --infra not ready after %v; it printed:\n%s", c.cfg.InfraTimeout, strings.Join(printed, "\n"))
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}
