// Package server assembles a gateway process from its config: keys, spool,
// recorder, uploader and one engine per configured protocol, and runs them
// until the context ends.
package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pamtrail/pamtrail/gateway/config"
	"github.com/pamtrail/pamtrail/gateway/control"
	"github.com/pamtrail/pamtrail/gateway/engine"
	"github.com/pamtrail/pamtrail/gateway/keys"
	"github.com/pamtrail/pamtrail/gateway/recorder"
	"github.com/pamtrail/pamtrail/gateway/redact"
	"github.com/pamtrail/pamtrail/gateway/schema"
	"github.com/pamtrail/pamtrail/gateway/spool"
	"github.com/pamtrail/pamtrail/gateway/uploader"
)

// EngineFactory builds an engine for a protocol; cmd/pamtrail registers the
// engines so this package does not depend on them. Every engine gets the
// same Deps; their Control is the gateway's live control (reloadable users,
// grants, accounts, policies, locks), which the engine consults at each
// login.
type EngineFactory func(engine.Deps) (engine.Engine, error)

// Gateway is a running gateway.
type Gateway struct {
	cfg      *config.Config
	path     string // the config file, read again by Reload
	ctl      *control.Control
	admin    *control.AdminServer
	log      *slog.Logger
	spool    *spool.Spool
	rec      *recorder.OTel
	uploader *uploader.Uploader
	engines  []runningEngine
	metrics  *http.Server
	wg       sync.WaitGroup
	kick     chan struct{}
	stopKick chan struct{}
	stopOnce sync.Once
	keyID    string // the spool keyring's current key, for /healthz
}

type runningEngine struct {
	engine.Engine
	ln      net.Listener
	serving *atomic.Bool // false once Serve has returned
}

// Start opens the spool, starts the uploader and the engines' listeners.
// Engines maps a protocol name ("postgres", "ssh") to its factory; a
// protocol without a listener in cfg is not started.
// path is the config file cfg was loaded from, which Reload reads again.
func Start(ctx context.Context, cfg *config.Config, path string, log *slog.Logger, engines map[string]EngineFactory) (_ *Gateway, err error) {
	g := &Gateway{cfg: cfg, path: path, log: log}
	defer func() {
		if err != nil {
			g.Shutdown(context.Background())
		}
	}()
	ring, err := loadKeys(cfg.Spool)
	if err != nil {
		return nil, err
	}
	g.keyID = ring.Current().ID
	g.spool, err = spool.Open(cfg.Spool.Dir, cfg.Spool.Options(ring, log)) // the spool names its logs
	if err != nil {
		return nil, fmt.Errorf("spool %s: %w", cfg.Spool.Dir, err)
	}
	signer, err := loadSigner(cfg.Recording.SigningKeyFile, log)
	if err != nil {
		return nil, err
	}
	g.rec, err = recorder.NewOTel(recorder.Options{
		Signer:       signer,
		Sink:         spool.RecordSink{Spool: g.spool},
		GatewayID:    cfg.Gateway.ID,
		Logger:       log.With("component", "recorder"),
		Redactor:     buildRedactor(cfg.Redaction, cfg.Recording.SensitiveFunctions),
		PolicyFor:    policyFor(cfg),
		MaxTextBytes: int(cfg.Recording.MaxTextBytes),
		OnSessionEnd: func(string) { g.kickUpload() },
	})
	if err != nil {
		return nil, err
	}
	var rec recorder.Recorder = g.rec
	if !cfg.Recording.RecordingEnabled() {
		log.Warn("recording is DISABLED (recording.enabled: false); sessions are relayed but not recorded")
		rec = recorder.Nop{}
	}
	up := cfg.Upload
	g.uploader, err = uploader.New(g.spool, uploader.Config{
		Endpoint:        up.Endpoint,
		Insecure:        up.Insecure,
		CAFile:          up.TLS.CAFile,
		CertFile:        up.TLS.CertFile,
		KeyFile:         up.TLS.KeyFile,
		ServerName:      up.TLS.ServerName,
		Compression:     up.Compression,
		Headers:         up.Headers,
		Interval:        up.Interval.D(),
		MaxBatchRecords: up.BatchRecords,
		MaxBatchBytes:   int(up.BatchBytes),
		MaxInFlight:     up.MaxInFlight,
		Timeout:         up.Timeout.D(),
		GatewayID:       cfg.Gateway.ID,
		BeforeCycle:     g.rec.Cycle,
		Logger:          log, // the uploader names itself
	})
	if err != nil {
		return nil, err
	}
	if err := g.uploader.Start(ctx); err != nil {
		return nil, err
	}
	g.kick = make(chan struct{}, 1)
	g.stopKick = make(chan struct{})
	g.wg.Add(1)
	go g.uploadOnSessionEnd()
	listeners := map[string]string{}
	if cfg.Postgres != nil {
		listeners["postgres"] = cfg.Postgres.Address
	}
	if cfg.MySQL != nil {
		listeners["mysql"] = cfg.MySQL.Address
	}
	if cfg.SSH != nil {
		listeners["ssh"] = cfg.SSH.Address
	}
	for proto, addr := range listeners {
		factory, ok := engines[proto]
		if !ok {
			return nil, fmt.Errorf("%s: no engine for this protocol in this build", proto)
		}
		if g.ctl == nil {
			if g.ctl, err = control.New(cfg, log); err != nil {
				return nil, err
			}
		}
		eng, err := factory(engine.Deps{Config: cfg, Recorder: rec, Control: g.ctl, Logger: log}) // engines name themselves
		if err != nil {
			return nil, fmt.Errorf("%s engine: %w", proto, err)
		}
		g.ctl.AddEngine(eng)
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			return nil, fmt.Errorf("%s.address: %w", proto, err)
		}
		re := runningEngine{Engine: eng, ln: ln, serving: new(atomic.Bool)}
		re.serving.Store(true)
		g.engines = append(g.engines, re)
		g.wg.Add(1)
		go func() {
			defer g.wg.Done()
			defer re.serving.Store(false)
			if err := re.Serve(re.ln); err != nil && !errors.Is(err, net.ErrClosed) {
				log.Error("engine stopped", "engine", re.Protocol(), "error", err)
			}
		}()
		log.Info("listening", "engine", proto, "address", ln.Addr().String())
	}
	if cfg.Admin != nil && g.ctl != nil {
		// Admin actions are recorded even with recording.enabled: false.
		if g.admin, err = control.StartAdmin(g.ctl, g.rec, g.Reload, log); err != nil {
			return nil, err
		}
	}
	if cfg.Metrics != nil && cfg.Metrics.Address != "" {
		if err := g.serveMetrics(cfg.Metrics.Address); err != nil {
			return nil, fmt.Errorf("metrics.address: %w", err)
		}
	}
	return g, nil
}

