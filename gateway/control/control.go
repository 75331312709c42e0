// Package control is the gateway's live control: the running config, which
// a reload swaps without dropping sessions; the policies compiled from it;
// the locks; and, through the engines' session registries (live.Registry),
// ending one session (terminate), every session of a user or an account
// (lock), or those whose grant a reload removed. Engines consult it at
// login; the admin API (admin.go) drives it.
package control

import (
	"errors"
	"fmt"
	"log/slog"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pamtrail/pamtrail/gateway/config"
	"github.com/pamtrail/pamtrail/gateway/engine/live"
	"github.com/pamtrail/pamtrail/gateway/policy"
	"github.com/pamtrail/pamtrail/gateway/schema"
)

// ErrLocked is returned by Authorize while a lock holds.
var ErrLocked = errors.New("locked")

// LockedError says which lock refused a login.
type LockedError struct{ Lock Lock }

func (e *LockedError) Error() string {
	msg := fmt.Sprintf("%s %q is locked", e.Lock.Kind, e.Lock.Name)
	if e.Lock.Reason != "" {
		msg += ": " + e.Lock.Reason
	}
	if !e.Lock.Expires.IsZero() {
		msg += " (until " + e.Lock.Expires.UTC().Format(time.RFC3339) + ")"
	}
	return msg
}

func (e *LockedError) Unwrap() error { return ErrLocked }

// snapshot is one version of the reloadable config, with its policies.
type snapshot struct {
	cfg      *config.Config
	policies map[string]*policy.Set // by account
}

// Preparer lets an engine check a new config and build what it derives from
// it (an SSH key index, TLS settings) before a reload commits. It returns
// the function that installs the result; an error rejects the reload.
type Preparer func(cfg *config.Config) (commit func(), err error)

// Control is shared by the engines and the admin API of one gateway.
type Control struct {
	log   *slog.Logger
	cur   atomic.Pointer[snapshot]
	locks *locks
	now   func() time.Time

	mu        sync.Mutex
	engines   []live.Registry
	preparers []Preparer
	reloadMu  sync.Mutex
}

// New builds the control for a validated config and loads its locks.
func New(cfg *config.Config, log *slog.Logger) (*Control, error) {
	if log == nil {
		log = slog.Default()
	}
	snap, err := compile(cfg)
	if err != nil {
		return nil, err
	}
	path := ""
	if cfg.Admin != nil {
		path = cfg.Admin.LocksFile
	}
	l, err := loadLocks(path)
	if err != nil {
		return nil, err
	}
	c := &Control{log: log, locks: l, now: time.Now}
	c.cur.Store(snap)
	return c, nil
}

func compile(cfg *config.Config) (*snapshot, error) {
	s := &snapshot{cfg: cfg, policies: map[string]*policy.Set{}}
	for _, a := range cfg.Accounts {
		set, err := policy.Compile(cfg.PolicyFor(a.Name))
		if err != nil {
			return nil, err
		}
		if set != nil {
			s.policies[a.Name] = set
		}
	}
	return s, nil
}

// Config is the running config; a reload replaces it, so callers take it
// once per decision rather than keeping it.
func (c *Control) Config() *config.Config { return c.cur.Load().cfg }

// Policy returns the compiled policy of an account; nil allows everything.
func (c *Control) Policy(account string) *policy.Set { return c.cur.Load().policies[account] }

// Authorize checks the grant (config.Authorize) and then the locks.
func (c *Control) Authorize(user, account, accountType string) (*config.Account, error) {
	acct, err := c.Config().Authorize(user, account, accountType)
	if err != nil {
		return nil, err
	}
	if k, ok := c.locks.find(user, account, c.now()); ok {
		return nil, &LockedError{Lock: k}
	}
	return acct, nil
}

// OnReload adds a Preparer that every later reload runs before committing.
func (c *Control) OnReload(p Preparer) {
	c.mu.Lock()
	c.preparers = append(c.preparers, p)
	c.mu.Unlock()
}

// AddEngine lets the control end the sessions of an engine.
func (c *Control) AddEngine(e live.Registry) {
	c.mu.Lock()
	c.engines = append(c.engines, e)
	c.mu.Unlock()
}

func (c *Control) engineList() []live.Registry {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]live.Registry(nil), c.engines...)
}

// Sessions lists the live sessions of every engine.
func (c *Control) Sessions() []live.SessionInfo {
	var out []live.SessionInfo
	for _, e := range c.engineList() {
		out = append(out, e.Sessions()...)
	}
	return out
}

// Terminate ends one live session with reason terminated, telling who and
// why; false when this gateway does not hold it.
func (c *Control) Terminate(id, actor, why string) bool {
	msg := "terminated by " + actor
	if why != "" {
		msg += ": " + why
	}
	for _, e := range c.engineList() {
		if e.EndSession(id, schema.EndTerminated, msg) {
			return true
		}
	}
	return false
}

