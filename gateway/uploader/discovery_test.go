// Copyright The pamtrail Authors
// SPDX-License-Identifier: Apache-2.0

package uploader

import (
	"net"
	"strconv"
	"testing"
	"time"

	"golang.org/x/net/dns/dnsmessage"

	"github.com/pamtrail/pamtrail/gateway/internal/testenv"
)

// serveDNS answers A queries for name with addrs on a UDP port of its own,
// like a Kubernetes headless Service's DNS record; every other query gets
// an empty answer.
func serveDNS(t *testing.T, name string, addrs []net.IP) string {
	t.Helper()
	conn, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	go func() {
		buf := make([]byte, 512)
		for {
			n, from, err := conn.ReadFrom(buf)
			if err != nil {
				return
			}
			var p dnsmessage.Parser
			header, err := p.Start(buf[:n])
			if err != nil {
				continue
			}
			q, err := p.Question()
			if err != nil {
				continue
			}
			b := dnsmessage.NewBuilder(nil, dnsmessage.Header{ID: header.ID, Response: true, Authoritative: true})
			_ = b.StartQuestions()
			_ = b.Question(q)
			_ = b.StartAnswers()
			if q.Type == dnsmessage.TypeA && q.Name.String() == name+"." {
				for _, ip := range addrs {
					var a [4]byte
					copy(a[:], ip.To4())
					_ = b.AResource(dnsmessage.ResourceHeader{Name: q.Name, Class: dnsmessage.ClassINET, TTL: 1}, dnsmessage.AResource{A: a})
				}
			}
			msg, err := b.Finish()
			if err == nil {
				_, _ = conn.WriteTo(msg, from)
			}
		}
	}()
	return conn.LocalAddr().String()
}

// TestEndpointNameSpreadsOverEveryCollector: with endpoint
// dns://<server>/collectors.test:<port>, a name that resolves to three
// collectors, every collector receives uploads.
func TestEndpointNameSpreadsOverEveryCollector(t *testing.T) {
	first := startOTLPServer(t, "127.0.0.1:0", nil)
	_, port, _ := net.SplitHostPort(first.addr)
	servers := []*otlpServer{first,
		startOTLPServer(t, net.JoinHostPort("127.0.0.2", port), nil),
		startOTLPServer(t, net.JoinHostPort("127.0.0.3", port), nil)}
	dns := serveDNS(t, "collectors.test", []net.IP{net.ParseIP("127.0.0.1"), net.ParseIP("127.0.0.2"), net.ParseIP("127.0.0.3")})

	sp := openSpool(t, t.TempDir(), testenv.Keyring(t, 1))
	cfg := fastConfig("dns://" + dns + "/collectors.test:" + port)
	cfg.Interval = time.Hour // only Flush uploads
	u := newUploader(t, sp, cfg)
	for i := range 30 {
		appendRecords(t, sp, "s"+strconv.Itoa(i), 0, 1)
		if err := u.Flush(t.Context()); err != nil {
			t.Fatalf("upload %d: %v", i, err)
		}
	}
	for i, s := range servers {
		if s.requestCount() == 0 {
			t.Errorf("collector %d (%s) got no request: uploads are not spread", i, s.addr)
		}
	}
}

func TestValidateEndpoint(t *testing.T) {
	tests := []struct {
		endpoint string
		ok       bool
	}{
		{"127.0.0.1:4317", true},
		{"collector.example:4317", true},
		{"dns:///collectors.pamtrail.svc:4317", true},
		{"dns://10.0.0.10:53/collectors.pamtrail.svc:4317", true},
		{"collector.example", false},
		{"dns:collectors:4317", false},
		{"dns:///collectors", false},
		{"http://collector:4317", false},
	}
	for _, tt := range tests {
		if err := ValidateEndpoint(tt.endpoint); (err == nil) != tt.ok {
			t.Errorf("ValidateEndpoint(%q) = %v, want ok=%v", tt.endpoint, err, tt.ok)
		}
	}
}
