// Package live describes the live sessions engines register, as live
// control (gateway/control) sees them. It stands apart from gateway/engine
// because engines are built with a *control.Control (engine.Deps) while
// control ends sessions through the engines' registries: the types both
// need live here, below both.
package live

import "time"

// SessionInfo is what an engine's registry knows of a live session, for
// live control and for logs.
type SessionInfo struct {
	ID         string
	Protocol   string // set by the engine's lifecycle
	User       string // gateway identity
	Account    string
	ClientAddr string
	Start      time.Time
}

// Registry is an engine's register of its live sessions, as live control
// uses it. Every engine.Engine is one.
type Registry interface {
	// Sessions lists the live sessions.
	Sessions() []SessionInfo
	// EndSession ends one live session by id, recording reason and message.
	EndSession(id, reason, message string) bool
	// EndSessions ends every live session match accepts and says how many.
	EndSessions(match func(SessionInfo) bool, reason, message string) int
}
