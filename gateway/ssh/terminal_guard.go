package ssh

import (
	"strings"
	"time"

	"github.com/pamtrail/pamtrail/gateway/policy"
	"github.com/pamtrail/pamtrail/gateway/recorder"
)

// Keys the guard sends the shell in place of a blocked Enter: end of line
// then kill to its start (readline and the tty's own VKILL both honour
// ^U), then Enter on the now empty line, so the shell prints a fresh
// prompt under the notice.
var clearLine = []byte{0x05, 0x15, '\r'}

// terminalGuard stops an interactive command the account's policy blocks,
// at the Enter that would run it. The line checked is the one on the
// emulated screen (what completion, history or editing made of the keys),
// and also the keys typed since the last Enter, which a paste may send
// before the shell has echoed them.
type terminalGuard struct {
	screen  func() string // the command line on the emulated screen
	refused func(text string, m *policy.Match)
	set     *policy.Set
	typed   []byte // printable keys since the last Enter; nil once an editing sequence made them unreliable
	plain   bool
	out     []byte
}

func newTerminalGuard(c *sessionChannel, tap *terminalTap, set *policy.Set) *terminalGuard {
	return &terminalGuard{screen: tap.screenLine, set: set, plain: true, refused: func(text string, m *policy.Match) {
		msg := blockedText("command", m)
		_, _ = c.client.Write([]byte("\r\n" + msg + "\r\n"))
		s := c.s
		s.log.Info("interactive command blocked by policy", "rule", m.Rule, "policy", m.Policy)
		s.record(s.rec.Command(recorder.Command{Start: time.Now(), Channel: channelTerminal, Text: text, Output: msg, Policy: m}))
	}}
}

// filter returns the bytes to forward for keys p.
func (g *terminalGuard) filter(p []byte) []byte {
	g.out = g.out[:0]
	start := 0
	for i, b := range p {
		switch {
		case b == '\r' || b == '\n':
		case b == 0x7f || b == 0x08:
			if len(g.typed) > 0 {
				g.typed = g.typed[:len(g.typed)-1]
			}
			continue
		case b == 0x15 || b == 0x03: // kill line, interrupt
			g.typed, g.plain = g.typed[:0], true
			continue
		case b >= 0x20:
			if g.plain && len(g.typed) < 4096 {
				g.typed = append(g.typed, b)
			}
			continue
		default:
			g.plain = false // Tab, escape sequences: the screen tells
			continue
		}
		m := g.check()
		g.typed, g.plain = g.typed[:0], true
		if !m.Blocks() {
			continue
		}
		g.out = append(g.out, p[start:i]...)
		g.out = append(g.out, clearLine...)
		start = i + 1
	}
	if start == 0 {
		return p
	}
	return append(g.out, p[start:]...)
}

// check matches the line at an Enter; a blocked line is refused on the
// terminal and recorded.
func (g *terminalGuard) check() *policy.Match {
	line := strings.TrimSpace(g.screen())
	m, text := g.set.Command(line), line
	if m == nil && g.plain && len(g.typed) > 0 {
		m, text = g.set.Command(string(g.typed)), string(g.typed)
	}
	if m.Blocks() {
		g.refused(text, m)
	}
	return m
}
