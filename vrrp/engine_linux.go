package vrrp

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/lvsd/lvsd/internal/clock"
	"github.com/lvsd/lvsd/internal/netwatch"
	"github.com/lvsd/lvsd/vrrp/advert"

	"github.com/lvsd/lvsd/conf"
)

// PacketConn is a VRRP socket on one interface.
type PacketConn interface {
	AdvertSender
	// Serve reads packets until ctx is done, handing each to h.
	Serve(ctx context.Context, h PacketHandler) error
	Close() error
}

// GARPConn sends gratuitous ARPs on one interface.
type GARPConn interface {
	GARPSender
	Close() error
}

// Kernel is what the Engine needs from the system. The default is the
// real one (raw sockets, AF_PACKET, rtnetlink); tests inject fakes.
type Kernel interface {
	Listen(cfg ConnConfig) (PacketConn, error)
	GARP(ifname string) (GARPConn, error)
	Addrs(defaultDev string) AddrManager
	Routes() RouteManager
	LinkUp(ifname string) (bool, error)
	PrimaryIPv4(ifname string) (netip.Addr, error)
	// PrimaryIPv6 is the interface's link-local address.
	PrimaryIPv6(ifname string) (netip.Addr, error)
	// WatchLink calls fn with the link state now and on every change;
	// resynced after notifications were lost and the state listed again.
	WatchLink(ctx context.Context, ifname string, fn func(up bool), resynced func()) error
	// WatchAddrDeleted calls fn for every address deleted; resynced after
	// notifications were lost and the addresses listed again (those
	// deleted meanwhile were reported to fn).
	WatchAddrDeleted(ctx context.Context, fn func(netip.Prefix), resynced func()) error
	// State lists the links and addresses (and the routes if asked) for
	// the safety net.
	State(routes bool) (*KernelState, error)
}

// NetlinkBuffers are the receive buffers of the engine's netlink sockets
// (keepalived's vrrp_netlink_*_rcv_bufs): Monitor for the link and address
// watchers, Cmd for the command socket that lists the kernel's state; 0
// leaves the kernel's default. Force sets them with SO_RCVBUFFORCE.
type NetlinkBuffers struct {
	Monitor      int
	MonitorForce bool
	Cmd          int
	CmdForce     bool
}

// linuxKernel is the real Kernel.
type linuxKernel struct {
	mu       sync.Mutex
	bufs     NetlinkBuffers
	watchers map[*netwatch.Watcher]bool // the notification sockets open, resized with bufs
	cmd      cmdSocket
}

func (*linuxKernel) Listen(cfg ConnConfig) (PacketConn, error) { return listenConn(cfg) }
func (*linuxKernel) GARP(ifname string) (GARPConn, error)      { return newPacketGARP(ifname) }
func (*linuxKernel) Addrs(dev string) AddrManager              { return &netlinkAddrs{DefaultDev: dev} }
func (*linuxKernel) Routes() RouteManager                      { return netlinkRoutes{} }
func (*linuxKernel) LinkUp(ifname string) (bool, error)        { return interfaceUp(ifname) }
func (*linuxKernel) PrimaryIPv4(ifname string) (netip.Addr, error) {
	return primaryIPv4(ifname)
}
func (*linuxKernel) PrimaryIPv6(ifname string) (netip.Addr, error) {
	return primaryIPv6(ifname)
}
func (k *linuxKernel) WatchLink(ctx context.Context, ifname string, fn func(bool), resynced func()) error {
	return watchLink(ctx, k, ifname, fn, resynced)
}
func (k *linuxKernel) WatchAddrDeleted(ctx context.Context, fn func(netip.Prefix), resynced func()) error {
	return watchAddrDeleted(ctx, k, fn, resynced)
}
func (k *linuxKernel) State(routes bool) (*KernelState, error) {
	return k.cmd.state(k.buffers(), routes)
}

// Sink is where VRRP transitions leave the package: the engine calls
// Transition for every state change of an instance or a sync group, from
// the goroutine of the runner that made it, in the order they happen. It
// must not block: a consumer with slow work (a notify script, an e-mail)
// queues it. The daemon fans transitions out to notify scripts, the IPVS
// sync daemon's role and the metrics.
type Sink interface {
	Transition(Notification)
}

// EventSink is a Sink that also receives the events of instances that are
// not transitions (Notification.Event set): priority changes, a lower
// priority heard as MASTER.
type EventSink interface {
	Sink
	Event(Notification)
}

// SinkFunc adapts a function to a Sink.
type SinkFunc func(Notification)

// Transition calls f(n).
func (f SinkFunc) Transition(n Notification) { f(n) }

