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

// Instance states. Init is the state before Start; Stopped is final.
const (
	StateInit State = iota
	StateBackup
	StateMaster
	StateFault
	StateStopped
)

func (s State) String() string {
	switch s {
	case StateInit:
		return "INIT"
	case StateBackup:
		return "BACKUP"
	case StateMaster:
		return "MASTER"
	case StateFault:
		return "FAULT"
	case StateStopped:
		return "STOP"
	}
	return fmt.Sprintf("state(%d)", uint8(s))
}

// TimerID names the timers of an instance. The machine asks its driver to
// (re)arm and stop them with SetTimer/StopTimer actions; the driver answers
// with TimerFired events.
type TimerID uint8

// Timers.
const (
	TimerMasterDown    TimerID = iota // BACKUP: Master_Down_Timer
	TimerAdvert                       // MASTER: Adver_Timer
	TimerGARPDelay                    // MASTER: second GARP burst, garp_master_delay after takeover
	TimerGARPRefresh                  // MASTER: periodic garp_master_refresh
	TimerGARPLowerPrio                // MASTER: second burst after a lower priority advert
	numTimers
)

func (t TimerID) String() string {
	switch t {
	case TimerMasterDown:
		return "master_down"
	case TimerAdvert:
		return "advert"
	case TimerGARPDelay:
		return "garp_delay"
	case TimerGARPRefresh:
		return "garp_refresh"
	case TimerGARPLowerPrio:
		return "garp_lower_prio"
	}
	return fmt.Sprintf("timer(%d)", uint8(t))
}

// Event is an input of the state machine.
type Event interface{ isEvent() }

// Start leaves INIT (RFC 3768 §6.4.1 Startup event).
type Start struct{}

// AdvertReceived is a validated advertisement for this instance.
type AdvertReceived struct {
	Src      netip.Addr
	Priority uint8
	Interval time.Duration // the advertised interval (adopted in v3)
	// At is when the advert arrived (kernel timestamp); zero when unknown.
	// The Master_Down_Timer it restarts counts from then.
	At time.Time
}

// TimerFired reports that a timer armed by SetTimer expired.
type TimerFired struct{ Timer TimerID }

// InterfaceChanged reports the link state of the instance's interface.
type InterfaceChanged struct{ Up bool }

// TrackingChanged reports the aggregate of the tracked objects.
type TrackingChanged struct {
	Weight int  // summed weights, added to the base priority
	Fault  bool // a weight-0 object is down
}

// SyncMaster, SyncBackup and SyncFault are sent by a sync group to its
// members (see Group).
type (
	SyncMaster struct{}
	SyncBackup struct{}
	SyncFault  struct{ Fault bool }
)

// Shutdown stops the instance: a master sends priority 0 and releases its
// addresses. With Keep (keepalived's --dont-release-vrrp on daemon stop) a
// master does neither, as keepalived skips restore_vrrp_interfaces: the
// addresses and routes stay and a backup takes over after
// Master_Down_Interval.
type Shutdown struct{ Keep bool }

func (Start) isEvent()            {}
func (AdvertReceived) isEvent()   {}
func (TimerFired) isEvent()       {}
func (InterfaceChanged) isEvent() {}
func (TrackingChanged) isEvent()  {}
func (SyncMaster) isEvent()       {}
func (SyncBackup) isEvent()       {}
func (SyncFault) isEvent()        {}
func (Shutdown) isEvent()         {}

// Action is an output of the state machine, carried out by its driver in
// the order given.
type Action interface{ isAction() }

// SendAdvert sends one advertisement with the given priority.
type SendAdvert struct{ Priority uint8 }

// AddVIPs configures the virtual addresses.
type AddVIPs struct{}

// RemoveVIPs removes the virtual addresses.
type RemoveVIPs struct{}

// SendGARP sends Count gratuitous ARPs for each virtual address.
type SendGARP struct{ Count int }

// SetTimer (re)arms a timer to fire After from now.
type SetTimer struct {
	Timer TimerID
	After time.Duration
}

// StopTimer disarms a timer.
type StopTimer struct{ Timer TimerID }

// Transition notifies a state change (notify scripts, metrics, logs).
type Transition struct {
	From, To State
	Priority uint8 // effective priority at the time
}

