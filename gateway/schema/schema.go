// Package schema is the single source of event names and attribute keys that
// pamtrail writes into OpenTelemetry log records. The gateway recorder, the
// collector's session processor, the Elasticsearch templates, the dashboards and
// the `pamtrail sessions` CLI all agree through this file; SCHEMA.md documents it
// and a contract test keeps them in step.
//
// Where an OpenTelemetry semantic-convention name exists it is used as is;
// pamtrail-specific keys live under the "pam." prefix.
package schema

// TruncationMarker ends every recorded text that was cut, so a reader sees
// the cut in the text itself.
const TruncationMarker = "…"

// Event names (the OTel LogRecord EventName).
const (
	EventSessionStart = "pam.session.start"
	EventSessionEnd   = "pam.session.end"
	EventAuthFailure  = "pam.auth.failure"
	EventDBQuery      = "pam.db.query"
	EventSSHCommand   = "pam.ssh.command"
	EventSSHOutput    = "pam.ssh.output"
	EventSSHFile      = "pam.ssh.file"
	EventSSHForward   = "pam.ssh.forward"
	EventHeartbeat    = "pam.session.heartbeat"
	EventSummary      = "pam.session.summary"
	// EventAdminAction is an administrator's action (terminate, lock,
	// unlock, reload): not part of any session, it has a session id of its
	// own, as a refused login does.
	EventAdminAction = "pam.admin.action"
	// EventSpoolUndecodable stands in for a spooled payload the uploader
	// could not decode: it is sent, not skipped, so a loss is visible.
	EventSpoolUndecodable = "pam.spool.undecodable"
)

// Session attributes: present on every record of a session.
const (
	AttrSessionID    = "session.id"     // semconv
	AttrUserName     = "user.name"      // semconv: the gateway identity
	AttrClientAddr   = "client.address" // semconv
	AttrClientPort   = "client.port"    // semconv
	AttrServerAddr   = "server.address" // semconv: the upstream target host
	AttrServerPort   = "server.port"    // semconv
	AttrAccount      = "pam.account"    // the account (credential set) used upstream
	AttrResourceType = "pam.resource.type"
	AttrSeq          = "pam.seq" // per-session sequence number, from 0 (session start)
	AttrGatewayID    = "pam.gateway.id"
	AttrDocumentID   = "elasticsearch.document_id" // set by the session processor
)

// Resource types (values of AttrResourceType).
const (
	ResourcePostgres = "postgres"
	ResourceSSH      = "ssh"
	ResourceMySQL    = "mysql"
)

