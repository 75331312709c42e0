package testenv

import (
	"fmt"
	"net"
	"strconv"
	"strings"
	"testing"
)

// PG describes the PostgreSQL server and the roles services.sh provisions on
// it, one per upstream authentication method.
type PG struct {
	Host          string
	Port          int
	AdminUser     string // superuser, for fixtures
	AdminPassword string
	TestDB        string // owned by AdminUser, for tests
	DemoDB        string
	DemoUser      string // SCRAM-SHA-256, owns DemoDB
	DemoPassword  string
	MD5User       string // md5 authentication, md5-hashed password
	MD5Password   string
	PlainUser     string // cleartext "password" authentication
	PlainPassword string
	TrustUser     string // "trust" authentication, no password
	CAFile        string // CA that signed the server certificate (TLS tests)
	CAKeyFile     string // its key, to mint more certificates in tests
	PgBouncerPort int    // 0 when pgbouncer is not provisioned
}

// String prints p with passwords masked, so a failing test that logs it
// (%v, %+v) does not leak credentials.
func (p PG) String() string {
	p.AdminPassword, p.DemoPassword = mask(p.AdminPassword), mask(p.DemoPassword)
	p.MD5Password, p.PlainPassword = mask(p.MD5Password), mask(p.PlainPassword)
	type plain PG // drops the String method, avoiding recursion
	return fmt.Sprintf("%+v", plain(p))
}

// GoString masks passwords for %#v as String does for %v.
func (p PG) GoString() string { return "testenv.PG" + p.String() }

// Addr is host:port.
func (p PG) Addr() string { return net.JoinHostPort(p.Host, strconv.Itoa(p.Port)) }

// AdminDSN is a libpq URL for the admin role on db, without TLS.
func (p PG) AdminDSN(db string) string {
	return dsn(p.Host, p.Port, p.AdminUser, p.AdminPassword, db, "disable")
}

// DemoDSN is a libpq URL for the demo role, directly (not through pamtrail).
func (p PG) DemoDSN() string {
	return dsn(p.Host, p.Port, p.DemoUser, p.DemoPassword, p.DemoDB, "disable")
}

// Postgres returns the PostgreSQL server, verified reachable.
func Postgres(t testing.TB) PG {
	t.Helper()
	return postgresFrom(t, defaultSource())
}

func postgresFrom(t testing.TB, src source) PG {
	t.Helper()
	s := setting{t: t, src: src, service: "postgres"}
	s.require("PAMTRAIL_PG_HOST", "PAMTRAIL_PG_PORT", "PAMTRAIL_PG_ADMIN_USER", "PAMTRAIL_PG_ADMIN_PASSWORD")
	p := PG{
		Host:          s.str("PAMTRAIL_PG_HOST"),
		Port:          s.port("PAMTRAIL_PG_PORT"),
		AdminUser:     s.str("PAMTRAIL_PG_ADMIN_USER"),
		AdminPassword: s.str("PAMTRAIL_PG_ADMIN_PASSWORD"),
		TestDB:        s.strOr("PAMTRAIL_PG_TEST_DB", "pamtrail_test"),
		DemoDB:        s.strOr("PAMTRAIL_PG_DEMO_DB", "demo"),
		DemoUser:      s.strOr("PAMTRAIL_PG_DEMO_USER", "pamtrail_demo"),
		DemoPassword:  s.secret("PAMTRAIL_PG_DEMO_PASSWORD_FILE"),
		MD5User:       s.str("PAMTRAIL_PG_MD5_USER"),
		MD5Password:   s.secret("PAMTRAIL_PG_MD5_PASSWORD_FILE"),
		PlainUser:     s.str("PAMTRAIL_PG_PLAIN_USER"),
		PlainPassword: s.secret("PAMTRAIL_PG_PLAIN_PASSWORD_FILE"),
		TrustUser:     s.str("PAMTRAIL_PG_TRUST_USER"),
		CAFile:        s.str("PAMTRAIL_TLS_CA"),
		CAKeyFile:     s.str("PAMTRAIL_TLS_CA_KEY"),
		PgBouncerPort: s.port("PAMTRAIL_PGBOUNCER_PORT"),
	}
	s.dial(p.Host, p.Port)
	return p
}

// PgBouncer returns host:port of pgbouncer (session pooling in front of
// Postgres' DemoDB, SCRAM for DemoUser), verified reachable.
func PgBouncer(t testing.TB) string {
	t.Helper()
	return pgBouncerFrom(t, defaultSource())
}

func pgBouncerFrom(t testing.TB, src source) string {
	t.Helper()
	s := setting{t: t, src: src, service: "pgbouncer"}
	s.require("PAMTRAIL_PGBOUNCER_HOST", "PAMTRAIL_PGBOUNCER_PORT")
	host, port := s.str("PAMTRAIL_PGBOUNCER_HOST"), s.port("PAMTRAIL_PGBOUNCER_PORT")
	s.dial(host, port)
	return net.JoinHostPort(host, strconv.Itoa(port))
}

// Elasticsearch returns the Elasticsearch URL (no trailing slash), verified
// answering. It probes /_cluster/health, not /: the integ-test-zip
// distribution lacks the module serving GET / and answers it with 405.
func Elasticsearch(t testing.TB) string {
	t.Helper()
	return elasticsearchFrom(t, defaultSource())
}

