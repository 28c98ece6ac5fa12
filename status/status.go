// Package status builds lvsd's read-only picture of itself for operators:
// the /status JSON document, the status page at /, and the dump files that
// SIGUSR1 and SIGUSR2 write (keepalived's /tmp/keepalived.data and
// /tmp/keepalived.stats).
//
// Everything here reads snapshots the subsystems publish (vrrp.Engine.Status,
// healthcheck.Scheduler.Snapshot, ipvs.Reconciler.Snapshot) joined with the
// configuration; nothing here drives a subsystem. The metrics package
// derives its Prometheus metrics from the same Status value.
package status

import (
	"cmp"
	"net/netip"
	"sort"
	"strconv"
	"sync"
	"time"

	"github.com/lvsd/lvsd/bgp"
	"github.com/lvsd/lvsd/conf"
	"github.com/lvsd/lvsd/healthcheck"
	"github.com/lvsd/lvsd/ipvs"
	"github.com/lvsd/lvsd/notify"
	"github.com/lvsd/lvsd/vrrp"
	"github.com/lvsd/lvsd/vrrp/advert"
)

// Sources are read-only views of the running subsystems. A nil function
// means the subsystem does not run (command line, or IPVS unavailable).
type Sources struct {
	// Daemon holds the process-level facts: version, start, reloads.
	Daemon *Daemon
	// Config returns the configuration in force (the last one loaded
	// successfully): virtual servers and vrrp_scripts come from it.
	Config func() *conf.Config
	// VRRPConfig returns the configuration the VRRP engine runs, which
	// names the interface, VRID and addresses of each instance (a reload
	// does not change VRRP yet). Nil when VRRP does not run.
	VRRPConfig func() *conf.Config
	// VRRP returns the instances' states and counters.
	VRRP func() []vrrp.InstanceStatus
	// VRRPUnrouted returns the VRRP packets no instance claims (an unknown
	// VRID, …), by drop reason name. Nil when VRRP does not run.
	VRRPUnrouted func() map[string]uint64
	// Scripts returns the status of the vrrp_scripts.
	Scripts func() []Script
	// Health returns the real servers' health.
	Health func() []healthcheck.RealServerStatus
	// IPVS returns the reconciler's picture of the kernel table.
	IPVS func() *ipvs.Snapshot
	// Resyncs returns, by watch, how many times a netlink subscription
	// was repaired by a new listing (notifications lost, socket reopened).
	Resyncs func() map[string]uint64
	// Repairs returns what VRRP's safety net repaired, by what.
	Repairs func() map[string]uint64
	// HTTPRefused returns the connections to the HTTP endpoint closed at
	// accept because they reached an address lvsd manages (a VIP, a
	// virtual server). Nil when the endpoint does not guard them.
	HTTPRefused func() uint64
	// Notify returns the counters of the notifiers (notify scripts and
	// smtp_alert), by notifier: "vrrp" (transitions) and "check" (real
	// servers and quorum). Nil when none runs.
	Notify func() map[string]notify.Stats
	// BGP returns the announcements and sessions. Nil when BGP does not
	// run (no IPVS here).
	BGP func() bgp.Status
}

// Daemon records what belongs to the process rather than to a subsystem.
// It is safe for concurrent use.
type Daemon struct {
	Version    string
	GoVersion  string
	ConfigFile string
	Host       string
	Started    time.Time

	mu       sync.Mutex
	reloads  Reloads
	ipvsDown string
}

// Reloads counts configuration reloads (SIGHUP).
type Reloads struct {
	Success uint64 `json:"success"`
	Failure uint64 `json:"failure"`
	// Last is the time of the latest attempt (zero: none yet);
	// LastSuccess that of the latest configuration loaded, the start's
	// included.
	Last        time.Time `json:"last,omitzero"`
	LastSuccess time.Time `json:"last_success"`
	LastOK      bool      `json:"last_ok"`
	LastError   string    `json:"last_error,omitempty"`
}

// NewDaemon returns a Daemon whose configuration was loaded at started.
func NewDaemon(version, goVersion, configFile, host string, started time.Time) *Daemon {
	return &Daemon{Version: version, GoVersion: goVersion, ConfigFile: configFile, Host: host, Started: started,
		reloads: Reloads{LastSuccess: started, LastOK: true}}
}

