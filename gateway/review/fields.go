// Package review queries recorded sessions in Elasticsearch; it is what
// `pamtrail sessions` runs, and what the end-to-end tests read back with.
package review

import "github.com/pamtrail/pamtrail/gateway/schema"

// Field paths of an event document, as the elasticsearch exporter writes
// them in mapping mode "otel" (dashboards/elasticsearch/README.md).
const (
	FieldTimestamp = "@timestamp"
	FieldEventName = "event_name"
	FieldBody      = "body.text"
	attrPrefix     = "attributes."
)

// Attr is the document field of a record attribute.
func Attr(key string) string { return attrPrefix + key }

// Fields the CLI searches for free text: statement and command text, and
// responses/outputs.
var TextFields = []string{
	Attr(schema.AttrDBQueryText), Attr(schema.AttrResponseText),
	Attr(schema.AttrSSHCommand), Attr(schema.AttrSSHOutput), FieldBody,
}

// EventQueryFields are the event fields the CLI filters and sorts on besides
// TextFields. The dashboards contract test checks that the events template
// maps every one of them.
var EventQueryFields = []string{
	FieldTimestamp, FieldEventName,
	Attr(schema.AttrSessionID), Attr(schema.AttrGatewayID), Attr(schema.AttrUserName), Attr(schema.AttrSeq),
}

// SessionQueryFields are the sessions-index fields the CLI filters and sorts
// on (the rest of the document is only decoded). The dashboards contract test
// checks that the sessions template maps every one of them.
var SessionQueryFields = []string{
	schema.SessionID, schema.SessionStatus, schema.SessionUser, schema.SessionAccount,
	schema.SessionRiskLevel, schema.SessionStart, schema.SessionLastSeen, schema.SessionUpdated,
}
