package vrrp

import (
	"reflect"
	"testing"
	"time"
)

func newTestGroup(t *testing.T, n int) (*Group, *fakeClock) {
	t.Helper()
	clk := newFakeClock()
	var ms []*Machine
	for i := range n {
		cfg := baseCfg()
		cfg.Name = string(rune('A' + i))
		m, err := NewMachine(cfg, clk)
		if err != nil {
			t.Fatal(err)
		}
		ms = append(ms, m)
	}
	g, err := NewGroup("G", ms)
	if err != nil {
		t.Fatal(err)
	}
	return g, clk
}

func states(g *Group) []State {
	var s []State
	for _, m := range g.Members() {
		s = append(s, m.State())
	}
	return s
}

func transitions(acts []MemberAction) []MemberAction {
	var out []MemberAction
	for _, a := range acts {
		switch a.Action.(type) {
		case Transition, GroupTransition:
			out = append(out, a)
		}
	}
	return out
}

func startAll(g *Group) {
	for i := range g.Members() {
		g.Dispatch(i, Start{})
	}
}

func TestGroupNeedsTwo(t *testing.T) {
	m, _ := NewMachine(baseCfg(), newFakeClock())
	if _, err := NewGroup("G", []*Machine{m}); err == nil {
		t.Fatal("group of one accepted")
	}
}

func TestGroupTransitions(t *testing.T) {
	B, M, F := StateBackup, StateMaster, StateFault
	cases := []struct {
		name   string
		setup  func(g *Group)
		member int
		ev     Event
		want   []State
		trans  []MemberAction
	}{
		{
			name:   "one member times out: all MASTER",
			setup:  startAll,
			member: 1, ev: TimerFired{TimerMasterDown},
			want: []State{M, M, M},
			trans: []MemberAction{
				{1, Transition{B, M, 100}}, {0, Transition{B, M, 100}}, {2, Transition{B, M, 100}},
				{-1, GroupTransition{"G", B, M}},
			},
		},
		{
			name: "one master hears higher priority: all BACKUP",
			setup: func(g *Group) {
				startAll(g)
				g.Dispatch(0, TimerFired{TimerMasterDown})
			},
			member: 2, ev: AdvertReceived{Src: peer, Priority: 200, Interval: time.Second},
			want: []State{B, B, B},
			trans: []MemberAction{
				{2, Transition{M, B, 100}}, {0, Transition{M, B, 100}}, {1, Transition{M, B, 100}},
				{-1, GroupTransition{"G", M, B}},
			},
		},
		{
			name: "one member's interface fails while MASTER: whole group FAULT",
			setup: func(g *Group) {
				startAll(g)
				g.Dispatch(0, TimerFired{TimerMasterDown})
			},
			member: 1, ev: InterfaceChanged{Up: false},
			want: []State{F, F, F},
			trans: []MemberAction{
				{1, Transition{M, F, 100}}, {0, Transition{M, F, 100}}, {2, Transition{M, F, 100}},
				{-1, GroupTransition{"G", M, F}},
			},
		},
		{
			name: "fault clears on the last faulty member: all leave FAULT",
			setup: func(g *Group) {
				startAll(g)
				g.Dispatch(0, InterfaceChanged{Up: false})
				g.Dispatch(2, TrackingChanged{Fault: true})
				g.Dispatch(0, InterfaceChanged{Up: true}) // member 2 still faulty
			},
			member: 2, ev: TrackingChanged{Fault: false},
			want: []State{B, B, B},
			trans: []MemberAction{
				{0, Transition{F, B, 100}}, {1, Transition{F, B, 100}}, {2, Transition{F, B, 100}},
				{-1, GroupTransition{"G", F, B}},
			},
		},
		{
			name: "member in FAULT cannot be pulled to MASTER",
			setup: func(g *Group) {
				startAll(g)
				g.Dispatch(0, InterfaceChanged{Up: false})
			},
			member: 1, ev: TimerFired{TimerMasterDown}, // timer was stopped by the group fault
			want:  []State{F, F, F},
			trans: nil,
		},
		{
			name:   "member starts with interface down: group starts in FAULT",
			setup:  func(g *Group) { g.Dispatch(1, InterfaceChanged{Up: false}); g.Dispatch(0, Start{}) },
			member: 1, ev: Start{},
			want:  []State{F, F, StateInit},
			trans: []MemberAction{{1, Transition{StateInit, F, 100}}},
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
	g.Dispatch(0, InterfaceChanged{Up: false})
	g.Dispatch(0, Start{})
	g.Dispatch(1, Start{})
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
	acts := g.Dispatch(0, TimerFired{TimerMasterDown})
	adverts := map[int]int{}
	for _, a := range acts {
		if sa, ok := a.Action.(SendAdvert); ok && sa.Priority == 100 {
			adverts[a.Member]++
		}
	}
	if adverts[0] != 1 || adverts[1] != 1 {
		t.Fatalf("adverts per member %v", adverts)
	}
}
