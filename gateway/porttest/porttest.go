// Package porttest hands tests loopback TCP ports to give the servers they
// start (gateways, collectors, containers' published ports).
package porttest

import (
	"math/rand/v2"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
)

// Ports come from below the kernel's ephemeral range. A port the kernel
// hands out for 127.0.0.1:0 is one it also picks as the local port of
// outgoing connections (to Elasticsearch, PostgreSQL, the collector), so
// between Free's check and the server's bind any of them could take it: a
// gateway then failed to start with "address already in use".
const (
	firstTestPort = 10000
	// ephemeralFallback is Linux's default first ephemeral port, used when
	// the kernel's range cannot be read.
	ephemeralFallback = 32768
)

// nextPort walks the test port range from a random start, so that test
// processes running at the same time seldom try the same ports.
var nextPort atomic.Uint32

func init() { nextPort.Store(rand.Uint32()) }

// Free returns a TCP port on 127.0.0.1 that was free a moment ago and that
// no outgoing connection can take meanwhile.
func Free(t testing.TB) int {
	t.Helper()
	first, end := firstTestPort, firstEphemeralPort()
	if end-first < 1000 { // an unusual ephemeral range: let the kernel choose
		return kernelPort(t)
	}
	for range end - first {
		port := first + int(nextPort.Add(1)%uint32(end-first))
		if ln, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port))); err == nil {
			ln.Close()
			return port
		}
	}
	t.Fatalf("porttest: no free port in %d-%d", first, end-1)
	return 0
}

// Addr is Free's port as a 127.0.0.1 address.
func Addr(t testing.TB) string {
	t.Helper()
	return net.JoinHostPort("127.0.0.1", strconv.Itoa(Free(t)))
}

func kernelPort(t testing.TB) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("porttest: no free port: %v", err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// firstEphemeralPort is the low end of net.ipv4.ip_local_port_range, read
// once per test process.
var firstEphemeralPort = sync.OnceValue(readFirstEphemeralPort)

func readFirstEphemeralPort() int {
	raw, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range")
	if err != nil {
		return ephemeralFallback
	}
	fields := strings.Fields(string(raw))
	if len(fields) != 2 {
		return ephemeralFallback
	}
	low, err := strconv.Atoi(fields[0])
	if err != nil {
		return ephemeralFallback
	}
	return low
}
