package vrrp

import (
	"reflect"
	"testing"
	"time"
)

func newTestGroup(t *testing.T, n int) (*syncGroup, *fakeClock) {
	t.Helper()
	clk := newFakeClock()
	var ms []*machine
	for i := range n {
		cfg := baseCfg()
		cfg.Name = string(rune('A' + i))
		m, err := newMachine(cfg, clk)
		if err != nil {
			t.Fatal(err)
		}
		ms = append(ms, m)
	}
	g, err := newSyncGroup("G", ms)
	if err != nil {
		t.Fatal(err)
	}
	return g, clk
}

func states(g *syncGroup) []State {
	var s []State
	for _, m := range g.Members() {
		s = append(s, m.State())
	}
	return s
}

func transitions(acts []memberAction) []memberAction {
	var out []memberAction
	for _, a := range acts {
		switch a.Action.(type) {
		case transition, groupTransition:
			out = append(out, a)
		}
	}
	return out
}

func startAll(g *syncGroup) {
	for i := range g.Members() {
		g.Dispatch(i, start{})
	}
}

func TestGroupNeedsTwo(t *testing.T) {
	m, _ := newMachine(baseCfg(), newFakeClock())
	if _, err := newSyncGroup("G", []*machine{m}); err == nil {
		t.Fatal("group of one accepted")
	}
}

func TestGroupTransitions(t *testing.T) {
	B, M, F := StateBackup, StateMaster, StateFault
	cases := []struct {
		name   string
		setup  func(g *syncGroup)
		member int
		ev     event
		want   []State
		trans  []memberAction
	}{
		{
			name:   "one member times out: all MASTER",
			setup:  startAll,
			member: 1, ev: timerFired{timerMasterDown},
			want: []State{M, M, M},
			trans: []memberAction{
				{1, transition{B, M, 100}}, {0, transition{B, M, 100}}, {2, transition{B, M, 100}},
				{-1, groupTransition{"G", B, M}},
			},
		},
		{
			name: "one master hears higher priority: all BACKUP",
			setup: func(g *syncGroup) {
				startAll(g)
				g.Dispatch(0, timerFired{timerMasterDown})
			},
			member: 2, ev: advertReceived{Src: peer, Priority: 200, Interval: time.Second},
			want: []State{B, B, B},
			trans: []memberAction{
				{2, transition{M, B, 100}}, {0, transition{M, B, 100}}, {1, transition{M, B, 100}},
				{-1, groupTransition{"G", M, B}},
			},
		},
		{
			name: "one member's interface fails while MASTER: whole group FAULT",
			setup: func(g *syncGroup) {
				startAll(g)
				g.Dispatch(0, timerFired{timerMasterDown})
			},
			member: 1, ev: interfaceChanged{Up: false},
			want: []State{F, F, F},
			trans: []memberAction{
				{1, transition{M, F, 100}}, {0, transition{M, F, 100}}, {2, transition{M, F, 100}},
				{-1, groupTransition{"G", M, F}},
			},
		},
		{
			name: "fault clears on the last faulty member: all leave FAULT",
			setup: func(g *syncGroup) {
				startAll(g)
				g.Dispatch(0, interfaceChanged{Up: false})
				g.Dispatch(2, trackingChanged{Fault: true})
				g.Dispatch(0, interfaceChanged{Up: true}) // member 2 still faulty
			},
			member: 2, ev: trackingChanged{Fault: false},
			want: []State{B, B, B},
			trans: []memberAction{
				{0, transition{F, B, 100}}, {1, transition{F, B, 100}}, {2, transition{F, B, 100}},
				{-1, groupTransition{"G", F, B}},
			},
		},
		{
			name: "member in FAULT cannot be pulled to MASTER",
			setup: func(g *syncGroup) {
				startAll(g)
				g.Dispatch(0, interfaceChanged{Up: false})
			},
			member: 1, ev: timerFired{timerMasterDown}, // timer was stopped by the group fault
			want:  []State{F, F, F},
			trans: nil,
		},
		{
			name:   "member starts with interface down: group starts in FAULT",
			setup:  func(g *syncGroup) { g.Dispatch(1, interfaceChanged{Up: false}); g.Dispatch(0, start{}) },
			member: 1, ev: start{},
			want:  []State{F, F, StateInit},
			trans: []memberAction{{1, transition{StateInit, F, 100}}},
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			g, _ := newTestGroup(t, 3)
			c.setup(g)
			got := transitions(g.Dispatch(c.member, c.ev))
			if !reflect.DeepEqual(got, c.trans) {
				t.Fatalf("transitions\n got %+v\nwant %+v", got, c.trans)
			}
			if s := states(g); !reflect.DeepEqual(s, c.want) {
				t.Fatalf("states %v, want %v", s, c.want)
			}
		})
	}
}

// The third member of "starts with interface down" is still in INIT; once
// started it joins the group FAULT immediately.
func TestGroupLateMemberJoinsFault(t *testing.T) {
	g, _ := newTestGroup(t, 2)
	g.Dispatch(0, interfaceChanged{Up: false})
	g.Dispatch(0, start{})
	g.Dispatch(1, start{})
	if s := states(g); !reflect.DeepEqual(s, []State{StateFault, StateFault}) {
		t.Fatalf("states %v", s)
	}
	if g.State() != StateFault {
		t.Fatalf("group state %v", g.State())
	}
}

func TestGroupMasterSendsAdvertsOnAllMembers(t *testing.T) {
	g, _ := newTestGroup(t, 2)
	startAll(g)
	acts := g.Dispatch(0, timerFired{timerMasterDown})
	adverts := map[int]int{}
	for _, a := range acts {
		if sa, ok := a.Action.(sendAdvert); ok && sa.Priority == 100 {
			adverts[a.Member]++
		}
	}
	if adverts[0] != 1 || adverts[1] != 1 {
		t.Fatalf("adverts per member %v", adverts)
	}
}
