package engine

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync/atomic"
	"time"

	"github.com/pamtrail/pamtrail/gateway/config"
	"github.com/pamtrail/pamtrail/gateway/control"
	"github.com/pamtrail/pamtrail/gateway/recorder"
)

// DialFunc connects to an upstream server.
type DialFunc func(ctx context.Context, network, address string) (net.Conn, error)

// Deps are what every engine is built from. Each engine's Options embeds
// them and adds only its protocol's own settings, so the gateway builds
// every engine from the same values (server.EngineFactory); each Engine
// embeds them resolved (ResolveDeps).
type Deps struct {
	// Config is the gateway's config, defaulted and validated
	// (config.Parse). Required. Engines take their listener's settings
	// from it; users, accounts and grants come from Control, which
	// reloads them.
	Config *config.Config
	// Recorder records the sessions. Required.
	Recorder recorder.Recorder
	// Logger receives the engine's logs; nil discards them.
	Logger *slog.Logger
	// Control holds the reloadable users, accounts, grants, policies and
	// locks; nil builds one from Config.
	Control *control.Control
	// Dial connects to upstream servers; nil dials with a net.Dialer that
	// keeps connections alive, so a server that vanished is noticed.
	Dial DialFunc
}

// ResolveDeps checks d for the engine named protocol and returns it
// complete: Logger named after the engine (see Logger), Control built from
// Config when nil, Dial set. listens reports whether the config has the
// protocol's listener section, which the engine needs to run at all.
func ResolveDeps(d Deps, protocol string, listens func(*config.Config) bool) (Deps, error) {
	switch {
	case d.Config == nil:
		return Deps{}, errors.New(protocol + ": Options.Config is required")
	case !listens(d.Config):
		return Deps{}, fmt.Errorf("%s: config has no %s listener section", protocol, protocol)
	case d.Recorder == nil:
		return Deps{}, errors.New(protocol + ": Options.Recorder is required")
	}
	d.Logger = Logger(d.Logger, protocol)
	if d.Control == nil {
		ctl, err := control.New(d.Config, d.Logger)
		if err != nil {
			return Deps{}, err
		}
		d.Control = ctl
	}
	if d.Dial == nil {
		dialer := &net.Dialer{KeepAlive: 30 * time.Second}
		d.Dial = dialer.DialContext
	}
	return d, nil
}

// UpstreamTLS holds the TLS settings of each account's upstream connection
// for one protocol, kept current across config reloads.
type UpstreamTLS struct {
	byAccount atomic.Pointer[map[string]*tls.Config]
}

// WatchUpstreamTLS loads protocol's per-account upstream TLS settings from
// d.Config and replaces them whenever d.Control reloads: a reload may add
// accounts or change their TLS settings. onReload, if set, runs with each
// replacement, for what the engine derives from the accounts.
func WatchUpstreamTLS(d Deps, protocol string, onReload func()) (*UpstreamTLS, error) {
	m, err := d.Config.UpstreamTLSByAccount(protocol)
	if err != nil {
		return nil, err
	}
	u := &UpstreamTLS{}
	u.byAccount.Store(&m)
	d.Control.OnReload(func(next *config.Config) (func(), error) {
		m, err := next.UpstreamTLSByAccount(protocol)
		if err != nil {
			return nil, err
		}
		return func() {
			u.byAccount.Store(&m)
			if onReload != nil {
				onReload()
			}
		}, nil
	})
	return u, nil
}

// For is the TLS config of account's upstream connection; nil without TLS.
func (u *UpstreamTLS) For(account string) *tls.Config {
	return (*u.byAccount.Load())[account]
}
