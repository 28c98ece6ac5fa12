package vrrp

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/lvsd/lvsd/conf"
	"github.com/lvsd/lvsd/internal/clock"
	"github.com/lvsd/lvsd/internal/owner"
	"github.com/lvsd/lvsd/vrrp/advert"
)

// VIP is one virtual address of an instance.
type VIP struct {
	Addr  netip.Prefix // address and prefix length, e.g. 192.0.2.100/24
	Dev   string       // interface; empty: the instance's interface
	Brd   netip.Addr   // broadcast; invalid: none
	Scope uint8        // RT_SCOPE_* (0 global, 200 site, 253 link, 254 host); IPv4 only
	Label string       // e.g. "eth0:1"; IPv4 only
	// IPv6 only. As keepalived, an IPv6 address is added with nodad (no
	// duplicate address detection) unless DAD ("-nodad" in keepalived's
	// syntax), and, unless PreferredSet, with the preferred lifetime
	// keepalived gives it: 0 (deprecated, so not picked as a source) for a
	// /128, forever otherwise.
	DAD          bool
	PreferredSet bool
	PreferredLft uint32 // seconds; 0xffffffff is forever
}

// Route types (the kernel's RTN_* values).
const (
	routeUnicast     uint8 = 1
	routeBlackhole   uint8 = 6
	routeUnreachable uint8 = 7
	routeProhibit    uint8 = 8
)

// protoKeepalived is the route protocol of virtual routes unless the
// configuration names another (RTPROT_KEEPALIVED, "proto keepalived").
const protoKeepalived uint8 = 18

// tableMain is the main routing table.
const tableMain uint32 = 254

// Route is one virtual route of an instance (virtual_routes). Its fields
// are what the kernel matches a deletion against, so a route is removed
// only if it is still ours (same protocol, table, metric, next hop).
type Route struct {
	Type   uint8        // routeUnicast, routeBlackhole, routeUnreachable, routeProhibit
	Dst    netip.Prefix // destination
	Src    netip.Addr   // preferred source; invalid: none
	Via    netip.Addr   // gateway; invalid: none
	Dev    string       // output interface; empty: none (the kernel picks it)
	Scope  uint8        // RT_SCOPE_*
	Table  uint32       // tableMain by default
	Metric uint32
	Proto  uint8 // protoKeepalived by default
	OnLink bool
}

// String is the route in ip-route words, as conf writes a virtual route
// (without the scope and protocol, which the kernel reports on its own).
func (r Route) String() string {
	w := conf.VRoute{Dst: r.Dst, Src: r.Src, Via: r.Via, Dev: r.Dev, Metric: r.Metric, OnLink: r.OnLink}
	for name, typ := range routeTypes {
		if typ == r.Type && name != "" && typ != routeUnicast {
			w.Type = name
		}
	}
	if r.Table != tableMain {
		w.Table = r.Table
	}
	return w.String()
}

// Rule is one ip rule (virtual_rules, static_rules), as conf parsed it.
type Rule = conf.VRule

// RouteManager adds and removes routes and ip rules. Adding one that is
// present and removing one that is absent are not errors.
type RouteManager interface {
	AddRoute(r Route) error
	DelRoute(r Route) error
	AddRule(r Rule) error
	DelRule(r Rule) error
}

// AdvertSender sends VRRP packets (the IP payload; the kernel builds the IP
// header with TTL 255 and TOS 0xc0).
type AdvertSender interface {
	SendAdvert(payload []byte, src, dst netip.Addr) error
}

// AddrManager adds and removes addresses on interfaces. Adding an address
// that is present and removing one that is absent are not errors.
type AddrManager interface {
	AddAddr(v VIP) error
	DelAddr(v VIP) error
}

// GARPSender sends one gratuitous ARP for an IPv4 ip, or one unsolicited
// neighbour advertisement for an IPv6 one, on one interface.
type GARPSender interface {
	SendGARP(ip netip.Addr) error
}

// instanceConfig is the configuration of one vrrp_instance.
type instanceConfig struct {
	Machine   machineConfig // Machine.PrimaryIP is the advert source address
	Interface string
	VIPs      []VIP
	// ExcludedVIPs (virtual_ipaddress_excluded) are added and removed with
	// the VIPs but not carried in adverts.
	ExcludedVIPs []VIP
	AuthType     advert.AuthType // v2 only
	AuthPass     string
	// Group is the multicast destination (default 224.0.0.18, or ff02::12
	// for IPv6).
	Group netip.Addr
	// IPv6: VRRPv3 over IPv6 (RFC 5798); the VIPs and peers are IPv6
	// addresses and Machine.PrimaryIP is the interface's link-local one.
	IPv6 bool
	// UnicastPeers switches to unicast: adverts go to each peer.
	UnicastPeers []netip.Addr
	// CheckUnicastSrc drops unicast adverts from non-peers, and those of
	// a peer outside its PeerTTL (min_ttl, max_ttl; by UnicastPeers index).
	CheckUnicastSrc bool
	PeerTTL         []advert.TTLRange
	Tracks          []track
	// Routes (virtual_routes) are added after the VIPs when the instance
	// becomes MASTER and removed before them when it leaves MASTER.
	Routes []Route
	// Rules (virtual_rules) are added after the routes when the instance
	// becomes MASTER and removed before them when it leaves MASTER.
	Rules []Rule
	// GARPInterval and GNAInterval (vrrp_garp_interval, vrrp_gna_interval)
	// space out the gratuitous ARPs and the neighbour advertisements sent
	// on one interface; 0: no spacing. The Engine applies them.
	GARPInterval, GNAInterval time.Duration
	// AutoSource: Machine.PrimaryIP is the interface's primary address
	// (no source configured), followed when it changes.
	AutoSource bool
	// NoAccept (no_accept, or vrrp_strict without accept): while MASTER,
	// the VIPs are handed to runnerOptions.Filter, which drops their
	// traffic.
	NoAccept bool
	// VMAC (use_vmac, use_ipvlan): Interface is its name; the engine makes
	// it on VMAC.Base. XmitBase (vmac_xmit_base): adverts are sent and
	// received on the base, the VIPs and gratuitous ARPs stay on the VMAC.
	VMAC     *VMACSpec
	XmitBase bool
	// UnicastTTL (unicast_ttl) is the TTL of unicast adverts; 0: 255.
	UnicastTTL int
	// PromoteSecondaries (promote_secondaries): the engine sets the
	// interface's promote_secondaries while it runs.
	PromoteSecondaries bool
}

