// Package conf reads keepalived.conf into plain typed values.
//
// The pipeline is lexer (lex.go: includes, comments, conditionals, $definitions,
// braces) → tree (tree.go: statements and blocks) → model (parse_*.go: typed values
// with keepalived's defaults) → validation (validate.go). Every value that can be
// wrong keeps the Pos it came from, so every diagnostic names file:line.
//
// conf is a leaf package: it imports nothing of lvsd's, and every subsystem
// (vrrp, ipvs, healthcheck) reads its types.
package conf

import (
	"fmt"
	"net/netip"
	"time"
)

// Pos is where a value came from.
type Pos struct {
	File string `json:"file,omitempty"`
	Line int    `json:"line,omitempty"`
}

func (p Pos) String() string {
	if p.File == "" {
		return fmt.Sprintf("line %d", p.Line)
	}
	return fmt.Sprintf("%s:%d", p.File, p.Line)
}

// Config is the whole parsed configuration.
type Config struct {
	// Files lists every file read, the main file first.
	Files []string `json:"files"`

	Global          Global                `json:"global"`
	Scripts         []*VRRPScript         `json:"vrrp_scripts,omitempty"`
	TrackFiles      []*TrackFile          `json:"track_files,omitempty"`
	TrackProcesses  []*TrackProcess       `json:"track_processes,omitempty"`
	SyncGroups      []*SyncGroup          `json:"vrrp_sync_groups,omitempty"`
	Instances       []*VRRPInstance       `json:"vrrp_instances,omitempty"`
	StaticAddresses []VIP                 `json:"static_ipaddress,omitempty"`
	StaticRoutes    []Route               `json:"static_routes,omitempty"`
	StaticRules     []Route               `json:"static_rules,omitempty"`
	VSGroups        []*VirtualServerGroup `json:"virtual_server_groups,omitempty"`
	VirtualServers  []*VirtualServer      `json:"virtual_servers,omitempty"`
	// RealServerVIPs is lvsd's real_server_vips block, read by lvsd
	// realserver only (the directors ignore it; keepalived warns of an
	// unknown keyword and goes on).
	RealServerVIPs []RealServerVIP `json:"real_server_vips,omitempty"`
	// BGP is lvsd's own bgp block (nil without one).
	BGP *BGP `json:"bgp,omitempty"`
}

// RealServerVIP is one line of real_server_vips: "ADDR [dr|tun|ipip|gre]",
// a VIP this host serves as a DR real server (Kind "dr": on lo) or a TUN
// one (Kind "ipip", also written tun, or "gre": on the tunnel device).
type RealServerVIP struct {
	Addr netip.Addr `json:"addr"`
	Kind string     `json:"kind"`
	Pos  Pos        `json:"pos"`
}

// Script is a command line to execute without a shell.
type Script struct {
	Args  []string `json:"args"`
	User  string   `json:"user,omitempty"`
	Group string   `json:"group,omitempty"`
	Pos   Pos      `json:"pos"`
}

