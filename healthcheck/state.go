package healthcheck

import (
	"crypto/sha256"
	"encoding/json"
	"net/netip"
	"time"

	"github.com/lvsd/lvsd/conf"
	"github.com/lvsd/lvsd/internal/execscript"
	"github.com/lvsd/lvsd/internal/scriptqueue"
)

// rsKey identifies a real server of a virtual server across reloads.
type rsKey struct {
	vs string // conf VirtualServer.Key()
	rs netip.AddrPort
}

// rsState is a real server: up when every supported checker is up.
type rsState struct {
	key     rsKey
	vs      *conf.VirtualServer
	cfg     *conf.RealServer
	checks  []*checkState
	ignored []string // checker types lvsd does not run yet

	up          bool
	weight      int // -1: no misc_dynamic weight
	transitions int
	since       time.Time
	reason      string

	notifyUp, notifyDown *notifyScript                           // nil: none
	notify               *scriptqueue.Queue[*execscript.Command] // survives reloads: keeps scripts in order

	haRanges  []addrRange // ha_suspend: the virtual server's addresses (nil: never suspended)
	suspended bool        // none of them is local: attempts are skipped
}

// allUp reports whether every checker is up (true without checkers).
func (r *rsState) allUp() bool {
	for _, c := range r.checks {
		if !c.up {
			return false
		}
	}
	return true
}

// dynWeight is the weight the misc_dynamic checkers set: keepalived adds each
// one's (status - 2 - configured weight) to the configured weight, which with
// one such checker is simply its status - 2. -1 when none has set one.
func (r *rsState) dynWeight() int {
	n, sum := 0, 0
	for _, c := range r.checks {
		if c.weight >= 0 {
			n++
			sum += c.weight - r.cfg.Weight
		}
	}
	if n == 0 {
		return -1
	}
	return max(r.cfg.Weight+sum, 0)
}

// checkState is one checker of a real server and its retry state.
type checkState struct {
	rs  *rsState
	fp  digest // identity across reloads (see fingerprint)
	set digest // settings
	cfg *conf.Checker
	p   prober

	interval, delayBeforeRetry, warmup time.Duration
	retry                              int
	dynamic                            bool

	// keepalived's checker state: is_up, has_run, retry_it.
	up      bool
	hasRun  bool
	retryIt int
	weight  int // last misc_dynamic weight, -1: none

	// scheduling
	due     time.Time
	isRetry bool // the next attempt is a retry
	idx     int  // index in the heap, -1 when not there
	queued  bool
	running bool
	removed bool

	// status
	lastStart   time.Time
	lastDur     time.Duration
	lastOK      bool
	lastReason  string
	failures    int // failed attempts in a row
	transitions int
	checks      uint64
	skipped     uint64 // attempts skipped while suspended (ha_suspend)
}

// name names the checker in logs, reasons and the status ("TCP_CHECK
// 192.0.2.1:80"); made when needed rather than kept by every checker.
func (c *checkState) name() string { return checkerName(c.cfg, c.rs.cfg) }

// record applies the outcome of an attempt to the checker, as keepalived's
// checkers do: a success brings it up at once; a failure of an up checker is
// retried retry times, each after delay_before_retry, before it goes down; a
// down checker is not retried. It reports whether to retry and whether the
// checker changed state.
func (c *checkState) record(ok bool) (retry, changed bool) {
	if ok {
		c.failures = 0
		c.retryIt = 0
		changed = !c.up
		c.up, c.hasRun = true, true
		return false, changed
	}
	c.failures++
	if (c.up || !c.hasRun) && c.retryIt >= c.retry {
		c.retryIt = 0
		changed = c.up
		c.up, c.hasRun = false, true
		return false, changed
	}
	c.hasRun = true
	if c.up {
		c.retryIt++
		return true, false
	}
	return false, false
}

// nextAfter is the first due+k*period (k >= 1) after now: a check that overran
// its period skips the periods it missed instead of running twice.
func nextAfter(due time.Time, period time.Duration, now time.Time) time.Time {
	n := due.Add(period)
	if n.After(now) {
		return n
	}
	k := now.Sub(due)/period + 1
	return due.Add(k * period)
}

// alpha tells whether a checker starts down: its own alpha, else the real
// server's (which conf inherits from the virtual server).
func alpha(c *conf.Checker, rs *conf.RealServer) bool {
	if c.Alpha != nil {
		return *c.Alpha
	}
	return rs.Alpha
}

// fingerprint identifies what a checker checks; settings adds how (timers,
// alpha, logging). Across a reload a checker with the same fingerprint is the
// same checker and keeps its state, as in keepalived; when only its settings
// changed it takes the new ones. Both are digests (SHA-256, the first 16
// bytes) of a JSON encoding: a checker keeps 32 bytes for them, not the
// encodings themselves (about a kilobyte).
func fingerprint(c *conf.Checker, rs *conf.RealServer, g *conf.Global) (identity, settings digest) {
	cc := *c
	cc.Pos = conf.Pos{}
	if c.CheckerOptions != nil {
		o := *c.CheckerOptions // a copy: the checker's own is left as it is
		var urls []conf.URL
		for _, u := range o.URLs {
			u.Pos = conf.Pos{}
			urls = append(urls, u)
		}
		o.URLs = urls
		if o.MiscPath != nil {
			mp := *o.MiscPath
			mp.Pos = conf.Pos{}
			o.MiscPath = &mp
		}
		cc.CheckerOptions = &o
	}
	timers, alpha, logAll := cc.Timers, cc.Alpha, cc.LogAllFailures
	cc.Timers, cc.Alpha, cc.LogAllFailures = conf.CheckTimers{}, nil, false
	id, _ := json.Marshal(struct {
		C           conf.Checker
		RSAddr      netip.Addr
		User, Group string
	}{cc, rs.Addr, g.ScriptUser, g.ScriptGroup})
	set, _ := json.Marshal(struct {
		T       conf.CheckTimers
		A       *bool
		L       bool
		RSAlpha bool
	}{timers, alpha, logAll, rs.Alpha})
	return newDigest(id), newDigest(set)
}

// digest identifies an encoding: equal digests, equal encodings (a
// collision of 128 bits of SHA-256 is not a concern).
type digest [16]byte

func newDigest(b []byte) digest {
	sum := sha256.Sum256(b)
	return digest(sum[:16])
}