// RecordReload counts a reload attempt at t; err is nil when the new
// configuration was applied.
func (d *Daemon) RecordReload(t time.Time, err error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.reloads.Last = t
	if err != nil {
		d.reloads.Failure++
		d.reloads.LastOK = false
		d.reloads.LastError = err.Error()
		return
	}
	d.reloads.Success++
	d.reloads.LastOK = true
	d.reloads.LastError = ""
	d.reloads.LastSuccess = t
}

// Reloads returns the reload counters.
func (d *Daemon) Reloads() Reloads {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.reloads
}

// SetIPVSUnavailable records why IPVS is not programmed ("" when it is).
func (d *Daemon) SetIPVSUnavailable(why string) {
	d.mu.Lock()
	d.ipvsDown = why
	d.mu.Unlock()
}

func (d *Daemon) ipvsUnavailable() string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.ipvsDown
}

// Status is the whole picture, as /status serves it.
type Status struct {
	Host      string    `json:"host"`
	Version   string    `json:"version"`
	GoVersion string    `json:"go_version"`
	Config    string    `json:"config_file"`
	Started   time.Time `json:"started"`
	Time      time.Time `json:"time"`
	Reloads   Reloads   `json:"reloads"`

	Instances      []Instance      `json:"instances"`
	Scripts        []Script        `json:"scripts,omitempty"`
	IPVS           IPVS            `json:"ipvs"`
	VirtualServers []VirtualServer `json:"virtual_servers"`
	// OtherServices are kernel services no virtual server asks for
	// (foreign ones, or owned ones about to be removed).
	OtherServices []Service `json:"other_services,omitempty"`
	// NetlinkResyncs counts by watch the netlink subscriptions repaired
	// by a new listing; VRRPRepairs what VRRP's safety net repaired.
	NetlinkResyncs map[string]uint64 `json:"netlink_resyncs,omitempty"`
	VRRPRepairs    map[string]uint64 `json:"vrrp_repairs,omitempty"`
	// BGP is the BGP speaker's state (nil when BGP does not run).
	BGP *bgp.Status `json:"bgp,omitempty"`
}

// Instance is one VRRP instance.
type Instance struct {
	Name      string `json:"name"`
	Interface string `json:"interface"`
	// VMAC is the interface of use_vmac or use_ipvlan, on Interface: the
	// VIPs without dev go on it.
	VMAC      string `json:"vmac,omitempty"`
	VRID      int    `json:"vrid"`
	Version   int    `json:"version"`
	SyncGroup string `json:"sync_group,omitempty"`
	// State is INIT, BACKUP, MASTER, FAULT or STOP; StateCode keepalived's
	// number for it (0 INIT, 1 BACKUP, 2 MASTER, 3 FAULT, 98 STOP).
	State     string `json:"state"`
	StateCode int    `json:"state_code"`
	// Priority is the effective priority, BasePriority the configured one.
	Priority     int `json:"priority"`
	BasePriority int `json:"base_priority"`
	// MasterAddr is the master last heard (ours when MASTER); "" when none.
	MasterAddr string `json:"master_addr"`
	// FailedOver: held in BACKUP by the operator (lvsd ctl failover),
	// until FailedOverUntil (absent: until cleared).
	FailedOver      bool      `json:"failed_over,omitempty"`
	FailedOverUntil time.Time `json:"failed_over_until,omitzero"`
	AdvertInt       float64   `json:"advert_int_seconds"`
	// MasterAdverInt is Master_Adver_Interval (v3: the master's), in
	// seconds; MasterPriority the priority of the master last heard (0:
	// none); VIPsSet whether the VIPs are installed; LastTransition when
	// the state last changed.
	MasterAdverInt float64   `json:"master_advert_int_seconds"`
	MasterPriority int       `json:"master_priority"`
	VIPsSet        bool      `json:"vips_set"`
	LastTransition time.Time `json:"last_transition,omitzero"`
	// GARPDelay is garp_master_delay in seconds.
	GARPDelay float64 `json:"garp_master_delay_seconds"`
	VIPs      []VIP   `json:"vips"`
	Stats     Stats   `json:"stats"`
}

