package vrrp

import "testing"

func TestEffectivePriority(t *testing.T) {
	cases := []struct {
		base   uint8
		weight int
		want   uint8
	}{
		{100, 0, 100},
		{100, 50, 150},
		{100, -50, 50},
		{100, 200, 254}, // clamped below the owner
		{100, 154, 254},
		{100, 155, 254},
		{100, -99, 1},
		{100, -100, 1}, // never 0: that means "stop"
		{100, -300, 1},
		{255, -100, 255}, // the owner never changes
		{255, 10, 255},
		{1, -1, 1},
		{254, 1, 254},
	}
	for _, c := range cases {
		if got := effectivePriority(c.base, c.weight); got != c.want {
			t.Errorf("EffectivePriority(%d, %d) = %d, want %d", c.base, c.weight, got, c.want)
		}
	}
}

func TestTracker(t *testing.T) {
	tr, err := newTracker([]track{
		{Name: "eth1", Weight: 0, InitUp: true},                // down -> FAULT
		{Name: "chk_up", Weight: 20, InitUp: true},             // +20 while up
		{Name: "chk_down", Weight: -30, InitUp: true},          // -30 while down
		{Name: "rev", Weight: 10, Reverse: true, InitUp: true}, // +10 while DOWN
		{Name: "rev0", Weight: 0, Reverse: true, InitUp: false},
	})
	if err != nil {
		t.Fatal(err)
	}
	steps := []struct {
		name    string
		up      bool
		changed bool
		weight  int
		fault   bool
	}{
		{"", false, false, 20, false}, // initial status
		{"chk_up", false, true, 0, false},
		{"chk_up", false, false, 0, false},
		{"chk_down", false, true, -30, false},
		{"rev", false, true, -20, false},
		{"eth1", false, true, -20, true},
		{"eth1", true, true, -20, false},
		{"rev0", true, true, -20, true}, // weight 0 reverse: FAULT while up
		{"rev0", false, true, -20, false},
		{"unknown", false, false, -20, false},
	}
	for i, s := range steps {
		if i > 0 {
			if ch := tr.Set(s.name, s.up); ch != s.changed {
				t.Errorf("step %d Set(%s,%v) changed=%v", i, s.name, s.up, ch)
			}
		}
		w, f := tr.Status()
		if w != s.weight || f != s.fault {
			t.Errorf("step %d: status (%d,%v), want (%d,%v)", i, w, f, s.weight, s.fault)
		}
		if ev := tr.Event(); ev.Weight != w || ev.Fault != f {
			t.Errorf("step %d: event %+v", i, ev)
		}
	}
	if _, err := newTracker([]track{{Name: "a"}, {Name: "a"}}); err == nil {
		t.Error("duplicate accepted")
	}
	if _, err := newTracker([]track{{Name: "a", Weight: 255}}); err == nil {
		t.Error("weight 255 accepted")
	}
}

// End to end: a failing weighted script lowers the master's priority below
// the backup's; the weight-0 interface tracker puts it in FAULT.
func TestTrackerDrivesMachine(t *testing.T) {
	clk := newFakeClock()
	m, err := newMachine(baseCfg(), clk)
	if err != nil {
		t.Fatal(err)
	}
	tr, _ := newTracker([]track{{Name: "chk", Weight: -60, InitUp: true}, {Name: "eth1", InitUp: true}})
	m.Handle(tr.Event())
	m.Handle(start{})
	m.Handle(timerFired{timerMasterDown})
	tr.Set("chk", false)
	m.Handle(tr.Event())
	if m.Priority() != 40 || m.State() != StateMaster {
		t.Fatalf("prio %d state %v", m.Priority(), m.State())
	}
	tr.Set("eth1", false)
	acts := m.Handle(tr.Event())
	if m.State() != StateFault || len(acts) == 0 || acts[0] != (sendAdvert{Priority: 0}) {
		t.Fatalf("state %v actions %v", m.State(), fmtActions(acts))
	}
}