// Global is global_defs.
type Global struct {
	RouterID              string        `json:"router_id"`
	NotificationEmail     []string      `json:"notification_email,omitempty"`
	NotificationEmailFrom string        `json:"notification_email_from"`
	SMTPServer            string        `json:"smtp_server,omitempty"`
	SMTPPort              int           `json:"smtp_port"`
	SMTPHeloName          string        `json:"smtp_helo_name"`
	SMTPConnectTimeout    time.Duration `json:"smtp_connect_timeout"`
	SMTPAlert             *bool         `json:"smtp_alert,omitempty"`
	SMTPAlertVRRP         *bool         `json:"smtp_alert_vrrp,omitempty"`
	SMTPAlertChecker      *bool         `json:"smtp_alert_checker,omitempty"`
	// NoCheckerEmails: a checker's e-mail only when its real server's
	// state changes (not when one of several checkers changes alone).
	NoCheckerEmails      bool   `json:"no_checker_emails,omitempty"`
	ScriptUser           string `json:"script_user,omitempty"`
	ScriptGroup          string `json:"script_group,omitempty"`
	EnableScriptSecurity bool   `json:"enable_script_security"`
	// FIFOWriteVRRPStatesOnReload: after a reload, the sync groups' and the
	// instances' states are written to the VRRP notify FIFOs.
	FIFOWriteVRRPStatesOnReload bool `json:"fifo_write_vrrp_states_on_reload,omitempty"`

	VRRPVersion                 int           `json:"vrrp_version"`
	VRRPMcastGroup4             netip.Addr    `json:"vrrp_mcast_group4"`
	VRRPGarpMasterDelay         time.Duration `json:"vrrp_garp_master_delay"`
	VRRPGarpMasterRepeat        int           `json:"vrrp_garp_master_repeat"`
	VRRPGarpLowerPrioDelay      time.Duration `json:"vrrp_garp_lower_prio_delay"`
	VRRPGarpLowerPrioRepeat     int           `json:"vrrp_garp_lower_prio_repeat"`
	VRRPGarpMasterRefresh       time.Duration `json:"vrrp_garp_master_refresh"`
	VRRPGarpMasterRefreshRepeat int           `json:"vrrp_garp_master_refresh_repeat"`
	VRRPGarpInterval            time.Duration `json:"vrrp_garp_interval"`
	VRRPGnaInterval             time.Duration `json:"vrrp_gna_interval"`
	VRRPStrict                  bool          `json:"vrrp_strict"`
	VRRPSkipCheckAdvAddr        bool          `json:"vrrp_skip_check_adv_addr"`
	VRRPCheckUnicastSrc         bool          `json:"vrrp_check_unicast_src"`
	VRRPLowerPrioNoAdvert       bool          `json:"vrrp_lower_prio_no_advert"`
	VRRPHigherPrioSendAdvert    bool          `json:"vrrp_higher_prio_send_advert"`
	VRRPStartupDelay            time.Duration `json:"vrrp_startup_delay"`

	// The nftables table of no_accept instances (vrrp_strict): its name
	// (nftables NAME; default "keepalived"), its chains' priority
	// (nftables_priority; default -1, "filter - 1"), a counter on each
	// rule (nftables_counters), nftables_ifindex (interfaces by index:
	// what keepalived 2.2.7 does anyway).
	NFTablesTable    string `json:"nftables"`
	NFTablesPriority int    `json:"nftables_priority"`
	NFTablesCounters bool   `json:"nftables_counters,omitempty"`
	NFTablesIfindex  bool   `json:"nftables_ifindex,omitempty"`

	// The receive buffers of the netlink sockets, in bytes (keepalived's
	// default 64 KiB; 0 in the file leaves it), set with SO_RCVBUF, or
	// with SO_RCVBUFFORCE (beyond net.core.rmem_max) when Force: VRRP's
	// link and address watchers (monitor) and its command socket (cmd),
	// and the address watcher of ha_suspend (lvs_netlink_monitor_*).
	VRRPNetlinkMonitorRcvBufs      int  `json:"vrrp_netlink_monitor_rcv_bufs"`
	VRRPNetlinkMonitorRcvBufsForce bool `json:"vrrp_netlink_monitor_rcv_bufs_force,omitempty"`
	VRRPNetlinkCmdRcvBufs          int  `json:"vrrp_netlink_cmd_rcv_bufs"`
	VRRPNetlinkCmdRcvBufsForce     bool `json:"vrrp_netlink_cmd_rcv_bufs_force,omitempty"`
	LVSNetlinkMonitorRcvBufs       int  `json:"lvs_netlink_monitor_rcv_bufs"`
	LVSNetlinkMonitorRcvBufsForce  bool `json:"lvs_netlink_monitor_rcv_bufs_force,omitempty"`
	// The receive buffer of the process connector (vrrp_track_process);
	// 0: the kernel's default.
	ProcessMonitorRcvBufs      int  `json:"process_monitor_rcv_bufs,omitempty"`
	ProcessMonitorRcvBufsForce bool `json:"process_monitor_rcv_bufs_force,omitempty"`

	LVSSyncDaemon  *LVSSyncDaemon `json:"lvs_sync_daemon,omitempty"`
	LVSTimeouts    LVSTimeouts    `json:"lvs_timeouts"`
	LVSFlush       bool           `json:"lvs_flush"`
	LVSFlushOnStop string         `json:"lvs_flush_onstop,omitempty"` // "" (off), "all" or "vs"

	// MaxAutoPriority: -1 unset, 0 disables, N sets the realtime priority.
	MaxAutoPriority   int  `json:"max_auto_priority"`
	DynamicInterfaces bool `json:"dynamic_interfaces"`

	// The notify FIFOs: notify_fifo gets every line, vrrp_notify_fifo the
	// VRRP lines, lvs_notify_fifo the checkers' (VS and RS lines).
	NotifyFIFO     NotifyFIFO `json:"notify_fifo"`
	VRRPNotifyFIFO NotifyFIFO `json:"vrrp_notify_fifo"`
	LVSNotifyFIFO  NotifyFIFO `json:"lvs_notify_fifo"`
	// RSInitNotifies: a real server up at start-up has its notify_up run
	// and its FIFO line written, as one that comes up later.
	RSInitNotifies bool `json:"rs_init_notifies,omitempty"`
	// Umask is global_defs umask: the file mode creation mask lvsd (and
	// the scripts it runs) work with; -1 when not given.
	Umask int `json:"umask"`
	// NetNamespace is net_namespace: lvsd runs in /run/netns/NAME (it
	// joins it at start, before anything else; not changed by a reload).
	NetNamespace string `json:"net_namespace,omitempty"`
	// Instance is instance: the name keepalived puts in its pid files
	// (and, with DataUseInstance, in the SIGUSR1 dump's name).
	Instance string `json:"instance,omitempty"`
	// DataUseInstance is data_use_instance: the SIGUSR1 dump's name
	// carries the namespace and the instance (keepalived_NS_NAME.data).
	DataUseInstance bool `json:"data_use_instance,omitempty"`

	Pos Pos `json:"pos"`
}

