// Package recordertest provides an in-memory Recorder for engine unit tests.
// Integration tests use the real OTel recorder and spool instead.
package recordertest

import (
	"context"
	"sync"
	"time"

	"github.com/pamtrail/pamtrail/gateway/recorder"
)

// Event is one recorded call, in order.
type Event struct {
	Kind    string // start, query, command, output, file, forward, end, auth_failure
	Session string
	Info    recorder.SessionInfo
	Query   recorder.Query
	Command recorder.Command
	Output  recorder.Output
	File    recorder.FileOp
	Forward recorder.Forward
	End     recorder.End
	Failure recorder.AuthFailure
}

// Memory records everything in memory. FailWith, when set, makes every
// session method return that error, to exercise fail-closed handling; set
// it with SetFailWith once sessions run, since the sessions read it
// concurrently.
type Memory struct {
	mu       sync.Mutex
	events   []Event
	changed  chan struct{}
	FailWith error
}

// SetFailWith makes every later session method return err (nil: succeed).
func (m *Memory) SetFailWith(err error) {
	m.mu.Lock()
	m.FailWith = err
	m.mu.Unlock()
}

// New returns an empty Memory recorder.
func New() *Memory { return &Memory{changed: make(chan struct{})} }

func (m *Memory) add(e Event) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.events = append(m.events, e)
	close(m.changed)
	m.changed = make(chan struct{})
	if e.Kind != "start" && e.Kind != "auth_failure" {
		return m.FailWith
	}
	return nil
}

// Events returns a copy of everything recorded so far.
func (m *Memory) Events() []Event {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]Event(nil), m.events...)
}

// WaitFor polls until cond holds for the recorded events or the timeout
// passes; it returns the events seen last and whether cond held.
func (m *Memory) WaitFor(timeout time.Duration, cond func([]Event) bool) ([]Event, bool) {
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for {
		m.mu.Lock()
		evs := append([]Event(nil), m.events...)
		ch := m.changed
		m.mu.Unlock()
		if cond(evs) {
			return evs, true
		}
		select {
		case <-ch:
		case <-deadline.C:
			return evs, false
		}
	}
}

func (m *Memory) SessionStart(_ context.Context, info recorder.SessionInfo) (recorder.Session, error) {
	if err := m.add(Event{Kind: "start", Session: info.ID, Info: info}); err != nil {
		return nil, err
	}
	return &session{m: m, id: info.ID}, nil
}

func (m *Memory) AuthFailure(_ context.Context, f recorder.AuthFailure) error {
	return m.add(Event{Kind: "auth_failure", Failure: f})
}

type session struct {
	m  *Memory
	id string
}

func (s *session) ID() string { return s.id }

// MayBlock is false: memory never waits.
func (s *session) MayBlock() bool { return false }
func (s *session) Query(q recorder.Query) error {
	return s.m.add(Event{Kind: "query", Session: s.id, Query: q})
}
func (s *session) Command(c recorder.Command) error {
	return s.m.add(Event{Kind: "command", Session: s.id, Command: c})
}
func (s *session) Output(o recorder.Output) error {
	return s.m.add(Event{Kind: "output", Session: s.id, Output: o})
}
func (s *session) File(f recorder.FileOp) error {
	return s.m.add(Event{Kind: "file", Session: s.id, File: f})
}
func (s *session) Forward(f recorder.Forward) error {
	return s.m.add(Event{Kind: "forward", Session: s.id, Forward: f})
}
func (s *session) End(e recorder.End) error {
	if e.Time.IsZero() {
		e.Time = time.Now()
	}
	return s.m.add(Event{Kind: "end", Session: s.id, End: e})
}
