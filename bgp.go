package main

// BGP on the daemon's side: the graceful stop and the operator's drain of
// the whole director (package bgp announces; the wiring is in daemon.go).

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"syscall"
	"time"

	"github.com/lvsd/lvsd/bgp"
	"github.com/lvsd/lvsd/conf"
)

// logBGPUnavailable says why a bgp block announces nothing: BGP announces
// the virtual servers this process programs and checks.
func (d *daemon) logBGPUnavailable(cfg *conf.Config) {
	if cfg.BGP != nil && d.bgp == nil {
		d.log.Error("bgp: not started: IPVS is not programmed by this process (-P, or no IPVS in the kernel), so nothing would be announced", "subsystem", "bgp")
	}
}

// gracefulStop runs before the subsystems stop on SIGTERM or SIGINT: the
// BGP routes get GRACEFUL_SHUTDOWN, drain_time passes, they are withdrawn;
// only then are VRRP stopped and IPVS removed. It returns at once when
// nothing is announced. A second SIGTERM or SIGINT cuts the drain short.
func (d *daemon) gracefulStop(sigs <-chan os.Signal) {
	if d.bgp == nil {
		return
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- d.bgp.Shutdown(ctx) }()
	for {
		select {
		case <-done:
			return
		case sig := <-sigs:
			if sig == syscall.SIGTERM || sig == syscall.SIGINT {
				d.log.Warn("bgp: second stop signal: stopping without waiting for the drain", "subsystem", "bgp", "signal", sig.String())
				return
			}
			d.log.Info("signal ignored while the BGP routes drain", "signal", sig.String())
		}
	}
}

// drainDirector is lvsd ctl drain and enable without a real server: the
// whole director's BGP routes (IPVS is left as it is).
func (d *daemon) drainDirector(on bool) error {
	if d.bgp == nil {
		return errNoBGP
	}
	return d.bgp.SetDrain(on)
}

var errNoBGP = errors.New("BGP does not run in this process (no bgp block, or IPVS is not programmed here)")

// writeBGPTable prints the BGP part of lvsd ctl status (nothing when BGP
// does not run here).
func writeBGPTable(w io.Writer, st *bgp.Status) {
	if st == nil || (!st.Running && len(st.Peers) == 0) {
		return
	}
	drain := ""
	if st.Draining != "" {
		drain = fmt.Sprintf("; draining (%s) until %s", st.Draining, st.DrainEnds.Format(time.RFC3339))
	}
	fmt.Fprintf(w, "BGP: router id %s, AS %d; announced %d, withdrawn %d%s\n", st.RouterID, st.LocalAS, st.Counters.Announcements, st.Counters.Withdrawals, drain)
	fmt.Fprintln(w, "NEIGHBOR\tREMOTE AS\tSTATE\tSINCE")
	for _, p := range st.Peers {
		since := "-"
		if !p.Since.IsZero() {
			since = p.Since.Format(time.RFC3339)
		}
		fmt.Fprintf(w, "%s\t%d\t%s\t%s\n", p.Addr, p.RemoteAS, p.State, since)
	}
	fmt.Fprintln(w, "ANNOUNCED\tCOMMUNITIES\tMED\tPREPEND")
	for _, r := range st.Announced {
		med := "-"
		if r.MED != nil {
			med = fmt.Sprint(*r.MED)
		}
		fmt.Fprintf(w, "%s\t%s\t%s\t%d\n", r.Prefix, dash(strings.Join(r.Communities, " ")), med, r.Prepend)
	}
	fmt.Fprintln(w)
}