// memberSpec is an instance of a runner with its kernel access.
type memberSpec struct {
	Config instanceConfig
	Sender AdvertSender
	Addrs  AddrManager
	Routes RouteManager // required when the instance has routes
	GARP   GARPSender   // nil: no gratuitous ARP
	// GARPDev sends the gratuitous ARPs of the VIPs declared on another
	// interface (dev in virtual_ipaddress), keyed by that interface, as
	// keepalived announces each VIP on its own interface with its MAC. A
	// VIP whose interface has none (nil) is announced with GARP. It is
	// called from the runner goroutine.
	GARPDev func(dev string) GARPSender
	// LinkDown starts the instance with its interface down (FAULT).
	LinkDown bool
	// OwnInterface is the interface whose state puts the instance in
	// FAULT ("" when none: dont_track_primary), for the safety net.
	OwnInterface string
}

// Stats are the counters of one instance; safe for concurrent reading.
type Stats struct {
	Drops         [advert.NumDropReasons]atomic.Uint64 // by DropReason
	AdvertRcvd    atomic.Uint64                        // accepted adverts
	AddrListErr   atomic.Uint64                        // accepted despite an address-list mismatch
	PriZeroRcvd   atomic.Uint64
	AdvertSent    atomic.Uint64
	PriZeroSent   atomic.Uint64
	SendErrors    atomic.Uint64
	AddrErrors    atomic.Uint64
	RouteErrors   atomic.Uint64
	GARPSent      atomic.Uint64 // gratuitous ARPs and unsolicited neighbour advertisements
	BecomeMaster  atomic.Uint64
	ReleaseMaster atomic.Uint64
	VIPRestored   atomic.Uint64 // VIPs deleted by someone else while MASTER and put back
	OwnPackets    atomic.Uint64 // our own adverts seen and ignored
}

// Notification reports a transition of an instance (Group empty) or of a
// sync group (Instance empty).
type Notification struct {
	Instance string
	Group    string
	From, To State
	Priority uint8
	// Event, when set, makes this no transition but an event of the
	// instance in state To (From is To): its effective priority changed
	// (EventPriority), or as MASTER it heard a lower priority
	// (EventMasterRxLowerPri). Only an EventSink receives them.
	Event InstanceEvent
}

// InstanceEvent is an event of an instance that is not a transition.
type InstanceEvent uint8

// The events of an instance (keepalived's notify FIFO has a line for each).
const (
	EventNone InstanceEvent = iota
	EventPriority
	EventMasterRxLowerPri
)

// runnerOptions are optional settings of a runner.
type runnerOptions struct {
	Clock  clock.Clock  // default clock.System
	Logger *slog.Logger // default slog.Default()
	// Notify is called from the runner goroutine on every transition; it
	// must not block.
	Notify func(Notification)
	// Event, when set, is called as Notify for the events that are not
	// transitions (Notification.Event).
	Event func(Notification)
	// StartDelay is vrrp_startup_delay: the instances wait that long
	// before they may become MASTER (start.Delay).
	StartDelay time.Duration
	// KeepOnStop: when Run returns, a master leaves its VIPs and routes in
	// place and sends no priority 0 advert (--dont-release-vrrp).
	KeepOnStop bool
	// Filter receives the VIPs of a NoAccept instance before they are
	// added, and nil after they are removed; nil: none.
	Filter func(instance string, vips []VIP)
	// Repairs counts the safety net's repairs (default: a counter of the
	// runner's own).
	Repairs *Repairs
}

// runner runs one instance, or the instances of one sync group, in a single
// goroutine that owns their state. Other goroutines talk to it through its
// methods, which post events.
type runner struct {
	name       string
	clock      clock.Clock
	log        *slog.Logger
	notify     func(Notification)
	event      func(Notification)
	startDelay time.Duration
	members    []*member
	group      *syncGroup // nil for a single instance
	events     chan runnerEvent
	done       chan struct{}
	started    atomic.Bool
	keep       atomic.Bool // runnerOptions.KeepOnStop
	filter     func(instance string, vips []VIP)
	repairs    *Repairs

	mu     sync.Mutex
	status []InstanceStatus
	gstate State // the sync group's state (with a group)
}

// garpFor is the sender announcing v: the one of its own interface.
func (mm *member) garpFor(v VIP) GARPSender {
	if v.Dev != "" && v.Dev != mm.cfg.Interface {
		if mm.dev.GARPDev != nil {
			if g := mm.dev.GARPDev(v.Dev); g != nil {
				return g
			}
		}
	}
	return mm.dev.GARP
}

