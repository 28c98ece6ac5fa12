package integration_test

import (
	"sort"
	"testing"

	"github.com/lvsd/lvsd/integration/lab"
)

// natDebugFiles are shown when a NAT scenario fails.
var natDebugFiles = []string{"waits.txt", "dirA-keepalived.log", "dirB-keepalived.log", "dirA-lvsd.log", "dirB-lvsd.log"}

func checkNAT(t *testing.T, res *lab.Result) {
	t.Helper()
	fails, sum := lab.CheckNATFailover(res)
	for _, f := range fails {
		t.Error(f)
	}
	for _, p := range []string{"p1", "p2", "p3", "p4"} {
		t.Logf("%s answers: %v, failed %d", p, sum.Phases[p].Answers, sum.Phases[p].Failed)
	}
	p2, p4 := sum.Loops["p2"], sum.Loops["p4"]
	t.Logf("real server failure: %d of %d looped requests failed, longest gap %d ms", p2.Failed, p2.Requests, p2.LongestGapMS)
	t.Logf("master failure: %d of %d looped requests failed, client-visible outage %d ms", p4.Failed, p4.Requests, p4.LongestGapMS)
	var waits []string
	for w := range sum.Waits {
		waits = append(waits, w)
	}
	sort.Strings(waits)
	for _, w := range waits {
		t.Logf("wait %q: %.2fs", w, sum.Waits[w])
	}
}

// TestNATFailoverKeepalived runs the reference NAT director pair with
// keepalived as both directors (the behaviour lvsd must match): rr spreads
// a client over both real servers, TCP_CHECK removes a failed real server
// and re-adds it, and killing the master moves both VIPs (sync group) to
// the backup while traffic continues.
func TestNATFailoverKeepalived(t *testing.T) {
	im := needLab(t)
	sc, err := lab.NATFailover("keepalived")
	if err != nil {
		t.Fatal(err)
	}
	checkNAT(t, runLab(t, im, sc, natDebugFiles...))
}

// TestNATFailoverLVSD is the same scenario with lvsd as both directors
// (lvsd -n -l -f FILE -p PIDFILE), with the same assertions.
func TestNATFailoverLVSD(t *testing.T) {
	im := needLab(t)
	sc, err := lab.NATFailover("lvsd")
	if err != nil {
		t.Fatal(err)
	}
	checkNAT(t, runLab(t, im, sc, natDebugFiles...))
}