// Database attributes (pam.db.query).
const (
	AttrDBSystem       = "db.system.name"            // semconv: "postgresql"
	AttrDBNamespace    = "db.namespace"              // semconv: database name
	AttrDBQueryText    = "db.query.text"             // semconv
	AttrDBOperation    = "db.operation.name"         // semconv: first keyword, e.g. SELECT
	AttrDBStatusCode   = "db.response.status_code"   // semconv: SQLSTATE on error
	AttrDBReturnedRows = "db.response.returned_rows" // semconv
	AttrDBUpstreamUser = "pam.db.upstream_user"
	AttrDBCommandTag   = "pam.db.command_tag"    // e.g. "INSERT 0 1"
	AttrDBRowsAffected = "pam.db.rows_affected"  // from the command tag
	AttrDBCopyBytes    = "pam.db.copy.bytes"     // COPY data bytes relayed (either direction); COPY statements only
	AttrDBProtocol     = "pam.db.protocol"       // "simple" or "extended"
	AttrDBLastInsertID = "pam.db.last_insert_id" // MySQL: the OK packet's last insert id, when not 0
	AttrDBWarnings     = "pam.db.warnings"       // MySQL: the statement's warning count, when not 0
	AttrDBErrorNumber  = "pam.db.error_number"   // MySQL: the server's error number beside the SQLSTATE
	AttrDBParams       = "pam.db.params"         // rendered bind parameters
	AttrDBParamsTrunc  = "pam.db.params_truncated"
	AttrDBColumns      = "pam.db.columns"
	AttrDBTxStatus     = "pam.db.tx_status" // I, T or E after the statement
	AttrDBNotExecuted  = "pam.db.not_executed"
	AttrErrorType      = "error.type"        // semconv
	AttrErrorMessage   = "pam.error.message" // server's error message
	AttrErrorDetail    = "pam.error.detail"  // server's error detail
	AttrResponseText   = "pam.response.text" // human-readable response (tag, error, preview)
	AttrResponseTrunc  = "pam.response.truncated"
	// AttrTextTrunc marks a statement or command text (or a file path,
	// target or error) that was cut; the text then ends with
	// TruncationMarker.
	AttrTextTrunc        = "pam.text.truncated"
	AttrDurationMs       = "pam.duration_ms" // statement or command duration
	AttrStartTime        = "pam.start_time"  // RFC3339Nano; the record timestamp is the same instant
	AttrBytesIn          = "pam.bytes.in"    // client -> upstream
	AttrBytesOut         = "pam.bytes.out"   // upstream -> client
	AttrEndReason        = "pam.end.reason"
	AttrQueryCount       = "pam.count.queries"
	AttrCommandCount     = "pam.count.commands"
	AttrErrorCount       = "pam.count.errors"
	AttrAuthFailure      = "pam.auth.reason"
	AttrAuthMethod       = "pam.auth.method"
	AttrRedactions       = "pam.redactions"
	AttrRecordingErrors  = "pam.recording.errors"
	AttrSpoolDecodeError = "pam.spool.decode_error"
	// AttrTextLossy marks an event whose text lost bytes on the way to
	// UTF-8: bytes invalid in the client's encoding became U+FFFD.
	AttrTextLossy = "pam.text.lossy"
	// AttrTextRepaired names the fields (attribute keys, or "body") in
	// which the recorder itself replaced invalid UTF-8, a last resort that
	// keeps the record and its session attributes.
	AttrTextRepaired = "pam.text.repaired"
	// AttrDBClientEncoding is the session's client_encoding when it is not
	// UTF8: the encoding the event's text was decoded from.
	AttrDBClientEncoding = "pam.db.client_encoding"
)

// SSH attributes.
const (
	AttrSSHChannelType = "pam.ssh.channel" // terminal, exec, sftp, scp, forward
	AttrSSHCommand     = "pam.ssh.command"
	AttrSSHExitStatus  = "pam.ssh.exit_status"
	AttrSSHExitSignal  = "pam.ssh.exit_signal"
	AttrSSHOutput      = "pam.ssh.output"
	AttrSSHStream      = "pam.ssh.stream" // stdout, stderr, pty
	AttrSSHElapsedMs   = "pam.ssh.elapsed_ms"
	AttrFileOperation  = "pam.file.operation" // open, read, write, remove, rename, mkdir, ...
	AttrFilePath       = "file.path"          // semconv
	AttrFileTarget     = "pam.file.target"    // rename / symlink target
	AttrFileBytes      = "pam.file.bytes"
	AttrForwardTarget  = "pam.forward.target"
)

// Policy attributes, on a pam.db.query, pam.ssh.command or pam.ssh.file
// event that matched a rule of the account's policy.
const (
	AttrBlocked    = "pam.blocked"     // true: the action was stopped (enforce); false: only flagged (audit)
	AttrPolicyName = "pam.policy.name" // the policy
	AttrPolicyRule = "pam.policy.rule" // the rule id that matched
	AttrPolicyMode = "pam.policy.mode" // enforce or audit
)

// Admin attributes (pam.admin.action).
const (
	AttrAdminIdentity  = "pam.admin.identity"  // who: the admin identity that called the API
	AttrAdminOperation = "pam.admin.operation" // what: terminate, lock, unlock, reload
	AttrAdminTarget    = "pam.admin.target"    // on what: session id, user:NAME or account:NAME
	AttrAdminReason    = "pam.admin.reason"    // why, as the admin gave it
	AttrAdminResult    = "pam.admin.result"    // ok, not_found, rejected, or the error
	AttrAdminEnded     = "pam.admin.sessions_ended"
)

// Admin actions (values of AttrAdminAction).
const (
	AdminTerminate = "terminate"
	AdminLock      = "lock"
	AdminUnlock    = "unlock"
	AdminReload    = "reload"
)

