package ipvs

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"slices"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/lvsd/lvsd/conf"
)

// DefaultRepairInterval is how often the kernel table is re-read and drift
// repaired when Options.RepairInterval is zero. Every pass reads the whole
// table (a netlink dump per service): with thousands of destinations that
// is most of an idle director's CPU at a short interval. keepalived never
// repairs; a minute bounds how long a hand edit survives.
const DefaultRepairInterval = 60 * time.Second

// Options tune a Reconciler.
type Options struct {
	// Logger receives the reconciler's messages (default slog.Default()).
	Logger *slog.Logger
	// DontRelease leaves the IPVS table as it is on stop
	// (keepalived's -I/--dont-release-ipvs).
	DontRelease bool
	// RepairInterval is the period at which the kernel table is re-read and
	// owned entries changed by hand are restored. Zero means
	// DefaultRepairInterval; negative disables periodic repair.
	RepairInterval time.Duration
	// RunScript runs a quorum_up/quorum_down script. Nil: the command is
	// started without a shell and not waited for.
	RunScript func(s *conf.Script)
	// Quorum, when set, is told of every quorum change (for smtp_alert):
	// up or down, init at start-up or reload, sum the weight of the
	// healthy real servers. It is called from the reconciler's goroutine
	// and must not block.
	Quorum func(vs *conf.VirtualServer, up, init bool, sum int)
	// Omega, when set, is told at shutdown, as the table is released
	// (not with DontRelease), of each virtual server with omega and of
	// its real servers that were up, in the configuration's order: what
	// keepalived notifies as it removes them (their DOWN FIFO lines). It
	// is called from the reconciler's goroutine and must not block.
	Omega func(vs *conf.VirtualServer, up []*conf.RealServer)
	// QuorumStates, when set, receives the quorum state of every virtual
	// server (by conf.VirtualServer.Key) once the table is first
	// programmed, then after every reload and quorum change (BGP
	// announces what has quorum). It is called from the reconciler's
	// goroutine, owns the map, and must not block.
	QuorumStates func(map[string]bool)
	// Reader, when set, is a second access to the kernel's table that
	// Snapshot reads the counters through, in its caller's goroutine. Nil:
	// Run reads them, between two passes. A Kernel is a Reader.
	Reader Reader
	// ReadEvery bounds how often Snapshot reads the table through Reader:
	// a Snapshot within ReadEvery of the previous read, with no mutation
	// by the reconciler in between, reuses that read (0: DefaultReadEvery;
	// negative: every Snapshot reads).
	ReadEvery time.Duration
}

// DefaultReadEvery is Options.ReadEvery's default: however many scrapers
// ask, the table (one dump of the services and one of each service's
// destinations: the kernel has no dump of every destination at once) is
// read at most once a second.
const DefaultReadEvery = time.Second

// Counters count what the reconciler did since it was created.
type Counters struct {
	ServicesCreated uint64 `json:"services_created"`
	ServicesUpdated uint64 `json:"services_updated"`
	ServicesRemoved uint64 `json:"services_removed"`
	DestsCreated    uint64 `json:"dests_created"`
	DestsUpdated    uint64 `json:"dests_updated"`
	DestsRemoved    uint64 `json:"dests_removed"`
	// Errors counts failed kernel operations (mutations and reads).
	Errors uint64 `json:"errors"`
	// DriftRepairs counts operations that restored an owned entry changed
	// or removed behind lvsd's back.
	DriftRepairs uint64 `json:"drift_repairs"`
	// Reconciles counts diff passes; Reloads configurations applied.
	Reconciles uint64 `json:"reconciles"`
	Reloads    uint64 `json:"reloads"`
	// HealthEvents counts the health events received; HealthIgnored those
	// naming an unknown virtual or real server.
	HealthEvents  uint64 `json:"health_events"`
	HealthIgnored uint64 `json:"health_ignored"`
	// QuorumChanges counts quorum transitions (scripts run).
	QuorumChanges uint64 `json:"quorum_changes"`
}

// Mutations is the number of kernel table mutations.
func (c Counters) Mutations() uint64 {
	return c.ServicesCreated + c.ServicesUpdated + c.ServicesRemoved + c.DestsCreated + c.DestsUpdated + c.DestsRemoved
}

func (c *Counters) count(k OpKind) {
	switch k {
	case OpCreateService:
		c.ServicesCreated++
	case OpUpdateService:
		c.ServicesUpdated++
	case OpRemoveService:
		c.ServicesRemoved++
	case OpCreateDest:
		c.DestsCreated++
	case OpUpdateDest:
		c.DestsUpdated++
	case OpRemoveDest:
		c.DestsRemoved++
	}
}

