// Package clock is lvsd's time source. The VRRP state machines and the
// health-check scheduler take a Clock instead of calling the time package,
// so their tests drive time by hand; the daemon gives them System (Go's
// timers) or Precise (timerfd timers, for VRRP's sub-millisecond timing).
package clock

import "time"

// Clock is a time source; tests inject a fake one.
type Clock interface {
	Now() time.Time
	// AfterFunc calls f after d. f must return quickly without blocking:
	// Precise calls the functions of all its timers from one goroutine
	// (System from a goroutine each, like time.AfterFunc).
	AfterFunc(d time.Duration, f func()) Timer
}

// Timer is a timer started by Clock.AfterFunc.
type Timer interface {
	// Stop prevents the timer from firing; it reports whether it did.
	Stop() bool
}

// System is the real clock with Go's timers.
type System struct{}

// Now returns time.Now().
func (System) Now() time.Time { return time.Now() }

// AfterFunc wraps time.AfterFunc.
func (System) AfterFunc(d time.Duration, f func()) Timer { return time.AfterFunc(d, f) }
