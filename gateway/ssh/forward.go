package ssh

import (
	"errors"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	gossh "golang.org/x/crypto/ssh"

	"github.com/pamtrail/pamtrail/gateway/recorder"
)

// serveForward relays a direct-tcpip channel (ssh -L, ssh -W) through the
// target, which makes the TCP connection, and records the forward with the
// bytes it carried when it closes. The account must allow port forwarding.
func (s *session) serveForward(nc gossh.NewChannel) {
	var req directTCPIP
	if err := gossh.Unmarshal(nc.ExtraData(), &req); err != nil {
		_ = nc.Reject(gossh.ConnectionFailed, "pamtrail: malformed direct-tcpip request")
		return
	}
	target := net.JoinHostPort(req.Host, strconv.Itoa(int(req.Port)))
	opened := time.Now()
	up, upReqs, err := s.up.conn.OpenChannel("direct-tcpip", nc.ExtraData())
	if err != nil {
		s.log.Info("port forward failed at the target", "target", target, "error", err)
		var oce *gossh.OpenChannelError
		if errors.As(err, &oce) {
			_ = nc.Reject(oce.Reason, oce.Message)
		} else {
			_ = nc.Reject(gossh.ConnectionFailed, "pamtrail: "+err.Error())
		}
		return
	}
	client, clientReqs, err := nc.Accept()
	if err != nil {
		up.Close()
		go gossh.DiscardRequests(upReqs)
		return
	}
	s.log.Info("port forward opened", "target", target)
	// A direct-tcpip channel carries no requests; answer any with failure.
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); gossh.DiscardRequests(clientReqs) }()
	go func() { defer wg.Done(); gossh.DiscardRequests(upReqs) }()

	var moved atomic.Int64 // both directions: what the forward carried
	relay := func(dst, src gossh.Channel, sessionTotal *atomic.Int64) {
		var n atomic.Int64
		s.copyData(dst, src, nil, &n)
		sessionTotal.Add(n.Load())
		moved.Add(n.Load())
		_ = dst.CloseWrite()
	}
	var copies sync.WaitGroup
	copies.Add(2)
	go func() { defer copies.Done(); relay(up, client, &s.bytesIn) }()
	go func() { defer copies.Done(); relay(client, up, &s.bytesOut) }()
	copies.Wait()
	client.Close()
	up.Close()
	wg.Wait()
	s.record(s.rec.Forward(recorder.Forward{Time: opened, Target: target, Bytes: moved.Load()}))
}
