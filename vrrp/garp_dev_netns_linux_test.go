package vrrp

import (
	"net"
	"net/netip"
	"testing"
	"time"
)

// A VIP declared with dev is announced on that interface with its MAC, the
// others on the instance's interface; with vrrp_garp_interval 0.2 the
// gratuitous ARPs leaving each interface are at least 0.2 s apart.
func TestLvsdGARPOnVIPDevAndInterval(t *testing.T) {
	requireIntegration(t)
	n := newTestNet(t)
	// A second interface on director A: eth1, its peer va1 in ns br (no
	// bridge: we only capture there).
	ipCmd(t, "-n", n.br, "link", "add", "va1", "type", "veth", "peer", "name", "eth1", "netns", n.a)
	ipCmd(t, "-n", n.br, "link", "set", "va1", "up")
	ipCmd(t, "-n", n.a, "link", "set", "eth1", "up")
	mac0, mac1 := linkMAC(t, n.a, "eth0"), linkMAC(t, n.a, "eth1")
	cap0 := startCapture(t, n.br, "va")
	cap1 := startCapture(t, n.br, "va1")
	confText := `global_defs {
  router_id lvsdA
  vrrp_garp_master_delay 2
  vrrp_garp_interval 0.2
}
vrrp_instance VI_1 {
  state BACKUP
  interface eth0
  virtual_router_id 51
  priority 150
  advert_int 1
  virtual_ipaddress {
    192.0.2.100/24
    198.51.100.100/24 dev eth1
    198.51.100.101/24 dev eth1
  }
}
`
	a := startLvsd(t, n.a, "A", confText)
	a.waitState(t, "VI_1", "MASTER", 6*time.Second)
	if !hasAddr(t, n.a, "eth1", "198.51.100.100") || !hasAddr(t, n.a, "eth0", "192.0.2.100") {
		t.Fatal("VIPs not on their interfaces")
	}
	// 5 GARPs per VIP at once and 5 after 2 s: on eth1, 20 at 0.2 s each.
	time.Sleep(7 * time.Second)
	vip0 := netip.MustParseAddr("192.0.2.100")
	dev := map[netip.Addr]bool{netip.MustParseAddr("198.51.100.100"): true, netip.MustParseAddr("198.51.100.101"): true}
	check := func(name string, c *capture, mac net.HardwareAddr, want func(netip.Addr) bool, wantN int) {
		t.Helper()
		_, arps := c.snapshot()
		var garps []arpFrame
		for _, f := range arps {
			if f.sender != f.target || !f.bcastTo {
				continue
			}
			if !want(f.sender) {
				t.Fatalf("%s: GARP for %v, which belongs elsewhere", name, f.sender)
			}
			if f.ethSrc.String() != mac.String() || f.sha.String() != mac.String() {
				t.Fatalf("%s: GARP for %v from %v (ARP sender %v), want %v", name, f.sender, f.ethSrc, f.sha, mac)
			}
			garps = append(garps, f)
		}
		if len(garps) != wantN {
			t.Fatalf("%s: %d GARPs, want %d", name, len(garps), wantN)
		}
		// The capture stamps frames when it reads them (user space), so one
		// late read shortens the next gap by the delay: each gap may fall
		// short by up to slack, but a frame read late lengthens the gap
		// before it by as much, so two successive gaps together must span
		// two intervals within the same slack.
		const interval, slack = 200 * time.Millisecond, 25 * time.Millisecond
		minGap := time.Hour
		for i := 1; i < len(garps); i++ {
			gap := garps[i].at.Sub(garps[i-1].at)
			minGap = min(minGap, gap)
			if gap < interval-slack {
				t.Fatalf("%s: GARP %d only %v after the previous one (vrrp_garp_interval 0.2)", name, i, gap)
			}
			if i >= 2 {
				if two := garps[i].at.Sub(garps[i-2].at); two < 2*interval-slack {
					t.Fatalf("%s: GARPs %d to %d only %v apart (vrrp_garp_interval 0.2)", name, i-2, i, two)
				}
			}
		}
		t.Logf("%s: %d GARPs from %v, smallest gap %v, first to last %v", name, len(garps), mac, minGap, garps[len(garps)-1].at.Sub(garps[0].at).Round(time.Millisecond))
	}
	check("eth0", cap0, mac0, func(ip netip.Addr) bool { return ip == vip0 }, 10)
	check("eth1", cap1, mac1, func(ip netip.Addr) bool { return dev[ip] }, 20)
}