type healthKey struct {
	vs string
	rs netip.AddrPort
}

// Reconciler keeps the kernel's IPVS table equal to what the configuration
// and the real servers' health ask for. One goroutine (Run) owns its state;
// the other methods are safe for concurrent use and never block on the
// kernel.
type Reconciler struct {
	k    Kernel
	opts Options
	log  *slog.Logger
	// debug: the logger takes debug messages (each operation is logged).
	debug bool

	reads readCache // Snapshot's reads through Options.Reader

	// Inputs, under mu.
	mu            sync.Mutex
	pendingCfg    *conf.Config
	pendingHealth map[healthKey]HealthEvent
	healthOrder   []healthKey
	pendingVRRP   map[string]bool // VRRP instance → MASTER, since the last pass
	pendingRepair bool
	running       bool
	counters      Counters // published copy
	last          *Snapshot
	wake          chan struct{}
	ready         chan struct{}
	viewReq       chan chan *view
	drainReq      chan drainReq
	done          chan struct{}

	// State owned by the Run goroutine, which holds state while it works
	// (Snapshot takes it when Run is not running).
	state        sync.Mutex
	cfg          *conf.Config
	vsIndex      map[string]*conf.VirtualServer
	vsKeys       []string // the keys of cfg.VirtualServers, in order
	groups       map[string]*conf.VirtualServerGroup
	health       map[string]*VSHealth
	desired      *Desired
	kernel       Table // lvsd's picture of the kernel: last read plus applied ops
	kstats       kernelStats
	owned        Ownership
	failed       map[entry]string  // last error of an entry, for retries and log dedup
	kfailed      map[string]string // last error of other kernel calls, for log dedup
	problems     map[string]bool
	initChanges  []quorumChange
	programmed   bool // the start-up programming is done (QuorumStates is told from then on)
	c            Counters
	syncMaster   bool
	vrrpMaster   map[string]bool // the last known state of each VRRP instance (MASTER or not)
	syncStarted  map[SyncState]SyncDaemon
	origTimeouts *Timeouts
	setTimeouts  Timeouts          // configured timeouts applied
	origSysctls  map[string]string // IPVS sysctls set (sysctl.go): their values before
}

type kernelStats struct {
	svc  map[ServiceKey]Stats
	dest map[ServiceKey]map[DestKey]DestInfo
}

// New returns a reconciler for cfg over k. Nothing touches the kernel
// before Run.
func New(cfg *conf.Config, k Kernel, opts Options) *Reconciler {
	log := opts.Logger
	if log == nil {
		log = slog.Default()
	}
	r := &Reconciler{
		k:             k,
		opts:          opts,
		log:           log,
		pendingHealth: map[healthKey]HealthEvent{},
		wake:          make(chan struct{}, 1),
		ready:         make(chan struct{}),
		viewReq:       make(chan chan *view),
		drainReq:      make(chan drainReq),
		kernel:        Table{},
		owned:         NewOwnership(),
		failed:        map[entry]string{},
		kfailed:       map[string]string{},
		problems:      map[string]bool{},
		syncStarted:   map[SyncState]SyncDaemon{},
		vrrpMaster:    map[string]bool{},
	}
	r.debug = log.Enabled(context.Background(), slog.LevelDebug)
	r.setConfig(cfg)
	// The initial health and desired table are computed by Run (or the
	// first Snapshot): New returns at once, so the caller can go on with
	// other start-up work while Run computes and programs.
	return r
}

// ensureDesired computes the initial health and desired table once.
// r.state is held.
func (r *Reconciler) ensureDesired() {
	if r.desired == nil {
		r.health, r.initChanges = buildHealth(r.cfg, nil)
		r.desired = ComputeDesired(r.cfg, r.health)
	}
}

func (r *Reconciler) setConfig(cfg *conf.Config) {
	if cfg == nil {
		cfg = &conf.Config{}
	}
	r.cfg = cfg
	r.groups = groupIndex(cfg)
	r.vsKeys = vsKeys(cfg)
	r.vsIndex = make(map[string]*conf.VirtualServer, len(cfg.VirtualServers))
	for i, vs := range cfg.VirtualServers {
		if _, dup := r.vsIndex[r.vsKeys[i]]; !dup {
			r.vsIndex[r.vsKeys[i]] = vs
		}
	}
}

func (r *Reconciler) poke() {
	select {
	case r.wake <- struct{}{}:
	default:
	}
}

