// Package metrics exports lvsd's state to Prometheus.
//
// A Collector reads the subsystems' snapshots at scrape time (through
// status.Build) and never drives a subsystem. VRRP metrics carry the names
// and labels of github.com/mehdy/keepalived-exporter (keepalived_*), so its
// dashboards and alerts keep working; the IPVS backend gauges that
// node_exporter also exports keep node_exporter's names and labels
// (node_ipvs_backend_*); everything else is lvsd_*. The only state the
// Collector keeps is what no snapshot holds: the health-check duration
// histogram, fed by Observe (healthcheck.Options.Observe).
package metrics

import (
	"fmt"
	"maps"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/lvsd/lvsd/healthcheck"
	"github.com/lvsd/lvsd/status"
	"github.com/lvsd/lvsd/vrrp/advert"
)

// CheckDurationBuckets are the buckets of lvsd_healthcheck_duration_seconds:
// from a loopback connect to the longest connect_timeout in common use.
var CheckDurationBuckets = []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30}

// Collector is a prometheus.Collector over status.Sources.
type Collector struct {
	src    status.Sources
	checks *Checks

	descs []*prometheus.Desc
	d     descs
	fams  map[*prometheus.Desc]*family // for the text writer (text.go)
	bgp   bgpDescs
}

// Checks accumulates what no snapshot holds: the duration and result of
// every health-check attempt. Its Observe is healthcheck.Options.Observe.
type Checks struct {
	duration *prometheus.HistogramVec
	results  *prometheus.CounterVec
	series   sync.Map // seriesKey → *checkSeries
}

// checkSeries are the series of one checker type and result, looked up
// once: Observe runs for every attempt.
type checkSeries struct {
	duration prometheus.Observer
	results  prometheus.Counter
}

type seriesKey struct {
	typ string
	ok  bool
}

// NewChecks returns an empty Checks.
func NewChecks() *Checks {
	return &Checks{
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "lvsd_healthcheck_duration_seconds",
			Help:    "Duration of health-check attempts, by checker type.",
			Buckets: CheckDurationBuckets,
		}, []string{"type"}),
		results: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "lvsd_healthcheck_checks_total",
			Help: "Health-check attempts, by checker type and result (success or failure).",
		}, []string{"type", "result"}),
	}
}

// Observe records one health-check attempt; it is safe for concurrent use.
func (c *Checks) Observe(o healthcheck.Observation) {
	k := seriesKey{o.Type, o.OK}
	v, ok := c.series.Load(k)
	if !ok {
		result := "success"
		if !o.OK {
			result = "failure"
		}
		v, _ = c.series.LoadOrStore(k, &checkSeries{
			duration: c.duration.WithLabelValues(o.Type),
			results:  c.results.WithLabelValues(o.Type, result),
		})
	}
	s := v.(*checkSeries)
	s.duration.Observe(o.Duration.Seconds())
	s.results.Inc()
}

var (
	// keepalived-exporter's label sets.
	vrrpLabels  = []string{"iname", "intf", "vrid", "state"}
	stateLabels = []string{"iname", "intf", "vrid", "ip_address"}
	// node_exporter's IPVS label sets.
	serviceLabels = []string{"local_address", "local_port", "proto", "local_mark"}
	backendLabels = []string{"local_address", "local_port", "remote_address", "remote_port", "proto", "local_mark"}
	rsLabels      = []string{"virtual_server", "real_server"}
)

func (c *Collector) desc(name, help string, labels ...string) *prometheus.Desc {
	d := prometheus.NewDesc(name, help, labels, nil)
	c.descs = append(c.descs, d)
	c.family(d, name, help, labels)
	return d
}

