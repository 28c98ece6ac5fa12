package vrrp

import (
	"fmt"
	"testing"
	"time"
)

// TestProcessTrackWeights: a vrrp_track_process's weight as keepalived
// 2.2.7 applies it (vrrp_track.c): a positive weight is added while the
// quorum is held, a negative one while it is lost, reverse negates the
// weight rather than the status, and weight 0 is a FAULT without quorum
// (reverse: with it).
func TestProcessTrackWeights(t *testing.T) {
	for _, c := range []struct {
		weight            int
		reverse           bool
		upW, downW        int
		upFault, downFult bool
	}{
		{weight: 10, upW: 10},
		{weight: -10, downW: -10},
		{weight: 10, reverse: true, upW: -10},
		{weight: -10, reverse: true, downW: 10},
		{weight: 0, downFult: true},
		{weight: 0, reverse: true, upFault: true},
	} {
		tr, err := newTracker([]track{{Name: "process:p", Weight: c.weight, Reverse: c.reverse, NegateReverse: true}})
		if err != nil {
			t.Fatal(err)
		}
		tr.Set("process:p", true)
		w, f := tr.Status()
		tr.Set("process:p", false)
		w2, f2 := tr.Status()
		if w != c.upW || f != c.upFault || w2 != c.downW || f2 != c.downFult {
			t.Errorf("weight %d reverse %v: up (%d, %v) down (%d, %v), want up (%d, %v) down (%d, %v)",
				c.weight, c.reverse, w, f, w2, f2, c.upW, c.upFault, c.downW, c.downFult)
		}
	}
}

// TestFromConfigTrackProcess: track_process references become process
// tracks: the reference's weight wins, noreverse clears the process's
// reverse, and a sync group member's own references keep their weight
// (keepalived 2.2.7 -t: it drops a member's weighted track_script and
// track_file, with a message, not its track_process).
func TestFromConfigTrackProcess(t *testing.T) {
	c := parseConf(t, `vrrp_track_process p {
  process sleep
  weight 20 reverse
}
vrrp_track_process q {
  process nginx
}
vrrp_instance A {
  interface eth0
  virtual_router_id 1
  priority 100
  track_process {
    p
    q weight -30
  }
}
vrrp_instance B {
  interface eth0
  virtual_router_id 2
  priority 100
  track_process {
    p weight 5 noreverse
  }
}
vrrp_instance C {
  interface eth0
  virtual_router_id 3
  priority 100
  track_process {
    p
  }
}
vrrp_instance D {
  interface eth0
  virtual_router_id 4
  priority 100
}
vrrp_sync_group G {
  group {
    C
    D
  }
  track_process {
    q weight -7
  }
}
`)
	specs, _, err := fromConfig(c)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string][]track{}
	for _, s := range specs {
		for _, ic := range s.Instances {
			got[ic.Machine.Name] = ic.Tracks
		}
	}
	want := map[string][]track{
		"A": {{Name: "process:p", Weight: 20, Reverse: true, NegateReverse: true}, {Name: "process:q", Weight: -30, NegateReverse: true}},
		"B": {{Name: "process:p", Weight: 5, NegateReverse: true}},
		"C": {{Name: "process:p", Weight: 20, Reverse: true, NegateReverse: true}, {Name: "process:q", Weight: -7, NegateReverse: true}},
		"D": {{Name: "process:q", Weight: -7, NegateReverse: true}},
	}
	for name, w := range want {
		g := got[name]
		if len(g) != len(w) {
			t.Errorf("%s: tracks %+v, want %+v", name, g, w)
			continue
		}
		for i := range w {
			if g[i] != w[i] {
				t.Errorf("%s: track %d %+v, want %+v", name, i, g[i], w[i])
			}
		}
	}
}

const procEngineTracks = `
vrrp_track_process p {
  process sleep
}
vrrp_track_process w {
  process nginx
  weight 20
}
`

// procInstance is an instance tracking p (weight 0) and w (weight 20).
func procInstance(name string, vrid int) string {
	return fmt.Sprintf(`vrrp_instance %s {
  interface eth0
  virtual_router_id %d
  priority 100
  advert_int 1
  garp_master_delay 0
  track_process {
    p
    w
  }
  virtual_ipaddress { 192.0.2.%d/24 }
}
`, name, vrid, 100+vrid)
}

// TestEngineProcessTracks: without a SetProcess an instance starts as if
// the process had no quorum (weight 0: FAULT); SetProcess moves it out of
// FAULT and its weight into the priority; an instance a reload adds
// starts from the quorums known.
func TestEngineProcessTracks(t *testing.T) {
	h := newEngineHarness(t, procEngineTracks+procInstance("VI_1", 1), nil)
	if got := h.states()["VI_1"]; got != "FAULT/100" {
		t.Fatalf("start without a quorum: %s, want FAULT/100", got)
	}
	h.e.SetProcess("p", true)
	h.e.flush()
	h.advance(5 * time.Second)
	if got := h.states()["VI_1"]; got != "MASTER/100" {
		t.Fatalf("p has its quorum: %s, want MASTER/100", got)
	}
	h.e.SetProcess("w", true)
	h.e.flush()
	if got := h.states()["VI_1"]; got != "MASTER/120" {
		t.Fatalf("w has its quorum: %s, want MASTER/120", got)
	}
	if err := h.e.Apply(confText(t, procEngineTracks+procInstance("VI_1", 1)+procInstance("VI_2", 2))); err != nil {
		t.Fatal(err)
	}
	h.e.flush()
	if got := h.states()["VI_2"]; got != "BACKUP/120" {
		t.Fatalf("VI_2 added by a reload: %s, want BACKUP/120 (the quorums known)", got)
	}
	h.e.SetProcess("p", false)
	h.e.flush()
	for _, name := range []string{"VI_1", "VI_2"} {
		if got := h.states()[name]; got != "FAULT/120" {
			t.Errorf("%s after p lost its quorum: %s, want FAULT/120", name, got)
		}
	}
}