// NotifyFIFO is a notify FIFO of global_defs ("notify_fifo PATH [USER
// [GROUP]]") and its reader ("notify_fifo_script SCRIPT [USER [GROUP]]"),
// run with the FIFO's path as last argument. Path "" is none.
type NotifyFIFO struct {
	Path   string  `json:"path,omitempty"`
	User   string  `json:"user,omitempty"`  // owner of a FIFO lvsd creates
	Group  string  `json:"group,omitempty"` // its group
	Script *Script `json:"script,omitempty"`
	Pos    Pos     `json:"pos"`
}

// LVSSyncDaemon is global_defs lvs_sync_daemon.
type LVSSyncDaemon struct {
	Interface string     `json:"interface"`
	Instance  string     `json:"instance"`
	SyncID    int        `json:"sync_id"` // -1: the VRID of the instance
	MaxLen    int        `json:"maxlen,omitempty"`
	Port      int        `json:"port"`
	TTL       int        `json:"ttl,omitempty"`
	Group     netip.Addr `json:"group,omitempty"`
	Pos       Pos        `json:"pos"`
}

// LVSTimeouts is global_defs lvs_timeouts; zero leaves the kernel's value.
type LVSTimeouts struct {
	TCP    time.Duration `json:"tcp,omitempty"`
	TCPFin time.Duration `json:"tcpfin,omitempty"`
	UDP    time.Duration `json:"udp,omitempty"`
	Pos    Pos           `json:"pos"`
}

// VRRPScript is a vrrp_script block.
type VRRPScript struct {
	Name     string        `json:"name"`
	Script   Script        `json:"script"`
	Interval time.Duration `json:"interval"`
	Timeout  time.Duration `json:"timeout"`
	Weight   int           `json:"weight"`
	Reverse  bool          `json:"weight_reverse,omitempty"`
	Rise     int           `json:"rise"`
	Fall     int           `json:"fall"`
	InitFail bool          `json:"init_fail,omitempty"`
	Pos      Pos           `json:"pos"`
}

// Notify holds the notify_* scripts of an instance or a sync group.
type Notify struct {
	Master *Script `json:"notify_master,omitempty"`
	Backup *Script `json:"notify_backup,omitempty"`
	Fault  *Script `json:"notify_fault,omitempty"`
	Stop   *Script `json:"notify_stop,omitempty"`
	Any    *Script `json:"notify,omitempty"`
}

// Scripts returns the configured scripts.
func (n *Notify) Scripts() []*Script {
	var out []*Script
	for _, s := range []*Script{n.Master, n.Backup, n.Fault, n.Stop, n.Any} {
		if s != nil {
			out = append(out, s)
		}
	}
	return out
}

// TrackInterface is one line of track_interface.
type TrackInterface struct {
	Name    string `json:"name"`
	Weight  int    `json:"weight"`
	Reverse bool   `json:"reverse,omitempty"`
	Pos     Pos    `json:"pos"`
}

// TrackScript is one line of track_script; Weight nil means the script's own.
type TrackScript struct {
	Name    string `json:"name"`
	Weight  *int   `json:"weight,omitempty"`
	Reverse bool   `json:"reverse,omitempty"`
	Pos     Pos    `json:"pos"`
}

// TrackFile is a track_file (or vrrp_track_file) block: a file holding a
// number that tracking instances turn into priority or FAULT.
type TrackFile struct {
	Name    string `json:"name"`
	Path    string `json:"file"`
	Weight  int    `json:"weight"` // default 1
	Reverse bool   `json:"reverse,omitempty"`
	// InitFile: write InitValue at start-up when the file does not exist
	// (or always, with InitOverwrite).
	InitFile      bool `json:"init_file,omitempty"`
	InitValue     int  `json:"init_value,omitempty"`
	InitOverwrite bool `json:"init_overwrite,omitempty"`
	Pos           Pos  `json:"pos"`
}

