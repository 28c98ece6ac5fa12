package vrrp

import "fmt"

// groupTransition is emitted (with Member -1) when the state of a sync
// group changes: MASTER when all members are master, FAULT while any member
// is faulty, BACKUP otherwise.
type groupTransition struct {
	Name     string
	From, To State
}

func (groupTransition) isAction() {}

// memberAction is an action of one member of a group (Member is its index),
// or of the group itself (Member -1).
type memberAction struct {
	Member int
	Action action
}

// syncGroup drives the machines of a vrrp_sync_group so that they move
// together, as keepalived does:
//
//   - a member that becomes MASTER makes every BACKUP member MASTER;
//   - a member that goes from MASTER to BACKUP makes every MASTER member
//     BACKUP;
//   - while any member is faulty (interface or weight-0 tracker) every
//     member is in FAULT; when the last fault clears they all leave FAULT.
//
// A syncGroup is pure and owned by one goroutine, which also owns its members:
// forced transitions are applied synchronously, so the members never
// disagree between two events.
type syncGroup struct {
	Name    string
	members []*machine
	fault   bool
	state   State
}

// newSyncGroup returns a group of at least two machines.
func newSyncGroup(name string, members []*machine) (*syncGroup, error) {
	if len(members) < 2 {
		return nil, fmt.Errorf("vrrp: sync group %s needs at least two instances", name)
	}
	return &syncGroup{Name: name, members: members, state: StateInit}, nil
}

// Members returns the machines of the group.
func (g *syncGroup) Members() []*machine { return g.members }

// State returns the group state.
func (g *syncGroup) State() State { return g.state }

// Dispatch feeds ev to member i and applies the group rules; it returns the
// actions of all members (and of the group) in the order they occurred.
func (g *syncGroup) Dispatch(i int, ev event) []memberAction {
	type item struct {
		member int
		ev     event
	}
	queue := []item{{i, ev}}
	var out []memberAction
	// Each member reacts to a forced event with at most one transition,
	// so the cascade is short; the bound only guards against a bug.
	for n := 0; len(queue) > 0 && n < 8*len(g.members)+8; n++ {
		it := queue[0]
		queue = queue[1:]
		acts := g.members[it.member].Handle(it.ev)
		for _, a := range acts {
			out = append(out, memberAction{Member: it.member, Action: a})
		}
		// Fault first: it overrides everything else.
		anyFault := false
		for _, m := range g.members {
			anyFault = anyFault || m.OwnFault()
		}
		if anyFault != g.fault {
			g.fault = anyFault
			for j := range g.members {
				queue = append(queue, item{j, syncFault{Fault: anyFault}})
			}
			continue
		}
		for _, a := range acts {
			tr, ok := a.(transition)
			if !ok {
				continue
			}
			var force event
			switch {
			case tr.To == StateMaster:
				force = syncMaster{}
			case tr.From == StateMaster && tr.To == StateBackup:
				force = syncBackup{}
			}
			if force == nil {
				continue
			}
			for j := range g.members {
				if j != it.member {
					queue = append(queue, item{j, force})
				}
			}
		}
	}
	if st := g.compute(); st != g.state {
		gt := memberAction{Member: -1, Action: groupTransition{Name: g.Name, From: g.state, To: st}}
		if g.state == StateInit {
			// Leaving INIT: the group's state is reported before its
			// instances' first ones, as keepalived's start-up does.
			out = append([]memberAction{gt}, out...)
		} else {
			out = append(out, gt)
		}
		g.state = st
	}
	return out
}

func (g *syncGroup) compute() State {
	all := func(s State) bool {
		for _, m := range g.members {
			if m.State() != s {
				return false
			}
		}
		return true
	}
	// A group stops with its instances, in FAULT or not (keepalived
	// reports the STOP of every group).
	if all(StateStopped) {
		return StateStopped
	}
	if g.fault {
		return StateFault
	}
	switch {
	case all(StateMaster):
		return StateMaster
	case all(StateInit):
		return StateInit
	}
	return StateBackup
}
