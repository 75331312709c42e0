package mysql

import (
	"bufio"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/pamtrail/pamtrail/gateway/mysql/wire"
	"github.com/pamtrail/pamtrail/gateway/policy"
	"github.com/pamtrail/pamtrail/gateway/recorder"
)

const relayBuffer = 64 << 10

// pumpClient relays client commands to the server. A command the gateway
// answers itself (a refused COM_CHANGE_USER or LOAD DATA LOCAL INFILE) is
// not forwarded; KILL of another gateway connection is pointed at its
// upstream thread. Everything else is forwarded as received.
func (s *session) pumpClient() pumpResult {
	pr := &packetReader{r: bufio.NewReaderSize(s.client, relayBuffer), limit: s.e.maxPacket}
	w := bufio.NewWriterSize(s.upstream, relayBuffer)
	first := true // the next packet starts a command
	for {
		seq, last, err := pr.next()
		if err != nil {
			return pumpResult{err: err}
		}
		s.limits.Activity.Touch(time.Now())
		s.traffic.In.Add(int64(len(pr.body) + 4))
		if first && last {
			if s.answerItself(pr.payload) {
				continue
			}
			if rewritten := s.rewriteKill(pr.payload); rewritten != nil {
				pr.body = rewritten
				n := len(rewritten)
				pr.hdr[0], pr.hdr[1], pr.hdr[2] = byte(n), byte(n>>8), byte(n>>16)
			}
		}
		if last {
			s.observeClient(pr.payload, pr.cut, seq)
		}
		first = last
		if err := pr.write(w); err != nil {
			return pumpResult{err: err, writeFailed: true}
		}
		if pr.r.Buffered() == 0 {
			if err := w.Flush(); err != nil {
				return pumpResult{err: err, writeFailed: true}
			}
		}
		if s.quit.Load() {
			_ = w.Flush()
			return pumpResult{}
		}
		if s.recordErr.Load() && s.failClosed() {
			return pumpResult{err: errRecording}
		}
	}
}

// pumpServer relays server responses to the client. The tracker sees each
// payload before its last packet is forwarded, so under strict recording a
// statement's response is released only once its event is durable.
func (s *session) pumpServer() pumpResult {
	pr := &packetReader{r: bufio.NewReaderSize(s.upstream, relayBuffer), limit: s.e.maxPacket}
	w := bufio.NewWriterSize(s.client, relayBuffer)
	for {
		seq, last, err := pr.next()
		if err != nil {
			_ = w.Flush()
			return pumpResult{err: err}
		}
		s.limits.Activity.Touch(time.Now())
		s.traffic.Out.Add(int64(len(pr.body) + 4))
		if last && s.tr != nil {
			s.mu.Lock()
			s.tr.server(pr.payload, pr.cut, time.Now())
			busy := s.tr.busy()
			s.mu.Unlock()
			s.busy.Store(busy)
		}
		s.replySeq.Store(uint32(seq) + 1)
		if err := pr.write(w); err != nil {
			return pumpResult{err: err, writeFailed: true}
		}
		if pr.r.Buffered() == 0 {
			if err := w.Flush(); err != nil {
				return pumpResult{err: err, writeFailed: true}
			}
		}
		if s.recordErr.Load() && s.failClosed() {
			return pumpResult{err: errRecording}
		}
	}
}

func (s *session) failClosed() bool {
	return s.acct.RecordingPolicy().FailsClosed()
}

// observeClient hands a complete command to the tracker.
func (s *session) observeClient(p []byte, cut bool, seq byte) {
	if len(p) > 0 && p[0] == wire.ComQuit {
		s.quit.Store(true)
	}
	s.replySeq.Store(uint32(seq) + 1)
	if s.tr == nil {
		s.busy.Store(len(p) > 0 && expectsResponse(p[0]))
		return
	}
	s.mu.Lock()
	s.tr.client(p, cut, time.Now())
	busy := s.tr.busy()
	s.mu.Unlock()
	s.busy.Store(busy)
}

func expectsResponse(cmd byte) bool {
	return cmd != wire.ComQuit && cmd != wire.ComStmtClose && cmd != wire.ComStmtSendLongData
}

var loadLocal = regexp.MustCompile(`(?is)^\s*LOAD\s+(?:DATA|XML)\s+(?:LOW_PRIORITY\s+|CONCURRENT\s+)?LOCAL\b`)