// EngineOptions are optional settings of an Engine.
type EngineOptions struct {
	Logger *slog.Logger
	// Sink receives every instance and sync group transition (notify
	// scripts, the IPVS sync daemon's role, metrics); nil drops them.
	Sink Sink
	// Kernel defaults to the real one.
	Kernel Kernel
	// Clock defaults to clock.Precise.
	Clock clock.Clock
	// ScriptExec makes the runner of a vrrp_script; default CommandExec.
	ScriptExec func(ScriptConfig, *conf.Global) ScriptExec
	// DontRelease (keepalived's -V/--dont-release-vrrp): when Run returns,
	// masters leave their VIPs and virtual_routes in place and send no
	// priority 0 advert, as keepalived does. Instances removed by a reload
	// are still released.
	DontRelease bool
	// Filter receives the VIPs of a no_accept instance (vrrp_strict
	// without accept) before they are added as it becomes MASTER, each
	// with its interface, and nil once they are removed (the firewall
	// drops their traffic); nil: none. It is called from the instance's
	// goroutine and may block briefly.
	Filter func(instance string, vips []VIP)
	// CheckInterval is the period of the safety net (see Repairs);
	// default DefaultCheckInterval, negative: none.
	CheckInterval time.Duration
	// VMACs makes the interfaces of use_vmac and use_ipvlan; default the
	// real one.
	VMACs VMACLinks
	// OnVMAC, if set, is told of each VMAC interface made (up) or removed,
	// from the engine's goroutine, after the fact (the firewall's
	// vmac_map follows them).
	OnVMAC func(v VMACSpec, up bool)
}

// Engine runs every VRRP instance and sync group of a configuration in the
// current network namespace, and the vrrp_scripts they track. Its state
// is owned by the goroutine of Run; Apply hands it a new configuration.
type Engine struct {
	opts    EngineOptions
	k       Kernel
	clock   clock.Clock
	log     *slog.Logger
	applyCh chan *applyReq
	runDone chan struct{}
	notify  func(Notification) // opts.Sink's Transition, or nil
	event   func(Notification) // opts.Sink's Event if it is an EventSink, or nil

	repairs    Repairs
	addrResync atomic.Uint64
	linkResync atomic.Uint64
	kick       chan struct{} // a safety-net pass now

	mu        sync.Mutex
	pending   *applyReq // the configuration Run starts with
	started   bool
	runners   []*runner
	links     map[string][]func(bool)
	scriptUp  map[string]bool
	procUp    map[string]bool     // vrrp_track_process quorum, from SetProcess
	fileVal   map[string]int      // track_file values
	rebinders []rebinder          // the sockets that follow their interface
	hasRoutes bool                // an instance has virtual_routes or virtual_rules, or static routes or rules exist
	managed   map[netip.Addr]bool // the VIPs of all instances
	statics   *statics            // static_ipaddress and static_routes
	vmacs     VMACLinks
	wantVMACs map[string]VMACSpec // the VMACs of the configuration, for the safety net

	// unrouted counts, by DropReason, the packets that no instance here
	// claims (an unknown VRID, too short to name one), on every socket.
	unrouted [advert.NumDropReasons]atomic.Uint64
}

// UnroutedDrops returns, by drop reason name, the packets received that
// no instance claims (DropUnknownVRID, DropTooShort, or a bad IP header
// naming no instance here); safe for concurrent use.
func (e *Engine) UnroutedDrops() map[string]uint64 {
	m := map[string]uint64{}
	for _, r := range advert.DropReasons() {
		if n := e.unrouted[r].Load(); n > 0 {
			m[r.String()] = n
		}
	}
	return m
}

type applyReq struct {
	specs   []runnerSpec
	scripts map[string]ScriptConfig
	files   map[string]conf.TrackFile
	global  conf.Global
	done    chan error
}