type member struct {
	cfg     instanceConfig
	dev     memberSpec
	m       *machine
	exp     advert.Expect
	tracker *tracker
	vips    []netip.Addr // advertised
	all     []VIP        // VIPs and excluded VIPs
	dsts    []netip.Addr
	timers  [numTimers]clock.Timer
	gen     [numTimers]uint64
	vipsSet bool
	stats   *Stats
	// When the member last learnt of its VIPs, interface, tracked
	// objects and configuration: the safety net compares with listings
	// made after that only.
	vipsAt, linkAt, trackAt, reconfAt time.Time
	// transAt is the time of the last transition (keepalived's
	// last_transition).
	transAt time.Time
}

type runnerEvent struct {
	member int
	ev     event
	gen    uint64 // timerFired only

	// one of the following instead of ev
	packet      []byte
	info        advert.PacketInfo // of packet, or of the dropped packet
	drop        advert.DropReason // a packet its socket dropped
	trackName   string
	trackUp     bool
	trackValue  *int // a File track's value (instead of trackUp)
	addrDeleted *netip.Prefix
	flush       chan struct{} // closed once every earlier event is handled
	reconf      *reconfReq
	verify      *KernelState
}

type reconfReq struct {
	cfgs []instanceConfig
	done chan error
}

// InstanceStatus is a snapshot of one instance.
type InstanceStatus struct {
	Name       string
	State      State
	Priority   uint8
	MasterAddr netip.Addr
	// Resigned: held in BACKUP by the operator's failover (Engine.Failover),
	// until ResignedUntil (zero: until cleared).
	Resigned      bool
	ResignedUntil time.Time
	Stats         *Stats
	// LastTransition is when the instance last changed state; VIPsSet
	// whether its VIPs are installed; MasterPriority the priority of the
	// master last heard (0: none); MasterAdverInt Master_Adver_Interval.
	LastTransition time.Time
	VIPsSet        bool
	MasterPriority uint8
	MasterAdverInt time.Duration
}

// errStopped is returned by Run when called twice.
var errStopped = errors.New("vrrp: runner already ran")

// newRunner builds a runner. With one member it runs a plain instance; with
// more it runs them as the sync group name.
func newRunner(name string, members []memberSpec, opts runnerOptions) (*runner, error) {
	if len(members) == 0 {
		return nil, errors.New("vrrp: runner without instances")
	}
	r := &runner{
		name: name, clock: opts.Clock, log: opts.Logger, notify: opts.Notify, event: opts.Event, startDelay: opts.StartDelay, filter: opts.Filter,
		events: make(chan runnerEvent, 256), done: make(chan struct{}), repairs: opts.Repairs,
	}
	if r.repairs == nil {
		r.repairs = &Repairs{}
	}
	r.keep.Store(opts.KeepOnStop)
	if r.clock == nil {
		r.clock = clock.System{}
	}
	if r.log == nil {
		r.log = slog.Default()
	}
	var machines []*machine
	for _, mb := range members {
		c := mb.Config
		if mb.Sender == nil || mb.Addrs == nil {
			return nil, fmt.Errorf("vrrp: instance %s: sender and address manager are required", c.Machine.Name)
		}
		if len(c.Routes)+len(c.Rules) > 0 && mb.Routes == nil {
			return nil, fmt.Errorf("vrrp: instance %s: routes without a route manager", c.Machine.Name)
		}
		m, err := newMachine(c.Machine, r.clock)
		if err != nil {
			return nil, fmt.Errorf("vrrp: instance %s: %w", c.Machine.Name, err)
		}
		if err := c.checkFamily(); err != nil {
			return nil, err
		}
		if c.Machine.Version == 3 && c.AuthType != advert.AuthNone {
			return nil, fmt.Errorf("vrrp: instance %s: VRRPv3 has no authentication", c.Machine.Name)
		}
		tr, err := newTracker(c.Tracks)
		if err != nil {
			return nil, fmt.Errorf("vrrp: instance %s: %w", c.Machine.Name, err)
		}
		mm := &member{dev: mb, m: m, tracker: tr, stats: &Stats{}}
		if err := mm.setConfig(c); err != nil {
			return nil, err
		}
		r.members = append(r.members, mm)
		machines = append(machines, m)
	}
	if len(members) > 1 {
		g, err := newSyncGroup(name, machines)
		if err != nil {
			return nil, err
		}
		r.group = g
	}
	r.publish()
	return r, nil
}

// setConfig sets the configuration and what derives from it (not the
// machine, not the tracker).
func (mm *member) setConfig(c instanceConfig) error {
	// The advertised VIPs are of the instance's family; the excluded ones
	// may be of either, as in keepalived.
	var vips []netip.Addr
	for _, v := range c.VIPs {
		if v.Addr.Addr().Is6() != c.IPv6 {
			return fmt.Errorf("vrrp: instance %s: VIP %v is not of the instance's family (addresses of the other family go in virtual_ipaddress_excluded)", c.Machine.Name, v.Addr)
		}
		vips = append(vips, v.Addr.Addr())
	}
	for _, v := range c.ExcludedVIPs {
		if !v.Addr.IsValid() {
			return fmt.Errorf("vrrp: instance %s: invalid excluded VIP", c.Machine.Name)
		}
	}
	if len(vips) > advert.MaxAddrs {
		return fmt.Errorf("vrrp: instance %s: more than %d VIPs", c.Machine.Name, advert.MaxAddrs)
	}
	mm.cfg = c
	mm.vips = vips
	mm.all = append(append([]VIP(nil), c.VIPs...), c.ExcludedVIPs...)
	if len(c.UnicastPeers) > 0 {
		mm.dsts = c.UnicastPeers
	} else {
		mm.dsts = []netip.Addr{c.defaultGroup()}
	}
	mm.exp = advert.Expect{
		Version: c.Machine.Version, VRID: c.Machine.VRID, Interval: c.Machine.AdvertInterval,
		AuthType: c.AuthType, AuthData: advert.Password(c.AuthPass), Addrs: mm.vips,
		Unicast: len(c.UnicastPeers) > 0,
	}
	if c.CheckUnicastSrc {
		mm.exp.Peers, mm.exp.PeerTTL = c.UnicastPeers, c.PeerTTL
	}
	return nil
}

