package metrics

import (
	"slices"
	"strconv"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/lvsd/lvsd/bgp"
)

// bgpDescs are the BGP metrics' descriptions.
type bgpDescs struct {
	up, sessionUp, announced, routes, draining *prometheus.Desc
	announcements, withdrawals, errors         *prometheus.Desc
}

func (c *Collector) initBGP() {
	c.bgp = bgpDescs{
		up:            c.desc("lvsd_bgp_up", "Whether the BGP speaker runs (a bgp block, and IPVS programmed here)."),
		sessionUp:     c.desc("lvsd_bgp_session_up", "Whether the BGP session with the neighbor is established (1), with its FSM state.", "neighbor", "remote_as", "state"),
		announced:     c.desc("lvsd_bgp_prefixes_announced", "How many prefixes (virtual-server addresses) are announced."),
		routes:        c.desc("lvsd_bgp_route_announced", "A prefix announced, with whether it carries GRACEFUL_SHUTDOWN (draining).", "prefix", "graceful_shutdown"),
		draining:      c.desc("lvsd_bgp_draining", "Whether the routes are draining (GRACEFUL_SHUTDOWN, then withdrawal), by reason: operator (lvsd ctl drain) or shutdown.", "reason"),
		announcements: c.desc("lvsd_bgp_announcements_total", "Routes announced (or announced again with other attributes)."),
		withdrawals:   c.desc("lvsd_bgp_withdrawals_total", "Routes withdrawn (quorum lost, VRRP not MASTER, drain, reload, stop)."),
		errors:        c.desc("lvsd_bgp_errors_total", "Failed BGP speaker operations (retried)."),
	}
}

// collectBGP exports st (nil: BGP does not run here).
func (c *Collector) collectBGP(st *bgp.Status, gauge func(*prometheus.Desc, float64, ...string), counter func(*prometheus.Desc, uint64, ...string)) {
	if st == nil {
		return
	}
	d := &c.bgp
	gauge(d.up, b2f(st.Running))
	for _, p := range st.Peers {
		gauge(d.sessionUp, b2f(p.Established()), p.Addr.String(), strconv.FormatUint(uint64(p.RemoteAS), 10), p.State)
	}
	gauge(d.announced, float64(len(st.Announced)))
	for _, r := range st.Announced {
		gauge(d.routes, 1, r.Prefix.String(), strconv.FormatBool(slices.Contains(r.Communities, "65535:0")))
	}
	if st.Draining != "" {
		gauge(d.draining, 1, st.Draining)
	}
	counter(d.announcements, st.Counters.Announcements)
	counter(d.withdrawals, st.Counters.Withdrawals)
	counter(d.errors, st.Counters.Errors)
}