// Apply replaces the configuration (a reload). Only the difference reaches
// the kernel: unchanged services and destinations get no mutation and keep
// their counters and connections. Health and quorum state carry over for
// the virtual and real servers that remain. It returns at once.
func (r *Reconciler) Apply(cfg *conf.Config) {
	if cfg == nil {
		return
	}
	r.mu.Lock()
	r.pendingCfg = cfg
	r.mu.Unlock()
	r.poke()
}

// SetHealth records a health checker's verdict. Events are coalesced per
// real server (the latest wins; a dynamic weight is kept unless replaced).
// It never blocks.
func (r *Reconciler) SetHealth(ev HealthEvent) {
	k := healthKey{ev.VS, ev.RS}
	r.mu.Lock()
	if old, ok := r.pendingHealth[k]; ok {
		if ev.Weight < 0 {
			ev.Weight = old.Weight
		}
	} else {
		r.healthOrder = append(r.healthOrder, k)
	}
	r.pendingHealth[k] = ev
	r.mu.Unlock()
	r.poke()
}

// SetVRRPState tells the reconciler the VRRP state of an instance (master
// or not), as each transition happens. The instance named by
// lvs_sync_daemon drives the sync daemon's role: master runs the master
// sync daemon only, otherwise the backup one only (until the instance's
// first transition the role is backup, as a VRRP instance starts). A
// reload naming another instance takes that instance's last known state.
// Without an instance both daemons run; without lvs_sync_daemon none
// does. It never blocks.
func (r *Reconciler) SetVRRPState(instance string, master bool) {
	r.mu.Lock()
	if r.pendingVRRP == nil {
		r.pendingVRRP = map[string]bool{}
	}
	r.pendingVRRP[instance] = master
	r.mu.Unlock()
	r.poke()
}

// Ready is closed when Run has done its start-up programming.
func (r *Reconciler) Ready() <-chan struct{} { return r.ready }

// RepairNow asks for a drift-repair pass (re-read the kernel, restore owned
// entries) without waiting for the next period. It returns at once.
func (r *Reconciler) RepairNow() {
	r.mu.Lock()
	r.pendingRepair = true
	r.mu.Unlock()
	r.poke()
}

// Counters returns the operation counters.
func (r *Reconciler) Counters() Counters {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.counters
}

func (r *Reconciler) publish() {
	r.mu.Lock()
	r.counters = r.c
	r.mu.Unlock()
}

// Run programs the kernel and keeps it programmed until ctx ends; then it
// removes what lvsd added (unless Options.DontRelease) and returns nil. It
// does not close the Kernel. Kernel errors are logged and counted, never
// fatal: failed operations are retried at the next pass.
func (r *Reconciler) Run(ctx context.Context) error {
	r.mu.Lock()
	if r.running || r.done != nil {
		r.mu.Unlock()
		return errors.New("ipvs: reconciler already run")
	}
	r.running = true
	r.done = make(chan struct{})
	r.mu.Unlock()
	defer func() {
		r.mu.Lock()
		r.running = false
		r.mu.Unlock()
		close(r.done)
	}()

	r.state.Lock()
	r.start()
	r.state.Unlock()
	close(r.ready)
	interval := r.opts.RepairInterval
	if interval == 0 {
		interval = DefaultRepairInterval
	}
	var tick <-chan time.Time
	if interval > 0 {
		t := time.NewTicker(interval)
		defer t.Stop()
		tick = t.C
	}
	for {
		select {
		case <-ctx.Done():
			r.state.Lock()
			r.processPending()
			r.stop()
			r.state.Unlock()
			return nil
		case <-r.wake:
			r.state.Lock()
			r.processPending()
			r.state.Unlock()
		case <-tick:
			r.state.Lock()
			r.processPending()
			r.repair()
			r.state.Unlock()
		case q := <-r.drainReq:
			r.state.Lock()
			q.reply <- r.drain(q, true)
			r.state.Unlock()
		case reply := <-r.viewReq:
			r.state.Lock()
			r.processPending()
			// Without a Reader the kernel is read here, through r.k.
			reply <- r.view(r.opts.Reader == nil)
			r.state.Unlock()
		}
		r.publish()
	}
}

