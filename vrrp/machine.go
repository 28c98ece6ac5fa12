package vrrp

import (
	"errors"
	"fmt"
	"net/netip"
	"time"

	"github.com/lvsd/lvsd/internal/clock"
	"github.com/lvsd/lvsd/vrrp/advert"
)

// State is the state of a VRRP instance.
type State uint8

// Instance states. Init is the state before start; Stopped is final.
const (
	StateInit State = iota
	StateBackup
	StateMaster
	StateFault
	StateStopped
)

// stateNames are the names of the State values, by value.
var stateNames = [...]string{StateInit: "INIT", StateBackup: "BACKUP", StateMaster: "MASTER", StateFault: "FAULT", StateStopped: "STOP"}

func (s State) String() string {
	if int(s) < len(stateNames) {
		return stateNames[s]
	}
	return fmt.Sprintf("state(%d)", uint8(s))
}

// timerID names the timers of an instance. The machine asks its driver to
// (re)arm and stop them with setTimer/stopTimer actions; the driver answers
// with timerFired events.
type timerID uint8

// Timers.
const (
	timerMasterDown    timerID = iota // BACKUP: Master_Down_Timer
	timerAdvert                       // MASTER: Adver_Timer
	timerGARPDelay                    // MASTER: second GARP burst, garp_master_delay after takeover
	timerGARPRefresh                  // MASTER: periodic garp_master_refresh
	timerGARPLowerPrio                // MASTER: second burst after a lower priority advert
	timerResign                       // the end of an operator's failover (resign.For)
	numTimers
)

// timerIDNames are the names of the timerID values, by value.
var timerIDNames = [...]string{timerMasterDown: "master_down", timerAdvert: "advert", timerGARPDelay: "garp_delay", timerGARPRefresh: "garp_refresh", timerGARPLowerPrio: "garp_lower_prio", timerResign: "resign"}

func (t timerID) String() string {
	if int(t) < len(timerIDNames) {
		return timerIDNames[t]
	}
	return fmt.Sprintf("timer(%d)", uint8(t))
}

// event is an input of the state machine.
type event interface{ isEvent() }

// start leaves INIT (RFC 3768 §6.4.1 Startup event).
type start struct {
	// Delay is vrrp_startup_delay: until it has passed the instance does
	// not become MASTER (an address owner stays INIT, the others are
	// BACKUP and their first Master_Down_Timer runs after the delay), as
	// keepalived 2.2.
	Delay time.Duration
}

// advertReceived is a validated advertisement for this instance.
type advertReceived struct {
	Src      netip.Addr
	Priority uint8
	Interval time.Duration // the advertised interval (adopted in v3)
	// At is when the advert arrived (kernel timestamp); zero when unknown.
	// The Master_Down_Timer it restarts counts from then.
	At time.Time
}

// timerFired reports that a timer armed by setTimer expired.
type timerFired struct{ Timer timerID }

// interfaceChanged reports the link state of the instance's interface.
type interfaceChanged struct{ Up bool }

// trackingChanged reports the aggregate of the tracked objects.
type trackingChanged struct {
	Weight int  // summed weights, added to the base priority
	Fault  bool // a weight-0 object is down
}

// syncMaster, syncBackup and syncFault are sent by a sync group to its
// members (see syncGroup).
type (
	syncMaster struct{}
	syncBackup struct{}
	syncFault  struct{ Fault bool }
)

// shutdown stops the instance: a master sends priority 0 and releases its
// addresses. With Keep (keepalived's --dont-release-vrrp on daemon stop) a
// master does neither, as keepalived skips restore_vrrp_interfaces: the
// addresses and routes stay and a backup takes over after
// Master_Down_Interval.
type shutdown struct{ Keep bool }

// resign is the operator's failover (lvsd ctl failover): On, a master
// sends priority 0, releases its addresses and becomes BACKUP, and while
// resigned the instance never becomes MASTER (it neither preempts nor
// takes over when the master goes quiet). Off (or after For, when
// positive) it is an ordinary BACKUP again.
type resign struct {
	On  bool
	For time.Duration
}

