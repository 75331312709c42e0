//go:build !linux

package postgres

import "net"

// Elsewhere than Linux every session uses the goroutine relay.

type eventLoops struct{ count int }

func (*eventLoops) close() {}

type loopRelay struct{}

func (s *session) startLoopRelay(_, _ *frameScanner, _, _ chan pumpResult) (*loopRelay, bool) {
	return nil, false
}

func (*loopRelay) stop() (net.Conn, []byte, error) { return nil, nil, nil }
