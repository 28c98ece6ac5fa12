package conf

import (
	"strings"
	"testing"
	"time"
)

// TestTrackProcessParse: vrrp_track_process blocks and the track_process
// references of instances and sync groups, with keepalived 2.2.7's
// defaults, order rules and messages (checked against keepalived -t).
func TestTrackProcessParse(t *testing.T) {
	text := `vrrp_track_process plain {
  process sleep
}
vrrp_track_process args {
  process /bin/sleep 1000 2000
  weight -20 reverse
  quorum 2
  quorum_max 3
  delay 1.5
  fork_delay 0.25
}
vrrp_track_process init {
  process sleep 10
  param_match initial
  terminate_delay 2
}
vrrp_track_process quirks {
  process nginx
  quorum_max 2
  quorum 3
  weight 5
  weight 7
  param_match exact
}
vrrp_track_process zero {
  process nothing
  quorum_max 0
  full_command
}
vrrp_track_process none {
  weight 3
}
vrrp_track_process long {
  process a-name-longer-than-15
}
vrrp_instance VI {
  interface eth0
  virtual_router_id 1
  priority 100
  track_process {
    plain
    args weight 30 noreverse
    missing
  }
}
vrrp_instance VJ {
  interface eth0
  virtual_router_id 2
  priority 100
}
vrrp_sync_group G {
  group {
    VI
    VJ
  }
  track_process {
    init weight -5 reverse
  }
}
`
	c, diags := Parse("k.conf", text, Options{ConfigID: "x"})
	got := strings.Join(diagStrings(diags), "\n")
	for _, want := range []string{
		"k.conf:20: error: quorum: Quorum is greater than quorum_max - ignoring",
		"k.conf:22: error: weight: Weight already set for track process quirks - ignoring 7",
		"k.conf:23: error: param_match: Invalid param_match type exact - ignoring",
		"k.conf:30: error: vrrp_track_process: track process 'none' process name not specified",
		"k.conf:33: warning: process: track process long: \"a-name-longer-than-15\" is longer than a process name can be (15 bytes): it never matches without full_command",
		"k.conf:43: warning: track_process: (VI) track process missing not found, ignoring...",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("missing diagnostic %q in:\n%s", want, got)
		}
	}
	if c == nil {
		t.Fatalf("no config:\n%s", got)
	}
	byName := map[string]*TrackProcess{}
	for _, tp := range c.TrackProcesses {
		byName[tp.Name] = tp
	}
	if _, ok := byName["none"]; ok || len(c.TrackProcesses) != 6 {
		t.Errorf("track processes: %d, none kept: %v", len(c.TrackProcesses), ok)
	}
	type want struct {
		process, params, match string
		full                   bool
		weight                 int
		reverse                bool
		quorum                 int
		quorumMax              uint32
		fork, term             time.Duration
	}
	for name, w := range map[string]want{
		"plain":  {process: "sleep", quorum: 1, quorumMax: 1<<32 - 1},
		"args":   {process: "/bin/sleep", params: "1000 2000", match: ParamMatchExact, full: true, weight: -20, reverse: true, quorum: 2, quorumMax: 3, fork: 250 * time.Millisecond, term: 1500 * time.Millisecond},
		"init":   {process: "sleep", params: "10", match: ParamMatchInitial, full: true, quorum: 1, quorumMax: 1<<32 - 1, term: 2 * time.Second},
		"quirks": {process: "nginx", weight: 5, quorum: 1, quorumMax: 2},
		"zero":   {process: "nothing", full: true, quorum: 0, quorumMax: 0},
	} {
		tp := byName[name]
		if tp == nil {
			t.Errorf("%s: missing", name)
			continue
		}
		g := want{tp.Process, strings.Join(tp.Params, " "), tp.ParamMatch, tp.FullCommand, tp.Weight, tp.Reverse, tp.Quorum, tp.QuorumMax, tp.ForkDelay, tp.TerminateDelay}
		if g != w {
			t.Errorf("%s: got %+v, want %+v", name, g, w)
		}
	}
	in := c.Instance("VI")
	if in == nil || len(in.TrackProcess) != 2 || in.TrackProcess[0].Name != "plain" || in.TrackProcess[0].Weight != nil ||
		in.TrackProcess[1].Name != "args" || *in.TrackProcess[1].Weight != 30 || in.TrackProcess[1].Reverse || !in.TrackProcess[1].NoReverse {
		t.Errorf("VI track_process: %+v", in)
	}
	if g := c.SyncGroups[0]; len(g.TrackProcess) != 1 || g.TrackProcess[0].Name != "init" || *g.TrackProcess[0].Weight != -5 || !g.TrackProcess[0].Reverse {
		t.Errorf("G track_process: %+v", g.TrackProcess)
	}
}
