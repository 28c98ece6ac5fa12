package main

import (
	"os"
	"runtime"
)

// minProcs is the fewest Ps (GOMAXPROCS) the daemon runs with.
const minProcs = 4

// reserveProcs raises GOMAXPROCS to minProcs on a small director (unless
// the GOMAXPROCS environment variable sets it): with as many Ps as cores,
// a scrape of a large IPVS table keeps every P busy and a VRRP timer
// waits for a P to be free (a preemption slice, 10 ms, per goroutine
// hop); with spare Ps it runs at once and the kernel's scheduler, which
// favours a thread waking from sleep, gives it a core. Measured in
// docs/RELIABILITY.md ("Adverts under scrape load").
func reserveProcs() {
	if os.Getenv("GOMAXPROCS") == "" && runtime.GOMAXPROCS(0) < minProcs {
		runtime.GOMAXPROCS(minProcs)
	}
}