// TrackFileRef is one line of an instance's or a sync group's track_file
// block; Weight nil means the file's own.
type TrackFileRef struct {
	Name    string `json:"name"`
	Weight  *int   `json:"weight,omitempty"`
	Reverse bool   `json:"reverse,omitempty"`
	Pos     Pos    `json:"pos"`
}

// Param matches of a vrrp_track_process (param_match): how the configured
// parameters compare with a process's.
const (
	ParamMatchNone    = ""        // parameters not compared
	ParamMatchExact   = "exact"   // the same parameters, no more
	ParamMatchPartial = "partial" // the configured ones first, maybe more
	ParamMatchInitial = "initial" // as partial, the last may be cut short
)

// TrackProcess is a vrrp_track_process block: a process name whose number
// of running processes (against quorum..quorum_max) tracking instances
// turn into priority or FAULT.
type TrackProcess struct {
	Name string `json:"name"`
	// Process is matched against a process's comm (the 15-byte name of
	// /proc/PID/comm), or with FullCommand against argv[0] of its
	// command line.
	Process string `json:"process"`
	// Params are the words after the name on the process line.
	Params      []string `json:"params,omitempty"`
	ParamMatch  string   `json:"param_match,omitempty"`
	FullCommand bool     `json:"full_command,omitempty"`
	Weight      int      `json:"weight"`
	Reverse     bool     `json:"reverse,omitempty"`
	Quorum      int      `json:"quorum"`     // default 1
	QuorumMax   uint32   `json:"quorum_max"` // default 4294967295
	// ForkDelay delays a gained quorum when it comes from a fork;
	// TerminateDelay a lost one when it comes from an exit.
	ForkDelay      time.Duration `json:"fork_delay,omitempty"`
	TerminateDelay time.Duration `json:"terminate_delay,omitempty"`
	Pos            Pos           `json:"pos"`
}

// TrackProcessRef is one line of an instance's or a sync group's
// track_process block; Weight nil means the process's own. Without
// reverse or noreverse after its weight, the process's reverse stays.
type TrackProcessRef struct {
	Name      string `json:"name"`
	Weight    *int   `json:"weight,omitempty"`
	Reverse   bool   `json:"reverse,omitempty"`
	NoReverse bool   `json:"noreverse,omitempty"`
	Pos       Pos    `json:"pos"`
}

// SyncGroup is a vrrp_sync_group.
type SyncGroup struct {
	Name      string   `json:"name"`
	Group     []string `json:"group"`
	Notify    Notify   `json:"notify"`
	SMTPAlert *bool    `json:"smtp_alert,omitempty"`
	// NotifyPriorityChanges: its instances' effective priority changes go
	// to the notify FIFOs (as the instances' own keyword).
	NotifyPriorityChanges bool              `json:"notify_priority_changes,omitempty"`
	TrackInterface        []TrackInterface  `json:"track_interface,omitempty"`
	TrackScript           []TrackScript     `json:"track_script,omitempty"`
	TrackFile             []TrackFileRef    `json:"track_file,omitempty"`
	TrackProcess          []TrackProcessRef `json:"track_process,omitempty"`
	GlobalTracking        bool              `json:"global_tracking,omitempty"`
	Pos                   Pos               `json:"pos"`
}

// Auth is an instance's authentication block.
type Auth struct {
	Type string `json:"auth_type,omitempty"` // "", "PASS" or "AH"
	Pass string `json:"auth_pass,omitempty"`
	Pos  Pos    `json:"pos"`
}

// VIP is one address of virtual_ipaddress, virtual_ipaddress_excluded or static_ipaddress.
type VIP struct {
	Prefix netip.Prefix `json:"prefix"`
	Brd    netip.Addr   `json:"brd,omitempty"`
	Dev    string       `json:"dev,omitempty"`
	Scope  string       `json:"scope,omitempty"`
	Label  string       `json:"label,omitempty"`
	Peer   netip.Addr   `json:"peer,omitempty"`
	// NoDAD is keepalived's "-nodad": keep duplicate address detection
	// for an IPv6 address (by default keepalived adds them with nodad).
	NoDAD   bool `json:"nodad,omitempty"`
	NoTrack bool `json:"no_track,omitempty"`
	// PreferredLft is preferred_lft in seconds (0xffffffff: forever); nil
	// when not given.
	PreferredLft *uint32 `json:"preferred_lft,omitempty"`
	Pos          Pos     `json:"pos"`
}

