package vrrp

import (
	"fmt"
	"net/netip"
	"reflect"
	"strings"
	"testing"
	"time"
)

var (
	srcA = netip.MustParseAddr("192.0.2.1")
	srcB = netip.MustParseAddr("192.0.2.2")
	vip2 = netip.MustParseAddr("198.51.100.7")

	ours   = srcA                              // 192.0.2.1
	higher = netip.MustParseAddr("192.0.2.9")  // higher than ours
	lower  = netip.MustParseAddr("192.0.2.0")  // lower than ours (as an address)
	peer   = netip.MustParseAddr("192.0.2.50") // some peer
)

func baseCfg() machineConfig {
	return machineConfig{
		Name: "VI_1", VRID: 51, Version: 2, Priority: 100, AdvertInterval: time.Second,
		PrimaryIP: ours, GARPMasterDelay: 5 * time.Second, GARPMasterRepeat: 5,
	}
}

// ms turns fractional milliseconds into a Duration exactly.
func us(n int64) time.Duration { return time.Duration(n) * time.Microsecond }

// Reference timer values, computed by hand:
//
//	v2 Skew_Time = (256-prio)/256 s; MDI = 3*advert_int + skew
//	v3 Skew_Time = (256-prio)*Master_Adver_Interval/256
var (
	skew100   = us(609375)  // 156/256 s
	mdi100    = us(3609375) // 3s + 156/256 s
	skew200   = us(218750)  // 56/256 s
	mdi200    = us(3218750) // 3s + 56/256 s
	skew255   = us(3906)    // 1/256 s = 3906.25us: truncated to the ns below
	v3mdi50cs = us(1804687) // 1.5s + 156*0.5/256 s = 1.8046875s
	v3mdi2s   = us(7218750) // 6s + 156*2/256 s
	mdi110    = us(3570312) // 3s + 146/256 s = 3.5703125s
	skew110   = us(570312)  // 146/256 s = 570.3125ms
	v3skew50  = us(304687)  // 156*0.5/256 s = 304.6875ms
	skew254   = us(7812)    // 2/256 s = 7.8125ms
	mdi254    = us(3007812) // 3s + 2/256 s
	mdi255bk  = us(3003906) // 3s + 1/256 s
	startPD2s = us(5609375) // MDI(100) + preempt_delay 2s
)

// exact durations (sub-microsecond parts) for values that are not whole µs
func init() {
	skew255 = time.Second / 256
	v3mdi50cs = 1500*time.Millisecond + 156*500*time.Millisecond/256
	mdi110 = 3*time.Second + 146*time.Second/256
	skew110 = 146 * time.Second / 256
	v3skew50 = 156 * 500 * time.Millisecond / 256
	skew254 = 2 * time.Second / 256
	mdi254 = 3*time.Second + 2*time.Second/256
	mdi255bk = 3*time.Second + time.Second/256
}

func fmtActions(as []action) string {
	var b strings.Builder
	for _, a := range as {
		fmt.Fprintf(&b, "\n\t%T%+v", a, a)
	}
	return b.String()
}

type step struct {
	advance time.Duration // move the fake clock before the event
	ev      event
}