// NewEngine converts the configuration (see fromConfig); nothing touches
// the kernel before Run.
func NewEngine(c *conf.Config, opts EngineOptions) (*Engine, []string, error) {
	specs, warns, err := fromConfig(c)
	if err != nil {
		return nil, warns, err
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	st, swarns := staticsFrom(c)
	warns = append(warns, swarns...)
	e := &Engine{
		statics: st,
		opts:    opts, k: opts.Kernel, clock: opts.Clock, log: opts.Logger,
		applyCh: make(chan *applyReq), runDone: make(chan struct{}),
		pending: &applyReq{specs: specs, scripts: scriptConfigs(c, specs), files: trackFileConfigs(c, specs), global: c.Global},
		links:   map[string][]func(bool){}, scriptUp: map[string]bool{}, fileVal: map[string]int{}, procUp: map[string]bool{},
		kick: make(chan struct{}, 1),
	}
	if e.k == nil {
		e.k = &linuxKernel{bufs: netlinkBuffers(&c.Global)}
	}
	if e.vmacs = opts.VMACs; e.vmacs == nil {
		e.vmacs = &netlinkVMACs{}
	}
	if e.opts.CheckInterval == 0 {
		e.opts.CheckInterval = DefaultCheckInterval
	}
	if e.clock == nil {
		e.clock = clock.Precise{}
	}
	if e.opts.ScriptExec == nil {
		e.opts.ScriptExec = CommandExec
	}
	if e.opts.Sink != nil {
		e.notify = e.opts.Sink.Transition
	}
	if es, ok := e.opts.Sink.(EventSink); ok {
		e.event = es.Event
	}
	return e, warns, nil
}

type connKey struct {
	ifname  string
	unicast bool
	ipv6    bool
	group   netip.Addr
	ttl     int // unicast_ttl
}

func (ic *instanceConfig) connKey() connKey {
	k := connKey{ifname: ic.sockInterface(), unicast: len(ic.UnicastPeers) > 0, ipv6: ic.IPv6}
	if !k.unicast {
		k.group = ic.defaultGroup()
	} else {
		k.ttl = ic.UnicastTTL
	}
	return k
}

// identity is what must not change for a reload to keep a runner: the
// unit's name and kind, and each instance's name, VRID, interface,
// version and socket.
func (s *runnerSpec) identity() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s|%v", s.Name, s.Group)
	for _, ic := range s.Instances {
		k := ic.connKey()
		fmt.Fprintf(&b, "|%s/%d/%s/v%d/%s/%v/%v/%v/%d", ic.Machine.Name, ic.Machine.VRID, ic.Interface, ic.Machine.Version, k.ifname, k.unicast, k.ipv6, k.group, k.ttl)
	}
	return b.String()
}

type handle struct {
	spec   runnerSpec
	r      *runner
	cancel context.CancelFunc
	done   chan struct{}
}

type scriptHandle struct {
	cfg    ScriptConfig
	global conf.Global
	cancel context.CancelFunc
	done   chan struct{}
}

// engineState is owned by the goroutine of Run.
type engineState struct {
	e *Engine
	// startDelay is vrrp_startup_delay while the runners of the start are
	// made; 0 afterwards.
	startDelay time.Duration
	ctx        context.Context // runners and scripts
	serveCtx   context.Context // sockets: closed after the runners stopped
	conns      map[connKey]PacketConn
	disps      map[connKey]*dispatcher
	garpMu     sync.Mutex // garps is read by runner goroutines (garpLookup)
	garps      map[string]*pacedGARP
	handles    map[string]*handle
	order      []string
	watched    map[string]bool
	scripts    map[string]*scriptHandle
	files      *fileWatcher // nil: no track_file
	// filesSeen: the track_files followed so far (init_file is for new ones)
	filesSeen map[string]conf.TrackFile
	vmacs     map[string]VMACSpec // the VMACs made; nil before the first apply
	promoted  map[string]bool     // the interfaces whose promote_secondaries we set
	serveWG   sync.WaitGroup
	errs      chan error
}

// Run opens the sockets, starts every runner and script and blocks until
// ctx is done; then masters send priority 0 and release their VIPs (unless
// DontRelease), and Run returns. Apply reconfigures it while it runs.
func (e *Engine) Run(ctx context.Context) error {
	e.mu.Lock()
	if e.started {
		e.mu.Unlock()
		return errStopped
	}
	e.started = true
	first := e.pending
	e.pending = nil
	e.mu.Unlock()
	defer close(e.runDone)

	serveCtx, stopServe := context.WithCancel(context.Background())
	runCtx, stopRun := context.WithCancel(ctx)
	st := &engineState{
		e: e, ctx: runCtx, serveCtx: serveCtx,
		conns: map[connKey]PacketConn{}, disps: map[connKey]*dispatcher{}, garps: map[string]*pacedGARP{},
		handles: map[string]*handle{}, watched: map[string]bool{}, scripts: map[string]*scriptHandle{},
		errs: make(chan error, 16),
	}
	defer func() {
		stopRun()
		st.stopAll()
		e.delStatics(e.opts.DontRelease)
		stopServe()
		st.serveWG.Wait()
		for _, c := range st.conns {
			c.Close()
		}
		for _, g := range st.garps {
			g.Close()
		}
		if !e.opts.DontRelease {
			st.dropVMACs(nil) // the VIPs stay with DontRelease, and so their VMAC
		}
		st.resetPromoteSecondaries()
	}()
	if err := e.k.WatchAddrDeleted(runCtx, func(p netip.Prefix) {
		e.restoreStatic(p)
		for _, r := range e.currentRunners() {
			r.AddrDeleted(p)
		}
		e.checkSoon() // the primary address of an interface may be gone
	}, func() { e.addrResync.Add(1); e.checkSoon() }); err != nil {
		return err
	}
	e.addStatics()
	// vrrp_startup_delay holds the instances of the start (not those a
	// reload adds) for the delay, as keepalived.
	if first != nil && first.global.VRRPStartupDelay > 0 {
		st.startDelay = first.global.VRRPStartupDelay
		e.log.Info("Delaying startup", "seconds", st.startDelay.Seconds())
	}
	err := st.apply(first)
	st.startDelay = 0
	if err != nil {
		return err
	}
	if e.opts.CheckInterval > 0 {
		go e.safetyNet(runCtx, e.opts.CheckInterval)
	}
	for {
		select {
		case <-ctx.Done():
			return nil
		case req := <-e.applyCh:
			req.done <- st.apply(req)
		case err := <-st.errs:
			return err
		}
	}
}

