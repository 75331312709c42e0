package config

import (
	"encoding/hex"
	"fmt"
	"net"
	"path"
	"regexp"
	"strings"
)

// Policy blocks (enforce) or flags (audit) dangerous actions on the
// accounts that name it. gateway/policy compiles and matches it.
type Policy struct {
	Name string `yaml:"name"`
	// Mode enforce stops a matching action; audit only flags it.
	Mode     string        `yaml:"mode"`
	SQL      []SQLRule     `yaml:"sql"`
	Commands []CommandRule `yaml:"commands"`
	Files    []FileRule    `yaml:"files"`
}

// Policy modes.
const (
	PolicyEnforce = "enforce"
	PolicyAudit   = "audit"
)

// SQLRule matches one SQL statement: by its leading keywords (Statement,
// e.g. "DROP DATABASE") or by a case-insensitive RE2 Pattern over the
// statement with comments removed and whitespace collapsed.
type SQLRule struct {
	ID        string `yaml:"id"`
	Statement string `yaml:"statement"`
	Pattern   string `yaml:"pattern"`
}

// CommandRule matches one shell command line (exec or typed at a prompt):
// by the program it runs (Program, e.g. reboot, also behind sudo, env,
// exec, nohup or a path) or by an RE2 Pattern over the line.
type CommandRule struct {
	ID      string `yaml:"id"`
	Program string `yaml:"program"`
	Pattern string `yaml:"pattern"`
}

// FileRule matches file-transfer operations (sftp, scp, rsync) on paths
// under Under.
type FileRule struct {
	ID    string `yaml:"id"`
	Under string `yaml:"under"`
	// Operations are the operations the rule covers; default upload.
	Operations []string `yaml:"operations"`
}

// FileOperations a FileRule may name: upload is any write of file content
// (sftp open for writing, scp/rsync into the path); the others are the
// sftp requests of the same name.
var FileOperations = []string{"upload", "download", "remove", "rename", "mkdir", "rmdir", "setstat", "symlink"}

// Admin is the admin API: terminate, lock, unlock, reload.
type Admin struct {
	// Address is host:port; TLS is required unless it is a loopback address.
	Address string     `yaml:"address"`
	TLS     *ServerTLS `yaml:"tls"`
	// Identities may call the API, each with a bearer token whose SHA-256
	// the config holds (pamtrail admin-token writes both).
	Identities []AdminIdentity `yaml:"identities"`
	// LocksFile persists the locks (JSON, 0600) across restarts and reloads.
	LocksFile string `yaml:"locks_file"`
}

// AdminIdentity is one administrator.
type AdminIdentity struct {
	Name        string `yaml:"name"`
	TokenSHA256 string `yaml:"token_sha256"`
}

// PolicyFor returns the policy an account names, nil without one.
func (c *Config) PolicyFor(account string) *Policy {
	for i := range c.Accounts {
		if c.Accounts[i].Name != account || c.Accounts[i].Policy == "" {
			continue
		}
		for j := range c.Policies {
			if c.Policies[j].Name == c.Accounts[i].Policy {
				return &c.Policies[j]
			}
		}
	}
	return nil
}

// IsLoopback reports whether a host:port listens on loopback only.
func IsLoopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

func (v *validator) policies(ps []Policy) map[string]bool {
	seen := map[string]bool{}
	for i, p := range ps {
		f := fmt.Sprintf("policies[%d]", i)
		v.uniqueName(f+".name", "policy", p.Name, seen)
		v.oneOf(f+".mode", p.Mode, PolicyEnforce, PolicyAudit)
		if len(p.SQL)+len(p.Commands)+len(p.Files) == 0 {
			v.add(f, "has no rules: add sql, commands or files")
		}
		ids := map[string]bool{}
		rule := func(field, id string) { v.uniqueName(field+".id", "rule id", id, ids) }
		for j, r := range p.SQL {
			rf := fmt.Sprintf("%s.sql[%d]", f, j)
			rule(rf, r.ID)
			v.exactlyOne(rf, "statement", r.Statement, "pattern", r.Pattern)
			v.pattern(rf+".pattern", r.Pattern)
			if r.Statement != "" && !statementPattern.MatchString(r.Statement) {
				v.add(rf+".statement", fmt.Sprintf("%q is not a sequence of SQL keywords (e.g. DROP DATABASE)", r.Statement))
			}
		}
		for j, r := range p.Commands {
			rf := fmt.Sprintf("%s.commands[%d]", f, j)
			rule(rf, r.ID)
			v.exactlyOne(rf, "program", r.Program, "pattern", r.Pattern)
			v.pattern(rf+".pattern", r.Pattern)
			if r.Program != "" && strings.ContainsAny(r.Program, " \t/") {
				v.add(rf+".program", fmt.Sprintf("%q must be a program name without spaces or slashes (use pattern for more)", r.Program))
			}
		}
		for j, r := range p.Files {
			rf := fmt.Sprintf("%s.files[%d]", f, j)
			rule(rf, r.ID)
			if !strings.HasPrefix(r.Under, "/") || path.Clean(r.Under) != r.Under {
				v.add(rf+".under", fmt.Sprintf("%q must be a clean absolute path, e.g. /etc", r.Under))
			}
			for k, op := range r.Operations {
				v.oneOf(fmt.Sprintf("%s.operations[%d]", rf, k), op, FileOperations...)
			}
		}
	}
	return seen
}

var statementPattern = regexp.MustCompile(`^[A-Za-z]+( [A-Za-z]+)*$`)

func (v *validator) exactlyOne(field, aName, a, bName, b string) {
	if (a == "") == (b == "") {
		v.add(field, fmt.Sprintf("set exactly one of %s and %s", aName, bName))
	}
}

func (v *validator) pattern(field, p string) {
	if p == "" {
		return
	}
	if _, err := regexp.Compile("(?i)" + p); err != nil {
		v.add(field, "not a valid regular expression: "+err.Error())
	}
}

func (v *validator) admin(a *Admin) {
	if a == nil {
		return
	}
	v.address("admin.address", a.Address)
	if a.TLS != nil {
		v.tlsPair("admin.tls", a.TLS.CertFile, a.TLS.KeyFile)
	} else if a.Address != "" && !IsLoopback(a.Address) {
		v.add("admin.tls", fmt.Sprintf("required: %s is not a loopback address, and admin tokens must not cross a network in clear", a.Address))
	}
	if len(a.Identities) == 0 {
		v.add("admin.identities", "must list at least one identity (pamtrail admin-token)")
	}
	seen := map[string]bool{}
	for i, id := range a.Identities {
		f := fmt.Sprintf("admin.identities[%d]", i)
		v.uniqueName(f+".name", "identity", id.Name, seen)
		if b, err := hex.DecodeString(id.TokenSHA256); err != nil || len(b) != 32 {
			v.add(f+".token_sha256", "must be 64 hex digits: the SHA-256 of the token (pamtrail admin-token)")
		}
	}
	if a.LocksFile == "" {
		v.add("admin.locks_file", "required")
	}
}