func (start) isEvent()            {}
func (advertReceived) isEvent()   {}
func (timerFired) isEvent()       {}
func (interfaceChanged) isEvent() {}
func (trackingChanged) isEvent()  {}
func (syncMaster) isEvent()       {}
func (syncBackup) isEvent()       {}
func (syncFault) isEvent()        {}
func (shutdown) isEvent()         {}
func (resign) isEvent()           {}

// action is an output of the state machine, carried out by its driver in
// the order given.
type action interface{ isAction() }

// sendAdvert sends one advertisement with the given priority.
type sendAdvert struct{ Priority uint8 }

// addVIPs configures the virtual addresses.
type addVIPs struct{}

// removeVIPs removes the virtual addresses.
type removeVIPs struct{}

// sendGARP sends Count gratuitous ARPs for each virtual address.
type sendGARP struct{ Count int }

// setTimer (re)arms a timer to fire After from now.
type setTimer struct {
	Timer timerID
	After time.Duration
}

// stopTimer disarms a timer.
type stopTimer struct{ Timer timerID }

// transition notifies a state change (notify scripts, metrics, logs).
type transition struct {
	From, To State
	Priority uint8 // effective priority at the time
}

// returned precedes the FAULT to MASTER of a quick return (see
// machine.mayReturn), for the log.
type returned struct{ Since time.Duration } // since the last advert

func (sendAdvert) isAction() {}
func (addVIPs) isAction()    {}
func (removeVIPs) isAction() {}
func (sendGARP) isAction()   {}
func (setTimer) isAction()   {}
func (stopTimer) isAction()  {}
func (transition) isAction() {}
func (returned) isAction()   {}

// machineConfig is the protocol configuration of one instance.
type machineConfig struct {
	Name           string
	VRID           uint8 // virtual_router_id 1..255
	Version        uint8 // 2 or 3
	Priority       uint8 // base priority 1..255; 255 is the address owner
	AdvertInterval time.Duration
	// InitialState is the configured "state": StateMaster, StateBackup, or
	// StateInit when not configured. keepalived 2.x starts every instance
	// as BACKUP, except that an address owner (priority 255) that is not
	// configured "state BACKUP" becomes MASTER at once.
	InitialState State
	Nopreempt    bool
	PreemptDelay time.Duration
	// PrimaryIP is our advert source address, compared with the sender's
	// to break priority ties (the higher address wins).
	PrimaryIP netip.Addr

	GARPMasterDelay         time.Duration // second burst after takeover; 0: none
	GARPMasterRepeat        int           // GARPs per VIP per burst
	GARPMasterRefresh       time.Duration // periodic refresh while master; 0: none
	GARPMasterRefreshRepeat int
	GARPLowerPrioRepeat     int           // burst when a lower priority advert is heard; 0: none
	GARPLowerPrioDelay      time.Duration // second burst after that; 0: none
	// LowerPrioNoAdvert: a master that hears a lower priority does not
	// answer with an advert (RFC behaviour; keepalived's default answers).
	LowerPrioNoAdvert bool
	// HigherPrioSendAdvert: a master that hears a higher priority sends one
	// more advert before becoming backup.
	HigherPrioSendAdvert bool
}

// Normalize validates the configuration and applies keepalived's
// adjustments: nopreempt is cleared for the address owner and with state
// MASTER, preempt_delay is cleared with state MASTER and with nopreempt.
func (c *machineConfig) Normalize() error {
	if c.Version != 2 && c.Version != 3 {
		return advert.ErrVersion
	}
	if c.VRID == 0 {
		return errors.New("vrrp: virtual_router_id must be 1..255")
	}
	if c.Priority == 0 {
		return errors.New("vrrp: priority must be 1..255")
	}
	if _, err := advert.EncodeInterval(c.Version, c.AdvertInterval); err != nil {
		return err
	}
	switch c.InitialState {
	case StateInit, StateBackup, StateMaster:
	default:
		return fmt.Errorf("vrrp: initial state %v", c.InitialState)
	}
	if c.Priority == advert.PriorityOwner || c.InitialState == StateMaster {
		c.Nopreempt = false
	}
	if c.InitialState == StateMaster || c.Nopreempt {
		c.PreemptDelay = 0
	}
	if c.PreemptDelay < 0 || c.GARPMasterDelay < 0 || c.GARPMasterRefresh < 0 || c.GARPLowerPrioDelay < 0 {
		return errors.New("vrrp: negative delay")
	}
	return nil
}

