package vrrp

import (
	"testing"
	"time"

	"github.com/lvsd/lvsd/vrrp/advert"
)

// The wall clock stepped by an hour, both ways (issue 12). The runner's
// timers and deadlines come from its clock.Clock, whose Now carries Go's
// monotonic reading and whose timers are CLOCK_MONOTONIC (clock.Precise:
// timerfd; clock.System: the runtime's timers), so a step of the host's
// wall clock does not reach them. The one wall-clock value on the VRRP
// path is the kernel's arrival time of a packet (SO_TIMESTAMPNS is
// CLOCK_REALTIME), which machine.age compares with Now: across a step it
// is an hour off. These tests inject exactly that (without touching the
// host's clock): adverts stamped an hour in the past and in the future.

var wallSteps = []time.Duration{-time.Hour, time.Hour}

func stepped(h *harness, i int) func(*advert.PacketInfo) {
	return func(p *advert.PacketInfo) { p.At = h.clk.Now().Add(wallSteps[i%2]) }
}

// TestRunnerWallClockStepBackup: a backup hearing its master's adverts
// stamped ±1h neither takes over early nor late: no action while they
// come, and the takeover exactly Master_Down_Interval after the last.
func TestRunnerWallClockStepBackup(t *testing.T) {
	h := newHarness(t, instCfg(nil))
	h.rec.take("")
	for i := range 20 {
		h.advance(time.Second)
		h.packet(0, peer, nil, stepped(h, i))
	}
	if got := h.rec.take(""); len(got) != 0 {
		t.Fatalf("the backup acted while its master advertised: %v", got)
	}
	if st := h.r.Status()[0].State; st != StateBackup {
		t.Fatalf("state %v, want BACKUP", st)
	}
	last := h.clk.Now().Sub(epoch)
	h.advance(10 * time.Second)
	adv := h.rec.take("advert")
	if len(adv) == 0 || adv[0].at != last+mdi100 {
		t.Fatalf("takeover at %v, want %v (Master_Down_Interval after the last advert)", times(adv), last+mdi100)
	}
	if got := h.r.Stats(0).AdvertRcvd.Load(); got != 20 {
		t.Errorf("received %d, want 20", got)
	}
}

// TestRunnerWallClockStepMaster: a master hearing lower-priority adverts
// twice a second (it answers each at once, as keepalived does) acts
// exactly the same whether they are stamped with the right time or ±1h:
// the same adverts at the same instants, never more than advert_int
// apart, and it stays MASTER.
func TestRunnerWallClockStepMaster(t *testing.T) {
	run := func(step bool) []call {
		h := newHarness(t, instCfg(nil))
		h.advance(mdi100)
		if st := h.r.Status()[0].State; st != StateMaster {
			t.Fatalf("state %v, want MASTER", st)
		}
		h.rec.take("")
		for i := range 40 {
			h.advance(500 * time.Millisecond)
			info := func(p *advert.PacketInfo) { p.At = h.clk.Now().Add(-time.Millisecond) }
			if step {
				info = stepped(h, i)
			}
			h.packet(0, peer, func(a *advert.Advert) { a.Priority = 50 }, info)
		}
		h.advance(2 * time.Second)
		if st := h.r.Status()[0].State; st != StateMaster || h.r.Stats(0).BecomeMaster.Load() != 1 || h.r.Stats(0).ReleaseMaster.Load() != 0 {
			t.Fatalf("step %v: state %v, become %d, release %d", step, st, h.r.Stats(0).BecomeMaster.Load(), h.r.Stats(0).ReleaseMaster.Load())
		}
		return h.rec.take("")
	}
	want, got := run(false), run(true)
	if len(got) != len(want) {
		t.Fatalf("with the step %d actions, without %d:\n%v\n%v", len(got), len(want), got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("action %d: %v with the step, %v without", i, got[i], want[i])
		}
	}
	var last time.Duration = mdi100
	n := 0
	for _, c := range got {
		if c.what != "advert prio=100 dst=224.0.0.18" {
			continue
		}
		n++
		if c.at-last > time.Second {
			t.Fatalf("advert at %v, %v after the previous one (> advert_int)", c.at, c.at-last)
		}
		last = c.at
	}
	if n < 20 {
		t.Fatalf("%d adverts in 22s", n)
	}
}