func TestMachineTransitions(t *testing.T) {
	v3 := func(c *machineConfig) { c.Version = 3 }
	owner := func(c *machineConfig) { c.Priority = 255 }
	startMaster := []step{{ev: start{}}, {ev: timerFired{timerMasterDown}}}
	armedMaster := []action{stopTimer{timerAdvert}, stopTimer{timerGARPDelay}}

	cases := []struct {
		name      string
		mods      []func(*machineConfig)
		setup     []step
		adv       time.Duration
		ev        event
		want      []action
		wantState State
	}{
		// --- Initialize
		{
			name: "start backup: remove leftovers, MDT = 3*adv + skew",
			ev:   start{},
			want: []action{removeVIPs{}, setTimer{timerMasterDown, mdi100}, transition{StateInit, StateBackup, 100}},
		},
		{
			name: "start state MASTER non-owner: still BACKUP (keepalived 2.x)",
			mods: []func(*machineConfig){func(c *machineConfig) { c.InitialState = StateMaster }},
			ev:   start{},
			want: []action{removeVIPs{}, setTimer{timerMasterDown, mdi100}, transition{StateInit, StateBackup, 100}},
		},
		{
			name: "start owner state MASTER: master at once",
			mods: []func(*machineConfig){owner, func(c *machineConfig) { c.InitialState = StateMaster }},
			ev:   start{},
			want: []action{sendAdvert{255}, addVIPs{}, sendGARP{5}, transition{StateInit, StateMaster, 255},
				setTimer{timerAdvert, time.Second}, setTimer{timerGARPDelay, 5 * time.Second}},
		},
		{
			name: "start owner, state not configured: master at once",
			mods: []func(*machineConfig){owner},
			ev:   start{},
			want: []action{sendAdvert{255}, addVIPs{}, sendGARP{5}, transition{StateInit, StateMaster, 255},
				setTimer{timerAdvert, time.Second}, setTimer{timerGARPDelay, 5 * time.Second}},
		},
		{
			name: "start owner state BACKUP: backup with owner skew",
			mods: []func(*machineConfig){owner, func(c *machineConfig) { c.InitialState = StateBackup }},
			ev:   start{},
			want: []action{removeVIPs{}, setTimer{timerMasterDown, mdi255bk}, transition{StateInit, StateBackup, 255}},
		},
		{
			name:  "start with interface down: FAULT",
			setup: []step{{ev: interfaceChanged{Up: false}}},
			ev:    start{},
			want:  []action{removeVIPs{}, transition{StateInit, StateFault, 100}},
		},
		{
			name:  "start with weight-0 tracker down: FAULT",
			setup: []step{{ev: trackingChanged{Fault: true}}},
			ev:    start{},
			want:  []action{removeVIPs{}, transition{StateInit, StateFault, 100}},
		},
		{
			name: "start with preempt_delay: first MDT extended by the delay",
			mods: []func(*machineConfig){func(c *machineConfig) { c.PreemptDelay = 2 * time.Second }},
			ev:   start{},
			want: []action{removeVIPs{}, setTimer{timerMasterDown, startPD2s}, transition{StateInit, StateBackup, 100}},
		},
		{
			name:  "start with tracking weight: skew uses effective priority",
			setup: []step{{ev: trackingChanged{Weight: 100}}},
			ev:    start{},
			want:  []action{removeVIPs{}, setTimer{timerMasterDown, mdi200}, transition{StateInit, StateBackup, 200}},
		},
		{
			name: "v3 start: skew from Master_Adver_Interval",
			mods: []func(*machineConfig){v3, func(c *machineConfig) { c.AdvertInterval = 500 * time.Millisecond }},
			ev:   start{},
			want: []action{removeVIPs{}, setTimer{timerMasterDown, v3mdi50cs}, transition{StateInit, StateBackup, 100}},
		},
		// --- BACKUP
		{
			name:  "backup: Master_Down_Timer fires -> MASTER",
			setup: []step{{ev: start{}}},
			ev:    timerFired{timerMasterDown},
			want: []action{sendAdvert{100}, addVIPs{}, sendGARP{5}, transition{StateBackup, StateMaster, 100},
				setTimer{timerAdvert, time.Second}, setTimer{timerGARPDelay, 5 * time.Second}},
		},
		{
			name:      "backup: higher priority advert resets MDT",
			setup:     []step{{ev: start{}}},
			ev:        advertReceived{Src: peer, Priority: 150, Interval: time.Second},
			want:      []action{setTimer{timerMasterDown, mdi100}},
			wantState: StateBackup,
		},
		{
			name:      "backup: equal priority advert resets MDT (no address tie-break in backup)",
			setup:     []step{{ev: start{}}},
			ev:        advertReceived{Src: lower, Priority: 100, Interval: time.Second},
			want:      []action{setTimer{timerMasterDown, mdi100}},
			wantState: StateBackup,
		},
		{
			name:      "backup: lower priority advert with preempt is discarded, timer keeps running",
			setup:     []step{{ev: start{}}},
			ev:        advertReceived{Src: peer, Priority: 50, Interval: time.Second},
			want:      nil,
			wantState: StateBackup,
		},
		{
			name:      "backup nopreempt: lower priority advert resets MDT",
			mods:      []func(*machineConfig){func(c *machineConfig) { c.Nopreempt = true }},
			setup:     []step{{ev: start{}}},
			ev:        advertReceived{Src: peer, Priority: 50, Interval: time.Second},
			want:      []action{setTimer{timerMasterDown, mdi100}},
			wantState: StateBackup,
		},
		{
			name:      "backup: priority 0 -> MDT = Skew_Time (fast takeover)",
			setup:     []step{{ev: start{}}},
			ev:        advertReceived{Src: peer, Priority: 0, Interval: time.Second},
			want:      []action{setTimer{timerMasterDown, skew100}},
			wantState: StateBackup,
		},
		{
			name:      "backup v3: adopts the master's interval for Master_Adver_Interval",
			mods:      []func(*machineConfig){v3},
			setup:     []step{{ev: start{}}},
			ev:        advertReceived{Src: peer, Priority: 150, Interval: 2 * time.Second},
			want:      []action{setTimer{timerMasterDown, v3mdi2s}},
			wantState: StateBackup,
		},
		{
			name:      "backup v3: priority 0 skew uses the adopted interval",
			mods:      []func(*machineConfig){v3},
			setup:     []step{{ev: start{}}, {ev: advertReceived{Src: peer, Priority: 150, Interval: 500 * time.Millisecond}}},
			ev:        advertReceived{Src: peer, Priority: 0, Interval: 500 * time.Millisecond},
			want:      []action{setTimer{timerMasterDown, v3skew50}},
			wantState: StateBackup,
		},
		{
			name:      "backup v2: advertised interval is not adopted",
			setup:     []step{{ev: start{}}},
			ev:        advertReceived{Src: peer, Priority: 150, Interval: 2 * time.Second},
			want:      []action{setTimer{timerMasterDown, mdi100}},
			wantState: StateBackup,
		},
		{
			name:      "backup preempt_delay: lower advert accepted while the delay runs",
			mods:      []func(*machineConfig){func(c *machineConfig) { c.PreemptDelay = 10 * time.Second }},
			setup:     []step{{ev: start{}}, {ev: advertReceived{Src: peer, Priority: 50, Interval: time.Second}}},
			adv:       9 * time.Second,
			ev:        advertReceived{Src: peer, Priority: 50, Interval: time.Second},
			want:      []action{setTimer{timerMasterDown, mdi100}},
			wantState: StateBackup,
		},
		{
			name:      "backup preempt_delay: lower advert discarded once the delay expired",
			mods:      []func(*machineConfig){func(c *machineConfig) { c.PreemptDelay = 10 * time.Second }},
			setup:     []step{{ev: start{}}, {ev: advertReceived{Src: peer, Priority: 50, Interval: time.Second}}},
			adv:       10 * time.Second,
			ev:        advertReceived{Src: peer, Priority: 50, Interval: time.Second},
			want:      nil,
			wantState: StateBackup,
		},
		{
			name: "backup preempt_delay: a higher advert stops the delay",
			mods: []func(*machineConfig){func(c *machineConfig) { c.PreemptDelay = 10 * time.Second }},
			setup: []step{{ev: start{}}, {ev: advertReceived{Src: peer, Priority: 50, Interval: time.Second}},
				{advance: 5 * time.Second, ev: advertReceived{Src: peer, Priority: 150, Interval: time.Second}}},
			adv:       6 * time.Second, // 11s after the first lower advert: a fresh delay runs
			ev:        advertReceived{Src: peer, Priority: 50, Interval: time.Second},
			want:      []action{setTimer{timerMasterDown, mdi100}},
			wantState: StateBackup,
		},
		{
			name:      "backup: interface down -> FAULT",
			setup:     []step{{ev: start{}}},
			ev:        interfaceChanged{Up: false},
			want:      []action{stopTimer{timerMasterDown}, transition{StateBackup, StateFault, 100}},
			wantState: StateFault,
		},
		{
			name:      "backup: weight-0 tracker fails -> FAULT",
			setup:     []step{{ev: start{}}},
			ev:        trackingChanged{Fault: true},
			want:      []action{stopTimer{timerMasterDown}, transition{StateBackup, StateFault, 100}},
			wantState: StateFault,
		},
		{
			name:      "backup: priority rises -> running MDT shortened by the skew difference",
			setup:     []step{{ev: start{}}},
			adv:       time.Second,
			ev:        trackingChanged{Weight: 100},
			want:      []action{setTimer{timerMasterDown, mdi100 - time.Second - (skew100 - skew200)}},
			wantState: StateBackup,
		},
		{
			name:      "backup: priority falls -> timer untouched",
			setup:     []step{{ev: start{}}},
			ev:        trackingChanged{Weight: -10},
			want:      nil,
			wantState: StateBackup,
		},
		{
			name:      "backup: lowered priority used at next reset",
			setup:     []step{{ev: start{}}, {ev: trackingChanged{Weight: 10}}},
			ev:        advertReceived{Src: peer, Priority: 150, Interval: time.Second},
			want:      []action{setTimer{timerMasterDown, mdi110}},
			wantState: StateBackup,
		},
		{
			name:  "backup: sync group forces MASTER",
			setup: []step{{ev: start{}}},
			ev:    syncMaster{},
			want: []action{stopTimer{timerMasterDown}, sendAdvert{100}, addVIPs{}, sendGARP{5}, transition{StateBackup, StateMaster, 100},
				setTimer{timerAdvert, time.Second}, setTimer{timerGARPDelay, 5 * time.Second}},
		},
		{
			name:      "backup: sync group fault -> FAULT",
			setup:     []step{{ev: start{}}},
			ev:        syncFault{Fault: true},
			want:      []action{stopTimer{timerMasterDown}, transition{StateBackup, StateFault, 100}},
			wantState: StateFault,
		},
		{
			name:      "backup: stale MDT after reset is ignored by state (advert timer not armed)",
			setup:     []step{{ev: start{}}},
			ev:        timerFired{timerAdvert},
			want:      nil,
			wantState: StateBackup,
		},
		{
			name:      "backup: shutdown",
			setup:     []step{{ev: start{}}},
			ev:        shutdown{},
			want:      []action{stopTimer{timerMasterDown}, transition{StateBackup, StateStopped, 100}},
			wantState: StateStopped,
		},
		// --- MASTER
		{
			name:  "master: advert timer -> advert, re-armed",
			setup: startMaster,
			ev:    timerFired{timerAdvert},
			want:  []action{sendAdvert{100}, setTimer{timerAdvert, time.Second}},
		},
		{
			name:  "master: garp_master_delay -> second burst",
			setup: startMaster,
			ev:    timerFired{timerGARPDelay},
			want:  []action{sendGARP{5}},
		},
		{
			name: "master: garp_master_refresh periodic",
			mods: []func(*machineConfig){func(c *machineConfig) {
				c.GARPMasterRefresh, c.GARPMasterRefreshRepeat = time.Minute, 2
			}},
			setup: startMaster,
			ev:    timerFired{timerGARPRefresh},
			want:  []action{sendGARP{2}, setTimer{timerGARPRefresh, time.Minute}},
		},
		{
			name:  "master: lower priority advert -> answers at once",
			setup: startMaster,
			ev:    advertReceived{Src: peer, Priority: 50, Interval: time.Second},
			want:  []action{sendAdvert{100}},
		},
		{
			name:  "master: lower_prio_no_advert",
			mods:  []func(*machineConfig){func(c *machineConfig) { c.LowerPrioNoAdvert = true }},
			setup: startMaster,
			ev:    advertReceived{Src: peer, Priority: 50, Interval: time.Second},
			want:  nil,
		},
		{
			name: "master: lower priority advert with garp_lower_prio_repeat",
			mods: []func(*machineConfig){func(c *machineConfig) {
				c.GARPLowerPrioRepeat, c.GARPLowerPrioDelay = 3, 5*time.Second
			}},
			setup: startMaster,
			ev:    advertReceived{Src: peer, Priority: 50, Interval: time.Second},
			want:  []action{sendAdvert{100}, sendGARP{3}, setTimer{timerGARPLowerPrio, 5 * time.Second}},
		},
		{
			name:      "master: higher priority -> BACKUP",
			setup:     startMaster,
			ev:        advertReceived{Src: peer, Priority: 150, Interval: time.Second},
			want:      append([]action{removeVIPs{}}, append(armedMaster, setTimer{timerMasterDown, mdi100}, transition{StateMaster, StateBackup, 100})...),
			wantState: StateBackup,
		},
		{
			name:      "master: equal priority from higher address -> BACKUP",
			setup:     startMaster,
			ev:        advertReceived{Src: higher, Priority: 100, Interval: time.Second},
			want:      append([]action{removeVIPs{}}, append(armedMaster, setTimer{timerMasterDown, mdi100}, transition{StateMaster, StateBackup, 100})...),
			wantState: StateBackup,
		},
		{
			name:  "master: equal priority from lower address -> stays, answers",
			setup: startMaster,
			ev:    advertReceived{Src: lower, Priority: 100, Interval: time.Second},
			want:  []action{sendAdvert{100}},
		},
		{
			name:  "master: our own address at our priority -> ignored",
			setup: startMaster,
			ev:    advertReceived{Src: ours, Priority: 100, Interval: time.Second},
			want:  nil,
		},
		{
			name:      "master: higher_prio_send_advert",
			mods:      []func(*machineConfig){func(c *machineConfig) { c.HigherPrioSendAdvert = true }},
			setup:     startMaster,
			ev:        advertReceived{Src: peer, Priority: 150, Interval: time.Second},
			want:      append([]action{sendAdvert{100}, removeVIPs{}}, append(armedMaster, setTimer{timerMasterDown, mdi100}, transition{StateMaster, StateBackup, 100})...),
			wantState: StateBackup,
		},
		{
			name:      "master v3: higher priority -> BACKUP with the master's interval",
			mods:      []func(*machineConfig){v3},
			setup:     startMaster,
			ev:        advertReceived{Src: peer, Priority: 150, Interval: 2 * time.Second},
			want:      append([]action{removeVIPs{}}, append(armedMaster, setTimer{timerMasterDown, v3mdi2s}, transition{StateMaster, StateBackup, 100})...),
			wantState: StateBackup,
		},
		{
			name:  "master: priority 0 received -> advert at once, Adver_Timer reset",
			setup: startMaster,
			ev:    advertReceived{Src: peer, Priority: 0, Interval: time.Second},
			want:  []action{sendAdvert{100}, setTimer{timerAdvert, time.Second}},
		},
		{
			name:      "master owner hears another owner: lowers itself to 254 and yields to the higher address",
			mods:      []func(*machineConfig){owner},
			setup:     []step{{ev: start{}}},
			ev:        advertReceived{Src: higher, Priority: 255, Interval: time.Second},
			want:      append([]action{removeVIPs{}}, append(armedMaster, setTimer{timerMasterDown, mdi254}, transition{StateMaster, StateBackup, 254})...),
			wantState: StateBackup,
		},
		{
			name:      "master: interface down -> priority 0, VIPs removed, FAULT",
			setup:     startMaster,
			ev:        interfaceChanged{Up: false},
			want:      append([]action{sendAdvert{0}, removeVIPs{}}, append(armedMaster, transition{StateMaster, StateFault, 100})...),
			wantState: StateFault,
		},
		{
			name:      "master: weight-0 tracker fails -> priority 0, FAULT",
			setup:     startMaster,
			ev:        trackingChanged{Fault: true},
			want:      append([]action{sendAdvert{0}, removeVIPs{}}, append(armedMaster, transition{StateMaster, StateFault, 100})...),
			wantState: StateFault,
		},
		{
			name:  "master: priority change -> used by the next advert, no transition",
			setup: append(startMaster, step{ev: trackingChanged{Weight: -60}}),
			ev:    timerFired{timerAdvert},
			want:  []action{sendAdvert{40}, setTimer{timerAdvert, time.Second}},
		},
		{
			name:      "master: sync group backup -> BACKUP without priority 0",
			setup:     startMaster,
			ev:        syncBackup{},
			want:      append([]action{removeVIPs{}}, append(armedMaster, setTimer{timerMasterDown, mdi100}, transition{StateMaster, StateBackup, 100})...),
			wantState: StateBackup,
		},
		{
			name:      "master: shutdown -> priority 0, VIPs removed",
			setup:     startMaster,
			ev:        shutdown{},
			want:      append([]action{sendAdvert{0}, removeVIPs{}}, append(armedMaster, transition{StateMaster, StateStopped, 100})...),
			wantState: StateStopped,
		},
		{
			name:  "master: stale MDT fire ignored",
			setup: startMaster,
			ev:    timerFired{timerMasterDown},
			want:  nil,
		},
		// --- FAULT
		{
			name:      "fault: interface up -> BACKUP with MDT",
			setup:     []step{{ev: start{}}, {ev: interfaceChanged{Up: false}}},
			ev:        interfaceChanged{Up: true},
			want:      []action{setTimer{timerMasterDown, mdi100}, transition{StateFault, StateBackup, 100}},
			wantState: StateBackup,
		},
		{
			name:  "fault: owner recovers -> MASTER at once",
			mods:  []func(*machineConfig){owner},
			setup: []step{{ev: start{}}, {ev: interfaceChanged{Up: false}}},
			ev:    interfaceChanged{Up: true},
			want: []action{sendAdvert{255}, addVIPs{}, sendGARP{5}, transition{StateFault, StateMaster, 255},
				setTimer{timerAdvert, time.Second}, setTimer{timerGARPDelay, 5 * time.Second}},
		},
		{
			name:      "fault: interface up but tracker still failing -> stays FAULT",
			setup:     []step{{ev: start{}}, {ev: interfaceChanged{Up: false}}, {ev: trackingChanged{Fault: true}}},
			ev:        interfaceChanged{Up: true},
			want:      nil,
			wantState: StateFault,
		},
		{
			name:      "fault: own fault cleared but group still faulty -> stays FAULT",
			setup:     []step{{ev: start{}}, {ev: interfaceChanged{Up: false}}, {ev: syncFault{Fault: true}}},
			ev:        interfaceChanged{Up: true},
			want:      nil,
			wantState: StateFault,
		},
		{
			name:      "fault: adverts ignored",
			setup:     []step{{ev: start{}}, {ev: interfaceChanged{Up: false}}},
			ev:        advertReceived{Src: peer, Priority: 0, Interval: time.Second},
			want:      nil,
			wantState: StateFault,
		},
		{
			name:      "fault: sync master ignored",
			setup:     []step{{ev: start{}}, {ev: interfaceChanged{Up: false}}},
			ev:        syncMaster{},
			want:      nil,
			wantState: StateFault,
		},
		{
			name:      "fault: shutdown",
			setup:     []step{{ev: start{}}, {ev: interfaceChanged{Up: false}}},
			ev:        shutdown{},
			want:      []action{transition{StateFault, StateStopped, 100}},
			wantState: StateStopped,
		},
		// --- STOP
		{
			name:      "stopped: everything ignored",
			setup:     append(startMaster, step{ev: shutdown{}}),
			ev:        start{},
			want:      nil,
			wantState: StateStopped,
		},
		{
			name:      "init: events before start only recorded",
			ev:        advertReceived{Src: peer, Priority: 0, Interval: time.Second},
			want:      nil,
			wantState: StateInit,
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cfg := baseCfg()
			for _, mod := range c.mods {
				mod(&cfg)
			}
			clk := newFakeClock()
			m, err := newMachine(cfg, clk)
			if err != nil {
				t.Fatal(err)
			}
			for _, s := range c.setup {
				clk.Advance(s.advance)
				m.Handle(s.ev)
			}
			clk.Advance(c.adv)
			before := m.State()
			got := m.Handle(c.ev)
			if !reflect.DeepEqual(got, c.want) {
				t.Fatalf("actions:%s\nwant:%s", fmtActions(got), fmtActions(c.want))
			}
			// The state must be the one announced by the last Transition
			// (or unchanged without one), and the explicit one if given.
			want := before
			for _, a := range got {
				if tr, ok := a.(transition); ok {
					want = tr.To
				}
			}
			if c.wantState != StateInit && c.wantState != want {
				t.Fatalf("case expects %v but the actions announce %v", c.wantState, want)
			}
			if m.State() != want {
				t.Fatalf("state %v, want %v", m.State(), want)
			}
		})
	}
}

