package devstack

import (
	"context"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/acme/pipeline/warehouse"
)

// startPostgres picks PostgreSQL in the contract's order: DATABASE_URL, the
// server on 127.0.0.1:5432, a private cluster under Dir/pg. It then creates the
// database and applies the warehouse migrations (schemas gold and pipeline,
// role bi_reader).
func (s *Stack) startPostgres(ctx context.Context) error {
	switch {
	case s.cfg.DatabaseURL != "":
		s.DatabaseURL, s.PostgresOrigin = s.cfg.DatabaseURL, "DATABASE_URL"
	case pgAnswers(ctx, localURL(5432, "postgres")):
		s.DatabaseURL, s.PostgresOrigin = localURL(5432, s.cfg.Database), "local server"
	default:
		port, err := s.startPrivateCluster(ctx)
		if err != nil {
			return err
		}
		s.DatabaseURL, s.PostgresOrigin = localURL(port, s.cfg.Database), "private cluster"
	}
	if !s.cfg.CreateResources {
		if err := warehouse.EnsureDatabase(ctx, s.DatabaseURL); err != nil {
			return fmt.Errorf("database %s: %w", redact(s.DatabaseURL), err)
		}
		return nil
	}
	if err := warehouse.EnsureMigrated(ctx, s.DatabaseURL); err != nil {
		return fmt.Errorf("database %s: %w", redact(s.DatabaseURL), err)
	}
	return nil
}

func localURL(port int, db string) string {
	return fmt.Sprintf("postgres://postgres@127.0.0.1:%d/%s?sslmode=disable", port, db)
}

func pgAnswers(ctx context.Context, u string) bool {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, u)
	if err != nil {
		return false
	}
	conn.Close(ctx)
	return true
}

// redact hides a password in a database URL for logs and errors.
func redact(u string) string {
	p, err := url.Parse(u)
	if err != nil {
		return "(unparsable DATABASE_URL)"
	}
	return p.Redacted()
}

// pgBinDir finds initdb and pg_ctl: on PATH, else Debian's versioned directory.
func pgBinDir() (string, error) {
	if p, err := exec.LookPath("pg_ctl"); err == nil {
		return filepath.Dir(p), nil
	}
	matches, _ := filepath.Glob("/usr/lib/postgresql/*/bin/pg_ctl")
	if len(matches) > 0 {
		return filepath.Dir(matches[len(matches)-1]), nil
	}
	return "", fmt.Errorf("no PostgreSQL answers on 127.0.0.1:5432, DATABASE_URL is unset and no initdb/pg_ctl is installed: " +
		"install them with `apt-get install postgresql` (what `make run` does when it can), or set DATABASE_URL")
}

// startPrivateCluster runs initdb (once) and pg_ctl start on a free port, as
// the postgres user when we are root (PostgreSQL refuses to run as root).
func (s *Stack) startPrivateCluster(ctx context.Context) (int, error) {
	bindir, err := pgBinDir()
	if err != nil {
		return 0, err
	}
	data := filepath.Join(s.cfg.Dir, "pg")
	port := 5433
	for ; port < 5500 && !portFree(hostPort(port)); port++ {
	}
	run := func(ctx context.Context, name string, args ...string) error {
		cmdline := append([]string{filepath.Join(bindir, name)}, args...)
		if os.Geteuid() == 0 {
			cmdline = append([]string{"runuser", "-u", "postgres", "--"}, cmdline...)
		}
		out, err := exec.CommandContext(ctx, cmdline[0], cmdline[1:]...).CombinedOutput()
		if err != nil {
			return fmt.Errorf("%s: %w: %s", name, err, out)
		}
		return nil
	}
	if os.Geteuid() == 0 {
		if err := os.MkdirAll(data, 0o700); err != nil {
			return 0, err
		}
		u, err := user.Lookup("postgres")
		if err != nil {
			return 0, fmt.Errorf("running as root needs a postgres user for the private cluster: %w", err)
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		if err := os.Chown(data, uid, gid); err != nil {
			return 0, err
		}
	}
	if _, err := os.Stat(filepath.Join(data, "PG_VERSION")); err != nil {
		if err := run(ctx, "initdb", "-D", data, "-U", "postgres", "--auth=trust", "-E", "UTF8"); err != nil {
			return 0, err
		}
	}
	opts := fmt.Sprintf("-p %d -c listen_addresses=127.0.0.1 -c unix_socket_directories=%s", port, data)
	if err := run(ctx, "pg_ctl", "-D", data, "-o", opts, "-l", filepath.Join(data, "server.log"), "-w", "start"); err != nil {
		return 0, err
	}
	s.onClose(func() error { return run(context.Background(), "pg_ctl", "-D", data, "-m", "fast", "-w", "stop") })
	return port, nil
}
