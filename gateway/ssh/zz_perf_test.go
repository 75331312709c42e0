package ssh_test

import (
	"fmt"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestZZShellCat(t *testing.T) {
	g := startGateway(t, gatewayOptions{})
	for _, route := range []string{"direct", "gateway"} {
		var args []string
		if route == "direct" {
			args = []string{"-F", "/dev/null", "-i", g.target.KeyFile, "-o", "IdentitiesOnly=yes", "-o", "UserKnownHostsFile=" + g.target.KnownHostsFile, "-tt", "-p", strconv.Itoa(g.target.Port), g.target.User + "@127.0.0.1"}
		} else {
			args = append(g.sshArgs(g.aliceKey), "-tt", "-p", strconv.Itoa(g.port), accountKey+"@127.0.0.1")
		}
		cmd := exec.Command("ssh", args...)
		cmd.Stdin = strings.NewReader("cat /tmp/big.txt; sleep 0.5; exit\n")
		start := time.Now()
		out, _ := cmd.Output()
		fmt.Printf("%s: %v, %d bytes out\n", route, time.Since(start), len(out))
	}
	evs := g.waitSessionEnds(1)
	for _, e := range ofKind(evs, "command") {
		fmt.Printf("cmd %q output %d bytes\n", e.Command.Text, len(e.Command.Output))
	}
	fmt.Println(len(ofKind(evs, "output")), "output records")
}