// Apply reconfigures the running engine without flapping: a runner whose
// instances keep their name, VRID, interface, version and socket keeps its
// state, timers and VIPs (VIPs added or removed are applied if it holds
// them, see runner.Reconfigure); removed instances stop (a master sends
// priority 0 and releases its VIPs); new ones start; vrrp_scripts whose
// configuration changed restart. On error the running configuration is
// kept (except for what was applied before the error, which is logged).
func (e *Engine) Apply(c *conf.Config) error {
	specs, warns, err := fromConfig(c)
	for _, w := range warns {
		e.log.Warn(w)
	}
	if err != nil {
		return err
	}
	req := &applyReq{specs: specs, scripts: scriptConfigs(c, specs), files: trackFileConfigs(c, specs), global: c.Global, done: make(chan error, 1)}
	if r, ok := e.k.(netlinkResizer); ok { // as keepalived on reload
		if err := r.SetNetlinkBuffers(netlinkBuffers(&c.Global)); err != nil {
			e.log.Warn("vrrp: cannot resize the netlink receive buffers; kept", "err", err)
		}
	}
	e.mu.Lock()
	if !e.started {
		e.pending = req
		e.mu.Unlock()
		return nil
	}
	e.mu.Unlock()
	select {
	case e.applyCh <- req:
	case <-e.runDone:
		return errors.New("vrrp: engine stopped")
	}
	return <-req.done
}

func (e *Engine) currentRunners() []*runner {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.runners
}

// prepare resolves the source address and the initial status of the
// tracked objects of a spec about to be started or reconfigured.
func (st *engineState) prepare(spec *runnerSpec) error {
	e := st.e
	insts := make([]instanceConfig, len(spec.Instances))
	for i, ic := range spec.Instances {
		ic.Tracks = append([]track(nil), ic.Tracks...)
		for j, t := range ic.Tracks {
			if name, ok := strings.CutPrefix(t.Name, trackInterfaceName("")); ok {
				up, err := e.k.LinkUp(name)
				if err != nil {
					return fmt.Errorf("vrrp: instance %s: track_interface: %w", ic.Machine.Name, err)
				}
				ic.Tracks[j].InitUp = up
			} else if name, ok := strings.CutPrefix(t.Name, trackFileName("")); ok {
				e.mu.Lock()
				ic.Tracks[j].InitValue = e.fileVal[name]
				e.mu.Unlock()
			} else if name, ok := strings.CutPrefix(t.Name, trackScriptName("")); ok {
				e.mu.Lock()
				up, known := e.scriptUp[name]
				e.mu.Unlock()
				if known {
					ic.Tracks[j].InitUp = up
				}
			} else if name, ok := strings.CutPrefix(t.Name, trackProcessName("")); ok {
				e.mu.Lock()
				ic.Tracks[j].InitUp = e.procUp[name] // unknown: no quorum
				e.mu.Unlock()
			}
		}
		if !ic.Machine.PrimaryIP.IsValid() {
			primary := e.k.PrimaryIPv4
			if ic.IPv6 {
				primary = e.k.PrimaryIPv6
			}
			ip, err := primary(ic.srcInterface())
			if err != nil {
				return fmt.Errorf("vrrp: instance %s: %w", ic.Machine.Name, err)
			}
			ic.Machine.PrimaryIP = ip
			ic.AutoSource = true
		}
		insts[i] = ic
	}
	spec.Instances = insts
	return nil
}