// VIP is one virtual address of an instance.
type VIP struct {
	// Addr is written as keepalived writes it: the address, with "/len"
	// unless it is a host address (/32 or /128).
	Addr string `json:"addr"`
	Dev  string `json:"dev"`
}

// Stats are the counters of an instance.
type Stats struct {
	AdvertRcvd    uint64 `json:"advert_rcvd"`
	AdvertSent    uint64 `json:"advert_sent"`
	BecomeMaster  uint64 `json:"become_master"`
	ReleaseMaster uint64 `json:"release_master"`
	AddrListErr   uint64 `json:"addr_list_err"`
	PriZeroRcvd   uint64 `json:"pri_zero_rcvd"`
	PriZeroSent   uint64 `json:"pri_zero_sent"`
	SendErrors    uint64 `json:"send_errors"`
	AddrErrors    uint64 `json:"addr_errors"`
	GARPSent      uint64 `json:"garp_sent"`
	VIPRestored   uint64 `json:"vip_restored"`
	OwnPackets    uint64 `json:"own_packets"`
	// Drops counts dropped packets by advert.DropReason name; every reason
	// is present.
	Drops map[string]uint64 `json:"drops"`
}

// Drop returns the count for one reason.
func (s *Stats) Drop(r advert.DropReason) uint64 { return s.Drops[r.String()] }

// IPVS tells whether the IPVS table is programmed.
type IPVS struct {
	// Running: the reconciler runs.
	Running bool `json:"running"`
	// Error says why IPVS is not programmed, or the last kernel error.
	Error string `json:"error,omitempty"`
	// Fresh: the kernel was read for this status.
	Fresh    bool           `json:"fresh"`
	Counters *ipvs.Counters `json:"counters,omitempty"`
}

// VirtualServer is one virtual_server with its kernel services and real
// servers.
type VirtualServer struct {
	Key       string `json:"key"`  // conf key, e.g. TCP/192.0.2.10:80
	Name      string `json:"name"` // keepalived's name, e.g. 192.0.2.10:80
	Protocol  string `json:"protocol"`
	Scheduler string `json:"scheduler"`
	Method    string `json:"lvs_method"`
	// Quorum state, when IPVS runs.
	QuorumUp    *bool `json:"quorum_up,omitempty"`
	Quorum      int   `json:"quorum"`
	WeightSum   int   `json:"weight_sum"`
	SorryActive bool  `json:"sorry_active"`
	// InSync: every service is in the kernel as wanted.
	InSync      bool         `json:"in_sync"`
	Services    []Service    `json:"services"`
	RealServers []RealServer `json:"real_servers"`
}

// RealServer is the configuration and health of a real server.
type RealServer struct {
	Addr   string `json:"addr"` // address:port
	Weight int    `json:"weight"`
	// EffectiveWeight is the weight a healthy server gets (misc_dynamic
	// included), when IPVS runs; -1 otherwise.
	EffectiveWeight int `json:"effective_weight"`
	// Drained: set to weight 0 by the operator (lvsd ctl drain) until
	// enabled again.
	Drained bool `json:"drained,omitempty"`
	// Up is the health verdict; HealthKnown false when nobody checks
	// (no checker running): then Up is what IPVS assumes.
	Up          bool      `json:"up"`
	HealthKnown bool      `json:"health_known"`
	Since       time.Time `json:"since,omitzero"`
	Reason      string    `json:"reason,omitempty"`
	Transitions int       `json:"transitions"`
	Checkers    []Checker `json:"checkers,omitempty"`
	Ignored     []string  `json:"ignored_checkers,omitempty"`
}

// Checker is one health checker of a real server.
type Checker struct {
	Type         string    `json:"type"`
	Up           bool      `json:"up"`
	LastOK       bool      `json:"last_ok"`
	LastReason   string    `json:"last_reason,omitempty"`
	LastCheck    time.Time `json:"last_check,omitzero"`
	LastDuration float64   `json:"last_duration_seconds"`
	Checks       uint64    `json:"checks"`
	Failures     int       `json:"failures"`
}