// Route is one line of virtual_routes, static_routes, virtual_rules or
// static_rules, as words and parsed: Parsed for a route, Rule for a rule
// (a line in error is left out).
type Route struct {
	Words  []string `json:"words"`
	Parsed *VRoute  `json:"route,omitempty"`
	Rule   *VRule   `json:"rule,omitempty"`
	Pos    Pos      `json:"pos"`
}

// UnicastPeer is one line of unicast_peer.
type UnicastPeer struct {
	Addr   netip.Addr `json:"addr"`
	MinTTL int        `json:"min_ttl,omitempty"`
	MaxTTL int        `json:"max_ttl,omitempty"`
	Pos    Pos        `json:"pos"`
}

// GARP holds the gratuitous ARP timings of an instance (defaults from global_defs).
type GARP struct {
	MasterDelay         time.Duration `json:"garp_master_delay"`
	MasterRepeat        int           `json:"garp_master_repeat"`
	LowerPrioDelay      time.Duration `json:"garp_lower_prio_delay"`
	LowerPrioRepeat     int           `json:"garp_lower_prio_repeat"`
	MasterRefresh       time.Duration `json:"garp_master_refresh"`
	MasterRefreshRepeat int           `json:"garp_master_refresh_repeat"`
	Interval            time.Duration `json:"garp_interval"`
	GNAInterval         time.Duration `json:"gna_interval"`
}

// VRRPInstance is a vrrp_instance.
type VRRPInstance struct {
	Name string `json:"name"`
	// State is the configured initial state: "MASTER" or "BACKUP" ("" when not given).
	State          string            `json:"state,omitempty"`
	Interface      string            `json:"interface"`
	VRID           int               `json:"virtual_router_id"`
	Priority       int               `json:"priority"`
	AdvertInt      time.Duration     `json:"advert_int"`
	Version        int               `json:"version"`
	Auth           Auth              `json:"authentication"`
	VIPs           []VIP             `json:"virtual_ipaddress,omitempty"`
	ExcludedVIPs   []VIP             `json:"virtual_ipaddress_excluded,omitempty"`
	Routes         []Route           `json:"virtual_routes,omitempty"`
	Rules          []Route           `json:"virtual_rules,omitempty"`
	TrackInterface []TrackInterface  `json:"track_interface,omitempty"`
	TrackScript    []TrackScript     `json:"track_script,omitempty"`
	TrackFile      []TrackFileRef    `json:"track_file,omitempty"`
	TrackProcess   []TrackProcessRef `json:"track_process,omitempty"`
	NoPreempt      bool              `json:"nopreempt"`
	PreemptDelay   time.Duration     `json:"preempt_delay"`
	GARP           GARP              `json:"garp"`
	McastSrcIP     netip.Addr        `json:"mcast_src_ip,omitempty"`
	McastDstIP     netip.Addr        `json:"mcast_dst_ip,omitempty"`
	UnicastSrcIP   netip.Addr        `json:"unicast_src_ip,omitempty"`
	UnicastPeers   []UnicastPeer     `json:"unicast_peer,omitempty"`
	UnicastTTL     int               `json:"unicast_ttl,omitempty"`
	Notify         Notify            `json:"notify"`
	SMTPAlert      *bool             `json:"smtp_alert,omitempty"`
	// NotifyPriorityChanges: effective priority changes go to the notify
	// FIFOs ("INSTANCE "NAME" MASTER_PRIORITY|BACKUP_PRIORITY PRIO").
	NotifyPriorityChanges bool `json:"notify_priority_changes,omitempty"`
	// NotifyMasterRxLowerPri runs when this instance, MASTER, hears a
	// lower priority advert.
	NotifyMasterRxLowerPri *Script `json:"notify_master_rx_lower_pri,omitempty"`
	UseVMAC                bool    `json:"use_vmac,omitempty"`
	VMACName               string  `json:"vmac_name,omitempty"`
	VMACXmitBase           bool    `json:"vmac_xmit_base,omitempty"`
	Accept                 bool    `json:"accept"`
	DontTrackPrimary       bool    `json:"dont_track_primary,omitempty"`
	Strict                 bool    `json:"strict_mode,omitempty"`
	SkipCheckAdvAddr       bool    `json:"skip_check_adv_addr,omitempty"`
	LowerPrioNoAdvert      bool    `json:"lower_prio_no_advert,omitempty"`
	HigherPrioSendAdvert   bool    `json:"higher_prio_send_advert,omitempty"`
	PromoteSecondaries     bool    `json:"promote_secondaries,omitempty"`
	// UseIPVLAN (use_ipvlan [NAME] [ADDRESS] [bridge|private|vepa]): an
	// ipvlan interface instead of a macvlan, named in VMACName.
	UseIPVLAN       bool         `json:"use_ipvlan,omitempty"`
	IPVLANAddr      netip.Prefix `json:"ipvlan_address,omitempty"`
	IPVLANMode      string       `json:"ipvlan_mode,omitempty"`
	CheckUnicastSrc bool         `json:"check_unicast_src,omitempty"`
	// UnicastFaultNoPeer (unicast_fault_no_peer): with a unicast_peer
	// block but no peer, FAULT instead of multicast; UnicastBlock: the
	// instance has a unicast_peer block.
	UnicastFaultNoPeer bool   `json:"unicast_fault_no_peer,omitempty"`
	UnicastBlock       bool   `json:"unicast_block,omitempty"`
	vmacName           string // the VMAC's name, set by nameVMACs
	// SyncGroup is filled from the vrrp_sync_group that names this instance.
	SyncGroup string `json:"sync_group,omitempty"`
	Pos       Pos    `json:"pos"`

	advertPos    Pos // where advert_int was given, for version checks
	noPreemptPos Pos // where nopreempt was given
	// given: the keywords strict mode checks, where the instance gave
	// them (see strictKeywords).
	given  map[string]*Node
	family int // 4 or 6 once a keyword set it (see IPv6); 0 before
}

