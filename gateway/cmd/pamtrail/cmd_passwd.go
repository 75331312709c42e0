package main

import (
	"bufio"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/pamtrail/pamtrail/gateway/auth/scram"
	"github.com/pamtrail/pamtrail/gateway/mysql"
)

// runPasswd prints a SCRAM-SHA-256 verifier for users[].postgres_scram (or,
// with --mysql-native, a hash for users[].mysql_native_password). The
// password is read from stdin (or --password-env), never from argv, so it
// does not show up in shell history or the process list.
func runPasswd(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("passwd", flag.ContinueOnError)
	fs.SetOutput(stderr)
	env := fs.String("password-env", "", "read the password from this environment variable instead of stdin")
	iterations := fs.Int("iterations", scram.DefaultIterations, "PBKDF2 iterations")
	native := fs.Bool("mysql-native", false, "print the mysql_native_password hash for users[].mysql_native_password instead")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	var password string
	if *env != "" {
		password = os.Getenv(*env)
		if password == "" {
			fmt.Fprintf(stderr, "pamtrail passwd: environment variable %s is empty\n", *env)
			return 2
		}
	} else {
		line, err := bufio.NewReader(os.Stdin).ReadString('\n')
		if err != nil && line == "" {
			fmt.Fprintln(stderr, "pamtrail passwd: type the password on stdin (echo -n … | pamtrail passwd)")
			return 2
		}
		password = strings.TrimRight(line, "\r\n")
	}
	if password == "" {
		fmt.Fprintln(stderr, "pamtrail passwd: empty password")
		return 2
	}
	if *native {
		fmt.Fprintln(stdout, mysql.NativePasswordHash(password))
		return 0
	}
	v, err := scram.NewVerifier(password, *iterations)
	if err != nil {
		fmt.Fprintf(stderr, "pamtrail passwd: %v\n", err)
		return 1
	}
	fmt.Fprintln(stdout, v.String())
	return 0
}