// checkFamily checks the source, peers and group against the family.
func (c *instanceConfig) checkFamily() error {
	fam := "IPv4"
	if c.IPv6 {
		fam = "IPv6"
	}
	if c.Machine.PrimaryIP.Is6() != c.IPv6 || !c.Machine.PrimaryIP.IsValid() {
		return fmt.Errorf("vrrp: instance %s: no %s source address", c.Machine.Name, fam)
	}
	if c.IPv6 && c.Machine.Version != 3 {
		return fmt.Errorf("vrrp: instance %s: VRRP over IPv6 needs version 3", c.Machine.Name)
	}
	for _, p := range c.UnicastPeers {
		if p.Is6() != c.IPv6 {
			return fmt.Errorf("vrrp: instance %s: unicast peer %v is not %s", c.Machine.Name, p, fam)
		}
	}
	if c.Group.IsValid() && c.Group.Is6() != c.IPv6 {
		return fmt.Errorf("vrrp: instance %s: group %v is not %s", c.Machine.Name, c.Group, fam)
	}
	return nil
}

// Reconfigure applies a reloaded configuration to the running instances
// (same number, in the same order) without a transition: VIPs that were
// added or removed are added or removed (and the added ones announced) if
// the instance holds its VIPs; unchanged ones are not touched. Priority,
// timers, authentication, tracked objects (the status of those still
// tracked is kept) and the other settings take effect in place. It returns
// once applied, or with an error (nothing changed) when the runner is not
// running.
func (r *runner) Reconfigure(cfgs []instanceConfig) error {
	req := &reconfReq{cfgs: cfgs, done: make(chan error, 1)}
	return owner.Call(r.events, runnerEvent{member: -1, reconf: req}, req.done, r.done, errStopped)
}

func (r *runner) reconfigure(cfgs []instanceConfig) error {
	if len(cfgs) != len(r.members) {
		return fmt.Errorf("vrrp: %s: reconfigure with %d instances, running %d", r.name, len(cfgs), len(r.members))
	}
	// Validate everything before changing anything.
	trackers := make([]*tracker, len(cfgs))
	for i, c := range cfgs {
		mm := r.members[i]
		mc := c.Machine
		if err := mc.Normalize(); err != nil {
			return fmt.Errorf("vrrp: instance %s: %w", mc.Name, err)
		}
		if mc.Name != mm.cfg.Machine.Name || mc.VRID != mm.cfg.Machine.VRID || mc.Version != mm.cfg.Machine.Version || c.Interface != mm.cfg.Interface {
			return fmt.Errorf("vrrp: instance %s: reconfigure cannot change the name, VRID, version or interface", mm.cfg.Machine.Name)
		}
		if err := c.checkFamily(); err != nil {
			return err
		}
		if err := (&member{}).setConfig(c); err != nil {
			return err
		}
		if len(c.Routes)+len(c.Rules) > 0 && mm.dev.Routes == nil {
			return fmt.Errorf("vrrp: instance %s: routes without a route manager", mc.Name)
		}
		tr, err := newTracker(c.Tracks)
		if err != nil {
			return fmt.Errorf("vrrp: instance %s: %w", mc.Name, err)
		}
		for _, t := range c.Tracks {
			if v, ok := mm.tracker.Value(t.Name); ok && t.File {
				tr.SetValue(t.Name, v)
			} else if up, ok := mm.tracker.Up(t.Name); ok && !t.File {
				tr.Set(t.Name, up)
			}
		}
		trackers[i] = tr
	}
	for i, c := range cfgs {
		mm := r.members[i]
		name := c.Machine.Name
		removed, added := diffVIPs(mm.all, append(append([]VIP(nil), c.VIPs...), c.ExcludedVIPs...))
		rtRemoved, rtAdded := diff(mm.cfg.Routes, c.Routes)
		ruRemoved, ruAdded := diff(mm.cfg.Rules, c.Rules)
		_ = mm.setConfig(c)
		if mm.vipsSet {
			// The addresses going stay filtered until they are gone.
			r.setFilter(mm, append(append([]VIP(nil), mm.all...), removed...))
			r.delRules(mm, ruRemoved)
			r.delRoutes(mm, rtRemoved)
			for _, v := range removed {
				if err := mm.dev.Addrs.DelAddr(v); err != nil {
					mm.stats.AddrErrors.Add(1)
					r.log.Error("vrrp: removing VIP", "instance", name, "vip", v.Addr, "err", err)
				}
			}
			for _, v := range added {
				if err := mm.dev.Addrs.AddAddr(v); err != nil {
					mm.stats.AddrErrors.Add(1)
					r.log.Error("vrrp: adding VIP", "instance", name, "vip", v.Addr, "err", err)
				}
			}
			r.addRoutes(mm, rtAdded)
			r.addRules(mm, ruAdded)
			r.setFilter(mm, mm.all)
			if mm.dev.GARP != nil && len(added) > 0 && c.Machine.GARPMasterRepeat > 0 {
				for range c.Machine.GARPMasterRepeat {
					for _, v := range added {
						if err := mm.garpFor(v).SendGARP(v.Addr.Addr()); err == nil {
							mm.stats.GARPSent.Add(1)
						}
					}
				}
			}
		}
		acts, err := mm.m.Reconfigure(c.Machine)
		if err != nil {
			r.log.Error("vrrp: reconfigure", "instance", name, "err", err)
		}
		for _, a := range acts {
			r.do(i, a)
		}
		old := mm.tracker.Event()
		mm.tracker = trackers[i]
		if ev := mm.tracker.Event(); ev != old {
			r.dispatch(i, ev)
		}
		r.log.Info("vrrp: instance reconfigured", "instance", name, "state", mm.m.State(),
			"vips_added", len(added), "vips_removed", len(removed),
			"routes_added", len(rtAdded), "routes_removed", len(rtRemoved),
			"rules_added", len(ruAdded), "rules_removed", len(ruRemoved))
	}
	r.publish()
	return nil
}

