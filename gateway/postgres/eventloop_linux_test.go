//go:build linux

package postgres

import "testing"

// Loops closed before any session needed one (a shutdown racing a login)
// refuse new sessions with an error instead of failing.
func TestEventLoopsClosedBeforeFirstUse(t *testing.T) {
	ls := &eventLoops{count: 1}
	ls.close()
	if l, err := ls.pick(); err == nil || l != nil {
		t.Fatalf("pick after close = %v, %v; want an error", l, err)
	}
}
