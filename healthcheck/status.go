package healthcheck

import (
	"net/netip"
	"time"
)

// RealServerStatus is the state of a real server, for status pages and metrics.
type RealServerStatus struct {
	VS          string         `json:"vs"`
	RS          netip.AddrPort `json:"rs"`
	Up          bool           `json:"up"`
	Weight      int            `json:"weight"` // misc_dynamic weight, -1 when none
	Since       time.Time      `json:"since"`  // last transition, or start
	Reason      string         `json:"reason"` // of the last transition
	Transitions int            `json:"transitions"`
	// LastCheck is the start of the latest attempt of any of its checkers.
	LastCheck time.Time       `json:"last_check"`
	Checkers  []CheckerStatus `json:"checkers,omitempty"`
	// Ignored lists the checker types lvsd does not run yet (counted as up).
	Ignored []string `json:"ignored,omitempty"`
	// Suspended: ha_suspend and no address of the virtual server is
	// configured here; its checks are skipped.
	Suspended bool `json:"suspended,omitempty"`
}

// CheckerStatus is the state of one checker.
type CheckerStatus struct {
	Type         string        `json:"type"`
	Name         string        `json:"name"`
	Up           bool          `json:"up"`
	LastCheck    time.Time     `json:"last_check"` // start of the latest attempt
	LastDuration time.Duration `json:"last_duration"`
	LastOK       bool          `json:"last_ok"`
	LastReason   string        `json:"last_reason,omitempty"`
	Failures     int           `json:"failures"` // failed attempts in a row
	Transitions  int           `json:"transitions"`
	Checks       uint64        `json:"checks"`
	Skipped      uint64        `json:"skipped,omitempty"` // attempts skipped while suspended
	NextCheck    time.Time     `json:"next_check"`
}

// Snapshot returns the state of every real server, in configuration order.
func (s *Scheduler) Snapshot() []RealServerStatus {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]RealServerStatus, 0, len(s.order))
	for _, r := range s.order {
		st := RealServerStatus{VS: r.key.vs, RS: r.key.rs, Up: r.up, Weight: r.weight, Since: r.since,
			Reason: r.reason, Transitions: r.transitions, Ignored: append([]string(nil), r.ignored...), Suspended: r.suspended}
		for _, c := range r.checks {
			cs := CheckerStatus{Type: c.cfg.Type, Name: c.name(), Up: c.up, LastCheck: c.lastStart,
				LastDuration: c.lastDur, LastOK: c.lastOK, LastReason: c.lastReason, Failures: c.failures,
				Transitions: c.transitions, Checks: c.checks, Skipped: c.skipped}
			if c.idx >= 0 {
				cs.NextCheck = c.due
			}
			if c.lastStart.After(st.LastCheck) {
				st.LastCheck = c.lastStart
			}
			st.Checkers = append(st.Checkers, cs)
		}
		out = append(out, st)
	}
	return out
}
