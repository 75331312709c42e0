// Package engine is the small interface every protocol engine implements, so
// the gateway process can run PostgreSQL and SSH side by side the same way.
package engine

import (
	"context"
	"net"
)

// Engine serves one protocol on a listener.
type Engine interface {
	// Protocol names the engine ("postgres", "ssh") for logs and metrics.
	Protocol() string
	// Serve accepts connections until ln is closed or Shutdown is called.
	// It returns nil after Shutdown.
	Serve(ln net.Listener) error
	// Shutdown stops accepting, ends live sessions (recording their end with
	// reason gateway_shutdown) and waits for them until ctx is done. It is
	// safe to call before Serve and more than once.
	Shutdown(ctx context.Context) error
}