func (st *engineState) apply(req *applyReq) error {
	e := st.e
	st.applyFiles(req.files)
	specs := make([]runnerSpec, len(req.specs))
	copy(specs, req.specs)
	wantVMACs := st.applyVMACs(specs)
	st.applyPromoteSecondaries(specs)
	for i := range specs {
		if err := st.prepare(&specs[i]); err != nil {
			return err
		}
	}
	hasRoutes, managed := false, map[netip.Addr]bool{}
	for _, s := range specs {
		for _, ic := range s.Instances {
			hasRoutes = hasRoutes || len(ic.Routes) > 0 || len(ic.Rules) > 0
			for _, v := range append(append([]VIP(nil), ic.VIPs...), ic.ExcludedVIPs...) {
				managed[v.Addr.Addr().Unmap()] = true
			}
		}
	}
	e.mu.Lock()
	e.hasRoutes, e.managed = hasRoutes, managed
	e.mu.Unlock()
	// Keep, stop, start.
	keep := map[string]*runnerSpec{}
	for i := range specs {
		s := &specs[i]
		if h := st.handles[s.Name]; h != nil && h.spec.identity() == s.identity() {
			keep[s.Name] = s
		}
	}
	for _, name := range slices.Clone(st.order) {
		if keep[name] == nil {
			st.stop(name)
		}
	}
	for name, s := range keep {
		h := st.handles[name]
		for _, ic := range s.Instances {
			if _, err := st.garpOn(ic.garpInterface(), ic); err != nil {
				e.log.Warn("vrrp: gratuitous ARP socket", "interface", ic.Interface, "err", err)
			}
			st.openVIPGARPs(ic)
		}
		if err := h.r.Reconfigure(s.Instances); err != nil {
			e.log.Error("vrrp: cannot reconfigure in place; restarting", "unit", name, "err", err)
			st.stop(name)
			delete(keep, name)
			continue
		}
		h.spec = *s
	}
	var firstErr error
	for i := range specs {
		s := &specs[i]
		if keep[s.Name] != nil {
			continue
		}
		if err := st.start(*s); err != nil {
			e.log.Error("vrrp: cannot start", "unit", s.Name, "err", err)
			if firstErr == nil {
				firstErr = err
			}
		}
	}
	order := make([]string, 0, len(specs))
	for _, s := range specs {
		if st.handles[s.Name] != nil {
			order = append(order, s.Name)
		}
	}
	st.order = order
	st.dropVMACs(wantVMACs)
	if err := st.relink(); err != nil && firstErr == nil {
		firstErr = err
	}
	st.applyScripts(req)
	// A file that changed while the runners were being started reached
	// only the older ones: tell every runner the current values (an
	// unchanged value changes nothing).
	e.mu.Lock()
	vals := maps.Clone(e.fileVal)
	procs := maps.Clone(e.procUp)
	rs := e.runners
	e.mu.Unlock()
	for name, v := range vals {
		for _, r := range rs {
			r.SetTrackValue(trackFileName(name), v)
		}
	}
	for name, up := range procs {
		for _, r := range rs {
			r.SetTrack(trackProcessName(name), up)
		}
	}
	return firstErr
}

// garpOn returns the paced gratuitous ARP sender of an interface, opening
// it on first use; its intervals are the instance's (vrrp_garp_interval and
// vrrp_gna_interval are global, so every instance has the same).
func (st *engineState) garpOn(ifname string, ic instanceConfig) (*pacedGARP, error) {
	st.garpMu.Lock()
	defer st.garpMu.Unlock()
	if g := st.garps[ifname]; g != nil {
		g.SetIntervals(ic.GARPInterval, ic.GNAInterval)
		return g, nil
	}
	c, err := st.e.k.GARP(ifname)
	if err != nil {
		return nil, err
	}
	g := newPacedGARP(c, ic.GARPInterval, ic.GNAInterval)
	st.garps[ifname] = g
	st.e.addRebinder(c)
	return g, nil
}

// openVIPGARPs opens the senders of the interfaces of ic's VIPs declared
// with dev; one that cannot be opened is logged, and its VIPs are then
// announced on the instance's interface.
func (st *engineState) openVIPGARPs(ic instanceConfig) {
	for _, v := range append(append([]VIP(nil), ic.VIPs...), ic.ExcludedVIPs...) {
		if v.Dev == "" || v.Dev == ic.Interface {
			continue
		}
		if _, err := st.garpOn(v.Dev, ic); err != nil {
			st.e.log.Warn("vrrp: gratuitous ARP socket; announcing on the instance's interface", "instance", ic.Machine.Name, "interface", v.Dev, "err", err)
		}
	}
}

// garpLookup is memberSpec.GARPDev.
func (st *engineState) garpLookup(dev string) GARPSender {
	st.garpMu.Lock()
	defer st.garpMu.Unlock()
	if g := st.garps[dev]; g != nil {
		return g
	}
	return nil
}

