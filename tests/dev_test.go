package tests

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/acme/pipeline/internal/devstack"
)

// TestDevCommand runs `pipeline dev` as a user does (on free ports), sends an
// event with the printed key, then presses Ctrl-C and checks that nothing is
// left listening.
func TestDevCommand(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "pipeline")
	if out, err := exec.Command("go", "build", "-o", bin, "../cmd/pipeline").CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	ports := map[string]int{}
	for _, name := range []string{"temporal-port", "ui-port", "kafka-port", "s3-port", "api-port", "admin-port"} {
		p, err := devstack.FreePort()
		if err != nil {
			t.Fatal(err)
		}
		ports[name] = p
	}
	args := []string{"dev", "--dir", t.TempDir(), "--bin", filepath.Join(moduleRoot, "bin"),
		"--blueprint", filepath.Join(moduleRoot, "deploy", "blueprint.json")}
	for name, p := range ports {
		args = append(args, fmt.Sprintf("--%s=%d", name, p))
	}
	cmd := exec.Command(bin, args...)
	// Its own database: `pipeline dev` provisions the seed into it, which
	// must not touch the catalog other tests provision into.
	u, err := url.Parse(stack.DatabaseURL)
	if err != nil {
		t.Fatal(err)
	}
	devDB := strings.TrimPrefix(u.Path, "/") + "_dev"
	u.Path = "/" + devDB
	defer dropDatabase(devDB)
	cmd.Env = append(os.Environ(), "PIPELINE_API_KEYS=", "DATABASE_URL="+u.String())
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = io.Discard
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()

	// Read the banner until the API key line.
	keyRe := regexp.MustCompile(`Authorization: Bearer ([0-9a-f]{32})\)`)
	lines := make(chan string, 100)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	var key string
	var banner []string
	deadline := time.After(60 * time.Second)
	for key == "" {
		select {
		case l, ok := <-lines:
			if !ok {
				t.Fatalf("pipeline dev exited before it was ready; it printed:\n%s", strings.Join(banner, "\n"))
			}
			banner = append(banner, l)
			if m := keyRe.FindStringSubmatch(l); m != nil {
				key = m[1]
			}
		case <-deadline:
			t.Fatalf("pipeline dev not ready after 60s; it printed:\n%s", strings.Join(banner, "\n"))
		}
	}
	for _, want := range []string{"Temporal UI", "Kafka", "S3", "PostgreSQL", "Event API"} {
		if !strings.Contains(strings.Join(banner, "\n"), want) {
			t.Errorf("banner does not mention %s", want)
		}
	}

	body := `{"type":"page_view","occurred_at":"2026-11-24T14:05:09Z","user_id":"u-42","properties":{"path":"/pricing"}}`
	req, _ := http.NewRequest(http.MethodPost, fmt.Sprintf("http://127.0.0.1:%d/v1/events", ports["api-port"]), strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+key)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("POST /v1/events answered %s, want 202", resp.Status)
	}

	// Ctrl-C.
	if err := cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	select {
	case err := <-exited:
		if err != nil {
			t.Fatalf("pipeline dev exited with %v after Ctrl-C", err)
		}
	case <-ctx.Done():
		t.Fatal("pipeline dev did not exit within 30s of Ctrl-C")
	}
	for name, p := range ports {
		if c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", p), 200*time.Millisecond); err == nil {
			c.Close()
			t.Errorf("after Ctrl-C something still listens on the %s %d", name, p)
		}
	}
}