func (SendAdvert) isAction() {}
func (AddVIPs) isAction()    {}
func (RemoveVIPs) isAction() {}
func (SendGARP) isAction()   {}
func (SetTimer) isAction()   {}
func (StopTimer) isAction()  {}
func (Transition) isAction() {}

// MachineConfig is the protocol configuration of one instance.
type MachineConfig struct {
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
func (c *MachineConfig) Normalize() error {
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

// Machine is the VRRP state machine of one instance (RFC 3768 §6.4,
// RFC 5798 §6.4, with keepalived's behaviour). It has no sockets and no
// goroutines: it consumes events and returns actions. Time comes from the
// injected clock (Now only); timers are actions. It is owned by a single
// goroutine.
type Machine struct {
	cfg   MachineConfig
	clock clock.Clock

	state     State
	effPrio   uint8
	basePrio  uint8
	weight    int
	masterInt time.Duration // Master_Adver_Interval

	ifDown, trackFault, groupFault bool

	preemptAt time.Time // preempt delay expiry; zero when not running
	armed     [numTimers]bool
	deadline  [numTimers]time.Time
	downAfter time.Duration // the Master_Down_Timer duration last armed

	masterAddr netip.Addr
	masterPrio uint8
	out        []Action
}

// NewMachine returns a machine in INIT. cfg is normalized (see Normalize).
func NewMachine(cfg MachineConfig, clk clock.Clock) (*Machine, error) {
	if err := cfg.Normalize(); err != nil {
		return nil, err
	}
	return &Machine{
		cfg: cfg, clock: clk, state: StateInit,
		basePrio: cfg.Priority, effPrio: cfg.Priority, masterInt: cfg.AdvertInterval,
	}, nil
}

// Config returns the normalized configuration.
func (m *Machine) Config() MachineConfig { return m.cfg }

// State returns the current state.
func (m *Machine) State() State { return m.state }

// Priority returns the effective priority.
func (m *Machine) Priority() uint8 { return m.effPrio }

// MasterAdverInterval returns Master_Adver_Interval.
func (m *Machine) MasterAdverInterval() time.Duration { return m.masterInt }

// Master returns the address and priority of the master last heard.
func (m *Machine) Master() (netip.Addr, uint8) { return m.masterAddr, m.masterPrio }

// OwnFault reports whether the instance itself (its interface or its
// weight-0 tracked objects) is faulty, regardless of its sync group.
func (m *Machine) OwnFault() bool { return m.ifDown || m.trackFault }

func (m *Machine) faulty() bool { return m.OwnFault() || m.groupFault }

// SkewTime is Skew_Time for the given priority: (256-Priority)/256 seconds
// for v2, (256-Priority)*Master_Adver_Interval/256 for v3.
func (m *Machine) SkewTime(prio uint8) time.Duration {
	if m.cfg.Version == 2 {
		return time.Duration(256-int(prio)) * time.Second / 256
	}
	return time.Duration(256-int(prio)) * m.masterInt / 256
}

// MasterDownInterval is 3*Master_Adver_Interval + Skew_Time at the current
// effective priority (v2: the advert interval is the configured one).
func (m *Machine) MasterDownInterval() time.Duration {
	return 3*m.masterInt + m.SkewTime(m.effPrio)
}

func (m *Machine) emit(a ...Action) { m.out = append(m.out, a...) }

func (m *Machine) setTimer(t TimerID, d time.Duration) {
	if d < 0 {
		d = 0
	}
	m.armed[t] = true
	m.deadline[t] = m.clock.Now().Add(d)
	if t == TimerMasterDown {
		m.downAfter = d
	}
	m.emit(SetTimer{Timer: t, After: d})
}

func (m *Machine) stopTimer(t TimerID) {
	if m.armed[t] {
		m.armed[t] = false
		m.emit(StopTimer{Timer: t})
	}
}

func (m *Machine) stopAll() {
	for t := range numTimers {
		m.stopTimer(t)
	}
}

func (m *Machine) transition(to State) {
	from := m.state
	m.state = to
	m.emit(Transition{From: from, To: to, Priority: m.effPrio})
}

// Handle feeds one event to the machine and returns the actions to carry
// out, in order.
func (m *Machine) Handle(ev Event) []Action {
	m.out = nil
	if m.state == StateStopped {
		return nil
	}
	switch e := ev.(type) {
	case Start:
		if m.state == StateInit {
			m.start()
		}
	case AdvertReceived:
		switch m.state {
		case StateBackup:
			m.backupAdvert(e)
		case StateMaster:
			m.masterAdvert(e)
		}
	case TimerFired:
		m.timerFired(e.Timer)
	case InterfaceChanged:
		m.ifDown = !e.Up
		m.evalFault()
	case TrackingChanged:
		m.setWeight(e.Weight)
		m.trackFault = e.Fault
		m.evalFault()
	case SyncFault:
		m.groupFault = e.Fault
		m.evalFault()
	case SyncMaster:
		if m.state == StateBackup && !m.faulty() {
			m.becomeMaster()
		}
	case SyncBackup:
		if m.state == StateMaster {
			m.leaveMasterToBackup()
		}
	case Shutdown:
		m.shutdown(e.Keep)
	}
	return m.out
}

func (m *Machine) isOwnerMaster() bool {
	return m.basePrio == advert.PriorityOwner && m.cfg.InitialState != StateBackup
}

func (m *Machine) start() {
	switch {
	case m.faulty():
		m.emit(RemoveVIPs{})
		m.transition(StateFault)
	case m.isOwnerMaster():
		m.becomeMaster()
	default:
		// Remove leftovers of our addresses from a previous run.
		m.emit(RemoveVIPs{})
		m.enterBackup()
	}
}

// enterBackup enters BACKUP from INIT or FAULT. With preempt_delay the
// first Master_Down_Timer is extended by the delay: keepalived delays
// preemption "after getting the advertisement timeout at startup".
func (m *Machine) enterBackup() {
	m.masterInt = m.cfg.AdvertInterval
	m.preemptAt = time.Time{}
	d := m.MasterDownInterval()
	if m.cfg.PreemptDelay > 0 {
		d += m.cfg.PreemptDelay
	}
	m.setTimer(TimerMasterDown, d)
	m.transition(StateBackup)
}

func (m *Machine) becomeMaster() {
	m.stopTimer(TimerMasterDown)
	m.masterInt = m.cfg.AdvertInterval
	m.preemptAt = time.Time{}
	m.masterAddr, m.masterPrio = m.cfg.PrimaryIP, m.effPrio
	// RFC 3768 6.4.2 order, as keepalived: the advertisement first (it
	// stops the other routers' timers at once), then the addresses.
	m.emit(SendAdvert{Priority: m.effPrio}, AddVIPs{})
	if m.cfg.GARPMasterRepeat > 0 {
		m.emit(SendGARP{Count: m.cfg.GARPMasterRepeat})
	}
	m.transition(StateMaster)
	m.setTimer(TimerAdvert, m.cfg.AdvertInterval)
	if m.cfg.GARPMasterDelay > 0 && m.cfg.GARPMasterRepeat > 0 {
		m.setTimer(TimerGARPDelay, m.cfg.GARPMasterDelay)
	}
	if m.cfg.GARPMasterRefresh > 0 && m.cfg.GARPMasterRefreshRepeat > 0 {
		m.setTimer(TimerGARPRefresh, m.cfg.GARPMasterRefresh)
	}
}

func (m *Machine) stopMasterTimers() {
	m.stopTimer(TimerAdvert)
	m.stopTimer(TimerGARPDelay)
	m.stopTimer(TimerGARPRefresh)
	m.stopTimer(TimerGARPLowerPrio)
}

func (m *Machine) leaveMasterToBackup() {
	m.emit(RemoveVIPs{})
	m.stopMasterTimers()
	m.setTimer(TimerMasterDown, m.MasterDownInterval())
	m.transition(StateBackup)
}

func (m *Machine) backupAdvert(e AdvertReceived) {
	switch {
	case e.Priority == advert.PriorityStop:
		// The master is leaving: take over after Skew_Time.
		m.setTimer(TimerMasterDown, m.SkewTime(m.effPrio)-m.age(e.At))
	case m.cfg.Nopreempt || e.Priority >= m.effPrio ||
		(m.cfg.PreemptDelay > 0 && (m.preemptAt.IsZero() || m.clock.Now().Before(m.preemptAt))):
		if m.cfg.Version == 3 && e.Interval > 0 {
			m.masterInt = e.Interval
		}
		m.masterAddr, m.masterPrio = e.Src, e.Priority
		m.setTimer(TimerMasterDown, m.MasterDownInterval()-m.age(e.At))
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
func (m *Machine) age(t time.Time) time.Duration {
	if t.IsZero() {
		return 0
	}
	a := m.clock.Now().Sub(t)
	if a < 0 || a > m.masterInt {
		return 0
	}
	return a
}

func (m *Machine) masterAdvert(e AdvertReceived) {
	if e.Priority == advert.PriorityStop {
		m.emit(SendAdvert{Priority: m.effPrio})
		m.setTimer(TimerAdvert, m.cfg.AdvertInterval)
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
			m.emit(SendAdvert{Priority: m.effPrio})
		}
		if m.cfg.GARPLowerPrioRepeat > 0 {
			m.emit(SendGARP{Count: m.cfg.GARPLowerPrioRepeat})
			if m.cfg.GARPLowerPrioDelay > 0 {
				m.setTimer(TimerGARPLowerPrio, m.cfg.GARPLowerPrioDelay)
			}
		}
		return
	}
	if m.cfg.HigherPrioSendAdvert {
		m.emit(SendAdvert{Priority: m.effPrio})
	}
	if m.cfg.Version == 3 && e.Interval > 0 {
		m.masterInt = e.Interval
	}
	m.masterAddr, m.masterPrio = e.Src, e.Priority
	m.leaveMasterToBackup()
}

func (m *Machine) timerFired(t TimerID) {
	if t >= numTimers || !m.armed[t] {
		return
	}
	m.armed[t] = false
	switch {
	case t == TimerMasterDown && m.state == StateBackup:
		m.becomeMaster()
	case t == TimerAdvert && m.state == StateMaster:
		m.emit(SendAdvert{Priority: m.effPrio})
		m.setTimer(TimerAdvert, m.cfg.AdvertInterval)
	case t == TimerGARPDelay && m.state == StateMaster:
		m.emit(SendGARP{Count: m.cfg.GARPMasterRepeat})
	case t == TimerGARPRefresh && m.state == StateMaster:
		m.emit(SendGARP{Count: m.cfg.GARPMasterRefreshRepeat})
		m.setTimer(TimerGARPRefresh, m.cfg.GARPMasterRefresh)
	case t == TimerGARPLowerPrio && m.state == StateMaster:
		m.emit(SendGARP{Count: m.cfg.GARPLowerPrioRepeat})
	}
}

// setWeight updates the effective priority. In BACKUP a higher priority
// shortens the running Master_Down_Timer by the Skew_Time difference, as
// keepalived does; a lower one takes effect at the next reset.
func (m *Machine) setWeight(w int) {
	m.weight = w
	old := m.effPrio
	m.effPrio = EffectivePriority(m.basePrio, w)
	if m.effPrio > old && m.state == StateBackup && m.armed[TimerMasterDown] {
		shorter := m.SkewTime(old) - m.SkewTime(m.effPrio)
		remain := m.deadline[TimerMasterDown].Sub(m.clock.Now()) - shorter
		m.setTimer(TimerMasterDown, remain)
	}
}

func (m *Machine) evalFault() {
	switch {
	case (m.state == StateBackup || m.state == StateMaster) && m.faulty():
		m.enterFault()
	case m.state == StateFault && !m.faulty():
		if m.isOwnerMaster() {
			m.becomeMaster()
		} else {
			m.enterBackup()
		}
	}
}

// enterFault: a master sends priority 0 so that a backup takes over after
// Skew_Time, and releases its addresses.
func (m *Machine) enterFault() {
	if m.state == StateMaster {
		m.emit(SendAdvert{Priority: advert.PriorityStop}, RemoveVIPs{})
	}
	m.stopAll()
	m.transition(StateFault)
}

func (m *Machine) shutdown(keep bool) {
	if m.state == StateMaster && !keep {
		m.emit(SendAdvert{Priority: advert.PriorityStop}, RemoveVIPs{})
	}
	m.stopAll()
	m.transition(StateStopped)
}

// Reconfigure applies a new configuration (a reload) to a running machine
// without a transition: the state, the timers and the master last heard
// are kept. The new base priority takes effect at once (in BACKUP a higher
// one shortens the running Master_Down_Timer, as a tracking change does);
// a new advert_int from the next timer on. VRID and version cannot change.
func (m *Machine) Reconfigure(cfg MachineConfig) ([]Action, error) {
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
