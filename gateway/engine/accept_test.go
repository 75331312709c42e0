package engine

import (
	"errors"
	"log/slog"
	"net"
	"syscall"
	"testing"
)

// scriptedListener returns its errors in order, then a connection.
type scriptedListener struct {
	net.Listener
	errs []error
	conn net.Conn
}

func (l *scriptedListener) Accept() (net.Conn, error) {
	if len(l.errs) > 0 {
		err := l.errs[0]
		l.errs = l.errs[1:]
		return nil, err
	}
	return l.conn, nil
}

func TestAccept(t *testing.T) {
	c1, c2 := net.Pipe()
	defer c1.Close()
	defer c2.Close()
	permanent := errors.New("listener broken")
	tests := []struct {
		name     string
		errs     []error
		stopped  bool
		wantConn bool
		wantErr  error
	}{
		{"connection", nil, false, true, nil},
		{"out of descriptors is retried", []error{syscall.EMFILE, syscall.ENFILE}, false, true, nil},
		{"permanent error is returned", []error{permanent}, false, false, permanent},
		{"stopped engine reports closed", []error{permanent}, true, false, net.ErrClosed},
	}
	log := slog.New(slog.DiscardHandler)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ln := &scriptedListener{errs: tt.errs, conn: c1}
			got, err := Accept(ln, func() bool { return tt.stopped }, log)
			if !errors.Is(err, tt.wantErr) || (got != nil) != tt.wantConn {
				t.Fatalf("Accept = %v, %v; want conn %v, err %v", got, err, tt.wantConn, tt.wantErr)
			}
		})
	}
}