// start flushes (lvs_flush), sets the timeouts, reads the kernel, adopts
// the entries the configuration names and programs the rest.
func (r *Reconciler) start() {
	if r.cfg.Global.LVSFlush {
		if err := r.k.Flush(); err != nil {
			r.kernelError("flush", err)
		} else {
			r.log.Info("ipvs: table flushed (lvs_flush)")
		}
	}
	r.ensureDesired()
	r.applyTimeouts()
	r.applySysctls()
	r.takePending() // health and configuration known before the first programming
	t0 := time.Now()
	if err := r.readKernel(); err != nil {
		r.kernelError("read", err)
	}
	adopt(r.desired.Table, r.kernel, r.owned)
	before := r.c
	r.reconcile("start", nil)
	dests := 0
	for _, s := range r.desired.Table {
		dests += len(s.Dests)
	}
	r.log.Info("ipvs: table programmed", "services", len(r.desired.Table), "destinations", dests,
		"mutations", r.c.Mutations()-before.Mutations(), "errors", r.c.Errors-before.Errors,
		"adopted", len(r.owned.Services), "took", time.Since(t0).Round(time.Millisecond))
	for _, ch := range r.initChanges {
		r.quorumNotify(ch)
	}
	r.initChanges = nil
	r.programmed = true
	r.publishQuorum()
	r.ensureSync()
	r.publish()
}

// stop runs the omega notifications and releases the table.
func (r *Reconciler) stop() {
	for _, vs := range r.cfg.VirtualServers {
		if vs.Omega {
			r.log.Info("ipvs: shutting down virtual server", "vs", vs.String())
			r.runScript(vs.QuorumDown)
		}
	}
	if !r.opts.DontRelease {
		r.omegaNotify()
		if r.cfg.Global.LVSFlushOnStop == "all" {
			if err := r.k.Flush(); err != nil {
				r.kernelError("flush", err)
			}
			r.kernel, r.owned = Table{}, NewOwnership()
		} else {
			// Removing a service removes its destinations with it.
			var ops []Op
			for _, k := range r.kernel.Keys() {
				if r.owned.OwnsService(k) {
					ops = append(ops, Op{Kind: OpRemoveService, Service: r.kernel[k].Service})
				}
			}
			r.execute(ops, false)
		}
	}
	r.stopAllSync()
	r.publish()
}

// omegaNotify tells Options.Omega of the virtual servers with omega and
// their real servers that are up. With lvs_flush_onstop keepalived
// removes no real server one by one: only the virtual servers' lines.
func (r *Reconciler) omegaNotify() {
	if r.opts.Omega == nil {
		return
	}
	seen := map[string]bool{}
	for _, vs := range r.cfg.VirtualServers {
		key := vs.Key()
		if !vs.Omega || seen[key] {
			continue
		}
		seen[key] = true
		var up []*conf.RealServer
		if h := r.health[key]; h != nil && r.cfg.Global.LVSFlushOnStop == "" {
			for _, rs := range vs.RealServers {
				if st := h.RS[rs.AddrPort()]; st != nil && st.Up {
					up = append(up, rs)
				}
			}
		}
		r.opts.Omega(vs, up)
	}
}

// pass is what takePending found to do.
type pass struct {
	full   bool         // the whole desired table changed (configuration)
	keys   []ServiceKey // else: the services whose desired state changed
	sync   bool         // the sync daemon role or configuration changed
	reload bool         // a new configuration was taken
}

func (p pass) empty() bool { return !p.full && len(p.keys) == 0 && !p.sync }

