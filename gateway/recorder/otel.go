package recorder

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pamtrail/pamtrail/gateway/redact"
	"github.com/pamtrail/pamtrail/gateway/schema"
)

// Sink is where encoded records go: the spool. Append must be safe for
// concurrent use. A record counts as recorded once Append returned nil.
type Sink interface {
	Append(payload []byte) error
}

// BlockingSink is a Sink that tells whether Append waits for the disk
// (a spool with fsync: always).
type BlockingSink interface {
	Sink
	AppendBlocks() bool
}

// DurableSink is a Sink that can also wait until a record is on stable
// storage, for strict-mode accounts.
type DurableSink interface {
	Sink
	AppendDurable(ctx context.Context, payload []byte) error
}

// Policy decides how a session reacts when an event cannot be recorded.
type Policy struct {
	// FailClosed ends the session on a recording failure; otherwise the
	// failure is counted and logged and the session goes on.
	FailClosed bool
	// Strict waits until each event is durable before returning (requires a
	// DurableSink) so the engine releases a response only once it is recorded.
	Strict bool
}

// Options configure the OTel recorder.
type Options struct {
	Sink      Sink
	GatewayID string
	Logger    *slog.Logger // nil discards
	Redactor  *redact.Redactor
	// PolicyFor returns the policy for an account (config.PolicyFor).
	// Required.
	PolicyFor func(account string) Policy
	// MaxTextBytes bounds query/command text kept in a record
	// (recording.max_text_bytes). Required.
	MaxTextBytes int
	Now          func() time.Time
	// Signer, if set, signs each session's checkpoints (chain.go); without
	// it records are chained but not signed.
	Signer Signer
	// OnSessionEnd, if set, is called after a session's end is recorded
	// (the gateway uses it to upload a finished session without waiting
	// for the next cycle). It must not block.
	OnSessionEnd func(sessionID string)
	// DisableChainForBenchmark records without pam.chain and checkpoints,
	// so a benchmark can measure what tamper evidence costs
	// (BenchmarkPgbenchChainCost). Nothing in the gateway sets it: a
	// gateway always chains.
	DisableChainForBenchmark bool
}

// OTel records each domain event as one OpenTelemetry log record, encoded
// as an OTLP LogRecord protobuf, appended to the Sink. The uploader later
// ships these records as they are.
type OTel struct {
	opts   Options
	active sync.Map // session id -> *otelSession

	appended      atomic.Int64
	failures      atomic.Int64
	lastFailLogNs atomic.Int64
}

