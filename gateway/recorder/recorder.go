// Package recorder defines what the protocol engines tell pamtrail about a
// session, in domain terms. Engines call these methods; they never build log
// records and never touch the spool. The OTel implementation (otel.go) turns
// each call into one OpenTelemetry log record and appends it to the spool.
package recorder

import (
	"context"
	"time"

	"github.com/pamtrail/pamtrail/gateway/policy"
)

// SessionInfo describes a session at its start. All fields are known once the
// user has authenticated and the upstream connection is established.
type SessionInfo struct {
	ID           string // unique, chosen by the engine (see NewSessionID)
	User         string // gateway identity
	Account      string // account name from config
	ResourceType string // schema.ResourcePostgres, schema.ResourceMySQL or schema.ResourceSSH
	ClientAddr   string
	ClientPort   int
	ServerAddr   string // upstream host
	ServerPort   int
	Database     string // postgres only
	UpstreamUser string
	AuthMethod   string // how the user authenticated to the gateway
	Start        time.Time
	// Traffic returns the bytes relayed so far, client to upstream and
	// back; heartbeats report it so a live session's traffic is known
	// before it ends. Nil: the totals come with the end only.
	Traffic func() (in, out int64)
}

// AuthFailure is a refused connection attempt; it has no session.
type AuthFailure struct {
	Time         time.Time
	User         string // as claimed by the client; may be unknown
	Account      string
	ResourceType string
	ClientAddr   string
	ClientPort   int
	Reason       string // schema.Auth*
	Message      string // human-readable, never containing a credential
}

// Query is one executed (or skipped) SQL statement together with its response.
type Query struct {
	Start    time.Time
	Duration time.Duration
	Text     string
	// TextTruncated is set when the engine captured only a prefix of the
	// text; the recorder marks the cut. Engines never cut text themselves
	// to recording.max_text_bytes: the recorder does.
	TextTruncated bool
	Protocol      string // "simple" or "extended"
	Params        []string
	// ParamsTruncated is set when a parameter value was cut to the size limit.
	ParamsTruncated bool

	CommandTag   string // e.g. "SELECT 3"; empty on error
	ReturnedRows int64  // DataRows sent to the client
	RowsAffected int64  // parsed from the tag for INSERT/UPDATE/DELETE/...
	// CopyBytes is the COPY data a COPY statement moved through the
	// gateway (CopyData payloads, either direction); the rows moved are
	// the tag's count. Recorded for COPY statements only.
	CopyBytes int64
	// LastInsertID, Warnings and ErrorNumber are MySQL's OK and ERR
	// packet fields; zero when the protocol has none.
	LastInsertID int64
	Warnings     int
	ErrorNumber  int
	Columns      []string
	Preview      string // bounded text preview of the result rows
	PreviewTrunc bool
	TxStatus     byte // ReadyForQuery status after the statement: 'I', 'T', 'E'

	ErrorCode    string // SQLSTATE
	ErrorMessage string
	ErrorDetail  string
	// NotExecuted marks a statement the server skipped because an earlier
	// statement of the same pipeline failed.
	NotExecuted bool
	Notices     []string

	// ClientEncoding is the session's client_encoding when it is not
	// UTF8: every text field above was decoded from it.
	ClientEncoding string
	// TextLossy is set when some bytes could not be decoded to UTF-8 and
	// were replaced by U+FFFD.
	TextLossy bool
	// Policy is the policy rule the statement matched: blocked before it
	// reached the server (enforce) or only flagged (audit).
	Policy *policy.Match
}

// Command is one SSH command with its output: an exec request, or one line of
// an interactive shell up to the next prompt.
type Command struct {
	Start    time.Time
	Duration time.Duration
	Channel  string // terminal, exec, scp
	Text     string
	// TextTruncated is set when the engine captured only a prefix of the
	// command (a script longer than it keeps); see Query.TextTruncated.
	TextTruncated bool
	Output        string
	OutputTrunc   bool
	ExitStatus    *int
	ExitSignal    string
	Policy        *policy.Match // the rule the command matched, if any
}

// Output is a raw chunk of terminal output, kept for replay (asciicast v2).
type Output struct {
	Time    time.Time
	Elapsed time.Duration // since the channel opened
	Stream  string        // pty, stdout, stderr
	Data    string
}

// FileOp is one file operation over SFTP or scp.
type FileOp struct {
	Time      time.Time
	Channel   string // sftp, scp, rsync
	Operation string // open, read, write, upload, download, remove, rename, mkdir, rmdir, setstat, symlink
	Path      string
	Target    string
	Bytes     int64
	Error     string
	Policy    *policy.Match // the rule the operation matched, if any
}

// Forward is one TCP forward opened through the gateway.
type Forward struct {
	Time   time.Time
	Target string
	Bytes  int64
}

// End describes how the session finished.
type End struct {
	Time     time.Time
	Reason   string // schema.End*
	Message  string
	BytesIn  int64
	BytesOut int64
}

// AdminAction is an administrator's action on the gateway (schema.Admin*).
type AdminAction struct {
	Time       time.Time
	Identity   string // who
	Operation  string // what: schema.Admin*
	Target     string // session id, user:NAME, account:NAME
	Reason     string
	Result     string // ok, not_found, rejected or an error
	ClientAddr string
	Ended      int // sessions the action ended
}

// Recorder starts sessions and records refused connections.
type Recorder interface {
	SessionStart(ctx context.Context, info SessionInfo) (Session, error)
	AuthFailure(ctx context.Context, f AuthFailure) error
}

// Session records the events of one session. Methods are safe for concurrent
// use (an SSH session has several channels). A non-nil error means the
// recording policy is fail-closed and the engine must end the session; under
// fail-open the implementation counts and logs the failure and returns nil.
type Session interface {
	ID() string
	// MayBlock reports whether the record calls may wait for the disk
	// (strict mode, or a spool that fsyncs every append): an engine must
	// then not make them on a goroutine other sessions share.
	MayBlock() bool
	Query(q Query) error
	Command(c Command) error
	Output(o Output) error
	File(f FileOp) error
	Forward(f Forward) error
	End(e End) error
}