// Session-end reasons (values of AttrEndReason).
const (
	EndClientQuit     = "client_quit"
	EndUpstreamClosed = "upstream_closed"
	EndNetworkError   = "network_error"
	EndIdleTimeout    = "idle_timeout"
	EndMaxDuration    = "max_duration"
	EndProtocolError  = "protocol_error"
	EndRecordingError = "recording_error"
	EndShutdown       = "gateway_shutdown"
	// EndTerminated: an admin ended the session (pamtrail sessions terminate).
	EndTerminated = "terminated"
	// EndLocked: a lock on the session's user or account ended it.
	EndLocked = "locked"
	// EndGrantRevoked: a reload removed the grant the session used.
	EndGrantRevoked = "grant_revoked"
)

// Auth-failure reasons (values of AttrAuthFailure).
const (
	AuthBadPassword     = "bad_password"
	AuthUnknownUser     = "unknown_user"
	AuthUnknownAccount  = "unknown_account"
	AuthNoGrant         = "no_grant"
	AuthUpstreamFailed  = "upstream_failed"
	AuthHostKeyMismatch = "host_key_mismatch"
	AuthBadKey          = "bad_key"
	// AuthBadClientCert: postgres.tls.client_ca_file refused the client (no
	// certificate, one the CA did not sign, or plaintext).
	AuthBadClientCert = "bad_client_cert"
	// AuthLocked: the user or the account is locked (pamtrail lock).
	AuthLocked = "locked"
)

// Risk attributes, set on an event by the collector's session processor.
const (
	AttrRiskSeverity    = "pam.risk.severity"    // highest severity on this event: low, medium, high, critical
	AttrRiskRules       = "pam.risk.rules"       // rule ids that matched this event
	AttrRiskReasons     = "pam.risk.reasons"     // one short reason per matched rule
	AttrSchemaViolation = "pam.schema.violation" // record lacked session.id or pam.seq
)

// Risk levels, lowest first (values of AttrRiskSeverity and SessionRiskLevel).
var RiskLevels = []string{"none", "low", "medium", "high", "critical"}

// Session statuses (SessionStatus).
const (
	StatusActive = "active"
	StatusEnded  = "ended"
	StatusFailed = "failed"
	StatusLost   = "lost"
)

// Fields of a document in the sessions index (one document per session,
// _id = session id). It is a plain JSON document written by the collector,
// not an OTel record, so these are its top-level field names.
const (
	SessionID            = "session_id"
	SessionUser          = "user"
	SessionAccount       = "account"
	SessionResourceType  = "resource_type"
	SessionClientAddress = "client_address"
	SessionGatewayID     = "gateway_id"
	SessionStatus        = "status"
	SessionStart         = "start_time"
	SessionEnd           = "end_time"
	SessionLastSeen      = "last_seen"     // latest record, heartbeats included: how current the document is
	SessionLastActivity  = "last_activity" // latest record of what the person did (heartbeats excluded)
	SessionDurationMs    = "duration_ms"
	SessionEndReason     = "end_reason"
	SessionQueries       = "count_queries"
	SessionCommands      = "count_commands"
	SessionErrors        = "count_errors"
	SessionBytesIn       = "bytes_in"
	SessionBytesOut      = "bytes_out"
	SessionRiskLevel     = "risk_level"
	SessionRiskFindings  = "risk_findings" // [{rule_id, severity, reason, seq}]
	SessionSummary       = "summary"       // {text, provider, warnings: [{text, seq}], fallback_reason, generated_at}
	SessionUpdated       = "updated_at"
	SessionServerAddress = "server_address"
	// SessionFindingsDropped counts findings beyond the processor's
	// risk.max_findings, so a capped list never hides that more matched.
	SessionFindingsDropped = "risk_findings_dropped"
	// SessionLastReceived is the latest collector clock at which any
	// collector took a record of the session; lost detection reads it.
	SessionLastReceived = "last_received"
	// SessionSummaryPending is true while a finished session waits for its
	// summary.
	SessionSummaryPending = "summary_pending"
	// SessionState is the processor's mergeable state of the session (seqs
	// merged, objects, reported counts); stored, not indexed.
	SessionState = "state"
)

// Elasticsearch names.
const (
	EventsIndex          = "pamtrail-events"
	EventsIndexPattern   = "pamtrail-events*"
	SessionsIndex        = "pamtrail-sessions"
	SessionsIndexPattern = "pamtrail-sessions*"
)