// NewOTel builds the recorder.
func NewOTel(opts Options) (*OTel, error) {
	if opts.Sink == nil {
		return nil, errors.New("recorder: Sink is required")
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Redactor == nil {
		opts.Redactor = redact.New(redact.Options{})
	}
	if opts.PolicyFor == nil {
		return nil, errors.New("recorder: PolicyFor (the accounts' recording policies) is required")
	}
	if opts.MaxTextBytes < 2*len(schema.TruncationMarker) {
		return nil, errors.New("recorder: MaxTextBytes (recording.max_text_bytes) is required")
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	return &OTel{opts: opts}, nil
}

// Stats reports how many records were appended and how many failed.
func (r *OTel) Stats() (appended, failures int64) { return r.appended.Load(), r.failures.Load() }

// ActiveSessions is the number of sessions started and not yet ended.
func (r *OTel) ActiveSessions() int {
	n := 0
	r.active.Range(func(any, any) bool { n++; return true })
	return n
}

// Heartbeat appends one pam.session.heartbeat record per active session, so
// the collector can tell an idle live session from one whose gateway died.
// The uploader calls it once per upload interval. A heartbeat
// repeats the pam.seq of the session's latest event instead of taking one:
// it is not an event (the collector keeps it on the session document, off
// the events index), and the events' seqs stay gapless, which is how a
// reader tells that none is missing. For the same reason it stays out of
// the hash chain.
func (r *OTel) Heartbeat() {
	r.active.Range(func(_, v any) bool {
		s := v.(*otelSession)
		rec := s.begin(schema.EventHeartbeat, r.opts.Now(), false, "")
		rec.int(schema.AttrQueryCount, s.queries.Load())
		rec.int(schema.AttrCommandCount, s.commands.Load())
		rec.int(schema.AttrErrorCount, s.errors.Load())
		if s.info.Traffic != nil {
			in, out := s.info.Traffic()
			rec.int(schema.AttrBytesIn, in)
			rec.int(schema.AttrBytesOut, out)
		}
		if err := s.appendUnchained(rec); err != nil {
			_ = r.recordFailure(s, schema.EventHeartbeat, err)
		}
		return true
	})
}

// SessionStart implements Recorder.
func (r *OTel) SessionStart(ctx context.Context, info SessionInfo) (Session, error) {
	if info.Start.IsZero() {
		info.Start = r.opts.Now()
	}
	s := newOTelSession(r, info, r.opts.PolicyFor(info.Account))
	rec := s.begin(schema.EventSessionStart, info.Start, false, fmt.Sprintf("%s session started by %s on %s", info.ResourceType, info.User, info.Account))
	rec.str(schema.AttrServerAddr, info.ServerAddr)
	rec.int(schema.AttrServerPort, int64(info.ServerPort))
	rec.str(schema.AttrAuthMethod, info.AuthMethod)
	if info.Database != "" {
		rec.str(schema.AttrDBNamespace, info.Database)
		rec.str(schema.AttrDBSystem, dbSystem(info.ResourceType))
	}
	if info.UpstreamUser != "" {
		rec.str(schema.AttrDBUpstreamUser, info.UpstreamUser)
	}
	if err := s.appendChained(schema.EventSessionStart, rec); err != nil {
		// A session that cannot even record its start is refused under
		// either policy: nothing of it would be auditable.
		_ = r.recordFailure(s, schema.EventSessionStart, err)
		return nil, fmt.Errorf("recording session start: %w", err)
	}
	r.active.Store(info.ID, s)
	return s, nil
}

// AuthFailure implements Recorder. A refused attempt has no session; it gets
// its own id so its document id is unique.
func (r *OTel) AuthFailure(ctx context.Context, f AuthFailure) error {
	if f.Time.IsZero() {
		f.Time = r.opts.Now()
	}
	info := SessionInfo{ID: NewSessionID(), User: f.User, Account: f.Account, ResourceType: f.ResourceType, ClientAddr: f.ClientAddr, ClientPort: f.ClientPort}
	s := newOTelSession(r, info, Policy{})
	msg, _ := r.opts.Redactor.Shell(f.Message)
	rec := s.begin(schema.EventAuthFailure, f.Time, true, msg)
	rec.str(schema.AttrAuthFailure, f.Reason)
	return s.emit(schema.EventAuthFailure, rec)
}

// AdminAction records an administrator's action as an event of its own.
// It is recorded whatever recording.enabled says: the auditors are audited.
func (r *OTel) AdminAction(ctx context.Context, a AdminAction) error {
	if a.Time.IsZero() {
		a.Time = r.opts.Now()
	}
	info := SessionInfo{ID: NewSessionID(), User: a.Identity, ClientAddr: a.ClientAddr}
	s := newOTelSession(r, info, Policy{})
	reason, _ := r.opts.Redactor.Shell(a.Reason)
	body := fmt.Sprintf("%s %s by %s: %s", a.Operation, a.Target, a.Identity, a.Result)
	rec := s.begin(schema.EventAdminAction, a.Time, a.Result != "ok", body)
	rec.str(schema.AttrAdminIdentity, a.Identity)
	rec.str(schema.AttrAdminOperation, a.Operation)
	rec.str(schema.AttrAdminTarget, a.Target)
	rec.str(schema.AttrAdminResult, a.Result)
	if reason != "" {
		rec.str(schema.AttrAdminReason, reason)
	}
	if a.Ended > 0 {
		rec.int(schema.AttrAdminEnded, int64(a.Ended))
	}
	return s.emit(schema.EventAdminAction, rec)
}

// encodeSessionAttrs encodes the attributes every record of the session
// carries (schema.SessionConstant), once per session, noting the keys of
// those whose UTF-8 was repaired, and digests them for the chain.
func (s *otelSession) encodeSessionAttrs() {
	rec := &record{chained: !s.r.opts.DisableChainForBenchmark}
	rec.str(schema.AttrSessionID, s.info.ID)
	rec.str(schema.AttrUserName, s.info.User)
	rec.str(schema.AttrAccount, s.info.Account)
	rec.str(schema.AttrResourceType, s.info.ResourceType)
	rec.str(schema.AttrClientAddr, s.info.ClientAddr)
	rec.str(schema.AttrGatewayID, s.r.opts.GatewayID)
	if s.info.ClientPort != 0 {
		rec.int(schema.AttrClientPort, int64(s.info.ClientPort))
	}
	s.base, s.baseRepaired = rec.b, rec.repaired
	if rec.chained {
		s.constants = rec.canon.SessionDigest()
	}
}

// recordFailure counts a failed append, logs it (at most once a second, so a
// full disk does not flood the log) and applies the session's policy.
func (r *OTel) recordFailure(s *otelSession, event string, err error) error {
	n := r.failures.Add(1)
	s.recErrors.Add(1)
	now := time.Now().UnixNano()
	if last := r.lastFailLogNs.Load(); now-last > int64(time.Second) && r.lastFailLogNs.CompareAndSwap(last, now) {
		r.opts.Logger.Error("recording failed", "session.id", s.info.ID, "event", event, "error", err,
			"failures_total", n, "fail_closed", s.policy.FailClosed || s.policy.Strict)
	}
	if s.policy.FailClosed || s.policy.Strict {
		return fmt.Errorf("recording %s: %w", event, err)
	}
	return nil
}

// truncate is the one place a recorded text is cut to MaxTextBytes. A cut
// text, or one the engine says it captured only in part (cut), ends with
// schema.TruncationMarker, within the bound; truncated reports either.
func (r *OTel) truncate(s string, cut bool) (text string, truncated bool) {
	if len(s) <= r.opts.MaxTextBytes && !cut {
		return s, false
	}
	keep := min(len(s), r.opts.MaxTextBytes-len(schema.TruncationMarker))
	for keep > 0 && keep < len(s) && !utf8Start(s[keep]) {
		keep--
	}
	return s[:max(keep, 0)] + schema.TruncationMarker, true
}

func utf8Start(b byte) bool { return b&0xC0 != 0x80 }

func durationMs(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// operationName is the first SQL keyword, upper-cased (db.operation.name).
func operationName(sql string) string {
	sql = strings.TrimLeft(sql, " \t\r\n(")
	for strings.HasPrefix(sql, "--") || strings.HasPrefix(sql, "/*") {
		if strings.HasPrefix(sql, "--") {
			i := strings.IndexByte(sql, '\n')
			if i < 0 {
				return ""
			}
			sql = strings.TrimLeft(sql[i+1:], " \t\r\n(")
			continue
		}
		i := strings.Index(sql, "*/")
		if i < 0 {
			return ""
		}
		sql = strings.TrimLeft(sql[i+2:], " \t\r\n(")
	}
	end := strings.IndexFunc(sql, func(c rune) bool { return !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z') })
	if end < 0 {
		end = len(sql)
	}
	return strings.ToUpper(sql[:end])
}