func TestSkewAndMasterDownInterval(t *testing.T) {
	cases := []struct {
		version  uint8
		prio     uint8
		interval time.Duration
		skew     time.Duration
		mdi      time.Duration
	}{
		{2, 100, time.Second, skew100, mdi100},
		{2, 100, 5 * time.Second, skew100, 15*time.Second + skew100}, // v2 skew does not scale with the interval
		{2, 200, time.Second, skew200, mdi200},
		{2, 254, time.Second, skew254, mdi254},
		{2, 1, time.Second, 255 * time.Second / 256, 3*time.Second + 255*time.Second/256},
		{3, 100, time.Second, skew100, mdi100},
		{3, 100, 500 * time.Millisecond, v3skew50, v3mdi50cs},
		{3, 100, 2 * time.Second, 2 * skew100, v3mdi2s},
		{3, 255, 10 * time.Millisecond, 10 * time.Millisecond / 256, 30*time.Millisecond + 10*time.Millisecond/256},
	}
	for _, c := range cases {
		cfg := baseCfg()
		cfg.Version, cfg.Priority, cfg.AdvertInterval = c.version, c.prio, c.interval
		m, err := newMachine(cfg, newFakeClock())
		if err != nil {
			t.Fatal(err)
		}
		if got := m.SkewTime(c.prio); got != c.skew {
			t.Errorf("v%d prio %d int %v: skew %v, want %v", c.version, c.prio, c.interval, got, c.skew)
		}
		if got := m.MasterDownInterval(); got != c.mdi {
			t.Errorf("v%d prio %d int %v: MDI %v, want %v", c.version, c.prio, c.interval, got, c.mdi)
		}
	}
}