// The descriptions, created by New.
type descs struct {
	up, buildInfo, startTime                                  *prometheus.Desc
	reloads, lastReload, lastReloadSuccess, lastReloadOK      *prometheus.Desc
	vrrpState, scriptStatus                                   *prometheus.Desc
	advRcvd, advSent, becomeMaster, releaseMaster             *prometheus.Desc
	lenErr, intervalErr, ttlErr, typeErr, addrListErr         *prometheus.Desc
	authInvalid, authMismatch, authFailure, priZeroRcvd       *prometheus.Desc
	priZeroSent, garpDelay                                    *prometheus.Desc
	drops, priority, sendErrors, addrErrors, garpSent         *prometheus.Desc
	vipRestored, ownPackets, scriptRuns                       *prometheus.Desc
	netlinkResyncs, vrrpRepairs                               *prometheus.Desc
	ipvsUp, reconciles, operations, ipvsErrors, driftRepairs  *prometheus.Desc
	healthEvents, quorumChanges, quorumUp, sorryActive        *prometheus.Desc
	svcInfo, svcConns, svcPktsIn, svcPktsOut, svcBytesIn      *prometheus.Desc
	svcBytesOut, svcInSync                                    *prometheus.Desc
	beActive, beInactive, beWeight, beDesiredWeight, beInSync *prometheus.Desc
	beConns, bePktsIn, bePktsOut, beBytesIn, beBytesOut       *prometheus.Desc
	rsUp, rsTransitions, rsWeight, rsDrained                  *prometheus.Desc
	httpRefused, notifyScripts, notifyMails, unrouted         *prometheus.Desc
}

// New returns a Collector reading src and exporting checks (nil: a Checks
// of its own, which nothing observes).
func New(src status.Sources, checks *Checks) *Collector {
	if checks == nil {
		checks = NewChecks()
	}
	c := &Collector{src: src, checks: checks}
	c.init()
	c.initBGP()
	return c
}

