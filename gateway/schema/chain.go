package schema

import "strings"

// Tamper evidence (SCHEMA.md, "Hash chain and checkpoints"). Every record of
// a session carries pam.chain; pam.chain.checkpoint events carry a signature
// over the chain head.
const (
	// EventCheckpoint is a signed statement by the gateway: the chain head
	// after seq pam.checkpoint.to is pam.checkpoint.head.
	EventCheckpoint = "pam.chain.checkpoint"

	AttrChain               = "pam.chain"                // SHA-256 link, H(previous link ‖ canonical record): 32 bytes, indexed as hex
	AttrCheckpointFrom      = "pam.checkpoint.from"      // first seq this checkpoint adds to the signed part
	AttrCheckpointTo        = "pam.checkpoint.to"        // last seq covered (the record before the checkpoint)
	AttrCheckpointHead      = "pam.checkpoint.head"      // hex pam.chain of seq pam.checkpoint.to
	AttrCheckpointKeyID     = "pam.checkpoint.key_id"    // id of the gateway's Ed25519 signing key
	AttrCheckpointSignature = "pam.checkpoint.signature" // base64 Ed25519 signature
	AttrCheckpointFinal     = "pam.checkpoint.final"     // the session had ended: nothing may follow

	// KeysIndex holds the signing keys' public halves, one document per key
	// id, for verifiers (pamtrail setup elasticsearch --signing-keys).
	KeysIndex = "pamtrail-keys"

	// SessionCheckpoint is the sessions-index object holding the session's
	// last checkpoint as recorded ({from, to, head, key_id, signature,
	// final}); SessionSealed is true once a final checkpoint was seen.
	SessionCheckpoint = "checkpoint"
	SessionSealed     = "sealed"
)

// ChainExcluded reports whether an attribute is left out of a record's
// canonical form: the chain value itself, the checkpoint signature (it
// authenticates itself), and what the collector adds or strips on the way
// to Elasticsearch.
//
// The recorder asks for every attribute of every record, so most keys are
// decided on their first bytes.
func ChainExcluded(key string) bool {
	if len(key) <= len("pam.") {
		return false
	}
	switch key[0] {
	case 'e':
		return strings.HasPrefix(key, "elasticsearch.")
	case 'p':
		if key[:len("pam.")] != "pam." {
			return false
		}
	default:
		return false
	}
	switch key[len("pam.")] {
	case 'c':
		return key == AttrChain || key == AttrCheckpointSignature
	case 'r':
		return strings.HasPrefix(key, "pam.risk.")
	case 's':
		return key == AttrSchemaViolation || key == AttrSpoolDecodeError
	}
	return false
}

// SessionConstant reports whether an attribute is one of the session
// attributes every record of a session carries with the same value. A
// record's canonical form leaves them out; its link covers their digest
// instead, computed once per session (SCHEMA.md, "Canonical form").
func SessionConstant(key string) bool {
	switch key {
	case AttrSessionID, AttrUserName, AttrAccount, AttrResourceType, AttrClientAddr, AttrClientPort, AttrGatewayID:
		return true
	}
	return false
}

// Checkpoint is a checkpoint's statement as the sessions index stores it
// (SessionCheckpoint), written by the session processor and read by
// `pamtrail sessions verify`.
type Checkpoint struct {
	GatewayID string `json:"gateway_id"`
	KeyID     string `json:"key_id"`
	From      int64  `json:"from"`
	To        int64  `json:"to"`
	Head      string `json:"head"`
	Signature string `json:"signature"`
	Final     bool   `json:"final"`
}