// diffVIPs returns the VIPs of old missing from new, and of new missing
// from old.
func diffVIPs(old, new []VIP) (removed, added []VIP) { return diff(old, new) }

// diff returns the elements of old missing from new, and of new missing
// from old.
func diff[T comparable](old, new []T) (removed, added []T) {
	in := func(v T, l []T) bool {
		for _, w := range l {
			if w == v {
				return true
			}
		}
		return false
	}
	for _, v := range old {
		if !in(v, new) {
			removed = append(removed, v)
		}
	}
	for _, v := range new {
		if !in(v, old) {
			added = append(added, v)
		}
	}
	return removed, added
}

// addRoutes adds routes of mm, logging failures.
func (r *runner) addRoutes(mm *member, routes []Route) {
	for _, rt := range routes {
		if err := mm.dev.Routes.AddRoute(rt); err != nil {
			mm.stats.RouteErrors.Add(1)
			r.log.Error("vrrp: adding route", "instance", mm.cfg.Machine.Name, "route", rt.String(), "err", err)
		}
	}
}

// addRules and delRules add and remove ip rules of mm, logging failures
// (counted with the route errors).
func (r *runner) addRules(mm *member, rules []Rule) {
	r.doRules(mm, rules, "adding", RouteManager.AddRule)
}
func (r *runner) delRules(mm *member, rules []Rule) {
	r.doRules(mm, rules, "removing", RouteManager.DelRule)
}

func (r *runner) doRules(mm *member, rules []Rule, verb string, op func(RouteManager, Rule) error) {
	for _, ru := range rules {
		if err := op(mm.dev.Routes, ru); err != nil {
			mm.stats.RouteErrors.Add(1)
			r.log.Error("vrrp: "+verb+" rule", "instance", mm.cfg.Machine.Name, "rule", ru.String(), "err", err)
		}
	}
}

// delRoutes removes routes of mm, logging failures.
func (r *runner) delRoutes(mm *member, routes []Route) {
	for _, rt := range routes {
		if err := mm.dev.Routes.DelRoute(rt); err != nil {
			mm.stats.RouteErrors.Add(1)
			r.log.Error("vrrp: removing route", "instance", mm.cfg.Machine.Name, "route", rt.String(), "err", err)
		}
	}
}

// Name returns the runner's name.
func (r *runner) Name() string { return r.name }

// Stats returns the counters of member i.
func (r *runner) Stats(i int) *Stats { return r.members[i].stats }

// Status returns a snapshot of the instances.
func (r *runner) Status() []InstanceStatus {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]InstanceStatus(nil), r.status...)
}

func (r *runner) publish() {
	st := make([]InstanceStatus, len(r.members))
	for i, mm := range r.members {
		addr, mprio := mm.m.Master()
		res, until := mm.m.Resigned()
		st[i] = InstanceStatus{Name: mm.cfg.Machine.Name, State: mm.m.State(), Priority: mm.m.Priority(), MasterAddr: addr,
			Resigned: res, ResignedUntil: until, Stats: mm.stats,
			LastTransition: mm.transAt, VIPsSet: mm.vipsSet, MasterPriority: mprio, MasterAdverInt: mm.m.MasterAdverInterval()}
	}
	r.mu.Lock()
	r.status = st
	if r.group != nil {
		r.gstate = r.group.State()
	}
	r.mu.Unlock()
}

// GroupState returns the sync group's name and state; ok is false for a
// plain instance.
func (r *runner) GroupState() (name string, st State, ok bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.name, r.gstate, r.group != nil
}

func (r *runner) post(e runnerEvent) {
	select {
	case r.events <- e:
	case <-r.done:
	}
}

// postNoWait posts e without blocking its caller, a timer's function
// (clock.Precise runs the timers of every instance on one goroutine): when
// the runner's queue is full, a goroutine of its own waits to post it.
func (r *runner) postNoWait(e runnerEvent) {
	select {
	case r.events <- e:
	default:
		go r.post(e)
	}
}