func (c *Collector) init() {
	c.d = descs{
		up:                c.desc("keepalived_up", "Whether lvsd (in keepalived's place) is running: always 1 while it answers."),
		buildInfo:         c.desc("lvsd_build_info", "lvsd's version and the Go version it was built with.", "version", "goversion"),
		startTime:         c.desc("lvsd_start_time_seconds", "Start time of lvsd since the Unix epoch."),
		reloads:           c.desc("lvsd_config_reloads_total", "Configuration reloads (SIGHUP) by result: success (applied) or failure (rejected, the running configuration kept).", "result"),
		lastReload:        c.desc("lvsd_config_last_reload_timestamp_seconds", "Time of the latest reload attempt (0 when none)."),
		lastReloadSuccess: c.desc("lvsd_config_last_reload_success_timestamp_seconds", "Time the configuration in force was loaded (start or reload)."),
		lastReloadOK:      c.desc("lvsd_config_last_reload_successful", "Whether the latest reload attempt succeeded (1 before any)."),

		vrrpState:     c.desc("keepalived_vrrp_state", "State of a VRRP instance, one series per virtual address: 0 INIT, 1 BACKUP, 2 MASTER, 3 FAULT, 98 STOP.", stateLabels...),
		scriptStatus:  c.desc("keepalived_script_status", "Status of a vrrp_script: 1 GOOD, 0 BAD.", "name"),
		advRcvd:       c.desc("keepalived_advertisements_received_total", "Advertisements received and accepted.", vrrpLabels...),
		advSent:       c.desc("keepalived_advertisements_sent_total", "Advertisements sent.", vrrpLabels...),
		becomeMaster:  c.desc("keepalived_become_master_total", "Transitions to MASTER.", vrrpLabels...),
		releaseMaster: c.desc("keepalived_release_master_total", "Transitions from MASTER.", vrrpLabels...),
		lenErr:        c.desc("keepalived_packet_length_errors_total", "Packets dropped for their length (too short, or not matching the address count).", vrrpLabels...),
		intervalErr:   c.desc("keepalived_advertisements_interval_errors_total", "VRRPv2 adverts dropped for an advertisement interval other than ours.", vrrpLabels...),
		ttlErr:        c.desc("keepalived_ip_ttl_errors_total", "Packets dropped for an IP TTL other than 255.", vrrpLabels...),
		typeErr:       c.desc("keepalived_invalid_type_received_total", "Packets dropped for a VRRP type other than advertisement.", vrrpLabels...),
		addrListErr:   c.desc("keepalived_address_list_errors_total", "Adverts accepted although their address list differs from ours.", vrrpLabels...),
		authInvalid:   c.desc("keepalived_authentication_invalid_total", "Packets with an unknown authentication type (lvsd counts them as mismatches: always 0).", vrrpLabels...),
		authMismatch:  c.desc("keepalived_authentication_mismatch_total", "Packets dropped for an authentication type other than ours.", vrrpLabels...),
		authFailure:   c.desc("keepalived_authentication_failure_total", "Packets dropped for a wrong password.", vrrpLabels...),
		priZeroRcvd:   c.desc("keepalived_priority_zero_received_total", "Priority 0 adverts received (a master stepping down).", vrrpLabels...),
		priZeroSent:   c.desc("keepalived_priority_zero_sent_total", "Priority 0 adverts sent.", vrrpLabels...),
		garpDelay:     c.desc("keepalived_gratuitous_arp_delay_total", "garp_master_delay of the instance, in seconds (as keepalived-exporter reports it).", vrrpLabels...),

		unrouted:    c.desc("lvsd_vrrp_unrouted_drops_total", "Received VRRP packets that no instance here claims, by reason (unknown_vrid, too_short, …), on every VRRP socket.", "reason"),
		drops:       c.desc("lvsd_vrrp_drops_total", "Received VRRP packets dropped, by reason (every reason lvsd's decoder and validation count).", "iname", "reason"),
		priority:    c.desc("lvsd_vrrp_priority", "Effective priority of the instance.", "iname"),
		sendErrors:  c.desc("lvsd_vrrp_send_errors_total", "Adverts that could not be sent.", "iname"),
		addrErrors:  c.desc("lvsd_vrrp_address_errors_total", "Virtual addresses that could not be added or removed.", "iname"),
		garpSent:    c.desc("lvsd_vrrp_gratuitous_arp_sent_total", "Gratuitous ARPs sent.", "iname"),
		vipRestored: c.desc("lvsd_vrrp_vip_restored_total", "Virtual addresses removed by someone else while MASTER and put back.", "iname"),
		ownPackets:  c.desc("lvsd_vrrp_own_packets_total", "Our own adverts seen and ignored.", "iname"),
		scriptRuns:  c.desc("lvsd_vrrp_script_runs_total", "Runs of a vrrp_script, by result (success or failure).", "name", "result"),

		netlinkResyncs: c.desc("lvsd_netlink_resyncs_total", "Netlink subscriptions repaired by listing the kernel again (notifications lost to a receive buffer overrun, or the socket reopened), by watch.", "watch"),
		vrrpRepairs:    c.desc("lvsd_vrrp_repairs_total", "What VRRP's safety net found different from what the instances need and repaired, by what: vip, route (missing on a MASTER), rule (a virtual rule missing on a MASTER, a static rule missing), link (an interface state the instance did not know), socket (rebound to a re-created interface), source (the advert source followed the primary address).", "what"),

		ipvsUp:        c.desc("lvsd_ipvs_up", "Whether the IPVS table is programmed and the kernel was read for this scrape."),
		reconciles:    c.desc("lvsd_ipvs_reconciles_total", "Reconcile passes (desired vs kernel)."),
		operations:    c.desc("lvsd_ipvs_operations_total", "Kernel IPVS mutations, by operation.", "op"),
		ipvsErrors:    c.desc("lvsd_ipvs_errors_total", "Failed kernel IPVS operations (mutations and reads)."),
		driftRepairs:  c.desc("lvsd_ipvs_drift_repairs_total", "Operations that restored an owned entry changed or removed behind lvsd's back."),
		healthEvents:  c.desc("lvsd_ipvs_health_events_total", "Health verdicts received by the reconciler."),
		quorumChanges: c.desc("lvsd_ipvs_quorum_changes_total", "Quorum transitions of virtual servers."),
		quorumUp:      c.desc("lvsd_virtual_server_quorum_up", "Whether the virtual server has its quorum.", "virtual_server"),
		sorryActive:   c.desc("lvsd_virtual_server_sorry_server_active", "Whether the sorry server replaces the real servers.", "virtual_server"),

		svcInfo:     c.desc("lvsd_ipvs_service_info", "IPVS services with the virtual server that asks for them (\"\" when none) and their scheduler.", append(append([]string{}, serviceLabels...), "virtual_server", "scheduler", "owned")...),
		svcConns:    c.desc("lvsd_ipvs_service_connections_total", "Connections scheduled by the service.", serviceLabels...),
		svcPktsIn:   c.desc("lvsd_ipvs_service_incoming_packets_total", "Incoming packets of the service.", serviceLabels...),
		svcPktsOut:  c.desc("lvsd_ipvs_service_outgoing_packets_total", "Outgoing packets of the service.", serviceLabels...),
		svcBytesIn:  c.desc("lvsd_ipvs_service_incoming_bytes_total", "Incoming bytes of the service.", serviceLabels...),
		svcBytesOut: c.desc("lvsd_ipvs_service_outgoing_bytes_total", "Outgoing bytes of the service.", serviceLabels...),
		svcInSync:   c.desc("lvsd_ipvs_service_in_sync", "Whether the kernel has the service as lvsd wants it, destinations included.", serviceLabels...),

		beActive:        c.desc("node_ipvs_backend_connections_active", "The current active connections by local and remote address.", backendLabels...),
		beInactive:      c.desc("node_ipvs_backend_connections_inactive", "The current inactive connections by local and remote address.", backendLabels...),
		beWeight:        c.desc("node_ipvs_backend_weight", "The current backend weight by local and remote address.", backendLabels...),
		beDesiredWeight: c.desc("lvsd_ipvs_backend_desired_weight", "The weight lvsd wants the backend to have.", backendLabels...),
		beInSync:        c.desc("lvsd_ipvs_backend_in_sync", "Whether the kernel has the backend as lvsd wants it.", backendLabels...),
		beConns:         c.desc("lvsd_ipvs_backend_connections_total", "Connections scheduled to the backend.", backendLabels...),
		bePktsIn:        c.desc("lvsd_ipvs_backend_incoming_packets_total", "Incoming packets of the backend.", backendLabels...),
		bePktsOut:       c.desc("lvsd_ipvs_backend_outgoing_packets_total", "Outgoing packets of the backend.", backendLabels...),
		beBytesIn:       c.desc("lvsd_ipvs_backend_incoming_bytes_total", "Incoming bytes of the backend.", backendLabels...),
		beBytesOut:      c.desc("lvsd_ipvs_backend_outgoing_bytes_total", "Outgoing bytes of the backend.", backendLabels...),

		rsUp:          c.desc("lvsd_real_server_up", "Health of the real server: 1 up, 0 down.", rsLabels...),
		rsTransitions: c.desc("lvsd_real_server_transitions_total", "Health transitions of the real server.", rsLabels...),
		rsWeight:      c.desc("lvsd_real_server_weight", "Effective weight of the real server when healthy (misc_dynamic included).", rsLabels...),

		notifyScripts: c.desc("lvsd_notify_scripts_total", "Notify scripts, by notifier (vrrp, check) and result: run (whatever their exit), dropped (their instance's queue was full).", "notifier", "result"),
		notifyMails:   c.desc("lvsd_notify_mails_total", "smtp_alert mails, by notifier (vrrp, check) and result: sent, failed (refused or not deliverable), dropped (the mail queue was full).", "notifier", "result"),
		httpRefused:   c.desc("lvsd_http_refused_total", "Connections to this endpoint closed at accept, by reason (managed_address: to a VIP or a virtual server's address).", "reason"),
		rsDrained:     c.desc("lvsd_real_server_drained", "Whether the operator drained the real server (lvsd ctl drain: weight 0 until enabled).", rsLabels...),
	}
}