// machine is the VRRP state machine of one instance (RFC 3768 §6.4,
// RFC 5798 §6.4, with keepalived's behaviour). It has no sockets and no
// goroutines: it consumes events and returns actions. Time comes from the
// injected clock (Now only); timers are actions. It is owned by a single
// goroutine.
type machine struct {
	cfg   machineConfig
	clock clock.Clock

	state     State
	effPrio   uint8
	basePrio  uint8
	weight    int
	masterInt time.Duration // Master_Adver_Interval

	ifDown, trackFault, groupFault bool
	resigned                       bool // see resign

	preemptAt time.Time // preempt delay expiry; zero when not running
	holdUntil time.Time // end of vrrp_startup_delay; zero when none or past
	armed     [numTimers]bool
	deadline  [numTimers]time.Time
	downAfter time.Duration // the Master_Down_Timer duration last armed

	masterAddr netip.Addr
	masterPrio uint8
	out        []action

	// The quick return from FAULT (see mayReturn). lastAdvert is when an
	// advert at our priority last went out to every destination
	// (advertSent); returnable is set on leaving MASTER for FAULT
	// because the interface went, and cleared by anything that makes a
	// return unsafe.
	lastAdvert time.Time
	returnable bool
}

// newMachine returns a machine in INIT. cfg is normalized (see Normalize).
func newMachine(cfg machineConfig, clk clock.Clock) (*machine, error) {
	if err := cfg.Normalize(); err != nil {
		return nil, err
	}
	return &machine{
		cfg: cfg, clock: clk, state: StateInit,
		basePrio: cfg.Priority, effPrio: cfg.Priority, masterInt: cfg.AdvertInterval,
	}, nil
}

// Config returns the normalized configuration.
func (m *machine) Config() machineConfig { return m.cfg }

// State returns the current state.
func (m *machine) State() State { return m.state }

// held is what remains of vrrp_startup_delay (0 once it has passed).
func (m *machine) held() time.Duration {
	if m.holdUntil.IsZero() {
		return 0
	}
	d := m.holdUntil.Sub(m.clock.Now())
	if d <= 0 {
		m.holdUntil = time.Time{}
		return 0
	}
	return d
}

// Priority returns the effective priority.
func (m *machine) Priority() uint8 { return m.effPrio }

// MasterAdverInterval returns Master_Adver_Interval.
func (m *machine) MasterAdverInterval() time.Duration { return m.masterInt }

// Master returns the address and priority of the master last heard.
func (m *machine) Master() (netip.Addr, uint8) { return m.masterAddr, m.masterPrio }

// OwnFault reports whether the instance itself (its interface or its
// weight-0 tracked objects) is faulty, regardless of its sync group.
func (m *machine) OwnFault() bool { return m.ifDown || m.trackFault }

func (m *machine) faulty() bool { return m.OwnFault() || m.groupFault }

// SkewTime is Skew_Time for the given priority: (256-Priority)/256 seconds
// for v2, (256-Priority)*Master_Adver_Interval/256 for v3.
func (m *machine) SkewTime(prio uint8) time.Duration {
	if m.cfg.Version == 2 {
		return time.Duration(256-int(prio)) * time.Second / 256
	}
	return time.Duration(256-int(prio)) * m.masterInt / 256
}

// MasterDownInterval is 3*Master_Adver_Interval + Skew_Time at the current
// effective priority (v2: the advert interval is the configured one).
func (m *machine) MasterDownInterval() time.Duration {
	return 3*m.masterInt + m.SkewTime(m.effPrio)
}

func (m *machine) emit(a ...action) { m.out = append(m.out, a...) }