// takePending moves the queued inputs into the state: configuration first,
// then health events (against the new configuration), then the sync role.
// A health event that changes nothing (the healthcheck's initial "up" for a
// server without checkers, a repeated verdict) costs nothing; one that does
// recomputes only its virtual server's services.
func (r *Reconciler) takePending() pass {
	r.mu.Lock()
	cfg := r.pendingCfg
	r.pendingCfg = nil
	events := make([]HealthEvent, 0, len(r.healthOrder))
	for _, k := range r.healthOrder {
		events = append(events, r.pendingHealth[k])
	}
	r.pendingHealth = map[healthKey]HealthEvent{}
	r.healthOrder = nil
	vrrpStates := r.pendingVRRP
	r.pendingVRRP = nil
	r.mu.Unlock()

	var p pass
	var changes []quorumChange
	var same map[string]bool // virtual servers configured as before
	if cfg != nil {
		p.full, p.sync, p.reload = true, true, true
		r.c.Reloads++
		oldSync := r.syncConfig()
		oldIndex, oldGroups := r.vsIndex, r.groups
		r.setConfig(cfg)
		same = sameVirtualServers(cfg, r.vsKeys, oldIndex, oldGroups, r.groups)
		var ch []quorumChange
		r.health, ch = carryHealth(cfg, r.vsKeys, r.health, same)
		changes = append(changes, ch...)
		r.applyTimeouts()
		r.applySysctls()
		if r.syncConfig() != oldSync {
			r.stopAllSync()
		}
	}
	dirty := map[string]bool{}
	var dirtyOrder []string
	for _, ev := range events {
		r.c.HealthEvents++
		vs := r.vsIndex[ev.VS]
		h := r.health[ev.VS]
		if vs == nil || h == nil || h.RS[ev.RS] == nil {
			r.c.HealthIgnored++
			r.log.Debug("ipvs: health event for an unknown server", "vs", ev.VS, "rs", ev.RS.String())
			continue
		}
		if changed, ch := applyHealth(vs, h, ev); changed {
			r.log.Info("ipvs: real server health", "vs", vs.String(), "rs", ev.RS.String(), "up", ev.Up, "weight", ev.Weight)
			if ch != nil {
				changes = append(changes, *ch)
			}
			if !dirty[ev.VS] {
				dirty[ev.VS] = true
				dirtyOrder = append(dirtyOrder, ev.VS)
			}
		}
	}
	for name, master := range vrrpStates {
		r.vrrpMaster[name] = master
	}
	if s := r.cfg.Global.LVSSyncDaemon; s != nil && s.Instance != "" {
		role := r.vrrpMaster[s.Instance]
		p.sync = p.sync || r.syncMaster != role
		r.syncMaster = role
	}
	if p.full && same != nil {
		// A reload: recompute only the virtual servers that changed, and
		// compare only their services (and those of entries that failed)
		// with the kernel.
		if keys, ok := r.desired.carry(r.cfg, r.vsKeys, r.health, same); ok {
			p.full, p.keys = false, keys
			if len(r.failed) > 0 {
				have := map[ServiceKey]bool{}
				for _, k := range keys {
					have[k] = true
				}
				for e := range r.failed {
					if !have[e.svc] {
						have[e.svc] = true
						p.keys = append(p.keys, e.svc)
					}
				}
				slices.SortFunc(p.keys, ServiceKey.cmp)
			}
		}
	}
	switch {
	case p.full || (len(dirty) > 0 && r.desired.conflict):
		p.full, p.keys = true, nil
		r.desired = ComputeDesired(r.cfg, r.health)
	case len(dirty) > 0:
		seen := make(map[ServiceKey]bool, len(p.keys))
		for _, k := range p.keys {
			seen[k] = true
		}
		for _, key := range dirtyOrder {
			for _, sk := range r.desired.update(r.vsIndex[key], r.groups, r.health[key]) {
				if !seen[sk] {
					seen[sk] = true
					p.keys = append(p.keys, sk)
				}
			}
		}
		slices.SortFunc(p.keys, ServiceKey.cmp)
	}
	for _, ch := range changes {
		r.quorumNotify(ch)
	}
	if r.programmed && (cfg != nil || len(changes) > 0) {
		r.publishQuorum()
	}
	return p
}

// publishQuorum hands every virtual server's quorum state to
// Options.QuorumStates.
func (r *Reconciler) publishQuorum() {
	if r.opts.QuorumStates == nil {
		return
	}
	m := make(map[string]bool, len(r.health))
	for k, h := range r.health {
		m[k] = h.QuorumUp
	}
	r.opts.QuorumStates(m)
}

func (r *Reconciler) processPending() {
	t0 := time.Now()
	before := r.c
	if p := r.takePending(); !p.empty() {
		switch {
		case p.full:
			r.reconcile("update", nil)
		case len(p.keys) > 0 && p.reload:
			r.reconcile("update", p.keys)
		case len(p.keys) > 0:
			r.reconcile("health", p.keys)
		}
		if p.reload {
			compared := "all"
			if !p.full {
				compared = strconv.Itoa(len(p.keys))
			}
			r.log.Info("ipvs: configuration applied", "mutations", r.c.Mutations()-before.Mutations(),
				"errors", r.c.Errors-before.Errors, "services_compared", compared, "took", time.Since(t0).Round(10*time.Microsecond))
		}
		if p.sync {
			r.ensureSync()
		}
	}
	r.mu.Lock()
	rep := r.pendingRepair
	r.pendingRepair = false
	r.mu.Unlock()
	if rep {
		r.repair()
	}
}

func (r *Reconciler) quorumNotify(ch quorumChange) {
	r.c.QuorumChanges++
	vs := ch.VS
	if r.opts.Quorum != nil {
		r.opts.Quorum(vs, ch.Up, ch.Init, ch.Sum)
	}
	switch {
	case ch.Up:
		r.log.Info("ipvs: gained quorum", "vs", vs.String(), "quorum", vs.Quorum, "hysteresis", vs.Hysteresis, "weight", ch.Sum)
		r.runScript(vs.QuorumUp)
	default:
		msg := "ipvs: lost quorum"
		if ch.Init {
			msg = "ipvs: starting with quorum down"
		}
		r.log.Info(msg, "vs", vs.String(), "quorum", vs.Quorum, "hysteresis", vs.Hysteresis, "weight", ch.Sum, "sorry_server", vs.SorryServer != nil)
		r.runScript(vs.QuorumDown)
	}
}

