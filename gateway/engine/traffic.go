package engine

import "sync/atomic"

// Traffic counts a session's bytes in each direction: In from the client
// to the server, Out back. It is made before the recording starts so that
// the recorder's heartbeats can read it from the session's first moment,
// before the engine's session value exists.
type Traffic struct {
	In, Out atomic.Int64
}

// Load returns both counts; it is a recorder.SessionInfo.Traffic.
func (t *Traffic) Load() (in, out int64) { return t.In.Load(), t.Out.Load() }