// Service is a kernel service: what lvsd wants and what the kernel has.
type Service struct {
	Name string `json:"name"` // e.g. "TCP 192.0.2.10:80", "FWM 1"
	// Key fields, as IPVS numbers them.
	Family   string     `json:"family"`
	Proto    string     `json:"proto"` // TCP, UDP, SCTP, FWM
	Addr     netip.Addr `json:"addr,omitzero"`
	Port     uint16     `json:"port"`
	Fwmark   uint32     `json:"fwmark"`
	VS       string     `json:"vs,omitempty"`
	Owned    bool       `json:"owned"`
	Desired  bool       `json:"desired"`
	InKernel bool       `json:"in_kernel"`
	InSync   bool       `json:"in_sync"`
	// Scheduler is the kernel's, else the desired one.
	Scheduler string        `json:"scheduler"`
	Stats     ipvs.Stats    `json:"stats"`
	Dests     []Destination `json:"dests"`
}

// Destination is one destination of a service: desired vs kernel.
type Destination struct {
	Addr    netip.Addr `json:"addr"`
	Port    uint16     `json:"port"`
	RS      string     `json:"rs,omitempty"` // the real_server behind it
	Sorry   bool       `json:"sorry,omitempty"`
	Healthy bool       `json:"healthy"`
	Owned   bool       `json:"owned"`
	InSync  bool       `json:"in_sync"`
	Forward string     `json:"forward"`
	// DesiredWeight and KernelWeight are nil when lvsd does not want the
	// destination, resp. when the kernel does not have it.
	DesiredWeight *int       `json:"desired_weight"`
	KernelWeight  *int       `json:"kernel_weight"`
	ActiveConns   uint32     `json:"active_conns"`
	InactiveConns uint32     `json:"inactive_conns"`
	PersistConns  uint32     `json:"persist_conns"`
	Stats         ipvs.Stats `json:"stats"`
}

// StateCode is keepalived's number for a VRRP state.
func StateCode(s vrrp.State) int {
	switch s {
	case vrrp.StateInit:
		return 0
	case vrrp.StateBackup:
		return 1
	case vrrp.StateMaster:
		return 2
	case vrrp.StateFault:
		return 3
	}
	return 98 // keepalived's VRRP_STATE_STOP
}

// FormatVIP writes a virtual address as keepalived's dumps do: the address,
// with "/len" unless it is a host address.
func FormatVIP(p netip.Prefix) string {
	if p.Bits() == p.Addr().BitLen() || p.Bits() < 0 {
		return p.Addr().String()
	}
	return p.String()
}

// Build reads every source once and joins them.
func Build(src Sources) *Status {
	now := time.Now()
	st := &Status{Time: now, Instances: []Instance{}, VirtualServers: []VirtualServer{}}
	if d := src.Daemon; d != nil {
		st.Host, st.Version, st.GoVersion, st.Config, st.Started = d.Host, d.Version, d.GoVersion, d.ConfigFile, d.Started
		st.Reloads = d.Reloads()
	}
	st.Instances = buildInstances(src)
	if src.Scripts != nil {
		st.Scripts = src.Scripts()
	}
	var cfg *conf.Config
	if src.Config != nil {
		cfg = src.Config()
	}
	var snap *ipvs.Snapshot
	if src.IPVS != nil {
		snap = src.IPVS()
	}
	var health []healthcheck.RealServerStatus
	if src.Health != nil {
		health = src.Health()
	}
	st.IPVS = buildIPVS(src, cfg, snap)
	st.VirtualServers, st.OtherServices = buildVirtualServers(cfg, snap, health)
	if src.Resyncs != nil {
		st.NetlinkResyncs = src.Resyncs()
	}
	if src.Repairs != nil {
		st.VRRPRepairs = src.Repairs()
	}
	if src.BGP != nil {
		b := src.BGP()
		st.BGP = &b
	}
	return st
}