func (st *engineState) start(spec runnerSpec) error {
	e := st.e
	var members []memberSpec
	for i, ic := range spec.Instances {
		linkDown := false
		if dev := spec.OwnInterface[i]; dev != "" {
			up, err := e.k.LinkUp(dev)
			if err != nil {
				return fmt.Errorf("vrrp: instance %s: %w", ic.Machine.Name, err)
			}
			linkDown = !up
		}
		k := ic.connKey()
		conn := st.conns[k]
		if conn == nil {
			var err error
			conn, err = e.k.Listen(ConnConfig{Interface: k.ifname, Unicast: k.unicast, Group: k.group, IPv6: k.ipv6, TTL: k.ttl})
			if err != nil {
				return err
			}
			d := &dispatcher{total: &st.e.unrouted}
			st.conns[k], st.disps[k] = conn, d
			e.addRebinder(conn)
			st.serveWG.Add(1)
			go func() {
				defer st.serveWG.Done()
				if err := conn.Serve(st.serveCtx, d); err != nil {
					select {
					case st.errs <- fmt.Errorf("vrrp: receiving on %s: %w", k.ifname, err):
					default:
					}
				}
			}()
		}
		garp, err := st.garpOn(ic.garpInterface(), ic)
		if err != nil {
			return err
		}
		st.openVIPGARPs(ic)
		members = append(members, memberSpec{Config: ic, Sender: conn, Addrs: e.k.Addrs(ic.Interface), Routes: e.k.Routes(), GARP: garp, GARPDev: st.garpLookup, LinkDown: linkDown, OwnInterface: spec.OwnInterface[i]})
	}
	r, err := newRunner(spec.Name, members, runnerOptions{Logger: e.log, Notify: e.notify, Event: e.event, Clock: e.clock, StartDelay: st.startDelay, KeepOnStop: e.opts.DontRelease, Repairs: &e.repairs, Filter: e.opts.Filter})
	if err != nil {
		return err
	}
	for i, ic := range spec.Instances {
		if err := st.disps[ic.connKey()].Register(ic.Machine.VRID, r, i); err != nil {
			for _, jc := range spec.Instances[:i] {
				st.disps[jc.connKey()].Unregister(jc.Machine.VRID, r)
			}
			return fmt.Errorf("vrrp: instance %s: %w", ic.Machine.Name, err)
		}
	}
	ctx, cancel := context.WithCancel(st.ctx)
	h := &handle{spec: spec, r: r, cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(h.done)
		_ = r.Run(ctx)
	}()
	st.handles[spec.Name] = h
	e.mu.Lock()
	e.runners = append(slices.Clone(e.runners), r)
	e.mu.Unlock()
	return nil
}

// stop shuts a runner down (priority 0 from a master, VIPs released) and
// waits for it.
func (st *engineState) stop(name string) {
	h := st.handles[name]
	if h == nil {
		return
	}
	h.r.SetKeepOnStop(false) // removed by a reload: released even with DontRelease
	h.cancel()
	<-h.done
	for _, ic := range h.spec.Instances {
		st.disps[ic.connKey()].Unregister(ic.Machine.VRID, h.r)
	}
	delete(st.handles, name)
	st.order = slices.DeleteFunc(st.order, func(n string) bool { return n == name })
	e := st.e
	e.mu.Lock()
	e.runners = slices.DeleteFunc(slices.Clone(e.runners), func(r *runner) bool { return r == h.r })
	e.mu.Unlock()
	e.log.Info("vrrp: stopped", "unit", name)
}

func (st *engineState) stopAll() {
	for _, name := range slices.Clone(st.order) {
		h := st.handles[name]
		h.cancel()
	}
	for _, name := range slices.Clone(st.order) {
		<-st.handles[name].done
	}
	for _, s := range st.scripts {
		s.cancel()
		<-s.done
	}
	if st.files != nil {
		st.files.close()
	}
}

// applyFiles follows the tracked files of a configuration: init_file for
// the new ones, their values read now (the instances start from them),
// and a watcher for changes, replaced when the set of files changes.
func (st *engineState) applyFiles(files map[string]conf.TrackFile) {
	e := st.e
	if st.files != nil && sameTrackFiles(st.files.files, files) {
		return
	}
	if st.files != nil {
		st.files.close()
		st.files = nil
	}
	for name, f := range files {
		if old, ok := st.filesSeen[name]; !ok || old.Path != f.Path {
			if err := initTrackFile(&f); err != nil {
				e.log.Warn("vrrp: track_file: init_file", "track_file", name, "file", f.Path, "err", err)
			}
		}
		if st.filesSeen == nil {
			st.filesSeen = map[string]conf.TrackFile{}
		}
		st.filesSeen[name] = f
		if v, ok := readTrackFile(f.Path); ok {
			e.setFileValue(name, v)
		}
	}
	if len(files) == 0 {
		return
	}
	w, err := startFileWatcher(files, e.setFileValue, e.log)
	if err != nil {
		e.log.Error("vrrp: track_file: changes to the files will not be seen", "err", err)
		return
	}
	st.files = w
}

