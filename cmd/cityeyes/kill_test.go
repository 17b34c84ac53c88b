package main

import (
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"
)

var (
	buildOnce sync.Once
	binary    string
	buildErr  error
)

// build compiles the cityeyes binary once per test run, for tests that need a real process
// to kill.
func build(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "cityeyes-bin-")
		if err != nil {
			buildErr = err
			return
		}
		binary = filepath.Join(dir, "cityeyes")
		out, err := exec.Command("go", "build", "-o", binary, ".").CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binary
}

// spawn starts the binary as its own process with the instance's environment and waits
// until it is ready.
func (in *instance) spawn(args ...string) *exec.Cmd {
	in.t.Helper()
	cmd := exec.Command(build(in.t), args...)
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME")}
	for k, v := range in.env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Start(); err != nil {
		in.t.Fatal(err)
	}
	in.t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		if resp, err := http.Get(in.base + "/readyz"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return cmd
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	in.t.Fatalf("cityeyes %v was not ready within 30 s", args)
	return nil
}

// TestSIGKILLBetweenAcceptanceAndRouting kills the API process with SIGKILL (no shutdown of
// any kind) right after it accepted reports that no worker has routed, then starts the
// product again: every report is routed exactly once and pushed exactly once.
func TestSIGKILLBetweenAcceptanceAndRouting(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and kills a real process")
	}
	in := newInstance(t)
	api := in.spawn("api")
	citizen := in.device("kill-device-0001", "push-token-kill")
	var ids []string
	for i := range 5 {
		ids = append(ids, in.submit(citizen, fmt.Sprintf("kill-%d", i)).ID)
	}
	if err := api.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = api.Wait()

	in.spawn("serve")
	for _, id := range ids {
		in.routedAndPushedOnce(citizen, id)
	}
}