func (r *Reconciler) runScript(s *conf.Script) {
	if s == nil {
		return
	}
	if r.opts.RunScript != nil {
		r.opts.RunScript(s)
		return
	}
	execScript(r.log, &r.cfg.Global, s)
}

// reconcile applies the diff between the desired table and lvsd's picture
// of the kernel, for the services keys names (nil: all). When an operation
// shows that picture was wrong (creating an existing entry, editing or
// removing a missing one), the kernel is read again and the whole diff
// redone once.
func (r *Reconciler) reconcile(reason string, keys []ServiceKey) {
	r.logProblems()
	for attempt := 0; attempt < 2; attempt++ {
		r.c.Reconciles++
		var ops []Op
		if keys == nil {
			ops = Diff(r.desired.Table, r.kernel, r.owned)
		} else {
			ops = diffKeys(r.desired.Table, r.kernel, r.owned, keys)
		}
		if len(ops) > 0 {
			r.log.Debug("ipvs: reconciling", "reason", reason, "ops", len(ops))
		}
		if !r.execute(ops, false) {
			return
		}
		if err := r.readKernel(); err != nil {
			r.kernelError("read", err)
			return
		}
		adopt(r.desired.Table, r.kernel, r.owned)
		reason, keys = "resync", nil
	}
}

// repair re-reads the kernel and restores owned entries that were changed
// or removed behind lvsd's back.
func (r *Reconciler) repair() {
	if err := r.readKernel(); err != nil {
		r.kernelError("read", err)
		return
	}
	adopt(r.desired.Table, r.kernel, r.owned)
	r.c.Reconciles++
	ops := Diff(r.desired.Table, r.kernel, r.owned)
	for _, op := range ops {
		if _, retry := r.failed[opEntry(op)]; !retry {
			r.c.DriftRepairs++
			r.log.Warn("ipvs: drift: restoring an entry changed outside lvsd", "op", op.String())
		}
	}
	r.execute(ops, true)
}

// opPhase groups operations: services created or edited, then
// destinations, then services removed.
func opPhase(k OpKind) int {
	switch k {
	case OpCreateService, OpUpdateService:
		return 0
	case OpRemoveService:
		return 2
	}
	return 1
}

// execute performs operations (in Diff's order) in three phases, each in
// one exchange when the kernel batches (BatchKernel). The destinations of
// a service that could not be created are not attempted (they are retried
// with it). It reports whether an error showed lvsd's picture of the
// kernel to be stale.
func (r *Reconciler) execute(ops []Op, repair bool) (stale bool) {
	notCreated := map[ServiceKey]bool{}
	for ph := 0; ph < 3; ph++ {
		var batch []Op
		for _, op := range ops {
			if opPhase(op.Kind) != ph {
				continue
			}
			if notCreated[op.Service.ServiceKey] {
				r.failed[opEntry(op)] = "service not created"
				continue
			}
			batch = append(batch, op)
		}
		if len(batch) == 0 {
			continue
		}
		var errs []error
		if bk, ok := r.k.(BatchKernel); ok {
			errs = bk.ApplyOps(batch)
		} else {
			errs = applyEach(r.k, batch)
		}
		for i, op := range batch {
			if r.record(op, errs[i], repair) {
				stale = true
			}
			if op.Kind == OpCreateService {
				if _, ok := r.kernel[op.Service.ServiceKey]; !ok {
					notCreated[op.Service.ServiceKey] = true
				}
			}
		}
	}
	return stale
}

// entry identifies a kernel entry: a service, or a destination of one.
type entry struct {
	svc    ServiceKey
	dest   DestKey
	isDest bool
}

func opEntry(op Op) entry {
	switch op.Kind {
	case OpCreateService, OpUpdateService, OpRemoveService:
		return entry{svc: op.Service.ServiceKey}
	}
	return entry{svc: op.Service.ServiceKey, dest: op.Dest.DestKey, isDest: true}
}

