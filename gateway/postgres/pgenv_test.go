package postgres

import (
	"strconv"
	"testing"

	"github.com/pamtrail/pamtrail/gateway/config"
	"github.com/pamtrail/pamtrail/gateway/internal/testenv"
)

// pgServer is the real PostgreSQL the integration tests run against, as
// deploy/local/services.sh provisions it (roles with SCRAM, md5, password
// and trust authentication; TLS with the local CA).
type pgServer struct{ testenv.PG }

// postgresServer fails the test with the fix when PostgreSQL is missing.
func postgresServer(t testing.TB) pgServer {
	t.Helper()
	pg := pgServer{testenv.Postgres(t)}
	for name, v := range map[string]string{"md5 role": pg.MD5User, "password role": pg.PlainUser, "trust role": pg.TrustUser, "CA": pg.CAKeyFile} {
		if v == "" {
			t.Fatalf("the %s is not provisioned: run deploy/local/services.sh up postgres", name)
		}
	}
	return pg
}

// account is a gateway account for one of the provisioned roles.
func (s pgServer) account(t testing.TB, name, role, password, db string) config.Account {
	a := config.Account{Name: name, Type: "postgres", Host: s.Host, Port: s.Port, Database: db, User: role}
	if password != "" {
		a.Secret = writeSecret(t, password)
	}
	return a
}

// demoAccount is the SCRAM role on the demo database.
func (s pgServer) demoAccount(t testing.TB) config.Account {
	return s.account(t, "demo", s.DemoUser, s.DemoPassword, s.DemoDB)
}

// directDSN connects straight to PostgreSQL, bypassing the gateway.
func (s pgServer) directDSN(user, password, db string) string {
	return "host=" + s.Host + " port=" + strconv.Itoa(s.Port) + " user=" + user + " password=" + password +
		" dbname=" + db + " sslmode=disable connect_timeout=10"
}