// Shutdown stops every engine at once under the engine shutdown contract
// (see engine.Lifecycle.Shutdown), makes a last bounded upload attempt and
// closes the spool. Live sessions get two thirds of the time left before
// ctx's deadline, so the final upload has the rest to ship their ends.
// Whatever is not uploaded stays in the spool for the next start. It is
// safe on a partly started gateway.
func (g *Gateway) Shutdown(ctx context.Context) {
	if g.admin != nil {
		_ = g.admin.Shutdown(ctx)
	}
	drain, cancel := ctx, context.CancelFunc(func() {})
	if deadline, ok := ctx.Deadline(); ok {
		drain, cancel = context.WithDeadline(ctx, deadline.Add(-time.Until(deadline)/3))
	}
	defer cancel()
	var engines sync.WaitGroup
	for _, e := range g.engines {
		engines.Go(func() {
			if err := e.Shutdown(drain); err != nil {
				g.log.Warn("engine shutdown", "engine", e.Protocol(), "error", err)
			}
			_ = e.ln.Close()
		})
	}
	engines.Wait()
	if g.stopKick != nil {
		g.stopOnce.Do(func() { close(g.stopKick) })
	}
	g.wg.Wait()
	if g.metrics != nil {
		_ = g.metrics.Shutdown(ctx)
	}
	if g.uploader != nil {
		if err := g.uploader.Shutdown(ctx); err != nil {
			g.log.Warn("final upload incomplete; records stay in the spool", "error", err)
		}
	}
	if g.spool != nil {
		if err := g.spool.Close(); err != nil {
			g.log.Error("closing spool", "error", err)
		}
	}
}

