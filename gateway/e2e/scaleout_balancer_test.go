package e2e

import (
	"io"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// tcpBalancer is a plain round-robin TCP balancer, as an L4 load balancer
// or a Kubernetes Service is: each new connection goes to the next backend,
// with no health checks and no knowledge of what flows through it. It also
// cuts every connection every cutEvery, so a gateway's uploads keep moving
// between collectors.
type tcpBalancer struct {
	t         *testing.T
	listeners []net.Listener
	stop      chan struct{}
	wg        sync.WaitGroup
	cuts      atomic.Int64
	accepted  atomic.Int64

	mu       sync.Mutex
	backends []string
	next     int
	conns    map[net.Conn]bool
}

func startBalancer(t *testing.T, addrs, backends []string, cutEvery time.Duration) *tcpBalancer {
	t.Helper()
	b := &tcpBalancer{t: t, stop: make(chan struct{}), backends: backends, conns: map[net.Conn]bool{}}
	for _, addr := range addrs {
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			t.Fatalf("balancer listening on %s: %v", addr, err)
		}
		b.listeners = append(b.listeners, ln)
		b.wg.Add(1)
		go b.serve(ln)
	}
	b.wg.Add(1)
	go b.cutLoop(cutEvery)
	t.Cleanup(b.close)
	return b
}

func (b *tcpBalancer) setBackends(backends []string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.backends = backends
}

func (b *tcpBalancer) pick() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	addr := b.backends[b.next%len(b.backends)]
	b.next++
	return addr
}

func (b *tcpBalancer) track(c net.Conn, on bool) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	select {
	case <-b.stop:
		return false
	default:
	}
	if on {
		b.conns[c] = true
	} else {
		delete(b.conns, c)
	}
	return true
}

func (b *tcpBalancer) serve(ln net.Listener) {
	defer b.wg.Done()
	for {
		client, err := ln.Accept()
		if err != nil {
			return
		}
		b.accepted.Add(1)
		b.wg.Add(1)
		go b.forward(client)
	}
}

func (b *tcpBalancer) forward(client net.Conn) {
	defer b.wg.Done()
	server, err := net.DialTimeout("tcp", b.pick(), 2*time.Second)
	if err != nil { // a dead backend: the client sees a closed connection and retries
		client.Close()
		return
	}
	if !b.track(client, true) || !b.track(server, true) {
		client.Close()
		server.Close()
		return
	}
	var once sync.Once
	closeBoth := func() {
		once.Do(func() {
			client.Close()
			server.Close()
			b.track(client, false)
			b.track(server, false)
		})
	}
	var pipes sync.WaitGroup
	pipes.Add(2)
	go func() { defer pipes.Done(); _, _ = io.Copy(server, client); closeBoth() }()
	go func() { defer pipes.Done(); _, _ = io.Copy(client, server); closeBoth() }()
	pipes.Wait()
}

// cutLoop closes every open connection every period.
func (b *tcpBalancer) cutLoop(period time.Duration) {
	defer b.wg.Done()
	ticker := time.NewTicker(period)
	defer ticker.Stop()
	for {
		select {
		case <-b.stop:
			return
		case <-ticker.C:
		}
		b.mu.Lock()
		for c := range b.conns {
			c.Close()
		}
		b.mu.Unlock()
		b.cuts.Add(1)
	}
}

func (b *tcpBalancer) close() {
	b.mu.Lock()
	select {
	case <-b.stop:
		b.mu.Unlock()
		return
	default:
	}
	close(b.stop)
	for c := range b.conns {
		c.Close()
	}
	b.mu.Unlock()
	for _, ln := range b.listeners {
		ln.Close()
	}
	b.wg.Wait()
}