func buildInstances(src Sources) []Instance {
	out := []Instance{}
	if src.VRRPConfig == nil {
		return out
	}
	cfg := src.VRRPConfig()
	if cfg == nil {
		return out
	}
	running := map[string]vrrp.InstanceStatus{}
	if src.VRRP != nil {
		for _, s := range src.VRRP() {
			running[s.Name] = s
		}
	}
	for _, in := range cfg.Instances {
		inst := Instance{
			Name: in.Name, Interface: in.Interface, VMAC: in.VMACInterface(), VRID: in.VRID, Version: in.Version, SyncGroup: in.SyncGroup,
			State: vrrp.StateInit.String(), BasePriority: in.Priority, Priority: in.Priority,
			AdvertInt: in.AdvertInt.Seconds(), MasterAdverInt: in.AdvertInt.Seconds(), GARPDelay: in.GARP.MasterDelay.Seconds(),
			VIPs: []VIP{},
		}
		for _, v := range in.VIPs {
			dev := v.Dev
			if dev == "" {
				dev = in.Interface
				if in.UseVMAC { // an ipvlan's go on the base
					dev = cmp.Or(inst.VMAC, dev)
				}
			}
			inst.VIPs = append(inst.VIPs, VIP{Addr: FormatVIP(v.Prefix), Dev: dev})
		}
		inst.Stats.Drops = map[string]uint64{}
		for _, r := range advert.DropReasons() {
			inst.Stats.Drops[r.String()] = 0
		}
		if s, ok := running[in.Name]; ok {
			inst.State, inst.StateCode, inst.Priority = s.State.String(), StateCode(s.State), int(s.Priority)
			if s.MasterAddr.IsValid() {
				inst.MasterAddr = s.MasterAddr.String()
			}
			inst.FailedOver, inst.FailedOverUntil = s.Resigned, s.ResignedUntil
			inst.MasterAdverInt, inst.MasterPriority = s.MasterAdverInt.Seconds(), int(s.MasterPriority)
			inst.VIPsSet, inst.LastTransition = s.VIPsSet, s.LastTransition
			if c := s.Stats; c != nil {
				inst.Stats = Stats{
					AdvertRcvd: c.AdvertRcvd.Load(), AdvertSent: c.AdvertSent.Load(),
					BecomeMaster: c.BecomeMaster.Load(), ReleaseMaster: c.ReleaseMaster.Load(),
					AddrListErr: c.AddrListErr.Load(), PriZeroRcvd: c.PriZeroRcvd.Load(), PriZeroSent: c.PriZeroSent.Load(),
					SendErrors: c.SendErrors.Load(), AddrErrors: c.AddrErrors.Load(), GARPSent: c.GARPSent.Load(),
					VIPRestored: c.VIPRestored.Load(), OwnPackets: c.OwnPackets.Load(),
					Drops: map[string]uint64{},
				}
				for _, r := range advert.DropReasons() {
					var n uint64
					if int(r) < len(c.Drops) {
						n = c.Drops[r].Load()
					}
					inst.Stats.Drops[r.String()] = n
				}
			}
		}
		out = append(out, inst)
	}
	return out
}

func buildIPVS(src Sources, cfg *conf.Config, snap *ipvs.Snapshot) IPVS {
	var out IPVS
	if snap == nil {
		if src.Daemon != nil {
			out.Error = src.Daemon.ipvsUnavailable()
		}
		if out.Error == "" && cfg != nil && len(cfg.VirtualServers) > 0 && src.IPVS == nil {
			out.Error = "IPVS is not programmed by this process"
		}
		return out
	}
	c := snap.Counters
	out.Running, out.Fresh, out.Error, out.Counters = true, snap.Fresh, snap.KernelError, &c
	return out
}

// ServiceName names a service as ipvsadm lists it.
func ServiceName(k ipvs.ServiceKey) string {
	if k.Fwmark != 0 {
		return "FWM " + strconv.FormatUint(uint64(k.Fwmark), 10)
	}
	return k.Proto.String() + " " + netip.AddrPortFrom(k.Addr, k.Port).String()
}

func protoName(k ipvs.ServiceKey) string {
	if k.Fwmark != 0 {
		return "FWM"
	}
	return k.Proto.String()
}