// record books the result of one operation. It reports whether the error
// shows lvsd's picture of the kernel is stale.
func (r *Reconciler) record(op Op, err error, repair bool) (stale bool) {
	if err == nil && len(r.failed) == 0 {
		r.c.count(op.Kind)
		applyOp(r.kernel, r.owned, op)
		if !repair && r.debug {
			r.log.Debug("ipvs: "+op.String(), "op", op.Kind.String())
		}
		return false
	}
	entry := opEntry(op)
	if err != nil {
		gone := errors.Is(err, syscall.ENOENT) || errors.Is(err, syscall.ESRCH)
		if gone && (op.Kind == OpRemoveService || op.Kind == OpRemoveDest) {
			// Already gone: that is what we wanted.
			applyOp(r.kernel, r.owned, op)
			delete(r.failed, entry)
			return false
		}
		r.c.Errors++
		msg := err.Error()
		if r.failed[entry] != msg {
			r.log.Warn("ipvs: kernel operation failed", "op", op.String(), "err", err)
		}
		r.failed[entry] = msg
		switch {
		case errors.Is(err, errUnknownOutcome):
			return true
		case errors.Is(err, syscall.EEXIST):
			return true
		case gone:
			// Creating a service: no such scheduler (or persistence
			// engine), not a stale picture. Otherwise the entry is missing.
			return op.Kind != OpCreateService
		}
		return false
	}
	if len(r.failed) > 0 {
		if _, was := r.failed[entry]; was {
			r.log.Info("ipvs: kernel operation succeeded after failing", "op", op.String())
			delete(r.failed, entry)
		}
	}
	r.c.count(op.Kind)
	applyOp(r.kernel, r.owned, op)
	if !repair && r.debug {
		r.log.Debug("ipvs: "+op.String(), "op", op.Kind.String())
	}
	return false
}

func (r *Reconciler) kernelError(what string, err error) {
	r.c.Errors++
	key := "kernel " + what
	if r.kfailed[key] != err.Error() {
		r.log.Error("ipvs: kernel "+what+" failed", "err", err)
	}
	r.kfailed[key] = err.Error()
}

func (r *Reconciler) logProblems() {
	seen := map[string]bool{}
	for _, p := range r.desired.Problems {
		seen[p] = true
		if !r.problems[p] {
			r.log.Warn("ipvs: " + p)
		}
	}
	r.problems = seen
}

// readKernel replaces lvsd's picture of the kernel with the kernel's table:
// every service, and the destinations of those lvsd wants or owns. Owned
// entries that disappeared are forgotten.
func (r *Reconciler) readKernel() error {
	t, st, err := r.read(func(k ServiceKey) bool {
		_, want := r.desired.Table[k]
		return want || r.owned.OwnsService(k) || r.owned.Dests[k] != nil
	})
	if err != nil {
		return err
	}
	delete(r.kfailed, "kernel read")
	r.kernel, r.kstats = t, st
	for k := range r.owned.Services {
		if _, ok := t[k]; !ok {
			r.owned.removeService(k)
		}
	}
	for k, m := range r.owned.Dests {
		s := t[k]
		for d := range m {
			if s == nil {
				r.owned.removeDest(k, d)
			} else if _, ok := s.Dests[d]; !ok {
				r.owned.removeDest(k, d)
			}
		}
	}
	return nil
}

// read lists the kernel's table; destinations are read for the services
// withDests selects.
func (r *Reconciler) read(withDests func(ServiceKey) bool) (Table, kernelStats, error) {
	return readTable(r.k, withDests)
}

// readTable lists k's table; destinations are read for the services
// withDests selects.
func readTable(k Reader, withDests func(ServiceKey) bool) (Table, kernelStats, error) {
	svcs, err := k.Services()
	if err != nil {
		return nil, kernelStats{}, err
	}
	t := make(Table, len(svcs))
	st := kernelStats{svc: map[ServiceKey]Stats{}, dest: map[ServiceKey]map[DestKey]DestInfo{}}
	for _, s := range svcs {
		ts := &TableService{Service: s.Service, Dests: map[DestKey]Destination{}}
		t[s.ServiceKey] = ts
		st.svc[s.ServiceKey] = s.Stats
		if !withDests(s.ServiceKey) {
			continue
		}
		dests, err := k.Destinations(s.ServiceKey)
		if err != nil {
			return nil, kernelStats{}, fmt.Errorf("destinations of %s: %w", s.ServiceKey, err)
		}
		dm := make(map[DestKey]DestInfo, len(dests))
		for _, d := range dests {
			ts.Dests[d.DestKey] = d.Destination
			dm[d.DestKey] = d
		}
		st.dest[s.ServiceKey] = dm
	}
	return t, st, nil
}