// IPv6 reports whether the instance is an IPv6 one. As in keepalived, the
// family is that of the first address in the block among mcast_src_ip,
// unicast_src_ip, mcast_dst_ip, unicast_peer and virtual_ipaddress (IPv4
// when none). virtual_ipaddress_excluded may hold either family.
func (in *VRRPInstance) IPv6() bool {
	if in.family != 0 {
		return in.family == 6
	}
	return len(in.VIPs) > 0 && in.VIPs[0].Prefix.Addr().Is6()
}

// sameFamily sets the instance family from a if none is set yet, and
// reports whether a is of the instance family.
func (in *VRRPInstance) sameFamily(a netip.Addr) bool {
	f := 4
	if a.Is6() {
		f = 6
	}
	if in.family == 0 {
		in.family = f
	}
	return in.family == f
}

// VSGroupAddr is an address (or range) line of a virtual_server_group.
type VSGroupAddr struct {
	First netip.Addr `json:"first"`
	Last  netip.Addr `json:"last"` // == First when not a range
	Port  int        `json:"port"`
	Pos   Pos        `json:"pos"`
}

// VSGroupFwmark is an fwmark line of a virtual_server_group.
type VSGroupFwmark struct {
	Mark   uint32 `json:"fwmark"`
	Family string `json:"family,omitempty"`
	Pos    Pos    `json:"pos"`
}

// VirtualServerGroup is a virtual_server_group.
type VirtualServerGroup struct {
	Name    string          `json:"name"`
	Addrs   []VSGroupAddr   `json:"addrs,omitempty"`
	Fwmarks []VSGroupFwmark `json:"fwmarks,omitempty"`
	Pos     Pos             `json:"pos"`
	// Source identifies the block as written (see VirtualServer.Source).
	Source uint64 `json:"-"`
}

// Forwarding is an LVS forwarding method (lb_kind / lvs_method).
type Forwarding struct {
	Method     string `json:"method"`                // NAT, DR or TUN
	TunnelType string `json:"tunnel_type,omitempty"` // ipip, gue, gre (TUN only)
	TunnelPort int    `json:"tunnel_port,omitempty"` // gue
	TunnelCsum string `json:"tunnel_csum,omitempty"` // nocsum, csum, remcsum
}

// VSKind tells how a virtual server is addressed.
type VSKind string

const (
	VSByAddr   VSKind = "addr"
	VSByFwmark VSKind = "fwmark"
	VSByGroup  VSKind = "group"
)

// CheckTimers are the checker timings that inherit virtual server → real server → checker.
type CheckTimers struct {
	DelayLoop        time.Duration `json:"delay_loop"`
	ConnectTimeout   time.Duration `json:"connect_timeout"`
	Retry            int           `json:"retry"`              // -1: the checker type's default
	DelayBeforeRetry time.Duration `json:"delay_before_retry"` // -1: the checker type's default
	Warmup           time.Duration `json:"warmup"`             // -1: delay_loop
}

