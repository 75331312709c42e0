package engine

import (
	"fmt"
	"sync/atomic"
	"time"

	"github.com/pamtrail/pamtrail/gateway/config"
	"github.com/pamtrail/pamtrail/gateway/schema"
)

// Activity is when a session last moved bytes either way; its idle
// timeout counts from there. It is safe for concurrent use, so each relay
// direction touches it as bytes pass.
type Activity struct{ unixNano atomic.Int64 }

// Touch records activity at now.
func (a *Activity) Touch(now time.Time) { a.unixNano.Store(now.UnixNano()) }

// Last is the time of the last Touch.
func (a *Activity) Last() time.Time { return time.Unix(0, a.unixNano.Load()) }

// Limits are what a live session is supervised against besides its relay:
// the account's idle_timeout and max_duration, and a request from outside
// (live control, shutdown) to end it.
type Limits struct {
	// Idle ends a session that moved no bytes for this long; 0 means no
	// limit. Activity must be set with it.
	Idle     time.Duration
	Activity *Activity
	// Busy, if set, reports a statement still waiting for its response: a
	// long query moves no bytes but is not idleness, so the idle timeout
	// starts over while Busy holds.
	Busy func() bool
	// MaxDuration ends a session this long after Start; 0 means no limit.
	MaxDuration time.Duration
	Start       time.Time
	// EndRequested, if set, is closed when the session is asked to end.
	EndRequested <-chan struct{}
}

// LimitEnd is the recorded end of a session a limit stopped (StopIdle or
// StopMaxDuration): its schema.End* reason and message, the same for
// every protocol.
func (l Limits) LimitEnd(r StopReason) (reason, message string) {
	if r == StopIdle {
		return schema.EndIdleTimeout, fmt.Sprintf("no activity for %s (idle_timeout)", l.Idle)
	}
	return schema.EndMaxDuration, fmt.Sprintf("session reached its maximum duration of %s (max_duration)", l.MaxDuration)
}

// StopReason is why Supervise returned.
type StopReason uint8

const (
	// StopClient: the client side's relay ended first (Stop.Result).
	StopClient StopReason = iota + 1
	// StopServer: the server side's relay ended first (Stop.Result).
	StopServer
	// StopIdle: no activity for Limits.Idle.
	StopIdle
	// StopMaxDuration: Limits.MaxDuration has passed since Limits.Start.
	StopMaxDuration
	// StopRequested: Limits.EndRequested was closed.
	StopRequested
)

// Stop is Supervise's answer: why the session must end and, when a relay
// side ended it, that side's result.
type Stop[R any] struct {
	Reason StopReason
	Result R
}

// Supervise waits for the first reason to end a live session: a result
// from the client or the server side of its relay (a nil channel is never
// ready), the idle timeout, the maximum duration or an end request. Every
// engine ends its sessions on the same limits this way; what it tells the
// client and records for each reason is its own.
func Supervise[R any](l Limits, client, server <-chan R) Stop[R] {
	var idleC, maxC <-chan time.Time
	var idleT *time.Timer
	if l.Idle > 0 {
		idleT = time.NewTimer(l.Idle)
		defer idleT.Stop()
		idleC = idleT.C
	}
	if l.MaxDuration > 0 {
		maxT := time.NewTimer(time.Until(l.Start.Add(l.MaxDuration)))
		defer maxT.Stop()
		maxC = maxT.C
	}
	for {
		select {
		case r := <-client:
			return Stop[R]{Reason: StopClient, Result: r}
		case r := <-server:
			return Stop[R]{Reason: StopServer, Result: r}
		case <-idleC:
			wait := l.Idle - time.Since(l.Activity.Last())
			if wait <= 0 && l.Busy != nil && l.Busy() {
				wait = l.Idle
			}
			if wait > 0 {
				idleT.Reset(wait)
				continue
			}
			return Stop[R]{Reason: StopIdle}
		case <-maxC:
			return Stop[R]{Reason: StopMaxDuration}
		case <-l.EndRequested:
			return Stop[R]{Reason: StopRequested}
		}
	}
}

// WatchLimits is Supervise for an engine whose relay reports its own end
// elsewhere: it returns StopIdle, StopMaxDuration or StopRequested.
func WatchLimits(l Limits) StopReason {
	return Supervise[struct{}](l, nil, nil).Reason
}

// End is how a session ended: the reason (schema.End*) and message it
// records, and Notice, what the engine tells the client where its protocol
// can (the zero N tells nothing).
type End[N any] struct {
	Reason  string
	Message string
	Notice  N
}

// Supervised is a live session as SuperviseSession ends it: R is its
// relay's result, N the notice its protocol gives a client.
type Supervised[R, N any] interface {
	// RelayEnded is the end when one side of the relay stopped first,
	// with r.
	RelayEnded(r R, fromClient bool) End[N]
	// LimitNotice tells the client that a limit (StopIdle or
	// StopMaxDuration) ended its session.
	LimitNotice(StopReason) N
	// Requested is the end asked for through Limits.EndRequested.
	Requested() End[N]
}

// SuperviseSession waits for the first reason to end s (Supervise) and
// returns its end and the reason, which says whether a relay side's result
// was taken (StopClient, StopServer).
func SuperviseSession[R, N any](s Supervised[R, N], l Limits, client, server <-chan R) (End[N], StopReason) {
	stop := Supervise(l, client, server)
	switch stop.Reason {
	case StopClient, StopServer:
		return s.RelayEnded(stop.Result, stop.Reason == StopClient), stop.Reason
	case StopIdle, StopMaxDuration:
		end := End[N]{Notice: s.LimitNotice(stop.Reason)}
		end.Reason, end.Message = l.LimitEnd(stop.Reason)
		return end, stop.Reason
	default:
		return s.Requested(), stop.Reason
	}
}

// AccountLimits are the idle_timeout and max_duration of acct for a
// session that started at start, its activity counted from then. The
// engine adds Busy and EndRequested.
func AccountLimits(acct *config.Account, start time.Time) Limits {
	l := Limits{Idle: acct.IdleTimeout.D(), Activity: new(Activity), MaxDuration: acct.MaxDuration.D(), Start: start}
	l.Activity.Touch(start)
	return l
}