func sameTrackFiles(a, b map[string]conf.TrackFile) bool {
	if len(a) != len(b) {
		return false
	}
	for name, f := range a {
		if g, ok := b[name]; !ok || g.Path != f.Path {
			return false
		}
	}
	return true
}

// setFileValue reports the value of a track_file to every instance that
// tracks it (when it changed).
func (e *Engine) setFileValue(name string, v int) {
	e.mu.Lock()
	old, known := e.fileVal[name]
	e.fileVal[name] = v
	rs := e.runners
	e.mu.Unlock()
	if known && old == v {
		return
	}
	e.log.Info("vrrp: track_file value", "track_file", name, "value", v)
	for _, r := range rs {
		r.SetTrackValue(trackFileName(name), v)
	}
}

// relink points the link watchers at the current runners and watches the
// interfaces not watched yet.
func (st *engineState) relink() error {
	e := st.e
	links := map[string][]func(bool){}
	for _, name := range st.order {
		h := st.handles[name]
		r := h.r
		for i, ic := range h.spec.Instances {
			if dev := h.spec.OwnInterface[i]; dev != "" {
				links[dev] = append(links[dev], func(up bool) { r.SetInterface(i, up) })
			}
			for _, t := range ic.Tracks {
				if name, ok := strings.CutPrefix(t.Name, trackInterfaceName("")); ok {
					links[name] = append(links[name], func(up bool) { r.SetTrack(t.Name, up) })
				}
			}
		}
	}
	e.mu.Lock()
	e.links = links
	e.mu.Unlock()
	for name := range links {
		if st.watched[name] {
			continue
		}
		if err := e.k.WatchLink(st.serveCtx, name, func(up bool) {
			if up {
				// A link that comes up may be a new one of the
				// name: the sockets follow it before anything is
				// sent.
				e.rebindName(name)
			}
			e.mu.Lock()
			fns := e.links[name]
			e.mu.Unlock()
			for _, fn := range fns {
				fn(up)
			}
		}, func() { e.linkResync.Add(1); e.checkSoon() }); err != nil {
			return err
		}
		st.watched[name] = true
	}
	return nil
}

func (st *engineState) applyScripts(req *applyReq) {
	e := st.e
	for name, sh := range st.scripts {
		if cfg, ok := req.scripts[name]; ok && cfg.String() == sh.cfg.String() && sameScriptUser(sh.global, req.global) {
			continue
		}
		sh.cancel()
		<-sh.done
		delete(st.scripts, name)
	}
	for name, cfg := range req.scripts {
		if st.scripts[name] != nil {
			continue
		}
		ctx, cancel := context.WithCancel(st.ctx)
		sh := &scriptHandle{cfg: cfg, global: req.global, cancel: cancel, done: make(chan struct{})}
		g := req.global
		tr := NewScriptTracker(cfg, e.opts.ScriptExec(cfg, &g), e.clock, e.log)
		go func() {
			defer close(sh.done)
			tr.Run(ctx, func(up bool) { e.setScript(name, up) })
		}()
		st.scripts[name] = sh
	}
}

func sameScriptUser(a, b conf.Global) bool {
	return a.ScriptUser == b.ScriptUser && a.ScriptGroup == b.ScriptGroup
}

// setScript reports the status of a vrrp_script to every instance that
// tracks it.
func (e *Engine) setScript(name string, up bool) {
	e.setStatus(e.scriptUp, name, trackScriptName(name), up)
}

// setStatus records a tracked object's status in m (under mu) and tells
// every runner.
func (e *Engine) setStatus(m map[string]bool, name, track string, up bool) {
	e.mu.Lock()
	m[name] = up
	rs := e.runners
	e.mu.Unlock()
	for _, r := range rs {
		r.SetTrack(track, up)
	}
}

// SetProcess reports whether a vrrp_track_process has its quorum, to every
// instance that tracks it; safe for concurrent use. Given before Run, it
// is the status the instances start with (without one, a tracked process
// has no quorum).
func (e *Engine) SetProcess(name string, up bool) {
	e.setStatus(e.procUp, name, trackProcessName(name), up)
}

// Status returns a snapshot of every instance.
func (e *Engine) Status() []InstanceStatus {
	var out []InstanceStatus
	for _, r := range e.currentRunners() {
		out = append(out, r.Status()...)
	}
	return out
}