// Describe implements prometheus.Collector.
func (c *Collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range c.descs {
		ch <- d
	}
	c.checks.duration.Describe(ch)
	c.checks.results.Describe(ch)
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

// Collect implements prometheus.Collector: it builds one status.Status and
// turns it into metrics.
func (c *Collector) Collect(ch chan<- prometheus.Metric) {
	c.collect(func(d *prometheus.Desc, t prometheus.ValueType, v float64, lv ...string) {
		ch <- prometheus.MustNewConstMetric(d, t, v, lv...)
	})
	c.checks.duration.Collect(ch)
	c.checks.results.Collect(ch)
}

// sink takes one sample of the Collector's own families: Collect makes
// const metrics of them, the Handler writes them as text (text.go).
type sink func(d *prometheus.Desc, t prometheus.ValueType, v float64, lv ...string)

// collect emits the samples of one status.Status.
func (c *Collector) collect(emit sink) {
	st := status.Build(c.src)
	d := &c.d
	gauge := func(d *prometheus.Desc, v float64, lv ...string) {
		emit(d, prometheus.GaugeValue, v, lv...)
	}
	counter := func(d *prometheus.Desc, v uint64, lv ...string) {
		emit(d, prometheus.CounterValue, float64(v), lv...)
	}

	gauge(d.up, 1)
	gauge(d.buildInfo, 1, st.Version, st.GoVersion)
	c.collectBGP(st.BGP, gauge, counter)
	if !st.Started.IsZero() {
		gauge(d.startTime, unix(st.Started))
	}
	r := st.Reloads
	counter(d.reloads, r.Success, "success")
	counter(d.reloads, r.Failure, "failure")
	gauge(d.lastReload, unix(r.Last))
	gauge(d.lastReloadSuccess, unix(r.LastSuccess))
	gauge(d.lastReloadOK, b2f(r.LastOK))
	for _, w := range slices.Sorted(maps.Keys(st.NetlinkResyncs)) {
		counter(d.netlinkResyncs, st.NetlinkResyncs[w], w)
	}
	for _, w := range slices.Sorted(maps.Keys(st.VRRPRepairs)) {
		counter(d.vrrpRepairs, st.VRRPRepairs[w], w)
	}
	if c.src.HTTPRefused != nil {
		counter(d.httpRefused, c.src.HTTPRefused(), "managed_address")
	}
	if c.src.VRRPUnrouted != nil {
		un := c.src.VRRPUnrouted()
		for _, r := range advert.DropReasons() {
			counter(d.unrouted, un[r.String()], r.String())
		}
	}
	if c.src.Notify != nil {
		for name, s := range c.src.Notify() {
			counter(d.notifyScripts, s.ScriptsRun, name, "run")
			counter(d.notifyScripts, s.ScriptsDropped, name, "dropped")
			counter(d.notifyMails, s.MailSent, name, "sent")
			counter(d.notifyMails, s.MailFailed, name, "failed")
			counter(d.notifyMails, s.MailDropped, name, "dropped")
		}
	}

	for _, in := range st.Instances {
		vrid := strconv.Itoa(in.VRID)
		lv := []string{in.Name, in.Interface, vrid, in.State}
		s := &in.Stats
		counter(d.advRcvd, s.AdvertRcvd, lv...)
		counter(d.advSent, s.AdvertSent, lv...)
		counter(d.becomeMaster, s.BecomeMaster, lv...)
		counter(d.releaseMaster, s.ReleaseMaster, lv...)
		counter(d.lenErr, status.PacketLengthErrors(s), lv...)
		counter(d.intervalErr, s.Drop(advert.DropInterval), lv...)
		counter(d.ttlErr, s.Drop(advert.DropTTL), lv...)
		counter(d.typeErr, s.Drop(advert.DropType), lv...)
		counter(d.addrListErr, s.AddrListErr, lv...)
		counter(d.authInvalid, 0, lv...)
		counter(d.authMismatch, s.Drop(advert.DropAuthType), lv...)
		counter(d.authFailure, s.Drop(advert.DropAuthFailure), lv...)
		counter(d.priZeroRcvd, s.PriZeroRcvd, lv...)
		counter(d.priZeroSent, s.PriZeroSent, lv...)
		counter(d.garpDelay, uint64(in.GARPDelay), lv...)
		if len(in.VIPs) == 0 {
			gauge(d.vrrpState, float64(in.StateCode), in.Name, in.Interface, vrid, "")
		}
		for _, v := range in.VIPs {
			gauge(d.vrrpState, float64(in.StateCode), in.Name, v.Dev, vrid, v.Addr)
		}
		for _, reason := range advert.DropReasons() {
			counter(d.drops, s.Drop(reason), in.Name, reason.String())
		}
		gauge(d.priority, float64(in.Priority), in.Name)
		counter(d.sendErrors, s.SendErrors, in.Name)
		counter(d.addrErrors, s.AddrErrors, in.Name)
		counter(d.garpSent, s.GARPSent, in.Name)
		counter(d.vipRestored, s.VIPRestored, in.Name)
		counter(d.ownPackets, s.OwnPackets, in.Name)
	}
	for _, sc := range st.Scripts {
		gauge(d.scriptStatus, b2f(sc.Good), sc.Name)
		counter(d.scriptRuns, sc.Runs-sc.Failures, sc.Name, "success")
		counter(d.scriptRuns, sc.Failures, sc.Name, "failure")
	}

	if st.IPVS.Running || st.IPVS.Error != "" {
		gauge(d.ipvsUp, b2f(st.IPVS.Running && st.IPVS.Fresh && st.IPVS.Error == ""))
	}
	if k := st.IPVS.Counters; k != nil {
		counter(d.reconciles, k.Reconciles)
		counter(d.operations, k.ServicesCreated, "service_create")
		counter(d.operations, k.ServicesUpdated, "service_update")
		counter(d.operations, k.ServicesRemoved, "service_remove")
		counter(d.operations, k.DestsCreated, "dest_create")
		counter(d.operations, k.DestsUpdated, "dest_update")
		counter(d.operations, k.DestsRemoved, "dest_remove")
		counter(d.ipvsErrors, k.Errors)
		counter(d.driftRepairs, k.DriftRepairs)
		counter(d.healthEvents, k.HealthEvents)
		counter(d.quorumChanges, k.QuorumChanges)
	}
	services := func(yield func(status.Service) bool) {
		for _, vs := range st.VirtualServers {
			for _, s := range vs.Services {
				if !yield(s) {
					return
				}
			}
		}
		for _, s := range st.OtherServices {
			if !yield(s) {
				return
			}
		}
	}
	for s := range services {
		sl := serviceLabelValues(s)
		gauge(d.svcInfo, 1, append(append([]string{}, sl...), s.VS, s.Scheduler, strconv.FormatBool(s.Owned))...)
		if s.InKernel {
			counter(d.svcConns, s.Stats.Connections, sl...)
			counter(d.svcPktsIn, s.Stats.PacketsIn, sl...)
			counter(d.svcPktsOut, s.Stats.PacketsOut, sl...)
			counter(d.svcBytesIn, s.Stats.BytesIn, sl...)
			counter(d.svcBytesOut, s.Stats.BytesOut, sl...)
		}
		if s.Desired {
			gauge(d.svcInSync, b2f(s.InSync), sl...)
		}
		for _, dst := range s.Dests {
			bl := []string{sl[0], sl[1], dst.Addr.String(), strconv.Itoa(int(dst.Port)), sl[2], sl[3]}
			if dst.KernelWeight != nil {
				gauge(d.beActive, float64(dst.ActiveConns), bl...)
				gauge(d.beInactive, float64(dst.InactiveConns), bl...)
				gauge(d.beWeight, float64(*dst.KernelWeight), bl...)
				counter(d.beConns, dst.Stats.Connections, bl...)
				counter(d.bePktsIn, dst.Stats.PacketsIn, bl...)
				counter(d.bePktsOut, dst.Stats.PacketsOut, bl...)
				counter(d.beBytesIn, dst.Stats.BytesIn, bl...)
				counter(d.beBytesOut, dst.Stats.BytesOut, bl...)
			}
			if dst.DesiredWeight != nil {
				gauge(d.beDesiredWeight, float64(*dst.DesiredWeight), bl...)
				gauge(d.beInSync, b2f(dst.InSync), bl...)
			}
		}
	}
	for _, vs := range st.VirtualServers {
		if vs.QuorumUp != nil {
			gauge(d.quorumUp, b2f(*vs.QuorumUp), vs.Key)
			gauge(d.sorryActive, b2f(vs.SorryActive), vs.Key)
		}
		for _, rs := range vs.RealServers {
			if !rs.HealthKnown && !st.IPVS.Running {
				continue // nobody decides its health
			}
			gauge(d.rsUp, b2f(rs.Up), vs.Key, rs.Addr)
			if rs.HealthKnown {
				counter(d.rsTransitions, uint64(rs.Transitions), vs.Key, rs.Addr)
			}
			if rs.EffectiveWeight >= 0 {
				gauge(d.rsWeight, float64(rs.EffectiveWeight), vs.Key, rs.Addr)
				gauge(d.rsDrained, b2f(rs.Drained), vs.Key, rs.Addr)
			}
		}
	}
}

// serviceLabelValues are node_exporter's labels of a service:
// local_address, local_port, proto, local_mark. As node_exporter reads
// them from /proc/net/ip_vs, a firewall-mark service has proto "FWM", an
// empty address, port 0 and its mark in eight hexadecimal digits; other
// services an empty mark.
func serviceLabelValues(s status.Service) []string {
	if s.Fwmark != 0 {
		return []string{"", "0", "FWM", fmt.Sprintf("%08X", s.Fwmark)}
	}
	return []string{s.Addr.String(), strconv.Itoa(int(s.Port)), s.Proto, ""}
}

func unix(t time.Time) float64 {
	if t.IsZero() {
		return 0
	}
	return float64(t.UnixNano()) / 1e9
}

// MaxScrapesInFlight bounds the scrapes admitted at once; one more gets
// 503 Service Unavailable at once. They are collected one at a time. A
// scrape of a large IPVS table (10,000 backends) is CPU and garbage: 50 of
// them at once starved the VRRP adverts by hundreds of milliseconds on a
// 2-core director.
const MaxScrapesInFlight = 2