// HandlePacket delivers a received VRRP packet (IP payload) to member i;
// it is called by the receive loop of the member's socket (see dispatcher).
func (r *runner) HandlePacket(i int, payload []byte, info advert.PacketInfo) {
	r.post(runnerEvent{member: i, packet: payload, info: info})
}

// DropPacket counts against member i a packet that its socket dropped for
// reason before it could be decoded (see dispatcher.Drop).
func (r *runner) DropPacket(i int, info advert.PacketInfo, reason advert.DropReason) {
	r.post(runnerEvent{member: i, drop: reason, info: info})
}

// SetInterface reports the link state of member i's interface.
func (r *runner) SetInterface(i int, up bool) {
	r.post(runnerEvent{member: i, ev: interfaceChanged{Up: up}})
}

// SetTrack reports the status of a tracked object to every member that
// tracks it.
func (r *runner) SetTrack(name string, up bool) {
	r.post(runnerEvent{member: -1, trackName: name, trackUp: up})
}

// SetTrackValue reports the value of a tracked file to every member that
// tracks it.
func (r *runner) SetTrackValue(name string, v int) {
	r.post(runnerEvent{member: -1, trackName: name, trackValue: &v})
}

// AddrDeleted reports that an address was deleted from an interface; a
// member that is MASTER and owns it puts it back.
func (r *runner) AddrDeleted(p netip.Prefix) {
	r.post(runnerEvent{member: -1, addrDeleted: &p})
}

// Resign posts the operator's failover to every member (see resign): a
// sync group fails over as a whole.
func (r *runner) Resign(on bool, d time.Duration) {
	for i := range r.members {
		r.post(runnerEvent{member: i, ev: resign{On: on, For: d}})
	}
}

// hasMember reports whether an instance of the runner has the name.
func (r *runner) hasMember(name string) bool {
	for _, mm := range r.members {
		if mm.cfg.Machine.Name == name {
			return true
		}
	}
	return false
}

// Run starts the instances and runs until ctx is done; then it shuts them
// down gracefully (a master sends priority 0 and removes its VIPs) and
// returns.
func (r *runner) Run(ctx context.Context) error {
	if !r.started.CompareAndSwap(false, true) {
		return errStopped
	}
	defer close(r.done)
	for i, mm := range r.members {
		r.dispatch(i, mm.tracker.Event())
		if mm.dev.LinkDown {
			r.dispatch(i, interfaceChanged{Up: false})
		}
	}
	for i := range r.members {
		r.dispatch(i, start{Delay: r.startDelay})
	}
	for {
		select {
		case <-ctx.Done():
			for i := range r.members {
				r.dispatch(i, shutdown{Keep: r.keep.Load()})
			}
			for _, mm := range r.members {
				for t := range numTimers {
					if mm.timers[t] != nil {
						mm.timers[t].Stop()
					}
				}
			}
			return nil
		case e := <-r.events:
			r.handle(e)
		}
	}
}

// SetKeepOnStop changes runnerOptions.KeepOnStop; call it before
// cancelling the context of Run.
func (r *runner) SetKeepOnStop(keep bool) { r.keep.Store(keep) }

// Flush returns once the runner has handled every event posted before the
// call (or has stopped).
func (r *runner) Flush() {
	ch := make(chan struct{})
	r.post(runnerEvent{member: -1, flush: ch})
	select {
	case <-ch:
	case <-r.done:
	}
}

func (r *runner) handle(e runnerEvent) {
	switch {
	case e.flush != nil:
		close(e.flush)
	case e.reconf != nil:
		now := time.Now()
		for _, mm := range r.members {
			mm.reconfAt, mm.trackAt = now, now
		}
		e.reconf.done <- r.reconfigure(e.reconf.cfgs)
	case e.verify != nil:
		r.verify(e.verify)
	case e.drop != advert.DropNone:
		r.dropped(r.members[e.member], e.info, e.drop)
	case e.packet != nil:
		r.receive(e.member, e.packet, e.info)
	case e.trackName != "" && e.trackValue != nil:
		r.touchTracks()
		for i, mm := range r.members {
			if mm.tracker.SetValue(e.trackName, *e.trackValue) {
				r.dispatch(i, mm.tracker.Event())
			}
		}
	case e.trackName != "":
		r.touchTracks()
		for i, mm := range r.members {
			if mm.tracker.Set(e.trackName, e.trackUp) {
				r.dispatch(i, mm.tracker.Event())
			}
		}
	case e.addrDeleted != nil:
		for _, mm := range r.members {
			if !mm.vipsSet || mm.m.State() != StateMaster {
				continue
			}
			for _, v := range mm.all {
				if v.Addr.Addr() == e.addrDeleted.Addr() {
					if err := mm.dev.Addrs.AddAddr(v); err != nil {
						mm.stats.AddrErrors.Add(1)
						r.log.Warn("vrrp: restoring VIP", "instance", mm.cfg.Machine.Name, "vip", v.Addr, "err", err)
						continue
					}
					mm.stats.VIPRestored.Add(1)
					r.log.Warn("vrrp: VIP deleted by someone else, restored", "instance", mm.cfg.Machine.Name, "vip", v.Addr)
				}
			}
		}
	default:
		if _, ok := e.ev.(interfaceChanged); ok {
			r.members[e.member].linkAt = time.Now()
		}
		if tf, ok := e.ev.(timerFired); ok {
			mm := r.members[e.member]
			if tf.Timer >= numTimers || e.gen != mm.gen[tf.Timer] {
				return // stale: re-armed or stopped since
			}
		}
		r.dispatch(e.member, e.ev)
	}
}

