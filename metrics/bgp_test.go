package metrics

import (
	"net/netip"
	"testing"
	"time"

	"github.com/lvsd/lvsd/bgp"
	"github.com/lvsd/lvsd/status"
)

// TestCollectorBGP: the speaker, each session, the announced routes (one
// draining) and the counters.
func TestCollectorBGP(t *testing.T) {
	med := uint32(10)
	src := status.Sources{BGP: func() bgp.Status {
		return bgp.Status{Running: true, LocalAS: 65001, Draining: "operator",
			Peers: []bgp.PeerState{
				{Addr: netip.MustParseAddr("192.0.2.1"), RemoteAS: 65000, State: "established", Since: time.Unix(1, 0)},
				{Addr: netip.MustParseAddr("192.0.2.2"), RemoteAS: 65000, State: "active"},
			},
			Announced: []bgp.AnnouncedRoute{
				{Prefix: netip.MustParsePrefix("203.0.113.10/32"), Communities: []string{"65001:1", "65535:0"}, MED: &med},
				{Prefix: netip.MustParsePrefix("2001:db8::10/128")},
			},
			Counters: bgp.Counters{Announcements: 5, Withdrawals: 3, Errors: 1}}
	}}
	got := gather(t, New(src, nil))
	for k, v := range map[string]float64{
		`lvsd_bgp_up`: 1,
		`lvsd_bgp_session_up{neighbor="192.0.2.1",remote_as="65000",state="established"}`: 1,
		`lvsd_bgp_session_up{neighbor="192.0.2.2",remote_as="65000",state="active"}`:      0,
		`lvsd_bgp_prefixes_announced`: 2,
		`lvsd_bgp_route_announced{graceful_shutdown="true",prefix="203.0.113.10/32"}`:   1,
		`lvsd_bgp_route_announced{graceful_shutdown="false",prefix="2001:db8::10/128"}`: 1,
		`lvsd_bgp_draining{reason="operator"}`:                                          1,
		`lvsd_bgp_announcements_total`:                                                  5,
		`lvsd_bgp_withdrawals_total`:                                                    3,
		`lvsd_bgp_errors_total`:                                                         1,
	} {
		if g, ok := got[k]; !ok || g != v {
			t.Errorf("%s = %v (present %v), want %v", k, g, ok, v)
		}
	}
	if _, ok := gather(t, New(status.Sources{}, nil))["lvsd_bgp_up"]; ok {
		t.Error("lvsd_bgp_up without BGP")
	}
}