func buildService(ss ipvs.ServiceStatus) Service {
	k := ss.Key
	s := Service{
		Name: ServiceName(k), Family: k.Family.String(), Proto: protoName(k), Addr: k.Addr, Port: k.Port, Fwmark: k.Fwmark,
		VS: ss.VS, Owned: ss.Owned, Desired: ss.Desired != nil, InKernel: ss.Kernel != nil, InSync: ss.InSync,
		Stats: ss.Stats, Dests: make([]Destination, 0, len(ss.Dests)),
	}
	if ss.Kernel != nil {
		s.Scheduler = ss.Kernel.Scheduler
	} else if ss.Desired != nil {
		s.Scheduler = ss.Desired.Scheduler
	}
	for _, d := range ss.Dests {
		dst := Destination{
			Addr: d.Key.Addr, Port: d.Key.Port, Sorry: d.Sorry, Healthy: d.Healthy, Owned: d.Owned, InSync: d.InSync,
			ActiveConns: d.ActiveConns, InactiveConns: d.InactiveConns, PersistConns: d.PersistConns, Stats: d.Stats,
		}
		if d.RS.IsValid() {
			dst.RS = d.RS.String()
		}
		if d.Desired != nil {
			w := d.Desired.Weight
			dst.DesiredWeight = &w
			dst.Forward = d.Desired.Fwd.String()
		}
		if d.Kernel != nil {
			w := d.Kernel.Weight
			dst.KernelWeight = &w
			dst.Forward = d.Kernel.Fwd.String()
		}
		s.Dests = append(s.Dests, dst)
	}
	return s
}

type rsKey struct {
	vs string
	rs netip.AddrPort
}

func buildVirtualServers(cfg *conf.Config, snap *ipvs.Snapshot, health []healthcheck.RealServerStatus) ([]VirtualServer, []Service) {
	out := []VirtualServer{}
	hc := make(map[rsKey]healthcheck.RealServerStatus, len(health))
	for _, h := range health {
		hc[rsKey{h.VS, h.RS}] = h
	}
	services := map[string][]Service{}
	var other []Service
	vsState := map[string]ipvs.VSStatus{}
	if snap != nil {
		for _, ss := range snap.Services {
			s := buildService(ss)
			if ss.VS == "" {
				other = append(other, s)
				continue
			}
			services[ss.VS] = append(services[ss.VS], s)
		}
		for _, v := range snap.VirtualServers {
			vsState[v.VS] = v
		}
	}
	if cfg == nil {
		return out, other
	}
	for _, vs := range cfg.VirtualServers {
		key := vs.Key()
		v := VirtualServer{
			Key: key, Name: vs.String(), Protocol: vs.Protocol, Scheduler: vs.Scheduler, Method: vs.Forwarding.Method,
			Quorum: vs.Quorum, Services: services[key], RealServers: make([]RealServer, 0, len(vs.RealServers)),
		}
		if v.Services == nil {
			v.Services = []Service{}
		}
		v.InSync = snap != nil && len(v.Services) > 0
		for _, s := range v.Services {
			if !s.InSync {
				v.InSync = false
			}
		}
		var ipvsRS map[netip.AddrPort]ipvs.RSStatus
		if q, ok := vsState[key]; ok {
			up := q.QuorumUp
			v.QuorumUp, v.WeightSum, v.SorryActive = &up, q.WeightSum, q.SorryActive
			ipvsRS = make(map[netip.AddrPort]ipvs.RSStatus, len(q.RealServers))
			for _, r := range q.RealServers {
				ipvsRS[r.RS] = r
			}
		}
		for _, rs := range vs.RealServers {
			ap := rs.AddrPort()
			r := RealServer{Addr: ap.String(), Weight: rs.Weight, EffectiveWeight: -1, Up: ipvs.InitiallyUp(rs)}
			if ir, ok := ipvsRS[ap]; ok {
				r.Up, r.EffectiveWeight, r.Drained = ir.Up, ir.Weight, ir.Drained
			}
			if h, ok := hc[rsKey{key, ap}]; ok {
				r.Up, r.HealthKnown, r.Since, r.Reason, r.Transitions, r.Ignored = h.Up, true, h.Since, h.Reason, h.Transitions, h.Ignored
				for _, c := range h.Checkers {
					r.Checkers = append(r.Checkers, Checker{
						Type: c.Type, Up: c.Up, LastOK: c.LastOK, LastReason: c.LastReason, LastCheck: c.LastCheck,
						LastDuration: c.LastDuration.Seconds(), Checks: c.Checks, Failures: c.Failures,
					})
				}
			}
			v.RealServers = append(v.RealServers, r)
		}
		out = append(out, v)
	}
	sort.SliceStable(other, func(i, j int) bool { return other[i].Name < other[j].Name })
	return out, other
}
