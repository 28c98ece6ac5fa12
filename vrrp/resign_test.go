package vrrp

import (
	"reflect"
	"testing"
	"time"

	"github.com/lvsd/lvsd/vrrp/advert"
)

// TestMachineResign: the operator's failover. A master sends priority 0,
// releases its addresses and becomes BACKUP; resigned, it neither
// preempts a lower priority master nor takes over when the master goes
// quiet; cleared (or at the end of its duration) it is an ordinary backup
// that takes over again.
func TestMachineResign(t *testing.T) {
	clk := newFakeClock()
	m, err := newMachine(baseCfg(), clk)
	if err != nil {
		t.Fatal(err)
	}
	m.Handle(start{})
	m.Handle(timerFired{timerMasterDown})
	if m.State() != StateMaster {
		t.Fatalf("state %v, want MASTER", m.State())
	}
	got := m.Handle(resign{On: true, For: time.Minute})
	want := []action{setTimer{timerResign, time.Minute}, sendAdvert{advert.PriorityStop}, removeVIPs{},
		stopTimer{timerAdvert}, stopTimer{timerGARPDelay}, setTimer{timerMasterDown, mdi100}, transition{StateMaster, StateBackup, 100}}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("resign:%s\nwant:%s", fmtActions(got), fmtActions(want))
	}
	if r, until := m.Resigned(); !r || !until.Equal(clk.Now().Add(time.Minute)) {
		t.Errorf("Resigned() = %v, %v", r, until)
	}
	// The master goes quiet: no takeover, the timer is re-armed.
	got = m.Handle(timerFired{timerMasterDown})
	if want := []action{setTimer{timerMasterDown, mdi100}}; !reflect.DeepEqual(got, want) || m.State() != StateBackup {
		t.Fatalf("master down while resigned:%s (state %v)", fmtActions(got), m.State())
	}
	// A lower priority master is not preempted: the timer is reset.
	got = m.Handle(advertReceived{Src: peer, Priority: 50})
	if m.State() != StateBackup || len(got) != 1 {
		t.Fatalf("lower priority advert while resigned:%s", fmtActions(got))
	}
	// A priority-0 advert does not make it take over either.
	m.Handle(advertReceived{Src: peer, Priority: advert.PriorityStop})
	m.Handle(timerFired{timerMasterDown})
	if m.State() != StateBackup {
		t.Fatalf("took over after priority 0 while resigned")
	}
	// A sync group's order to become master is refused too.
	m.Handle(syncMaster{})
	if m.State() != StateBackup {
		t.Fatalf("syncMaster while resigned: %v", m.State())
	}
	// The duration ends: an ordinary backup, Master_Down_Timer armed.
	got = m.Handle(timerFired{timerResign})
	if want := []action{setTimer{timerMasterDown, mdi100}}; !reflect.DeepEqual(got, want) {
		t.Fatalf("end of resign:%s", fmtActions(got))
	}
	if r, _ := m.Resigned(); r {
		t.Error("still resigned")
	}
	m.Handle(timerFired{timerMasterDown})
	if m.State() != StateMaster {
		t.Fatalf("state %v after the resign ended and the master went quiet", m.State())
	}
	// Resigned without a duration until cleared; clearing twice is nothing.
	m.Handle(resign{On: true})
	if r, until := m.Resigned(); !r || !until.IsZero() || m.State() != StateBackup {
		t.Fatalf("resign without duration: %v %v %v", r, until, m.State())
	}
	m.Handle(resign{On: false})
	if got := m.Handle(resign{On: false}); len(got) != 0 {
		t.Errorf("clearing twice:%s", fmtActions(got))
	}
	m.Handle(timerFired{timerMasterDown})
	if m.State() != StateMaster {
		t.Fatalf("state %v after clear", m.State())
	}
}