// Reload reads the config file again and applies what a reload can change
// (control.Control.Reload); a file that fails validation changes nothing.
// actor is who asked: an admin identity, or "signal:SIGHUP". The reload is
// recorded as an admin action either way.
func (g *Gateway) Reload(actor string) (ended int, warnings []string, err error) {
	next, err := config.Load(g.path)
	if err == nil {
		ended, warnings, err = g.ctl.Reload(next, actor)
	}
	result := "ok"
	if err != nil {
		result = "rejected: " + err.Error()
		g.log.Error("reload rejected; the running config stays", "by", actor, "error", err)
	} else {
		g.log.Info("config reloaded", "by", actor, "sessions_ended", ended, "warnings", warnings)
	}
	if strings.HasPrefix(actor, "signal:") { // the admin API records its own requests
		_ = g.rec.AdminAction(context.Background(), recorder.AdminAction{Identity: actor, Operation: schema.AdminReload,
			Target: "config", Result: result, Ended: ended})
	}
	return ended, warnings, err
}

// AdminAddr returns the admin API's bound address, nil without one.
func (g *Gateway) AdminAddr() net.Addr {
	if g.admin == nil {
		return nil
	}
	return g.admin.Addr()
}

// Addr returns the bound address of a protocol's listener (tests bind :0).
func (g *Gateway) Addr(protocol string) net.Addr {
	for _, e := range g.engines {
		if e.Protocol() == protocol {
			return e.ln.Addr()
		}
	}
	return nil
}

func loadKeys(s config.Spool) (*keys.Ring, error) {
	if s.KeyFile != "" {
		ring, err := keys.Load(s.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("spool.key_file: %w", err)
		}
		return ring, nil
	}
	ring, err := keys.FromEnv(s.KeyEnv)
	if err != nil {
		return nil, fmt.Errorf("spool.key_env: %w", err)
	}
	return ring, nil
}

// loadSigner reads the signing key. A gateway without one still chains its
// records, but nothing vouches for the chain: it says so at every start.
func loadSigner(path string, log *slog.Logger) (recorder.Signer, error) {
	if path == "" {
		log.Warn("recording.signing_key_file is not set: recordings are hash-chained but not signed (pamtrail keygen --signing)")
		return nil, nil
	}
	k, err := keys.LoadSigning(path)
	if err != nil {
		return nil, fmt.Errorf("recording.signing_key_file: %w", err)
	}
	log.Info("signing session checkpoints", "key_id", k.ID)
	return k, nil
}

func buildRedactor(rules []config.RedactionRule, sensitiveFuncs []string) *redact.Redactor {
	var extra []redact.Rule
	for _, r := range rules {
		rule, err := redact.NewRule(r.Name, r.Pattern)
		if err == nil { // Validate already compiled every pattern
			extra = append(extra, rule)
		}
	}
	funcs := append(append([]string(nil), redact.DefaultSensitiveFunctions...), sensitiveFuncs...)
	return redact.New(redact.Options{ExtraSQL: extra, ExtraShell: extra, SensitiveFunctions: funcs})
}

func policyFor(cfg *config.Config) func(string) recorder.Policy {
	return func(account string) recorder.Policy {
		p := cfg.RecordingPolicyFor(account)
		return recorder.Policy{FailClosed: p.FailsClosed(), Strict: p.Strict()}
	}
}

// kickUpload asks for an upload soon; it never blocks the session.
func (g *Gateway) kickUpload() {
	select {
	case g.kick <- struct{}{}:
	default: // one is already pending
	}
}

// uploadOnSessionEnd uploads a finished session without waiting for the
// next cycle, so it is searchable within seconds; kicks are coalesced and
// spaced by at least a second so short-lived connections cannot turn the
// uploader into a per-session request loop.
func (g *Gateway) uploadOnSessionEnd() {
	defer g.wg.Done()
	const minSpacing = time.Second
	var last time.Time
	for {
		select {
		case <-g.stopKick:
			return
		case <-g.kick:
		}
		if wait := minSpacing - time.Since(last); wait > 0 {
			select {
			case <-g.stopKick:
				return
			case <-time.After(wait):
			}
		}
		ctx, cancel := context.WithTimeout(context.Background(), g.cfg.Upload.Timeout.D())
		if err := g.uploader.Flush(ctx); err != nil {
			g.log.Debug("upload after session end failed; the regular cycle retries", "error", err)
		}
		cancel()
		last = time.Now()
	}
}