// endWhere ends every live session for which match holds.
func (c *Control) endWhere(match func(live.SessionInfo) bool, reason, message string) int {
	n := 0
	for _, e := range c.engineList() {
		n += e.EndSessions(match, reason, message)
	}
	return n
}

// EndLocked ends the live sessions a lock covers.
func (c *Control) endLocked(k Lock) int {
	msg := (&LockedError{Lock: k}).Error() + " (by " + k.By + ")"
	return c.endWhere(func(s live.SessionInfo) bool {
		return k.Kind == LockUser && s.User == k.Name || k.Kind == LockAccount && s.Account == k.Name
	}, schema.EndLocked, msg)
}

// Lock stores a lock and ends the live sessions it covers.
func (c *Control) Lock(k Lock) (ended int, err error) {
	if k.Kind != LockUser && k.Kind != LockAccount {
		return 0, fmt.Errorf("lock kind must be %s or %s, not %q", LockUser, LockAccount, k.Kind)
	}
	if strings.TrimSpace(k.Name) == "" {
		return 0, errors.New("lock needs a name")
	}
	if k.Created.IsZero() {
		k.Created = c.now()
	}
	if err := c.locks.add(k, c.now()); err != nil {
		return 0, err
	}
	return c.endLocked(k), nil
}

// Unlock lifts a lock; false when there was none.
func (c *Control) Unlock(kind, name string) (bool, error) { return c.locks.remove(kind, name, c.now()) }

// Locks lists the locks in force.
func (c *Control) Locks() []Lock { return c.locks.active(c.now()) }

// Reload swaps in a new, already validated config: users, accounts, grants,
// policies and admin identities take effect for new logins, the locks file
// is read again, and live sessions whose grant is gone are ended. Sections
// that need a restart (listeners, spool, upload, recording, redaction,
// metrics, the admin listener) keep their running values; their names are
// returned as warnings. If any engine rejects the config nothing changes.
func (c *Control) Reload(next *config.Config, actor string) (ended int, warnings []string, err error) {
	c.reloadMu.Lock()
	defer c.reloadMu.Unlock()
	old := c.Config()
	merged, warnings := keepRestartOnly(old, next)
	snap, err := compile(merged)
	if err != nil {
		return 0, nil, err
	}
	c.mu.Lock()
	preparers := append([]Preparer(nil), c.preparers...)
	c.mu.Unlock()
	var commits []func()
	for _, p := range preparers {
		commit, err := p(merged)
		if err != nil {
			return 0, nil, err
		}
		commits = append(commits, commit)
	}
	if _, err := readLocks(c.locks.path); err != nil {
		return 0, nil, err
	}
	for _, commit := range commits {
		commit()
	}
	c.cur.Store(snap)
	if err := c.locks.reload(); err != nil { // checked above; a race with an edit is only logged
		c.log.Warn("reload: locks file", "error", err)
	}
	ended = c.endWhere(func(s live.SessionInfo) bool {
		_, err := merged.Authorize(s.User, s.Account, s.Protocol)
		return err != nil
	}, schema.EndGrantRevoked, "the grant this session used was removed by a reload (by "+actor+")")
	for _, k := range c.locks.active(c.now()) {
		ended += c.endLocked(k)
	}
	return ended, warnings, nil
}

// keepRestartOnly returns next with the sections a reload cannot change
// taken from old, and the names of those that differ.
func keepRestartOnly(old, next *config.Config) (*config.Config, []string) {
	merged := *next
	var warnings []string
	keep := func(name string, dst, src any) {
		d, s := reflect.ValueOf(dst).Elem(), reflect.ValueOf(src).Elem()
		if !reflect.DeepEqual(d.Interface(), s.Interface()) {
			warnings = append(warnings, name+" changed; it takes effect at the next restart")
		}
		d.Set(s)
	}
	keep("gateway", &merged.Gateway, &old.Gateway)
	keep("postgres", &merged.Postgres, &old.Postgres)
	keep("ssh", &merged.SSH, &old.SSH)
	keep("spool", &merged.Spool, &old.Spool)
	keep("upload", &merged.Upload, &old.Upload)
	keep("recording", &merged.Recording, &old.Recording)
	keep("redaction", &merged.Redaction, &old.Redaction)
	keep("metrics", &merged.Metrics, &old.Metrics)
	if old.Admin != nil && next.Admin != nil {
		admin := *next.Admin
		if admin.Address != old.Admin.Address || !reflect.DeepEqual(admin.TLS, old.Admin.TLS) || admin.LocksFile != old.Admin.LocksFile {
			warnings = append(warnings, "admin.address, admin.tls and admin.locks_file take effect at the next restart")
		}
		admin.Address, admin.TLS, admin.LocksFile = old.Admin.Address, old.Admin.TLS, old.Admin.LocksFile
		merged.Admin = &admin
	} else if (old.Admin == nil) != (next.Admin == nil) {
		warnings = append(warnings, "admin changed; it takes effect at the next restart")
		merged.Admin = old.Admin
	}
	return &merged, warnings
}
