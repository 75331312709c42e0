package testenv

import (
	"net"
	"strconv"
	"testing"
)

// MariaDB is the MariaDB server services.sh runs: an admin, a demo user
// (mysql_native_password) and an ed25519 user, with their databases.
type MariaDB struct {
	Host             string
	Port             int
	Socket           string
	AdminUser        string
	AdminPassword    string
	DemoUser         string
	DemoPassword     string
	DemoPasswordFile string
	DemoDB           string
	TestDB           string
}

// String never shows a password.
func (m MariaDB) String() string {
	return "{" + m.Addr() + " admin=" + m.AdminUser + " demo=" + m.DemoUser + ":" + mask(m.DemoPassword) + "}"
}

// GoString never shows a password.
func (m MariaDB) GoString() string { return "testenv.MariaDB" + m.String() }

// Addr is host:port.
func (m MariaDB) Addr() string { return net.JoinHostPort(m.Host, strconv.Itoa(m.Port)) }

// MySQL returns the MariaDB server, verified reachable.
func MySQL(t testing.TB) MariaDB {
	t.Helper()
	s := setting{t: t, src: defaultSource(), service: "mariadb"}
	s.require("PAMTRAIL_MYSQL_HOST", "PAMTRAIL_MYSQL_PORT", "PAMTRAIL_MYSQL_ADMIN_USER", "PAMTRAIL_MYSQL_ADMIN_PASSWORD",
		"PAMTRAIL_MYSQL_DEMO_USER", "PAMTRAIL_MYSQL_DEMO_PASSWORD_FILE", "PAMTRAIL_MYSQL_DEMO_DB", "PAMTRAIL_MYSQL_TEST_DB")
	m := MariaDB{
		Host:             s.str("PAMTRAIL_MYSQL_HOST"),
		Port:             s.port("PAMTRAIL_MYSQL_PORT"),
		Socket:           s.str("PAMTRAIL_MYSQL_SOCKET"),
		AdminUser:        s.str("PAMTRAIL_MYSQL_ADMIN_USER"),
		AdminPassword:    s.str("PAMTRAIL_MYSQL_ADMIN_PASSWORD"),
		DemoUser:         s.str("PAMTRAIL_MYSQL_DEMO_USER"),
		DemoPassword:     s.secret("PAMTRAIL_MYSQL_DEMO_PASSWORD_FILE"),
		DemoPasswordFile: s.file("PAMTRAIL_MYSQL_DEMO_PASSWORD_FILE"),
		DemoDB:           s.str("PAMTRAIL_MYSQL_DEMO_DB"),
		TestDB:           s.str("PAMTRAIL_MYSQL_TEST_DB"),
	}
	s.dial(m.Host, m.Port)
	return m
}