// GroupStates returns the state of every sync group, by name.
func (e *Engine) GroupStates() map[string]State {
	out := map[string]State{}
	for _, r := range e.currentRunners() {
		if name, st, ok := r.GroupState(); ok {
			out[name] = st
		}
	}
	return out
}

// Failover makes an instance (or a sync group, named by the group or one
// of its instances) give up: a MASTER sends a priority-0 advert, releases
// its addresses and becomes BACKUP, and the instance stays BACKUP until
// Failover(name, false, 0) or, when d is positive, for d. The state
// survives reloads that keep the instance. It returns once the runner has
// taken it; an unknown name is an error.
func (e *Engine) Failover(name string, on bool, d time.Duration) error {
	for _, r := range e.currentRunners() {
		if r.Name() == name || r.hasMember(name) {
			r.Resign(on, d)
			r.Flush()
			return nil
		}
	}
	return fmt.Errorf("no VRRP instance or sync group %q", name)
}

// flush waits until every runner handled the events posted so far.
func (e *Engine) flush() {
	for _, r := range e.currentRunners() {
		r.Flush()
	}
}

// Resyncs counts, by watch, the netlink subscriptions repaired by a new
// listing (notifications lost, or a socket reopened):
// lvsd_netlink_resyncs_total{watch}.
func (e *Engine) Resyncs() map[string]uint64 {
	return map[string]uint64{"vrrp_address": e.addrResync.Load(), "vrrp_link": e.linkResync.Load()}
}

// Repairs counts what the safety net repaired, by what
// (lvsd_vrrp_repairs_total{what}; see Repairs).
func (e *Engine) Repairs() map[string]uint64 { return e.repairs.Map() }

// checkSoon asks for a safety-net pass now.
func (e *Engine) checkSoon() {
	select {
	case e.kick <- struct{}{}:
	default:
	}
}

func (e *Engine) addRebinder(c any) {
	if rb, ok := c.(rebinder); ok {
		e.mu.Lock()
		e.rebinders = append(e.rebinders, rb)
		e.mu.Unlock()
	}
}

// rebindName points the sockets of interface name at the index it has now.
func (e *Engine) rebindName(name string) {
	ifi, err := net.InterfaceByName(name)
	if err != nil {
		return
	}
	e.rebind(map[string]LinkState{name: {Index: ifi.Index, Up: true}}, name)
}

// rebind points the sockets (of interface only, if not "") at the indexes
// of links.
func (e *Engine) rebind(links map[string]LinkState, only string) {
	e.mu.Lock()
	rbs := e.rebinders
	e.mu.Unlock()
	for _, rb := range rbs {
		name := rb.Interface()
		if only != "" && name != only {
			continue
		}
		l, ok := links[name]
		if !ok || l.Index == rb.Index() {
			continue
		}
		old := rb.Index()
		did, err := rb.Rebind(l.Index)
		if err != nil {
			e.log.Warn("vrrp: interface re-created; cannot follow it", "interface", name, "index", l.Index, "err", err)
			continue
		}
		if did {
			e.repairs.Sockets.Add(1)
			e.log.Warn("vrrp: interface re-created; socket follows it", "interface", name, "old_index", old, "index", l.Index)
		}
	}
}

// safetyNet runs a check every period, or sooner when asked (checkSoon),
// until ctx is done.
func (e *Engine) safetyNet(ctx context.Context, period time.Duration) {
	t := time.NewTicker(period)
	defer t.Stop()
	failing := false
	var last time.Time
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-e.kick:
			// Passes asked for come at most every minCheckGap (a
			// storm of deletions asks for one each).
			if wait := minCheckGap - time.Since(last); wait > 0 {
				select {
				case <-ctx.Done():
					return
				case <-time.After(wait):
				}
			}
		}
		last = time.Now()
		err := e.checkOnce()
		if err != nil && !failing {
			e.log.Error("vrrp: safety net: cannot list the kernel's state", "err", err)
		}
		failing = err != nil
	}
}

// minCheckGap is the shortest time between two safety-net passes asked for.
const minCheckGap = 100 * time.Millisecond

// checkOnce lists the kernel once and hands the listing to every runner.
func (e *Engine) checkOnce() error {
	e.mu.Lock()
	routes, managed := e.hasRoutes || e.statics.listed(), e.managed
	e.mu.Unlock()
	ks, err := e.k.State(routes)
	if err != nil {
		return err
	}
	ks.managed = managed
	e.verifyStatics(ks)
	e.checkVMACs(ks.Links)
	e.rebind(ks.Links, "")
	for _, r := range e.currentRunners() {
		r.Verify(ks)
	}
	return nil
}
