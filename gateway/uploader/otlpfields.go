package uploader

// OTLP field numbers: the log record, its values (opentelemetry/proto/logs/v1
// and common/v1), read by decodeRecord, and the export request around the
// records (collector/logs/v1, resource/v1), written by logsCodec. All are
// below 16, so every tag is one byte.
const (
	fieldResourceLogs = 1 // ExportLogsServiceRequest.resource_logs

	fieldRLResource  = 1 // ResourceLogs
	fieldRLScopeLogs = 2
	fieldRLSchemaURL = 3

	fieldResourceAttributes = 1 // Resource
	fieldResourceDropped    = 2

	fieldSLScope      = 1 // ScopeLogs
	fieldSLLogRecords = 2
	fieldSLSchemaURL  = 3

	fieldScopeName       = 1 // InstrumentationScope
	fieldScopeVersion    = 2
	fieldScopeAttributes = 3
	fieldScopeDropped    = 4

	fieldTime           = 1 // LogRecord
	fieldSeverityNumber = 2
	fieldSeverityText   = 3
	fieldBody           = 5
	fieldAttributes     = 6
	fieldDropped        = 7
	fieldFlags          = 8
	fieldTraceID        = 9
	fieldSpanID         = 10
	fieldObservedTime   = 11
	fieldEventName      = 12

	fieldKVKey   = 1 // KeyValue
	fieldKVValue = 2

	fieldAnyString = 1 // AnyValue
	fieldAnyBool   = 2
	fieldAnyInt    = 3
	fieldAnyDouble = 4
	fieldAnyArray  = 5
	fieldAnyKVList = 6
	fieldAnyBytes  = 7

	fieldListValues = 1 // ArrayValue.values and KeyValueList.values
)
