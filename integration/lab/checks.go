package lab

import (
	"fmt"
	"slices"
	"sort"
	"strings"
)

// NATSummary is what NATFailover observed, for narration and reports.
type NATSummary struct {
	Phases map[string]ClientReport // p1..p4 client answers
	Loops  map[string]ClientReport // p2 (real server failure), p4 (failover) request loops
	Waits  map[string]float64      // wait description -> seconds (-1 timeout)
}

// RealServerOutageMS is the longest client-visible gap while rs2 failed.
func (s NATSummary) RealServerOutageMS() int64 { return s.Loops["p2"].LongestGapMS }

// FailoverOutageMS is the longest client-visible gap across the failover.
func (s NATSummary) FailoverOutageMS() int64 { return s.Loops["p4"].LongestGapMS }

// CheckNATFailover checks the results of the NATFailover scenario against
// the expected behaviour of a keepalived NAT director pair. It returns one
// message per failed expectation (none means the pair behaved) and a
// summary of the observations.
func CheckNATFailover(r *Result) (fails []string, sum NATSummary) {
	fail := func(format string, args ...any) { fails = append(fails, fmt.Sprintf(format, args...)) }
	sum = NATSummary{Phases: map[string]ClientReport{}, Loops: map[string]ClientReport{}, Waits: r.Waits()}
	switch r.ExitCode {
	case 0:
	case 20:
		fail("the directors did not converge in phase 1 (VIPs on dirA, both real servers in IPVS): failure phases skipped")
	default:
		fail("scenario exit status %d (10: topology, 11: real servers, 12: directors did not start)", r.ExitCode)
	}
	var waits []string
	for w := range sum.Waits {
		waits = append(waits, w)
	}
	sort.Strings(waits)
	for _, w := range waits {
		if sum.Waits[w] < 0 {
			fail("timed out waiting for: %s", w)
		}
	}
	rs1, rs2 := RealServerIP(1)+":80", RealServerIP(2)+":80"
	vs := VIP + ":80"

	holders := func(tag string, want string) {
		for _, a := range []string{VIP, PrivateVIP} {
			if got := r.Holders(tag, a); !slices.Equal(got, []string{want}) {
				fail("%s: %s held by %v (ip addr), want only %s", tag, a, got, want)
			}
		}
	}
	reals := func(tag, ns string, want ...string) {
		svcs, err := r.IPVS(tag, ns)
		if err != nil {
			fail("%s: %s: ipvsadm -Ln: %v", tag, ns, err)
			return
		}
		s := FindService(svcs, "TCP", vs)
		if s == nil {
			fail("%s: %s: ipvsadm -Ln has no TCP %s: %q", tag, ns, vs, r.File(tag+"-ipvs-"+ns+".txt"))
			return
		}
		if s.Sched != "rr" || strings.Contains(s.Flags, "persistent") {
			fail("%s: %s: TCP %s is %q %q, want rr without persistence", tag, ns, vs, s.Sched, s.Flags)
		}
		if got := s.RealAddrs(); !slices.Equal(got, want) {
			fail("%s: %s: ipvsadm -Ln real servers %v, want %v", tag, ns, got, want)
		}
		for _, rs := range s.Reals {
			if rs.Forward != "Masq" || rs.Weight != 1 {
				fail("%s: %s: real server %s is %s weight %d, want Masq weight 1", tag, ns, rs.Addr, rs.Forward, rs.Weight)
			}
		}
	}
	client := func(tag string, want ...string) {
		c, err := r.Client(tag)
		if err != nil {
			fail("%s: client: %v", tag, err)
			return
		}
		sum.Phases[tag] = c
		if c.Requests == 0 || c.Failed != 0 {
			fail("%s: client: %d of %d requests failed: %v", tag, c.Failed, c.Requests, c.Errors)
		}
		var names []string
		for n := range c.Answers {
			names = append(names, n)
		}
		sort.Strings(names)
		if !slices.Equal(names, want) {
			fail("%s: client answered by %v (%v), want %v", tag, names, c.Answers, want)
		}
		if len(want) == 2 {
			d := c.Answers[want[0]] - c.Answers[want[1]]
			if d < -2 || d > 2 {
				fail("%s: rr spread %v is uneven", tag, c.Answers)
			}
		}
	}
	loops := func(tag string) {
		l, err := r.Loop(tag)
		if err != nil {
			fail("%s: client loop: %v", tag, err)
			return
		}
		sum.Loops[tag] = l
		if l.Requests == 0 || len(l.Answers) == 0 {
			fail("%s: client loop got no answers (%d requests, %v)", tag, l.Requests, l.Errors)
		}
	}

	// Phase 1: dirA is master of both instances, both directors have the
	// service with both real servers, the client is spread over both.
	holders("p1", DirectorA)
	reals("p1", DirectorA, rs1, rs2)
	reals("p1", DirectorB, rs1, rs2)
	client("p1", "rs1", "rs2")
	if r.ExitCode == 20 {
		return fails, sum
	}
	loops("p2")
	loops("p4")
	// Phase 2: TCP_CHECK removed rs2 everywhere; only rs1 answers.
	holders("p2", DirectorA)
	reals("p2", DirectorA, rs1)
	reals("p2", DirectorB, rs1)
	client("p2", "rs1")
	// Phase 3: rs2 is back.
	reals("p3", DirectorA, rs1, rs2)
	reals("p3", DirectorB, rs1, rs2)
	client("p3", "rs1", "rs2")
	// Phase 4: dirA is gone; dirB holds both VIPs (sync group) and serves.
	if slices.Contains(r.Namespaces("p4"), DirectorA) {
		fail("p4: the namespace %s still exists after the director was killed", DirectorA)
	}
	holders("p4", DirectorB)
	reals("p4", DirectorB, rs1, rs2)
	client("p4", "rs1", "rs2")
	return fails, sum
}