func (m *machine) setTimer(t timerID, d time.Duration) {
	if d < 0 {
		d = 0
	}
	m.armed[t] = true
	m.deadline[t] = m.clock.Now().Add(d)
	if t == timerMasterDown {
		m.downAfter = d
	}
	m.emit(setTimer{Timer: t, After: d})
}

func (m *machine) stopTimer(t timerID) {
	if m.armed[t] {
		m.armed[t] = false
		m.emit(stopTimer{Timer: t})
	}
}

func (m *machine) stopAll() {
	for t := range numTimers {
		m.stopTimer(t)
	}
}

func (m *machine) transition(to State) {
	from := m.state
	m.state = to
	m.emit(transition{From: from, To: to, Priority: m.effPrio})
}

// advertSent is the driver's report of a sendAdvert action: every when it
// went out to every destination, some when to at least one.
func (m *machine) advertSent(prio uint8, every, some bool) {
	switch {
	case prio == advert.PriorityStop && some:
		// A peer may have heard it and takes over after Skew_Time.
		m.returnable = false
	case prio != advert.PriorityStop && every && m.state == StateMaster:
		m.lastAdvert = m.clock.Now()
	}
}

// ReturnWindow is how long after its last advert an instance that went
// FAULT as MASTER, because its interface went away, may come back as
// MASTER at once: the peers time a master out after Master_Down_Interval,
// at least 3 x advert_int from the arrival of its last advert (Skew_Time
// is not negative). The margin, one advert interval and at least 300 ms,
// covers the send, the wire and the peer's processing; 0 (never) for
// intervals of 150 ms and below.
func ReturnWindow(advertInt time.Duration) time.Duration {
	w := 3*advertInt - max(advertInt, 300*time.Millisecond)
	return max(w, 0)
}

// mayReturn reports whether an instance leaving FAULT re-enters MASTER
// at once rather than BACKUP (a difference from keepalived and the RFCs,
// docs/migrating-from-keepalived.md): it was MASTER when its interface
// went away or down, that was its only fault all along (no tracked
// object, no sync group), its priority 0 advert reached nobody, it heard
// no other router meanwhile, and its last advert went out less than
// ReturnWindow ago, so that no backup can have taken over: for the peers
// the master merely skipped an advert or two.
func (m *machine) mayReturn() bool {
	ok := m.returnable && !m.resigned && m.held() == 0 && !m.lastAdvert.IsZero() &&
		m.clock.Now().Sub(m.lastAdvert) < ReturnWindow(m.cfg.AdvertInterval)
	m.returnable = false
	return ok
}

// Handle feeds one event to the machine and returns the actions to carry
// out, in order.
func (m *machine) Handle(ev event) []action {
	m.out = nil
	if m.state == StateStopped {
		return nil
	}
	switch e := ev.(type) {
	case start:
		if m.state == StateInit {
			if e.Delay > 0 {
				m.holdUntil = m.clock.Now().Add(e.Delay)
			}
			m.start()
		}
	case advertReceived:
		switch m.state {
		case StateBackup:
			m.backupAdvert(e)
		case StateMaster:
			m.masterAdvert(e)
		case StateFault:
			// Another router is advertising: it may be master now.
			m.returnable = false
		}
	case timerFired:
		m.timerFired(e.Timer)
	case interfaceChanged:
		m.ifDown = !e.Up
		m.evalFault()
	case trackingChanged:
		m.setWeight(e.Weight)
		m.trackFault = e.Fault
		m.evalFault()
	case syncFault:
		m.groupFault = e.Fault
		m.evalFault()
	case syncMaster:
		if m.state == StateBackup && !m.faulty() && !m.resigned {
			m.becomeMaster()
		}
	case syncBackup:
		if m.state == StateMaster {
			m.leaveMasterToBackup()
		}
	case shutdown:
		m.shutdown(e.Keep)
	case resign:
		m.resign(e)
	}
	return m.out
}

func (m *machine) isOwnerMaster() bool {
	return m.basePrio == advert.PriorityOwner && m.cfg.InitialState != StateBackup && !m.resigned
}

