package ssh

import (
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/pamtrail/pamtrail/gateway/recorder"
)

// Output records for replay (asciicast v2) are coalesced: terminal output
// arrives in many small writes, and one record per write would multiply the
// records (and the spool writes) for no gain in replay fidelity.
const (
	replayFlushDelay = 50 * time.Millisecond
	replayMaxBytes   = 16 << 10
)

// outputRecorder records a pty's raw output, with timing, as Output records.
// It is safe for concurrent use.
type outputRecorder struct {
	s      *session
	opened time.Time // Elapsed is measured from the channel's start
	stream string

	mu      sync.Mutex
	buf     []byte
	first   time.Time // arrival of buf's first byte
	partial []byte    // an incomplete UTF-8 sequence held for the next write
	timer   *time.Timer
	armed   bool
	closed  bool
	timers  sync.WaitGroup // timer callbacks scheduled and not yet finished
}

func newOutputRecorder(s *session, opened time.Time, stream string) *outputRecorder {
	return &outputRecorder{s: s, opened: opened, stream: stream}
}

func (o *outputRecorder) write(p []byte) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.closed {
		return
	}
	if len(o.buf) == 0 {
		o.first = time.Now()
	}
	if len(o.partial) > 0 {
		p = append(o.partial, p...)
		o.partial = nil
	}
	// Records are text: hold back a multi-byte character cut by the read
	// so it is not turned into replacement characters.
	if cut := incompleteUTF8Tail(p); cut > 0 {
		o.partial = append([]byte(nil), p[len(p)-cut:]...)
		p = p[:len(p)-cut]
	}
	for len(p) > 0 {
		n := min(len(p), replayMaxBytes-len(o.buf))
		o.buf = append(o.buf, p[:n]...)
		p = p[n:]
		if len(o.buf) >= replayMaxBytes {
			o.flushLocked()
			o.first = time.Now()
		}
	}
	if len(o.buf) > 0 && !o.armed {
		o.armed = true
		o.timers.Add(1)
		o.timer = time.AfterFunc(replayFlushDelay, o.onTimer)
	}
}

func (o *outputRecorder) onTimer() {
	defer o.timers.Done()
	o.mu.Lock()
	defer o.mu.Unlock()
	o.armed = false
	if !o.closed {
		o.flushLocked()
	}
}

func (o *outputRecorder) flushLocked() {
	if len(o.buf) == 0 {
		return
	}
	data := strings.ToValidUTF8(string(o.buf), "\uFFFD")
	o.buf = o.buf[:0]
	o.s.record(o.s.rec.Output(recorder.Output{
		Time:    o.first,
		Elapsed: o.first.Sub(o.opened),
		Stream:  o.stream,
		Data:    data,
	}))
}

// streamResize is the Output stream of a terminal size change; its data is
// "COLSxROWS", as asciicast's "r" event. The first one is the size the pty
// was opened with.
const streamResize = "resize"

// resize records a terminal size change in order with the output.
func (o *outputRecorder) resize(cols, rows int) {
	if cols <= 0 || rows <= 0 {
		return
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.closed {
		return
	}
	o.flushLocked()
	now := time.Now()
	o.s.record(o.s.rec.Output(recorder.Output{
		Time:    now,
		Elapsed: now.Sub(o.opened),
		Stream:  streamResize,
		Data:    strconv.Itoa(cols) + "x" + strconv.Itoa(rows),
	}))
}

// close records what is buffered and waits for a running timer callback.
func (o *outputRecorder) close() {
	o.mu.Lock()
	o.closed = true
	if o.armed && o.timer.Stop() {
		o.armed = false
		o.timers.Done()
	}
	o.buf = append(o.buf, o.partial...)
	o.partial = nil
	o.flushLocked()
	o.mu.Unlock()
	o.timers.Wait()
}

// incompleteUTF8Tail returns how many bytes at the end of p begin a UTF-8
// sequence that p does not complete (0 to 3).
func incompleteUTF8Tail(p []byte) int {
	for i := 1; i <= min(3, len(p)); i++ {
		b := p[len(p)-i]
		if utf8.RuneStart(b) {
			if b >= 0xC0 && !utf8.FullRune(p[len(p)-i:]) {
				return i
			}
			return 0
		}
	}
	return 0
}