func elasticsearchFrom(t testing.TB, src source) string {
	t.Helper()
	s := setting{t: t, src: src, service: "elasticsearch"}
	s.require("PAMTRAIL_ES_URL")
	base := strings.TrimRight(s.str("PAMTRAIL_ES_URL"), "/")
	if err := checkHTTPURL(base); err != nil {
		s.fail("PAMTRAIL_ES_URL=%q: %v", base, err)
	}
	resp, body, err := httpGet(base + "/_cluster/health")
	if err != nil {
		s.fail("unreachable at %s (%v)", base, err)
		return base
	}
	if resp.StatusCode != 200 {
		s.fail("%s/_cluster/health answered %s: %.200s", base, resp.Status, body)
	}
	return base
}

// ESCluster is the 3-node Elasticsearch cluster of `services.sh up
// es-cluster`.
type ESCluster struct {
	URLs []string // one per node, node 1 first
	Root string   // PAMTRAIL_HOME/es-cluster: node-N/elasticsearch.pid
}

// ElasticsearchCluster returns the cluster, verified answering with every
// node joined and every shard copy assigned (green).
func ElasticsearchCluster(t testing.TB) ESCluster {
	t.Helper()
	s := setting{t: t, src: defaultSource(), service: "es-cluster"}
	s.require("PAMTRAIL_ES_CLUSTER_URLS")
	s.require("PAMTRAIL_ES_CLUSTER_ROOT")
	c := ESCluster{URLs: strings.Split(s.str("PAMTRAIL_ES_CLUSTER_URLS"), ","), Root: s.str("PAMTRAIL_ES_CLUSTER_ROOT")}
	resp, body, err := httpGet(c.URLs[0] + "/_cluster/health?wait_for_status=green&wait_for_nodes=" + strconv.Itoa(len(c.URLs)) + "&timeout=90s")
	if err != nil || resp.StatusCode != 200 {
		s.fail("cluster at %s not answering with %d nodes (%v): %.200s", c.URLs[0], len(c.URLs), err, body)
	}
	return c
}

// SSHTarget describes the OpenSSH target and the account's credentials.
type SSHTarget struct {
	Host           string
	Port           int
	User           string
	KeyFile        string // the account's ed25519 private key (OpenSSH format)
	Password       string // the same user's password, for password-auth tests
	KnownHosts     string // known_hosts line for the server's ed25519 host key
	KnownHostsFile string // a file holding that line
}

// String prints s with the password masked.
func (s SSHTarget) String() string {
	s.Password = mask(s.Password)
	type plain SSHTarget
	return fmt.Sprintf("%+v", plain(s))
}

// GoString masks the password for %#v as String does for %v.
func (s SSHTarget) GoString() string { return "testenv.SSHTarget" + s.String() }

// mask hides a secret but keeps whether it is set, which is what a failing
// test needs to know.
func mask(secret string) string {
	if secret == "" {
		return ""
	}
	return "<set>"
}

// Addr is host:port.
func (s SSHTarget) Addr() string { return net.JoinHostPort(s.Host, strconv.Itoa(s.Port)) }

// SSHD returns the OpenSSH target, verified reachable.
func SSHD(t testing.TB) SSHTarget {
	t.Helper()
	return sshdFrom(t, defaultSource())
}

func sshdFrom(t testing.TB, src source) SSHTarget {
	t.Helper()
	s := setting{t: t, src: src, service: "sshd"}
	s.require("PAMTRAIL_SSHD_HOST", "PAMTRAIL_SSHD_PORT", "PAMTRAIL_SSHD_USER", "PAMTRAIL_SSHD_KEY",
		"PAMTRAIL_SSHD_PASSWORD_FILE", "PAMTRAIL_SSHD_KNOWN_HOSTS")
	target := SSHTarget{
		Host:           s.str("PAMTRAIL_SSHD_HOST"),
		Port:           s.port("PAMTRAIL_SSHD_PORT"),
		User:           s.str("PAMTRAIL_SSHD_USER"),
		KeyFile:        s.file("PAMTRAIL_SSHD_KEY"),
		Password:       s.secret("PAMTRAIL_SSHD_PASSWORD_FILE"),
		KnownHosts:     s.str("PAMTRAIL_SSHD_KNOWN_HOSTS"),
		KnownHostsFile: s.str("PAMTRAIL_SSHD_KNOWN_HOSTS_FILE"),
	}
	s.dial(target.Host, target.Port)
	return target
}

// TLSFiles are the local CA and a server certificate for localhost,
// 127.0.0.1 and ::1 that it signed (PEM files).
type TLSFiles struct {
	CAFile, CAKeyFile             string
	ServerCertFile, ServerKeyFile string
}

// TLS returns the local CA and server certificate services.sh generates on
// every `up`, for tests of the gateway's own TLS listeners.
func TLS(t testing.TB) TLSFiles {
	t.Helper()
	return tlsFrom(t, defaultSource())
}

func tlsFrom(t testing.TB, src source) TLSFiles {
	t.Helper()
	// The CA comes with any service; postgres is the one that serves it.
	s := setting{t: t, src: src, service: "postgres"}
	s.require("PAMTRAIL_TLS_CA", "PAMTRAIL_TLS_CA_KEY", "PAMTRAIL_TLS_SERVER_CERT", "PAMTRAIL_TLS_SERVER_KEY")
	return TLSFiles{
		CAFile:         s.file("PAMTRAIL_TLS_CA"),
		CAKeyFile:      s.file("PAMTRAIL_TLS_CA_KEY"),
		ServerCertFile: s.file("PAMTRAIL_TLS_SERVER_CERT"),
		ServerKeyFile:  s.file("PAMTRAIL_TLS_SERVER_KEY"),
	}
}
