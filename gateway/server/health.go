package server

import (
	"fmt"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/pamtrail/pamtrail/gateway/config"
	"github.com/pamtrail/pamtrail/gateway/healthz"
)

// readiness checks, at request time, what the gateway needs to record
// sessions: a writable spool, its keys, accepting listeners and an upload
// that keeps up. Each check reads state the gateway already keeps, so a
// probe every few seconds costs nothing on the data path.
func (g *Gateway) readiness() healthz.Report {
	return healthz.NewReport(map[string]healthz.Check{
		"spool_writable": g.spoolWritable(),
		"keys_loaded":    g.keysLoaded(),
		"listeners":      g.listenersUp(),
		"upload_lag":     g.uploadLagWithinBound(),
	})
}

func (g *Gateway) spoolWritable() healthz.Check {
	dir := g.cfg.Spool.Dir
	// access(2) with W_OK also fails with EROFS on a read-only mount.
	if err := unix.Access(dir, unix.W_OK); err != nil {
		return healthz.Check{Detail: fmt.Sprintf("%s: %v", dir, err)}
	}
	st := g.spool.Stats()
	limit := int64(g.cfg.Spool.MaxBytes)
	if g.cfg.Spool.Overflow == "refuse" && limit > 0 && st.BytesOnDisk >= limit {
		return healthz.Check{Detail: fmt.Sprintf("%s is full (%d of %d bytes, overflow: refuse): new sessions are refused until the upload drains it", dir, st.BytesOnDisk, limit)}
	}
	return healthz.Check{OK: true, Detail: fmt.Sprintf("%s: %d bytes in %d segments", dir, st.BytesOnDisk, st.Segments)}
}

func (g *Gateway) keysLoaded() healthz.Check {
	if g.keyID == "" {
		return healthz.Check{Detail: "no spool key loaded"}
	}
	return healthz.Check{OK: true, Detail: "current key " + g.keyID}
}

func (g *Gateway) listenersUp() healthz.Check {
	var up, down []string
	for _, e := range g.engines {
		entry := e.Protocol() + " " + e.ln.Addr().String()
		if e.serving.Load() {
			up = append(up, entry)
		} else {
			down = append(down, entry)
		}
	}
	switch {
	case len(down) > 0:
		return healthz.Check{Detail: "stopped: " + strings.Join(down, ", ")}
	case len(up) == 0:
		return healthz.Check{Detail: "no listener started"}
	}
	return healthz.Check{OK: true, Detail: "accepting: " + strings.Join(up, ", ")}
}

func (g *Gateway) uploadLagWithinBound() healthz.Check {
	lag := g.spool.Stats().OldestUnackedAge().Truncate(time.Millisecond)
	bound := config.DefaultMaxUploadLag.D()
	if m := g.cfg.Metrics; m != nil && m.MaxUploadLag != nil {
		bound = m.MaxUploadLag.D()
	}
	us := g.uploader.Stats()
	detail := fmt.Sprintf("oldest unacknowledged record %s old, bound %s", lag, bound)
	if us.LastError != "" && us.ConsecutiveFailures > 0 {
		detail += fmt.Sprintf("; %d failed uploads in a row, last: %s", us.ConsecutiveFailures, us.LastError)
	}
	if bound > 0 && lag > bound {
		return healthz.Check{Detail: detail}
	}
	return healthz.Check{OK: true, Detail: detail}
}
