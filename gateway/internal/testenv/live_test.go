package testenv

// These tests check the services deploy/local/services.sh provisions, through
// the helpers other packages use: each PostgreSQL role really gets its auth
// method, TLS verifies against the exported CA, pgbouncer and sshd accept the
// exported credentials. They need the real services (make test starts them).

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgproto3"
	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"
)

// firstAuthRequest sends a startup message and returns the server's first
// answer, which names the authentication method pg_hba.conf chose.
func firstAuthRequest(t *testing.T, addr, user, db string) pgproto3.BackendMessage {
	t.Helper()
	conn, err := net.DialTimeout("tcp", addr, dialTimeout)
	if err != nil {
		t.Fatalf("dial %s: %v", addr, err)
	}
	defer conn.Close()
	if err := conn.SetDeadline(time.Now().Add(10 * time.Second)); err != nil {
		t.Fatal(err)
	}
	fe := pgproto3.NewFrontend(conn, conn)
	fe.Send(&pgproto3.StartupMessage{
		ProtocolVersion: pgproto3.ProtocolVersionNumber,
		Parameters:      map[string]string{"user": user, "database": db},
	})
	if err := fe.Flush(); err != nil {
		t.Fatalf("send startup: %v", err)
	}
	msg, err := fe.Receive()
	if err != nil {
		t.Fatalf("receive auth request: %v", err)
	}
	return msg
}

func queryString(t *testing.T, dsn, sql string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	defer conn.Close(context.Background())
	var out string
	if err := conn.QueryRow(ctx, sql).Scan(&out); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
	return out
}

func TestLivePostgresAuthMethods(t *testing.T) {
	pg := Postgres(t)
	tests := []struct {
		method   string
		user     string
		password string
		want     pgproto3.BackendMessage
	}{
		{"scram-sha-256", pg.DemoUser, pg.DemoPassword, &pgproto3.AuthenticationSASL{}},
		{"scram-sha-256 (admin)", pg.AdminUser, pg.AdminPassword, &pgproto3.AuthenticationSASL{}},
		{"md5", pg.MD5User, pg.MD5Password, &pgproto3.AuthenticationMD5Password{}},
		{"password", pg.PlainUser, pg.PlainPassword, &pgproto3.AuthenticationCleartextPassword{}},
		{"trust", pg.TrustUser, "", &pgproto3.AuthenticationOk{}},
	}
	for _, tt := range tests {
		t.Run(tt.method, func(t *testing.T) {
			if tt.user == "" {
				t.Fatalf("no role for %s in services.env: run deploy/local/services.sh up postgres", tt.method)
			}
			got := firstAuthRequest(t, pg.Addr(), tt.user, pg.DemoDB)
			if fmt.Sprintf("%T", got) != fmt.Sprintf("%T", tt.want) {
				t.Fatalf("server asked %s for %T, want %T", tt.user, got, tt.want)
			}
			good := dsn(pg.Host, pg.Port, tt.user, tt.password, pg.DemoDB, "disable")
			if who := queryString(t, good, "SELECT current_user"); who != tt.user {
				t.Fatalf("logged in as %q, want %q", who, tt.user)
			}
			if tt.password == "" {
				return
			}
			ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
			defer cancel()
			bad := dsn(pg.Host, pg.Port, tt.user, "wrong-"+tt.password, pg.DemoDB, "disable")
			if conn, err := pgx.Connect(ctx, bad); err == nil {
				conn.Close(context.Background())
				t.Fatalf("%s logged in with a wrong password", tt.user)
			}
		})
	}
}

func TestLivePostgresTLSVerifiesAgainstLocalCA(t *testing.T) {
	pg := Postgres(t)
	for _, host := range []string{"127.0.0.1", "localhost"} {
		t.Run(host, func(t *testing.T) {
			dsn := fmt.Sprintf("host=%s port=%d user=%s password=%s dbname=%s sslmode=verify-full sslrootcert=%s",
				host, pg.Port, pg.DemoUser, pg.DemoPassword, pg.DemoDB, pg.CAFile)
			if ssl := queryString(t, dsn, "SELECT ssl::text FROM pg_stat_ssl WHERE pid = pg_backend_pid()"); ssl != "true" {
				t.Fatalf("pg_stat_ssl.ssl = %s, want true", ssl)
			}
		})
	}
}

func TestLivePostgresTestDatabase(t *testing.T) {
	pg := Postgres(t)
	owner := queryString(t, pg.AdminDSN(pg.TestDB),
		"SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = current_database()")
	if owner != pg.AdminUser {
		t.Fatalf("%s is owned by %s, want %s", pg.TestDB, owner, pg.AdminUser)
	}
	if super := queryString(t, pg.AdminDSN("postgres"), "SELECT rolsuper::text FROM pg_roles WHERE rolname = current_user"); super != "true" {
		t.Fatalf("%s is not a superuser", pg.AdminUser)
	}
}

