package engine

import (
	"errors"
	"log/slog"
	"net"
	"syscall"
	"time"
)

// Accept waits for the next connection on ln. A temporary failure (out of
// file descriptors and the like) is retried after a capped backoff, as
// net/http does, rather than spinning or giving up on the listener. Once
// stopped reports true, a failed Accept returns net.ErrClosed.
func Accept(ln net.Listener, stopped func() bool, log *slog.Logger) (net.Conn, error) {
	var backoff time.Duration
	for {
		c, err := ln.Accept()
		if err == nil {
			return c, nil
		}
		if stopped() {
			return nil, net.ErrClosed
		}
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() || errors.Is(err, syscall.EMFILE) || errors.Is(err, syscall.ENFILE) {
			backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
			log.Warn("accept failed; retrying", "error", err, "delay", backoff)
			time.Sleep(backoff)
			continue
		}
		return nil, err
	}
}