// Resigned reports whether the operator's failover holds the instance in
// BACKUP, and until when (zero: until cleared).
func (m *machine) Resigned() (bool, time.Time) {
	if !m.resigned || !m.armed[timerResign] {
		return m.resigned, time.Time{}
	}
	return true, m.deadline[timerResign]
}

func (m *machine) resign(e resign) {
	if !e.On {
		if !m.resigned {
			return
		}
		m.resigned = false
		m.stopTimer(timerResign)
		if m.state == StateBackup {
			m.setTimer(timerMasterDown, m.MasterDownInterval())
		}
		return
	}
	m.resigned = true
	if e.For > 0 {
		m.setTimer(timerResign, e.For)
	} else {
		m.stopTimer(timerResign)
	}
	if m.state == StateMaster {
		m.emit(sendAdvert{Priority: advert.PriorityStop}, removeVIPs{})
		m.stopMasterTimers()
		m.setTimer(timerMasterDown, m.MasterDownInterval())
		m.transition(StateBackup)
	}
}

func (m *machine) start() {
	switch {
	case m.isOwnerMaster() && !m.faulty() && m.held() > 0:
		m.setTimer(timerMasterDown, m.held())
	case m.faulty():
		m.emit(removeVIPs{})
		m.transition(StateFault)
	case m.isOwnerMaster():
		m.becomeMaster()
	default:
		// Remove leftovers of our addresses from a previous run.
		m.emit(removeVIPs{})
		m.enterBackup()
	}
}

// enterBackup enters BACKUP from INIT or FAULT. With preempt_delay the
// first Master_Down_Timer is extended by the delay: keepalived delays
// preemption "after getting the advertisement timeout at startup".
func (m *machine) enterBackup() {
	m.masterInt = m.cfg.AdvertInterval
	m.preemptAt = time.Time{}
	d := m.MasterDownInterval()
	switch {
	case m.held() > 0:
		// vrrp_startup_delay: the timer restarts at the delay's end,
		// without preempt_delay (keepalived 2.2.7, compared in netns).
		d += m.held()
	case m.cfg.PreemptDelay > 0:
		d += m.cfg.PreemptDelay
	}
	m.setTimer(timerMasterDown, d)
	m.transition(StateBackup)
}

func (m *machine) becomeMaster() {
	m.stopTimer(timerMasterDown)
	m.masterInt = m.cfg.AdvertInterval
	m.preemptAt = time.Time{}
	m.masterAddr, m.masterPrio = m.cfg.PrimaryIP, m.effPrio
	// RFC 3768 6.4.2 order, as keepalived: the advertisement first (it
	// stops the other routers' timers at once), then the addresses.
	m.emit(sendAdvert{Priority: m.effPrio}, addVIPs{})
	if m.cfg.GARPMasterRepeat > 0 {
		m.emit(sendGARP{Count: m.cfg.GARPMasterRepeat})
	}
	m.transition(StateMaster)
	m.setTimer(timerAdvert, m.cfg.AdvertInterval)
	if m.cfg.GARPMasterDelay > 0 && m.cfg.GARPMasterRepeat > 0 {
		m.setTimer(timerGARPDelay, m.cfg.GARPMasterDelay)
	}
	if m.cfg.GARPMasterRefresh > 0 && m.cfg.GARPMasterRefreshRepeat > 0 {
		m.setTimer(timerGARPRefresh, m.cfg.GARPMasterRefresh)
	}
}

func (m *machine) stopMasterTimers() {
	m.stopTimer(timerAdvert)
	m.stopTimer(timerGARPDelay)
	m.stopTimer(timerGARPRefresh)
	m.stopTimer(timerGARPLowerPrio)
}

func (m *machine) leaveMasterToBackup() {
	m.emit(removeVIPs{})
	m.stopMasterTimers()
	m.setTimer(timerMasterDown, m.MasterDownInterval())
	m.transition(StateBackup)
}

