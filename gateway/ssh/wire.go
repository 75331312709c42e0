package ssh

import (
	gossh "golang.org/x/crypto/ssh"
)

// Request and channel-open payloads (RFC 4254), decoded with the SSH wire
// format. Each parser rejects a malformed payload instead of guessing.

// ptyRequest is the payload of "pty-req" (RFC 4254 6.2).
type ptyRequest struct {
	Term     string
	Cols     uint32
	Rows     uint32
	WidthPx  uint32
	HeightPx uint32
	Modes    string
}

func parsePtyRequest(payload []byte) (*ptyRequest, error) {
	var p ptyRequest
	if err := gossh.Unmarshal(payload, &p); err != nil {
		return nil, err
	}
	return &p, nil
}

func parseWindowChange(payload []byte) (cols, rows int, ok bool) {
	var w struct {
		Cols, Rows, WidthPx, HeightPx uint32
	}
	if err := gossh.Unmarshal(payload, &w); err != nil {
		return 0, 0, false
	}
	return int(w.Cols), int(w.Rows), true
}

// parseEnvName returns the variable name of an "env" request.
func parseEnvName(payload []byte) (string, bool) {
	var e struct{ Name, Value string }
	if err := gossh.Unmarshal(payload, &e); err != nil {
		return "", false
	}
	return e.Name, true
}

// parseString decodes a payload that starts with one string: the command
// of "exec", the name of "subsystem", the signal of "exit-signal".
func parseString(payload []byte) (string, bool) {
	var v struct {
		S    string
		Rest []byte `ssh:"rest"`
	}
	if err := gossh.Unmarshal(payload, &v); err != nil {
		return "", false
	}
	return v.S, true
}

func parseUint32(payload []byte) (uint32, bool) {
	var v struct{ N uint32 }
	if err := gossh.Unmarshal(payload, &v); err != nil {
		return 0, false
	}
	return v.N, true
}

// directTCPIP is the payload of a "direct-tcpip" channel open (RFC 4254 7.2).
type directTCPIP struct {
	Host       string
	Port       uint32
	OriginHost string
	OriginPort uint32
}