// touchTracks records that the tracked objects changed now.
func (r *runner) touchTracks() {
	now := time.Now()
	for _, mm := range r.members {
		mm.trackAt = now
	}
}

func (r *runner) receive(i int, payload []byte, info advert.PacketInfo) {
	mm := r.members[i]
	if info.Src == mm.cfg.Machine.PrimaryIP {
		mm.stats.OwnPackets.Add(1)
		return
	}
	a, drop := advert.Decode(payload, info)
	if drop == advert.DropNone {
		chk := mm.exp.Validate(a, info)
		drop = chk.Drop
		if drop == advert.DropNone {
			mm.stats.AdvertRcvd.Add(1)
			if chk.AddrListMismatch {
				mm.stats.AddrListErr.Add(1)
				r.log.Info("vrrp: advert address list differs from ours (accepted)", "instance", mm.cfg.Machine.Name, "from", info.Src, "addrs", a.Addrs)
			}
			if chk.PriorityZero {
				mm.stats.PriZeroRcvd.Add(1)
			}
			lower := r.event != nil && mm.m.State() == StateMaster && a.Priority != advert.PriorityStop &&
				(a.Priority < mm.m.Priority() || (a.Priority == mm.m.Priority() && info.Src.Compare(mm.cfg.Machine.PrimaryIP) < 0))
			r.dispatch(i, advertReceived{Src: info.Src, Priority: a.Priority, Interval: a.Interval, At: info.At})
			if lower {
				r.event(Notification{Instance: mm.cfg.Machine.Name, From: StateMaster, To: StateMaster, Priority: mm.m.Priority(), Event: EventMasterRxLowerPri})
			}
			return
		}
	}
	r.dropped(mm, info, drop)
}

// dropped counts a packet of mm's dropped for reason.
func (r *runner) dropped(mm *member, info advert.PacketInfo, reason advert.DropReason) {
	mm.stats.Drops[reason].Add(1)
	r.log.Debug("vrrp: advert dropped", "instance", mm.cfg.Machine.Name, "from", info.Src, "reason", reason)
}

// dispatch feeds an event to member i (through the group if any) and
// carries out the actions.
func (r *runner) dispatch(i int, ev event) {
	if r.event != nil {
		var before [8]uint8
		prio := before[:0]
		for _, mm := range r.members {
			prio = append(prio, mm.m.Priority())
		}
		defer func() {
			for j, mm := range r.members {
				if p := mm.m.Priority(); p != prio[j] {
					st := mm.m.State()
					r.event(Notification{Instance: mm.cfg.Machine.Name, From: st, To: st, Priority: p, Event: EventPriority})
				}
			}
		}()
	}
	if r.group == nil {
		for _, a := range r.members[i].m.Handle(ev) {
			r.do(i, a)
		}
	} else {
		for _, ma := range r.group.Dispatch(i, ev) {
			r.do(ma.Member, ma.Action)
		}
	}
	r.publish()
}

func (r *runner) do(i int, a action) {
	if i < 0 {
		if gt, ok := a.(groupTransition); ok {
			r.log.Info("vrrp: sync group transition", "group", gt.Name, "from", gt.From, "to", gt.To)
			if r.notify != nil {
				r.notify(Notification{Group: gt.Name, From: gt.From, To: gt.To})
			}
		}
		return
	}
	mm := r.members[i]
	name := mm.cfg.Machine.Name
	switch a := a.(type) {
	case sendAdvert:
		every, some := r.sendAdvert(mm, a.Priority)
		mm.m.advertSent(a.Priority, every, some)
	case addVIPs:
		r.setFilter(mm, mm.all)
		for _, v := range mm.all {
			if err := mm.dev.Addrs.AddAddr(v); err != nil {
				mm.stats.AddrErrors.Add(1)
				r.log.Error("vrrp: adding VIP", "instance", name, "vip", v.Addr, "err", err)
			}
		}
		r.addRoutes(mm, mm.cfg.Routes)
		r.addRules(mm, mm.cfg.Rules)
		mm.vipsSet, mm.vipsAt = true, time.Now()
	case removeVIPs:
		// Rules, then routes: they may use a VIP as source.
		r.delRules(mm, mm.cfg.Rules)
		r.delRoutes(mm, mm.cfg.Routes)
		for _, v := range mm.all {
			if err := mm.dev.Addrs.DelAddr(v); err != nil {
				mm.stats.AddrErrors.Add(1)
				r.log.Error("vrrp: removing VIP", "instance", name, "vip", v.Addr, "err", err)
			}
		}
		r.setFilter(mm, nil)
		mm.vipsSet = false
	case sendGARP:
		if mm.dev.GARP == nil {
			return
		}
		for range a.Count {
			for _, v := range mm.all {
				ip := v.Addr.Addr()
				if err := mm.garpFor(v).SendGARP(ip); err != nil {
					r.log.Warn("vrrp: gratuitous ARP / neighbour advertisement", "instance", name, "vip", ip, "err", err)
					continue
				}
				mm.stats.GARPSent.Add(1)
			}
		}
	case setTimer:
		if mm.timers[a.Timer] != nil {
			mm.timers[a.Timer].Stop()
		}
		mm.gen[a.Timer]++
		gen, t := mm.gen[a.Timer], a.Timer
		mm.timers[a.Timer] = r.clock.AfterFunc(a.After, func() {
			r.postNoWait(runnerEvent{member: i, ev: timerFired{Timer: t}, gen: gen})
		})
	case stopTimer:
		if mm.timers[a.Timer] != nil {
			mm.timers[a.Timer].Stop()
			mm.timers[a.Timer] = nil
		}
		mm.gen[a.Timer]++
	case returned:
		r.log.Info("vrrp: interface back before a backup can have taken over: MASTER again at once", "instance", name, "since_last_advert", a.Since.Round(time.Millisecond))
	case transition:
		mm.transAt = r.clock.Now()
		switch {
		case a.To == StateMaster:
			mm.stats.BecomeMaster.Add(1)
		case a.From == StateMaster:
			mm.stats.ReleaseMaster.Add(1)
		}
		// keepalived's wording, so log searches and alerts written for it still match.
		r.log.Info("("+name+") Entering "+a.To.String()+" STATE", "instance", name, "from", a.From, "to", a.To, "priority", a.Priority)
		if r.notify != nil {
			r.notify(Notification{Instance: name, From: a.From, To: a.To, Priority: a.Priority})
		}
	}
}