func (m *machine) backupAdvert(e advertReceived) {
	switch {
	case e.Priority == advert.PriorityStop:
		// The master is leaving: take over after Skew_Time.
		m.setTimer(timerMasterDown, m.SkewTime(m.effPrio)-m.age(e.At))
	case m.cfg.Nopreempt || m.resigned || e.Priority >= m.effPrio ||
		(m.cfg.PreemptDelay > 0 && (m.preemptAt.IsZero() || m.clock.Now().Before(m.preemptAt))):
		if m.cfg.Version == 3 && e.Interval > 0 {
			m.masterInt = e.Interval
		}
		m.masterAddr, m.masterPrio = e.Src, e.Priority
		m.setTimer(timerMasterDown, m.MasterDownInterval()-m.age(e.At))
		if m.cfg.PreemptDelay > 0 {
			if e.Priority >= m.effPrio {
				m.preemptAt = time.Time{}
			} else if m.preemptAt.IsZero() {
				m.preemptAt = m.clock.Now().Add(m.cfg.PreemptDelay)
			}
		}
	default:
		// Lower priority and we may preempt: discard; the
		// Master_Down_Timer keeps running and we take over when it fires.
	}
}

// age is how long ago a packet that arrived at t was received: the time
// it waited in the socket and the queues. Bounded by the advert interval
// (a clock step must not fire a timer at once); 0 when t is unknown.
func (m *machine) age(t time.Time) time.Duration {
	if t.IsZero() {
		return 0
	}
	a := m.clock.Now().Sub(t)
	if a < 0 || a > m.masterInt {
		return 0
	}
	return a
}

func (m *machine) masterAdvert(e advertReceived) {
	if e.Priority == advert.PriorityStop {
		m.emit(sendAdvert{Priority: m.effPrio})
		m.setTimer(timerAdvert, m.cfg.AdvertInterval)
		return
	}
	cmp := e.Src.Compare(m.cfg.PrimaryIP)
	if e.Priority == m.effPrio {
		if cmp == 0 {
			// Our own address at our priority: a misconfiguration or a
			// looped packet; keep the role.
			return
		}
		if m.effPrio == advert.PriorityOwner {
			// Two address owners: keepalived reports the configuration
			// error and lowers its own priority.
			m.basePrio, m.effPrio = advert.PriorityOwner-1, advert.PriorityOwner-1
		}
	}
	higher := e.Priority > m.effPrio || (e.Priority == m.effPrio && cmp > 0)
	if !higher {
		if !m.cfg.LowerPrioNoAdvert {
			m.emit(sendAdvert{Priority: m.effPrio})
		}
		if m.cfg.GARPLowerPrioRepeat > 0 {
			m.emit(sendGARP{Count: m.cfg.GARPLowerPrioRepeat})
			if m.cfg.GARPLowerPrioDelay > 0 {
				m.setTimer(timerGARPLowerPrio, m.cfg.GARPLowerPrioDelay)
			}
		}
		return
	}
	if m.cfg.HigherPrioSendAdvert {
		m.emit(sendAdvert{Priority: m.effPrio})
	}
	if m.cfg.Version == 3 && e.Interval > 0 {
		m.masterInt = e.Interval
	}
	m.masterAddr, m.masterPrio = e.Src, e.Priority
	m.leaveMasterToBackup()
}

func (m *machine) timerFired(t timerID) {
	if t >= numTimers || !m.armed[t] {
		return
	}
	m.armed[t] = false
	switch {
	case t == timerMasterDown && m.state == StateInit:
		m.start() // an address owner held by vrrp_startup_delay
	case t == timerMasterDown && m.state == StateBackup && m.held() > 0:
		// Master gone during vrrp_startup_delay: its Master_Down_Timer
		// runs from the delay's end.
		m.setTimer(timerMasterDown, m.held()+m.MasterDownInterval())
	case t == timerMasterDown && m.state == StateBackup && m.resigned:
		// Resigned: the master is gone, but we stay BACKUP.
		m.setTimer(timerMasterDown, m.MasterDownInterval())
	case t == timerMasterDown && m.state == StateBackup:
		m.becomeMaster()
	case t == timerResign:
		m.resign(resign{On: false})
	case t == timerAdvert && m.state == StateMaster:
		m.emit(sendAdvert{Priority: m.effPrio})
		m.setTimer(timerAdvert, m.cfg.AdvertInterval)
	case t == timerGARPDelay && m.state == StateMaster:
		m.emit(sendGARP{Count: m.cfg.GARPMasterRepeat})
	case t == timerGARPRefresh && m.state == StateMaster:
		m.emit(sendGARP{Count: m.cfg.GARPMasterRefreshRepeat})
		m.setTimer(timerGARPRefresh, m.cfg.GARPMasterRefresh)
	case t == timerGARPLowerPrio && m.state == StateMaster:
		m.emit(sendGARP{Count: m.cfg.GARPLowerPrioRepeat})
	}
}