// VirtualServer is a virtual_server block.
type VirtualServer struct {
	Kind   VSKind     `json:"kind"`
	Addr   netip.Addr `json:"addr,omitempty"`
	Port   int        `json:"port,omitempty"`
	Fwmark uint32     `json:"fwmark,omitempty"`
	Group  string     `json:"group,omitempty"`

	Protocol               string        `json:"protocol"` // TCP, UDP, SCTP
	Scheduler              string        `json:"lvs_sched"`
	SchedFlags             []string      `json:"sched_flags,omitempty"` // flag-1.., sh-port, sh-fallback, mh-port, mh-fallback
	OPS                    bool          `json:"ops,omitempty"`
	Forwarding             Forwarding    `json:"lvs_method"`
	Persistent             bool          `json:"persistent"`
	PersistenceTimeout     time.Duration `json:"persistence_timeout,omitempty"`
	PersistenceGranularity netip.Addr    `json:"persistence_granularity,omitempty"`
	PersistenceEngine      string        `json:"persistence_engine,omitempty"`
	VirtualHost            string        `json:"virtualhost,omitempty"`
	IPFamily               string        `json:"ip_family,omitempty"`
	HASuspend              bool          `json:"ha_suspend,omitempty"`
	SMTPAlert              *bool         `json:"smtp_alert,omitempty"`
	Alpha                  bool          `json:"alpha,omitempty"`
	Omega                  bool          `json:"omega,omitempty"`
	Quorum                 int           `json:"quorum"`
	Hysteresis             int           `json:"hysteresis"`
	QuorumUp               *Script       `json:"quorum_up,omitempty"`
	QuorumDown             *Script       `json:"quorum_down,omitempty"`
	InhibitOnFailure       bool          `json:"inhibit_on_failure,omitempty"`
	SorryServer            *RealServer   `json:"sorry_server,omitempty"`
	SorryServerInhibit     bool          `json:"sorry_server_inhibit,omitempty"`
	Timers                 CheckTimers   `json:"timers"`
	RealServers            []*RealServer `json:"real_servers,omitempty"`
	Pos                    Pos           `json:"pos"`
	// Source identifies the virtual_server block as written: its keywords
	// and arguments after includes, definitions and conditionals, not their
	// positions. Two virtual servers with the same Source (and, for a
	// group, groups of the same Source) are configured alike, so a reload
	// can carry over what was derived from the old one. Comparable within
	// one process only.
	Source uint64 `json:"-"`

	granularityPos Pos // where persistence_granularity was given
}

// String names the virtual server as keepalived does in its logs.
func (vs *VirtualServer) String() string {
	switch vs.Kind {
	case VSByFwmark:
		return fmt.Sprintf("FWM %d", vs.Fwmark)
	case VSByGroup:
		return "group " + vs.Group
	}
	return netip.AddrPortFrom(vs.Addr, uint16(vs.Port)).String()
}

// RealServer is a real_server (or sorry_server) of a virtual server.
type RealServer struct {
	Addr             netip.Addr  `json:"addr"`
	Port             int         `json:"port"`
	Weight           int         `json:"weight"`
	Forwarding       Forwarding  `json:"lvs_method"`
	InhibitOnFailure bool        `json:"inhibit_on_failure,omitempty"`
	NotifyUp         *Script     `json:"notify_up,omitempty"`
	NotifyDown       *Script     `json:"notify_down,omitempty"`
	UThreshold       int         `json:"uthreshold,omitempty"`
	LThreshold       int         `json:"lthreshold,omitempty"`
	Alpha            bool        `json:"alpha,omitempty"`
	SMTPAlert        *bool       `json:"smtp_alert,omitempty"`
	VirtualHost      string      `json:"virtualhost,omitempty"`
	Timers           CheckTimers `json:"timers"`
	Checkers         []*Checker  `json:"checkers,omitempty"`
	Pos              Pos         `json:"pos"`
}

// Checker types.
const (
	CheckTCP    = "TCP_CHECK"
	CheckHTTP   = "HTTP_GET"
	CheckSSL    = "SSL_GET"
	CheckMisc   = "MISC_CHECK"
	CheckSMTP   = "SMTP_CHECK"
	CheckDNS    = "DNS_CHECK"
	CheckUDP    = "UDP_CHECK"
	CheckPing   = "PING_CHECK"
	CheckFile   = "FILE_CHECK"
	CheckBFD    = "BFD_CHECK"
	CheckExpect = "EXPECT_CHECK" // lvsd's own send/expect check (see docs)
)

