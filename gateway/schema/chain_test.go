package schema

import "testing"

func TestChainExcluded(t *testing.T) {
	for key, want := range map[string]bool{
		AttrChain: true, AttrCheckpointSignature: true, AttrSchemaViolation: true, AttrSpoolDecodeError: true,
		"pam.risk.severity": true, "pam.risk.findings": true, "elasticsearch.document_id": true, "elasticsearch.": true,
		AttrCheckpointHead: false, AttrCheckpointKeyID: false, AttrSeq: false, AttrSessionID: false, AttrResponseText: false,
		AttrStartTime: false, AttrRedactions: false, "pam.risk": false, "pam.": false, "pam": false, "": false,
		"pam.chain.x": false, "pam.chai": false, "elasticsearch": false, "xpam.chain": false, "Pam.chain": false,
	} {
		if got := ChainExcluded(key); got != want {
			t.Errorf("ChainExcluded(%q) = %v, want %v", key, got, want)
		}
	}
}

func TestSessionConstant(t *testing.T) {
	for key, want := range map[string]bool{
		AttrSessionID: true, AttrUserName: true, AttrAccount: true, AttrResourceType: true, AttrClientAddr: true,
		AttrClientPort: true, AttrGatewayID: true,
		AttrSeq: false, AttrChain: false, AttrDBNamespace: false, AttrServerAddr: false, AttrAdminIdentity: false, "user.name.x": false, "": false,
	} {
		if got := SessionConstant(key); got != want {
			t.Errorf("SessionConstant(%q) = %v, want %v", key, got, want)
		}
	}
}
