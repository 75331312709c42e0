package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/pamtrail/pamtrail/gateway/config"
	"github.com/pamtrail/pamtrail/gateway/engine"
	"github.com/pamtrail/pamtrail/gateway/mysql"
	"github.com/pamtrail/pamtrail/gateway/postgres"
	"github.com/pamtrail/pamtrail/gateway/server"
	sshgw "github.com/pamtrail/pamtrail/gateway/ssh"
)

// engines are the protocols this build serves.
var engines = map[string]server.EngineFactory{
	"postgres": func(d engine.Deps) (engine.Engine, error) { return postgres.New(postgres.Options{Deps: d}) },
	"mysql":    func(d engine.Deps) (engine.Engine, error) { return mysql.New(mysql.Options{Deps: d}) },
	"ssh":      func(d engine.Deps) (engine.Engine, error) { return sshgw.New(sshgw.Options{Deps: d}) },
}

// runGateway runs the gateway in the foreground until SIGINT or SIGTERM.
func runGateway(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("gateway", flag.ContinueOnError)
	fs.SetOutput(stderr)
	path := fs.String("config", "", "gateway config file (YAML)")
	shutdownTimeout := fs.Duration("shutdown-timeout", 15*time.Second, "how long a graceful stop may take: live sessions go on for two thirds of it, then end with gateway_shutdown, and the last upload gets the rest")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *path == "" {
		fmt.Fprintln(stderr, "pamtrail gateway: --config is required")
		return 2
	}
	cfg, err := config.Load(*path)
	if err != nil {
		fmt.Fprintf(stderr, "pamtrail: %v\n", err)
		return 1
	}
	log := newLogger(stderr, cfg.Gateway.LogLevel).With("gateway.id", cfg.Gateway.ID)
	gcPercent, gcSource := server.ApplyGCPercent(cfg.Gateway.GCPercent)
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	gw, err := server.Start(ctx, cfg, *path, log, engines)
	if err != nil {
		log.Error("gateway failed to start", "error", err)
		return 1
	}
	log.Info("gateway started", "config", *path, "gc_percent", gcPercent, "gc_percent_from", gcSource)
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	for waiting := true; waiting; {
		select {
		case <-hup:
			_, _, _ = gw.Reload("signal:SIGHUP") // logged and recorded by Reload
		case <-ctx.Done():
			waiting = false
		}
	}
	log.Info("shutting down")
	sctx, cancel := context.WithTimeout(context.Background(), *shutdownTimeout)
	defer cancel()
	gw.Shutdown(sctx)
	log.Info("stopped")
	return 0
}

func newLogger(w io.Writer, level string) *slog.Logger {
	var l slog.Level
	if err := l.UnmarshalText([]byte(level)); err != nil {
		l = slog.LevelInfo
	}
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: l}))
}