// setFilter hands vips (nil: none; none either unless the instance is
// NoAccept) to the filter, each with its interface.
func (r *runner) setFilter(mm *member, vips []VIP) {
	if r.filter == nil {
		return
	}
	var out []VIP
	if mm.cfg.NoAccept {
		for _, v := range vips {
			if v.Dev == "" {
				v.Dev = mm.cfg.Interface
			}
			out = append(out, v)
		}
	}
	r.filter(mm.cfg.Machine.Name, out)
}

// sendAdvert sends one advert to each destination and reports whether
// every send succeeded, and whether one did.
func (r *runner) sendAdvert(mm *member, prio uint8) (every, some bool) {
	c := mm.cfg
	adv := advert.Advert{
		Version: c.Machine.Version, Type: advert.TypeAdvertisement, VRID: c.Machine.VRID, Priority: prio,
		Interval: c.Machine.AdvertInterval, Addrs: mm.vips,
	}
	if c.Machine.Version == 2 {
		adv.AuthType, adv.AuthData = c.AuthType, advert.Password(c.AuthPass)
	}
	src := c.Machine.PrimaryIP
	every = true
	for _, dst := range mm.dsts {
		b, err := adv.Marshal(src, dst)
		if err == nil {
			err = mm.dev.Sender.SendAdvert(b, src, dst)
		}
		if err != nil {
			mm.stats.SendErrors.Add(1)
			r.log.Warn("vrrp: sending advert", "instance", c.Machine.Name, "dst", dst, "err", err)
			every = false
			continue
		}
		some = true
		mm.stats.AdvertSent.Add(1)
		if prio == advert.PriorityStop {
			mm.stats.PriZeroSent.Add(1)
		}
	}
	return every && some, some
}

// dispatcher demultiplexes the packets of one socket to the instances on
// it by VRID, the second byte of every VRRP packet. A packet that names no
// instance here (a VRID nobody runs on this socket, or too short to carry
// one) is counted in Drops, not against an instance: it is not an
// instance's error.
type dispatcher struct {
	mu     sync.RWMutex
	routes map[uint8]route
	// Drops counts, by DropReason, the packets no instance claims.
	Drops [advert.NumDropReasons]atomic.Uint64
	// total, when set, counts them too: the engine's sum over its
	// sockets, which outlives a socket closed by a reload.
	total *[advert.NumDropReasons]atomic.Uint64
}

func (d *dispatcher) unrouted(r advert.DropReason) {
	d.Drops[r].Add(1)
	if d.total != nil {
		d.total[r].Add(1)
	}
}

type route struct {
	r *runner
	i int
}

// Register routes VRID vrid to member i of r.
func (d *dispatcher) Register(vrid uint8, r *runner, i int) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.routes == nil {
		d.routes = map[uint8]route{}
	}
	if _, dup := d.routes[vrid]; dup {
		return fmt.Errorf("vrrp: VRID %d registered twice on one socket", vrid)
	}
	d.routes[vrid] = route{r, i}
	return nil
}

// lookup returns the route of the VRID payload names, or why there is
// none (DropTooShort, DropUnknownVRID).
func (d *dispatcher) lookup(payload []byte) (route, advert.DropReason) {
	if len(payload) < 2 {
		return route{}, advert.DropTooShort
	}
	d.mu.RLock()
	rt, ok := d.routes[payload[1]]
	d.mu.RUnlock()
	if !ok {
		return route{}, advert.DropUnknownVRID
	}
	return rt, advert.DropNone
}

// Handle routes one packet; payload must not be reused by the caller.
func (d *dispatcher) Handle(payload []byte, info advert.PacketInfo) {
	rt, drop := d.lookup(payload)
	if drop != advert.DropNone {
		d.unrouted(drop)
		return
	}
	rt.r.HandlePacket(rt.i, payload, info)
}

// Drop counts a packet the socket dropped for reason: against the
// instance whose VRID it names when payload (what could be found of the
// VRRP packet, nil if nothing) names one here, in d.Drops otherwise.
func (d *dispatcher) Drop(payload []byte, info advert.PacketInfo, reason advert.DropReason) {
	rt, miss := d.lookup(payload)
	if miss != advert.DropNone {
		d.unrouted(reason)
		return
	}
	rt.r.DropPacket(rt.i, info, reason)
}

// Unregister removes the route of VRID vrid if it goes to r.
func (d *dispatcher) Unregister(vrid uint8, r *runner) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if rt, ok := d.routes[vrid]; ok && rt.r == r {
		delete(d.routes, vrid)
	}
}