func TestNormalize(t *testing.T) {
	c := baseCfg()
	c.Priority, c.Nopreempt = 255, true
	if err := c.Normalize(); err != nil || c.Nopreempt {
		t.Errorf("owner keeps nopreempt: %v %v", err, c.Nopreempt)
	}
	c = baseCfg()
	c.InitialState, c.Nopreempt, c.PreemptDelay = StateMaster, true, time.Second
	if err := c.Normalize(); err != nil || c.Nopreempt || c.PreemptDelay != 0 {
		t.Errorf("state MASTER keeps nopreempt/preempt_delay: %+v", c)
	}
	c = baseCfg()
	c.Nopreempt, c.PreemptDelay = true, time.Second
	if err := c.Normalize(); err != nil || c.PreemptDelay != 0 {
		t.Errorf("nopreempt keeps preempt_delay: %+v", c)
	}
	for name, mod := range map[string]func(*machineConfig){
		"version 1":       func(c *machineConfig) { c.Version = 1 },
		"priority 0":      func(c *machineConfig) { c.Priority = 0 },
		"vrid 0":          func(c *machineConfig) { c.VRID = 0 },
		"v2 sub-second":   func(c *machineConfig) { c.AdvertInterval = 500 * time.Millisecond },
		"state FAULT":     func(c *machineConfig) { c.InitialState = StateFault },
		"negative delays": func(c *machineConfig) { c.GARPMasterDelay = -1 },
	} {
		c := baseCfg()
		mod(&c)
		if _, err := newMachine(c, newFakeClock()); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

func TestStateAndTimerStrings(t *testing.T) {
	for s, want := range map[State]string{StateInit: "INIT", StateBackup: "BACKUP", StateMaster: "MASTER", StateFault: "FAULT", StateStopped: "STOP", 9: "state(9)"} {
		if s.String() != want {
			t.Errorf("%d: %q", s, s.String())
		}
	}
	for tm := range numTimers + 1 {
		if tm.String() == "" {
			t.Errorf("timer %d has no name", tm)
		}
	}
}

// The Master_Down_Timer counts from the advert's arrival (kernel
// timestamp), not from when it was handled.
func TestMachineTimerFromArrival(t *testing.T) {
	clk := newFakeClock()
	m, err := newMachine(baseCfg(), clk)
	if err != nil {
		t.Fatal(err)
	}
	m.Handle(start{})
	arrived := clk.Now()
	clk.Advance(3 * time.Millisecond)
	acts := m.Handle(advertReceived{Src: netip.MustParseAddr("192.0.2.2"), Priority: 150, Interval: time.Second, At: arrived})
	want := setTimer{Timer: timerMasterDown, After: 3*time.Second + time.Duration(156)*time.Second/256 - 3*time.Millisecond}
	if len(acts) != 1 || acts[0] != want {
		t.Fatalf("actions %v, want %v", acts, want)
	}
	acts = m.Handle(advertReceived{Src: netip.MustParseAddr("192.0.2.2"), Priority: 0, Interval: time.Second, At: arrived})
	if want := (setTimer{Timer: timerMasterDown, After: skew100 - 3*time.Millisecond}); len(acts) != 1 || acts[0] != want {
		t.Fatalf("priority 0: actions %v, want %v", acts, want)
	}
	// A timestamp from a stepped clock is ignored.
	acts = m.Handle(advertReceived{Src: netip.MustParseAddr("192.0.2.2"), Priority: 150, Interval: time.Second, At: arrived.Add(-time.Hour)})
	if want := (setTimer{Timer: timerMasterDown, After: mdi100}); len(acts) != 1 || acts[0] != want {
		t.Fatalf("old timestamp: actions %v, want %v", acts, want)
	}
}

// vrrp_startup_delay, as keepalived 2.2.7 (compared by hand in netns): a
// backup enters BACKUP at once and its first Master_Down_Timer runs after
// the delay (MASTER at delay + MDI); a master that stops advertising
// during the delay is taken over no earlier than delay + MDI; an address
// owner stays INIT, silent, for the delay, then becomes MASTER.
func TestMachineStartupDelay(t *testing.T) {
	clk := newFakeClock()
	m, err := newMachine(baseCfg(), clk)
	if err != nil {
		t.Fatal(err)
	}
	acts := m.Handle(start{Delay: 6 * time.Second})
	if m.State() != StateBackup {
		t.Fatalf("state %v at start, want BACKUP", m.State())
	}
	var timer setTimer
	for _, a := range acts {
		if st, ok := a.(setTimer); ok && st.Timer == timerMasterDown {
			timer = st
		}
	}
	if timer.After != 6*time.Second+mdi100 {
		t.Fatalf("first Master_Down_Timer %v, want delay + MDI = %v (%s)", timer.After, 6*time.Second+mdi100, fmtActions(acts))
	}
	// A master heard at 1s, silent after: its timer (MDI from 1s) fires
	// inside the delay and is pushed to the delay's end + MDI.
	clk.Advance(time.Second)
	m.Handle(advertReceived{Src: peer, Priority: 150, Interval: time.Second, At: clk.Now()})
	clk.Advance(mdi100)
	acts = m.Handle(timerFired{Timer: timerMasterDown})
	if m.State() != StateBackup || len(acts) != 1 || acts[0] != (setTimer{Timer: timerMasterDown, After: 6*time.Second - time.Second - mdi100 + mdi100}) {
		t.Fatalf("timer inside the delay: state %v, actions %s", m.State(), fmtActions(acts))
	}
	clk.Advance(6*time.Second - time.Second - mdi100 + mdi100)
	m.Handle(timerFired{Timer: timerMasterDown})
	if m.State() != StateMaster {
		t.Fatalf("state %v after the delay and MDI, want MASTER", m.State())
	}

	// The address owner.
	cfg := baseCfg()
	cfg.Priority = 255
	own, err := newMachine(cfg, clk)
	if err != nil {
		t.Fatal(err)
	}
	acts = own.Handle(start{Delay: 4 * time.Second})
	if own.State() != StateInit || len(acts) != 1 || acts[0] != (setTimer{Timer: timerMasterDown, After: 4 * time.Second}) {
		t.Fatalf("owner at start: state %v, actions %s; want INIT and a 4s timer", own.State(), fmtActions(acts))
	}
	clk.Advance(4 * time.Second)
	own.Handle(timerFired{Timer: timerMasterDown})
	if own.State() != StateMaster {
		t.Fatalf("owner after the delay: %v, want MASTER", own.State())
	}
}

// The quick return from FAULT: a MASTER whose interface went away comes
// back as MASTER at once when no backup can have taken over (its last
// advert less than ReturnWindow ago, its priority 0 advert lost, nothing
// heard, no other fault); otherwise BACKUP and Master_Down_Interval, as
// keepalived.
func TestMachineQuickReturn(t *testing.T) {
	if w := ReturnWindow(time.Second); w != 2*time.Second {
		t.Fatalf("ReturnWindow(1s) = %v, want 2s", w)
	}
	if w := ReturnWindow(200 * time.Millisecond); w != 300*time.Millisecond {
		t.Fatalf("ReturnWindow(200ms) = %v, want 300ms", w)
	}
	if w := ReturnWindow(100 * time.Millisecond); w != 0 {
		t.Fatalf("ReturnWindow(100ms) = %v, want 0 (never)", w)
	}
	// feed hands the actions' sends back as the runner does: sendOK
	// decides whether each advert went out.
	feed := func(m *machine, acts []action, sendOK func(prio uint8) bool) []action {
		for _, a := range acts {
			if sa, ok := a.(sendAdvert); ok {
				ok := sendOK(sa.Priority)
				m.advertSent(sa.Priority, ok, ok)
			}
		}
		return acts
	}
	always := func(uint8) bool { return true }
	gone := func(uint8) bool { return false }
	// master: a MASTER that sent its first advert and one more, 500 ms
	// before its interface goes.
	master := func(t *testing.T, mods ...func(*machineConfig)) (*machine, *fakeClock) {
		clk := newFakeClock()
		cfg := baseCfg()
		for _, f := range mods {
			f(&cfg)
		}
		m, err := newMachine(cfg, clk)
		if err != nil {
			t.Fatal(err)
		}
		m.Handle(start{})
		clk.Advance(mdi100)
		feed(m, m.Handle(timerFired{timerMasterDown}), always)
		clk.Advance(time.Second)
		feed(m, m.Handle(timerFired{timerAdvert}), always)
		if m.State() != StateMaster {
			t.Fatalf("state %v, want MASTER", m.State())
		}
		clk.Advance(500 * time.Millisecond)
		return m, clk
	}
	down := func(t *testing.T, m *machine, stopOK func(uint8) bool) {
		acts := feed(m, m.Handle(interfaceChanged{Up: false}), stopOK)
		if m.State() != StateFault || len(acts) == 0 || acts[0] != (sendAdvert{0}) {
			t.Fatalf("interface down: state %v, actions %s; want FAULT after a priority 0 advert", m.State(), fmtActions(acts))
		}
	}
	wantMaster := []action{returned{Since: 1200 * time.Millisecond}, sendAdvert{100}, addVIPs{}, sendGARP{5},
		transition{StateFault, StateMaster, 100}, setTimer{timerAdvert, time.Second}, setTimer{timerGARPDelay, 5 * time.Second}}
	wantBackup := []action{setTimer{timerMasterDown, mdi100}, transition{StateFault, StateBackup, 100}}
	up := func(t *testing.T, m *machine, want []action) {
		t.Helper()
		acts := feed(m, m.Handle(interfaceChanged{Up: true}), always)
		if !reflect.DeepEqual(acts, want) {
			t.Fatalf("interface back: actions %s\nwant %s", fmtActions(acts), fmtActions(want))
		}
	}

	t.Run("quick return: MASTER at once", func(t *testing.T) {
		m, clk := master(t)
		down(t, m, gone)
		clk.Advance(700 * time.Millisecond) // 1.2 s after the last advert
		up(t, m, wantMaster)
		// An ordinary master afterwards: the next advert one interval on.
		clk.Advance(time.Second)
		if acts := m.Handle(timerFired{timerAdvert}); len(acts) == 0 || acts[0] != (sendAdvert{100}) {
			t.Fatalf("advert timer after the return: %s", fmtActions(acts))
		}
	})
	t.Run("nopreempt: MASTER at once too (nobody took over)", func(t *testing.T) {
		m, clk := master(t, func(c *machineConfig) { c.Nopreempt = true })
		down(t, m, gone)
		clk.Advance(700 * time.Millisecond)
		up(t, m, wantMaster)
	})
	t.Run("slow return: BACKUP", func(t *testing.T) {
		m, clk := master(t)
		down(t, m, gone)
		clk.Advance(1500 * time.Millisecond) // 2.0 s: the window is over
		up(t, m, wantBackup)
	})
	t.Run("priority 0 advert went out: BACKUP", func(t *testing.T) {
		m, clk := master(t)
		down(t, m, always) // a backup heard it and takes over after Skew_Time
		clk.Advance(100 * time.Millisecond)
		up(t, m, wantBackup)
	})
	t.Run("another router heard in FAULT: BACKUP", func(t *testing.T) {
		m, clk := master(t)
		down(t, m, gone)
		clk.Advance(100 * time.Millisecond)
		m.Handle(advertReceived{Src: peer, Priority: 50, Interval: time.Second, At: clk.Now()})
		up(t, m, wantBackup)
	})
	t.Run("adverts failing before the fault: BACKUP", func(t *testing.T) {
		m, clk := master(t)
		clk.Advance(500 * time.Millisecond)
		feed(m, m.Handle(timerFired{timerAdvert}), gone) // the peer's timer runs from the one before
		clk.Advance(500 * time.Millisecond)
		down(t, m, gone)
		clk.Advance(100 * time.Millisecond) // the last advert that went out 1.6 s ago: inside the window
		up(t, m, []action{returned{Since: 1600 * time.Millisecond}, sendAdvert{100}, addVIPs{}, sendGARP{5},
			transition{StateFault, StateMaster, 100}, setTimer{timerAdvert, time.Second}, setTimer{timerGARPDelay, 5 * time.Second}})
		m2, clk2 := master(t)
		clk2.Advance(500 * time.Millisecond)
		feed(m2, m2.Handle(timerFired{timerAdvert}), gone)
		clk2.Advance(900 * time.Millisecond)
		down(t, m2, gone)
		clk2.Advance(100 * time.Millisecond) // 2.0 s after the last good one
		up(t, m2, wantBackup)
	})
	t.Run("a tracked object faulty meanwhile: BACKUP once it clears", func(t *testing.T) {
		m, clk := master(t)
		down(t, m, gone)
		m.Handle(trackingChanged{Fault: true})
		clk.Advance(100 * time.Millisecond)
		if acts := m.Handle(interfaceChanged{Up: true}); len(acts) != 0 || m.State() != StateFault {
			t.Fatalf("interface back, track script still in fault: state %v, actions %s", m.State(), fmtActions(acts))
		}
		up2 := m.Handle(trackingChanged{Fault: false})
		if !reflect.DeepEqual(up2, wantBackup) {
			t.Fatalf("track script clear: %s\nwant %s", fmtActions(up2), fmtActions(wantBackup))
		}
	})
	t.Run("address owner: MASTER at once as before", func(t *testing.T) {
		m, clk := master(t, func(c *machineConfig) { c.Priority = 255 })
		down(t, m, always)
		clk.Advance(5 * time.Second)
		acts := m.Handle(interfaceChanged{Up: true})
		if m.State() != StateMaster || len(acts) == 0 || acts[0] != (sendAdvert{255}) {
			t.Fatalf("owner back: state %v, actions %s", m.State(), fmtActions(acts))
		}
	})
	t.Run("sync group: BACKUP (keepalived's path)", func(t *testing.T) {
		g, clk := newTestGroup(t, 2)
		ms := g.Members()
		run := func(i int, ev event, sendOK func(uint8) bool) {
			for _, ma := range g.Dispatch(i, ev) {
				if sa, ok := ma.Action.(sendAdvert); ok && ma.Member >= 0 {
					ok := sendOK(sa.Priority)
					ms[ma.Member].advertSent(sa.Priority, ok, ok)
				}
			}
		}
		run(0, start{}, always)
		run(1, start{}, always)
		clk.Advance(mdi100)
		run(0, timerFired{timerMasterDown}, always)
		if g.State() != StateMaster {
			t.Fatalf("group %v, want MASTER", g.State())
		}
		clk.Advance(500 * time.Millisecond)
		run(0, interfaceChanged{Up: false}, gone)
		clk.Advance(100 * time.Millisecond)
		run(0, interfaceChanged{Up: true}, always)
		for i, m := range ms {
			if m.State() != StateBackup {
				t.Fatalf("member %d is %v after the interface came back, want BACKUP", i, m.State())
			}
		}
	})
}