// setWeight updates the effective priority. In BACKUP a higher priority
// shortens the running Master_Down_Timer by the Skew_Time difference, as
// keepalived does; a lower one takes effect at the next reset.
func (m *machine) setWeight(w int) {
	m.weight = w
	old := m.effPrio
	m.effPrio = effectivePriority(m.basePrio, w)
	if m.effPrio > old && m.state == StateBackup && m.armed[timerMasterDown] {
		shorter := m.SkewTime(old) - m.SkewTime(m.effPrio)
		remain := m.deadline[timerMasterDown].Sub(m.clock.Now()) - shorter
		m.setTimer(timerMasterDown, remain)
	}
}

func (m *machine) evalFault() {
	if m.trackFault || m.groupFault {
		m.returnable = false
	}
	switch {
	case (m.state == StateBackup || m.state == StateMaster) && m.faulty():
		m.enterFault()
	case m.state == StateFault && !m.faulty():
		switch {
		case m.isOwnerMaster():
			m.becomeMaster()
		case m.mayReturn():
			m.emit(returned{Since: m.clock.Now().Sub(m.lastAdvert)})
			m.becomeMaster()
		default:
			m.enterBackup()
		}
	}
}

// enterFault: a master sends priority 0 so that a backup takes over after
// Skew_Time, and releases its addresses.
func (m *machine) enterFault() {
	// The stop advert's fate comes back through advertSent.
	m.returnable = m.state == StateMaster && m.ifDown && !m.trackFault && !m.groupFault
	if m.state == StateMaster {
		m.emit(sendAdvert{Priority: advert.PriorityStop}, removeVIPs{})
	}
	m.stopAll()
	m.transition(StateFault)
}

func (m *machine) shutdown(keep bool) {
	if m.state == StateMaster && !keep {
		m.emit(sendAdvert{Priority: advert.PriorityStop}, removeVIPs{})
	}
	m.stopAll()
	m.transition(StateStopped)
}

// Reconfigure applies a new configuration (a reload) to a running machine
// without a transition: the state, the timers and the master last heard
// are kept. The new base priority takes effect at once (in BACKUP a higher
// one shortens the running Master_Down_Timer, as a tracking change does);
// a new advert_int from the next timer on. VRID and version cannot change.
func (m *machine) Reconfigure(cfg machineConfig) ([]action, error) {
	if err := cfg.Normalize(); err != nil {
		return nil, err
	}
	if cfg.VRID != m.cfg.VRID || cfg.Version != m.cfg.Version {
		return nil, errors.New("vrrp: reconfigure cannot change the VRID or the version")
	}
	m.out = nil
	if m.state == StateStopped {
		return nil, nil
	}
	oldIP, oldPrio := m.cfg.PrimaryIP, m.cfg.Priority
	m.cfg = cfg
	// Keep the lowered priority of a duplicate address owner.
	if !(oldPrio == advert.PriorityOwner && cfg.Priority == advert.PriorityOwner) {
		m.basePrio = cfg.Priority
	}
	m.setWeight(m.weight)
	if m.state == StateMaster {
		if m.masterAddr == oldIP {
			m.masterAddr = cfg.PrimaryIP
		}
		m.masterPrio = m.effPrio
	}
	return m.out, nil
}