func TestLivePgBouncer(t *testing.T) {
	pg := Postgres(t)
	addr := PgBouncer(t)
	if _, ok := firstAuthRequest(t, addr, pg.DemoUser, pg.DemoDB).(*pgproto3.AuthenticationSASL); !ok {
		t.Fatal("pgbouncer does not ask for SCRAM")
	}
	host, port, _ := net.SplitHostPort(addr)
	n, _ := strconv.Atoi(port)
	// Session pooling forwards to PostgreSQL; the SCRAM verifier in the
	// userlist must also get pgbouncer logged in upstream.
	if who := queryString(t, dsn(host, n, pg.DemoUser, pg.DemoPassword, pg.DemoDB, "disable"), "SELECT current_user"); who != pg.DemoUser {
		t.Fatalf("logged in as %q through pgbouncer", who)
	}
}

func TestLiveSSHD(t *testing.T) {
	target := SSHD(t)
	keyPEM, err := os.ReadFile(target.KeyFile)
	if err != nil {
		t.Fatal(err)
	}
	signer, err := ssh.ParsePrivateKey(keyPEM)
	if err != nil {
		t.Fatalf("PAMTRAIL_SSHD_KEY: %v", err)
	}
	// Both forms of the host key must pin the server: the line and the file.
	lineFile := t.TempDir() + "/known_hosts"
	if err := os.WriteFile(lineFile, []byte(target.KnownHosts+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name       string
		knownHosts string
		auth       ssh.AuthMethod
	}{
		{"key, known_hosts line", lineFile, ssh.PublicKeys(signer)},
		{"key, known_hosts file", target.KnownHostsFile, ssh.PublicKeys(signer)},
		{"password", lineFile, ssh.Password(target.Password)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			hostKeys, err := knownhosts.New(tt.knownHosts)
			if err != nil {
				t.Fatalf("known_hosts: %v", err)
			}
			client, err := ssh.Dial("tcp", target.Addr(), &ssh.ClientConfig{
				User: target.User, Auth: []ssh.AuthMethod{tt.auth}, HostKeyCallback: hostKeys, Timeout: 10 * time.Second,
			})
			if err != nil {
				t.Fatalf("ssh %s@%s: %v", target.User, target.Addr(), err)
			}
			defer client.Close()
			session, err := client.NewSession()
			if err != nil {
				t.Fatal(err)
			}
			defer session.Close()
			out, err := session.Output("id -un")
			if err != nil {
				t.Fatalf("id -un: %v", err)
			}
			if got := strings.TrimSpace(string(out)); got != target.User {
				t.Fatalf("remote user %q, want %q", got, target.User)
			}
		})
	}
}

func TestLiveElasticsearch(t *testing.T) {
	base := Elasticsearch(t)
	resp, body, err := httpGet(base + "/_nodes/_local?filter_path=nodes.*.version")
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("GET _nodes: %v %v", err, resp)
	}
	var nodes struct {
		Nodes map[string]struct{ Version string } `json:"nodes"`
	}
	if err := json.Unmarshal(body, &nodes); err != nil || len(nodes.Nodes) != 1 {
		t.Fatalf("unexpected _nodes answer %s: %v", body, err)
	}
	for _, n := range nodes.Nodes {
		major, _, _ := strings.Cut(n.Version, ".")
		if m, _ := strconv.Atoi(major); m < 8 {
			t.Fatalf("Elasticsearch %s, want 8 or newer", n.Version)
		}
	}
}

func TestLiveTLSCertificateChainsToCA(t *testing.T) {
	files := TLS(t)
	caPEM, err := os.ReadFile(files.CAFile)
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(caPEM) {
		t.Fatalf("%s holds no PEM certificate", files.CAFile)
	}
	pair, err := tls.LoadX509KeyPair(files.ServerCertFile, files.ServerKeyFile)
	if err != nil {
		t.Fatalf("server key pair: %v", err)
	}
	leaf, err := x509.ParseCertificate(pair.Certificate[0])
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"localhost", "127.0.0.1", "::1"} {
		if _, err := leaf.Verify(x509.VerifyOptions{DNSName: name, Roots: roots}); err != nil {
			t.Errorf("server certificate for %s: %v", name, err)
		}
	}
	if _, err := tls.LoadX509KeyPair(files.CAFile, files.CAKeyFile); err != nil {
		t.Errorf("CA key does not match the CA certificate: %v", err)
	}
}
