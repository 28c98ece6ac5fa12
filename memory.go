package main

import (
	"os"
	"runtime/debug"
)

// steadyGCPercent is the garbage collector's target once lvsd runs (unless
// GOGC is set). A director's heap is nearly all long-lived state (the
// configuration, the checkers, the desired IPVS table) and allocates little
// once running: natively 430 bytes per TCP_CHECK attempt, so 10,000 checks
// at delay_loop 60 allocate about 70 KB/s against a live heap of about
// 25 MB. At the default target (100) the heap, hence the RSS, grows to twice
// the live heap before a collection; at 25 it stays within 1.25× for a
// collection about every 90 s instead of every 6 minutes, each marking the
// live heap once (tens of milliseconds). See docs/BENCHMARKS.md (issue 17).
const steadyGCPercent = 25

// tuneGC sets the steady target, leaving a GOGC from the environment alone.
func tuneGC() {
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(steadyGCPercent)
	}
}

// releaseMemory collects the garbage of a start-up or a reload (the parse
// tree, the superseded configuration: made under relaxGC's high target) and
// returns the freed pages to the operating system at once rather than at
// the scavenger's pace, so that the RSS is the live heap's soon after.
func releaseMemory() { go debug.FreeOSMemory() }
