// Command cityeyes runs City Eyes: the API, the workers, or both, and its maintenance
// commands.
//
//	cityeyes [serve]           API, workers and relay in one process (the default)
//	cityeyes api               the API only
//	cityeyes worker            the workers and the outbox relay only
//	cityeyes migrate           apply database migrations
//	cityeyes config apply FILE apply a city configuration (idempotent)
//	cityeyes config export [-jurisdiction ID]
//	                           write a city's whole configuration (YAML) to stdout
//	cityeyes user add ...      add a member of staff (see `cityeyes user add -h`)
//	cityeyes healthcheck       exit 0 when this container's process answers /healthz
//
// Configuration comes from CITYEYES_* environment variables (see config.go). With none set,
// everything runs embedded: SQLite under ./data, an in-process Redis-compatible server, the
// object store in ./data/objects, and a demo city (New York) on first start.
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	// SIGTERM or SIGINT starts a graceful stop: no new requests or tasks are taken, those
	// in flight finish within CITYEYES_SHUTDOWN_TIMEOUT, then the process exits 0. A second
	// signal ends it at once.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	go func() {
		<-ctx.Done()
		stop()
	}()
	if err := run(ctx, os.Args[1:], os.Getenv, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "cityeyes:", err)
		os.Exit(1)
	}
}

// run is the whole program: it parses the command, builds what the command needs and runs
// it until ctx is cancelled.
func run(ctx context.Context, args []string, getenv func(string) string, stdout io.Writer) error {
	cmd := "serve"
	if len(args) > 0 {
		cmd, args = args[0], args[1:]
	}
	cfg, err := loadConfig(getenv)
	if err != nil {
		return err
	}
	switch cmd {
	case "serve":
		return serve(ctx, cfg, stdout, true, true)
	case "api":
		return serve(ctx, cfg, stdout, true, false)
	case "worker":
		return serve(ctx, cfg, stdout, false, true)
	case "migrate":
		return migrate(ctx, cfg, stdout)
	case "config":
		switch {
		case len(args) == 2 && args[0] == "apply":
			return applyConfig(ctx, cfg, args[1], stdout)
		case len(args) >= 1 && args[0] == "export":
			return exportConfig(ctx, cfg, args[1:], stdout)
		}
		return fmt.Errorf("usage: cityeyes config apply FILE | cityeyes config export [-jurisdiction ID]")
	case "user":
		if len(args) == 0 || args[0] != "add" {
			return fmt.Errorf("usage: cityeyes user add -jurisdiction ID -email E -role R [-department CODE] [-name N] -password-file F")
		}
		return addUser(ctx, cfg, args[1:], stdout)
	case "healthcheck":
		return healthcheck(ctx, cfg, stdout)
	case "help", "-h", "--help":
		fmt.Fprintln(stdout, "usage: cityeyes [serve|api|worker|migrate|config apply FILE|config export [-jurisdiction ID]|user add ...|healthcheck]")
		return nil
	}
	return fmt.Errorf("unknown command %q: want serve, api, worker, migrate or config apply FILE", cmd)
}