// answerItself answers the commands the gateway refuses, records them, and
// reports whether it did.
func (s *session) answerItself(p []byte) bool {
	if len(p) == 0 {
		return false
	}
	if s.blockByPolicy(p) {
		return true
	}
	var text, msg string
	var code uint16
	switch {
	case p[0] == wire.ComChangeUser:
		text, code = "-- COM_CHANGE_USER", erNotSupported
		msg = "COM_CHANGE_USER is refused by pamtrail: the gateway identity is bound to the connection; open a new connection instead"
	case p[0] == wire.ComQuery && !s.acct.AllowLocalInfile && loadLocal.Match(p[1:]):
		text, code = string(p[1:]), erNotAllowed
		msg = "LOAD DATA LOCAL INFILE is refused by pamtrail for this account (accounts[].allow_local_infile)"
	default:
		return false
	}
	if s.tr != nil {
		s.mu.Lock()
		s.tr.record(recorder.Query{Start: time.Now(), Text: s.tr.text([]byte(text)), Protocol: "simple",
			ErrorCode: "42000", ErrorNumber: int(code), ErrorMessage: msg})
		s.mu.Unlock()
	}
	s.answer(code, msg)
	return true
}

// answer sends the client an error in the server's place.
func (s *session) answer(code uint16, msg string) {
	seq := byte(1)
	_ = s.client.SetWriteDeadline(time.Now().Add(5 * time.Second))
	_, _ = s.client.Write(wire.AppendPackets(nil, &seq, wire.AppendErr(nil, code, "42000", msg)))
	_ = s.client.SetWriteDeadline(time.Time{})
}

// blockByPolicy refuses a COM_QUERY or COM_STMT_PREPARE holding a statement
// an enforcing rule blocks. The whole text is refused before any of it
// runs, so a multi-statement text never half-executes and the transaction
// stays as it was; the blocked statement is recorded with its rule, the
// others as not executed.
func (s *session) blockByPolicy(p []byte) bool {
	if !s.policy.Enforces() || (p[0] != wire.ComQuery && p[0] != wire.ComStmtPrepare) {
		return false
	}
	text := strings.ToValidUTF8(string(p[1:]), "\uFFFD")
	stmts := []string{strings.TrimSpace(text)}
	if p[0] == wire.ComQuery {
		stmts = splitStatements(text)
	}
	blocked := -1
	var match *policy.Match
	for i, st := range stmts {
		if m := s.policy.SQL(st); m.Blocks() {
			blocked, match = i, m
			break
		}
	}
	if blocked < 0 {
		return false
	}
	msg := fmt.Sprintf("pamtrail policy %s: rule %s blocks this statement", match.Policy, match.Rule)
	if s.tr != nil {
		now := time.Now()
		s.mu.Lock()
		for i, st := range stmts {
			q := recorder.Query{Start: now, Text: s.tr.text([]byte(st)), Protocol: "simple", NotExecuted: i != blocked}
			if p[0] == wire.ComStmtPrepare {
				q.Protocol = "extended"
			}
			if i == blocked {
				q.ErrorCode, q.ErrorNumber, q.ErrorMessage, q.Policy = "42000", erSpecificAccess, msg, match
			}
			s.tr.record(q)
		}
		s.mu.Unlock()
	}
	s.answer(erSpecificAccess, msg)
	return true
}

var killStatement = regexp.MustCompile(`(?is)^(\s*KILL\s+(?:QUERY\s+|CONNECTION\s+)?)(\d+)(\s*;?\s*)$`)

// rewriteKill points KILL of a connection id the gateway handed out at
// that connection's upstream thread, when it runs on the same account (and
// so the same server). It returns the new payload, or nil to keep it.
func (s *session) rewriteKill(p []byte) []byte {
	var id uint64
	var build func(upstream uint32) []byte
	switch {
	case len(p) == 5 && p[0] == wire.ComProcessKill:
		id = uint64(wire.NewReader(p[1:]).Uint32())
		build = func(up uint32) []byte {
			return []byte{wire.ComProcessKill, byte(up), byte(up >> 8), byte(up >> 16), byte(up >> 24)}
		}
	case len(p) > 1 && p[0] == wire.ComQuery && len(p) < 128:
		m := killStatement.FindSubmatch(p[1:])
		if m == nil {
			return nil
		}
		var err error
		if id, err = strconv.ParseUint(string(m[2]), 10, 32); err != nil {
			return nil
		}
		build = func(up uint32) []byte {
			q := append([]byte{wire.ComQuery}, m[1]...)
			q = strconv.AppendUint(q, uint64(up), 10)
			return append(q, strings.TrimSpace(string(m[3]))...)
		}
	default:
		return nil
	}
	v, ok := s.e.threads.Load(uint32(id))
	if !ok {
		return nil
	}
	t := v.(thread)
	if t.account != s.acct.Name {
		return nil
	}
	return build(t.upstream)
}