// URL is one url block of HTTP_GET / SSL_GET.
type URL struct {
	Path         string      `json:"path"`
	Digest       string      `json:"digest,omitempty"`
	StatusCodes  []CodeRange `json:"status_code,omitempty"` // empty: 200-299
	VirtualHost  string      `json:"virtualhost,omitempty"`
	Regex        string      `json:"regex,omitempty"`
	RegexNoMatch bool        `json:"regex_no_match,omitempty"`
	Pos          Pos         `json:"pos"`
}

// CodeRange is an inclusive HTTP status code range.
type CodeRange struct{ Lo, Hi int }

// Checker is a health checker block of a real server.
type Checker struct {
	Type           string      `json:"type"`
	ConnectIP      netip.Addr  `json:"connect_ip,omitempty"`
	ConnectPort    int         `json:"connect_port"` // resolved: the real server's port if not set
	BindTo         netip.Addr  `json:"bindto,omitempty"`
	BindPort       int         `json:"bind_port,omitempty"`
	BindIf         string      `json:"bind_if,omitempty"`
	Fwmark         uint32      `json:"fwmark,omitempty"`
	Alpha          *bool       `json:"alpha,omitempty"`
	Timers         CheckTimers `json:"timers"` // resolved with inheritance and type defaults
	LogAllFailures bool        `json:"log_all_failures,omitempty"`

	// VirtualHost is the real server's (HTTP_GET / SSL_GET send it).
	VirtualHost string `json:"virtualhost,omitempty"`

	// CheckerOptions are the fields of the types that have keywords of
	// their own; nil for TCP_CHECK and PING_CHECK, which have none (a
	// TCP_CHECK is then about 200 bytes instead of 480: most of a large
	// director's checkers).
	*CheckerOptions

	Pos Pos `json:"pos"`
}

// CheckerOptions are a checker's type-specific settings (see Checker).
type CheckerOptions struct {
	// HTTP_GET / SSL_GET
	URLs         []URL  `json:"urls,omitempty"`
	HTTPProtocol string `json:"http_protocol,omitempty"`
	EnableSNI    bool   `json:"enable_sni,omitempty"`
	FastRecovery bool   `json:"fast_recovery,omitempty"`

	// MISC_CHECK
	MiscPath    *Script       `json:"misc_path,omitempty"`
	MiscTimeout time.Duration `json:"misc_timeout,omitempty"`
	MiscDynamic bool          `json:"misc_dynamic,omitempty"`

	// SMTP_CHECK
	HeloName string `json:"helo_name,omitempty"`
	// DNS_CHECK
	DNSType string `json:"dns_type,omitempty"`
	DNSName string `json:"dns_name,omitempty"`
	// UDP_CHECK
	Payload        []byte `json:"payload,omitempty"`
	RequireReply   bool   `json:"require_reply,omitempty"`
	ReplyPattern   string `json:"reply_pattern,omitempty"`
	MinReplyLength int    `json:"min_reply_length,omitempty"`
	MaxReplyLength int    `json:"max_reply_length,omitempty"`
	// EXPECT_CHECK (lvsd): send Send, expect Expect (substring) or ExpectRegex in the reply.
	Send        string `json:"send,omitempty"`
	Expect      string `json:"expect,omitempty"`
	ExpectRegex string `json:"expect_regex,omitempty"`

	// FILE_CHECK: the track_file it names (TrackFileName), resolved in
	// validation: the file's path, and the weight and reverse of the
	// FILE_CHECK's weight, else of the track_file. Weight 0: a non-zero
	// value (zero, reversed) takes the real server down; else the value
	// times the weight is added to the real server's weight.
	TrackFileName string `json:"track_file,omitempty"`
	FilePath      string `json:"file,omitempty"`
	FileWeight    int    `json:"file_weight,omitempty"`
	FileReverse   bool   `json:"file_reverse,omitempty"`
	fileWeightSet bool
}

// Key identifies a virtual server stably across reloads and packages:
// "TCP/192.0.2.1:80", "FWM/1" or "GROUP/name/TCP".
func (vs *VirtualServer) Key() string {
	switch vs.Kind {
	case VSByFwmark:
		return fmt.Sprintf("FWM/%d", vs.Fwmark)
	case VSByGroup:
		return "GROUP/" + vs.Group + "/" + vs.Protocol
	}
	return vs.Protocol + "/" + netip.AddrPortFrom(vs.Addr, uint16(vs.Port)).String()
}

// AddrPort is the real server's address and port.
func (rs *RealServer) AddrPort() netip.AddrPort {
	return netip.AddrPortFrom(rs.Addr, uint16(rs.Port))
}
