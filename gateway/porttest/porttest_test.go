package porttest

import (
	"net"
	"strconv"
	"testing"
)

// TestFreeBelowEphemeralRange: ports are outside the range the kernel
// picks local ports of outgoing connections from, distinct, and bindable.
func TestFreeBelowEphemeralRange(t *testing.T) {
	ephemeral := firstEphemeralPort()
	seen := map[int]bool{}
	for range 200 {
		port := Free(t)
		if port < firstTestPort || port >= ephemeral {
			t.Fatalf("port %d is outside %d-%d", port, firstTestPort, ephemeral-1)
		}
		if seen[port] {
			t.Fatalf("port %d handed out twice", port)
		}
		seen[port] = true
	}
	for port := range seen {
		ln, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
		if err != nil {
			t.Fatalf("port %d: %v", port, err)
		}
		ln.Close()
	}
}
