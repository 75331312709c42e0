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