// applyTimeouts sets lvs_timeouts. A value dropped from the configuration
// goes back to what the kernel had when lvsd started.
func (r *Reconciler) applyTimeouts() {
	lt := r.cfg.Global.LVSTimeouts
	want := Timeouts{TCP: lt.TCP, TCPFin: lt.TCPFin, UDP: lt.UDP}
	if want == r.setTimeouts {
		return
	}
	if r.origTimeouts == nil {
		orig, err := r.k.Timeouts()
		if err != nil {
			r.kernelError("read timeouts", err)
		} else {
			r.origTimeouts = &orig
		}
	}
	var set Timeouts
	pick := func(w, old time.Duration, orig func(*Timeouts) time.Duration) time.Duration {
		switch {
		case w != 0 && w != old:
			return w
		case w == 0 && old != 0 && r.origTimeouts != nil:
			return orig(r.origTimeouts)
		}
		return 0
	}
	set.TCP = pick(want.TCP, r.setTimeouts.TCP, func(t *Timeouts) time.Duration { return t.TCP })
	set.TCPFin = pick(want.TCPFin, r.setTimeouts.TCPFin, func(t *Timeouts) time.Duration { return t.TCPFin })
	set.UDP = pick(want.UDP, r.setTimeouts.UDP, func(t *Timeouts) time.Duration { return t.UDP })
	if set == (Timeouts{}) {
		r.setTimeouts = want
		return
	}
	if err := r.k.SetTimeouts(set); err != nil {
		r.kernelError("set timeouts", err)
		return
	}
	r.log.Info("ipvs: timeouts set", "tcp", set.TCP, "tcpfin", set.TCPFin, "udp", set.UDP)
	r.setTimeouts = want
}

// syncConfig is the sync daemon the configuration asks for (State unset).
func (r *Reconciler) syncConfig() SyncDaemon {
	s := r.cfg.Global.LVSSyncDaemon
	if s == nil {
		return SyncDaemon{}
	}
	d := SyncDaemon{Interface: s.Interface, MaxLen: uint16(s.MaxLen), Group: s.Group, Port: uint16(s.Port), TTL: uint8(s.TTL)}
	switch {
	case s.SyncID >= 0:
		d.SyncID = uint32(s.SyncID)
	case s.Instance != "":
		if in := r.cfg.Instance(s.Instance); in != nil {
			d.SyncID = uint32(in.VRID)
		}
	}
	return d
}

// wantedSync returns the daemons that should run.
func (r *Reconciler) wantedSync() map[SyncState]SyncDaemon {
	base := r.syncConfig()
	out := map[SyncState]SyncDaemon{}
	if base.Interface == "" {
		return out
	}
	var states []SyncState
	switch {
	case r.cfg.Global.LVSSyncDaemon.Instance == "":
		states = []SyncState{SyncMaster, SyncBackup}
	case r.syncMaster:
		states = []SyncState{SyncMaster}
	default:
		states = []SyncState{SyncBackup}
	}
	for _, st := range states {
		d := base
		d.State = st
		out[st] = d
	}
	return out
}

// ensureSync stops the sync daemons that should not run and starts the
// missing ones (stop first: the kernel binds the same port for both).
func (r *Reconciler) ensureSync() {
	want := r.wantedSync()
	for _, st := range syncStates { // in order: the map's is random
		d, running := r.syncStarted[st]
		if !running {
			continue
		}
		if w, ok := want[st]; !ok || w != d {
			if err := r.k.StopSyncDaemon(st); err != nil {
				r.kernelError("stop sync daemon "+st.String(), err)
				continue
			}
			r.log.Info("ipvs: sync daemon stopped", "state", st.String())
			delete(r.syncStarted, st)
		}
	}
	for _, st := range syncStates {
		d, ok := want[st]
		if !ok {
			continue
		}
		if _, running := r.syncStarted[st]; running {
			continue
		}
		if err := r.k.StartSyncDaemon(d); err != nil {
			r.kernelError("start sync daemon "+st.String(), err)
			continue
		}
		delete(r.kfailed, "kernel start sync daemon "+st.String())
		r.log.Info("ipvs: sync daemon started", "state", st.String(), "interface", d.Interface, "sync_id", d.SyncID)
		r.syncStarted[st] = d
	}
}

// syncStates are the sync daemon's roles, in the order they are started
// and stopped.
var syncStates = []SyncState{SyncMaster, SyncBackup}

func (r *Reconciler) stopAllSync() {
	for _, st := range syncStates {
		if _, running := r.syncStarted[st]; !running {
			continue
		}
		if err := r.k.StopSyncDaemon(st); err != nil {
			r.kernelError("stop sync daemon "+st.String(), err)
		}
		delete(r.syncStarted, st)
	}
}
