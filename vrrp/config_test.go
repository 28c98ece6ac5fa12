package vrrp

import (
	"net/netip"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/lvsd/lvsd/conf"
	"github.com/lvsd/lvsd/vrrp/advert"
)

const sampleConf = `
global_defs {
  vrrp_garp_master_delay 2
}
vrrp_script chk_lb {
  script "/bin/true"
  weight -20
}
vrrp_script chk_must {
  script "/bin/true"
  init_fail
}
vrrp_sync_group LB {
  group {
    VI_EXT
    VI_INT
  }
  track_script {
    chk_must
  }
}
vrrp_instance VI_EXT {
  state MASTER
  interface eth0
  virtual_router_id 51
  priority 150
  advert_int 1
  authentication {
    auth_type PASS
    auth_pass secret99
  }
  virtual_ipaddress {
    192.0.2.100/24 brd 192.0.2.255 dev eth0 scope link label eth0:1
  }
  virtual_ipaddress_excluded {
    192.0.2.101/24
  }
  track_script {
    chk_lb
  }
}
vrrp_instance VI_INT {
  interface eth1
  virtual_router_id 52
  priority 100
  version 3
  advert_int 0.5
  virtual_ipaddress {
    198.51.100.7/32
  }
  track_interface {
    eth2 weight -10
  }
}
vrrp_instance VI_SOLO {
  interface eth1
  virtual_router_id 53
  nopreempt
  preempt_delay 10
  unicast_src_ip 203.0.113.1
  unicast_peer {
    203.0.113.2
  }
  virtual_ipaddress {
    203.0.113.100/32
  }
}
`

func parseConf(t *testing.T, text string) *conf.Config {
	t.Helper()
	c, diags := conf.Parse("test.conf", text, conf.Options{})
	if conf.MaxLevel(diags) >= conf.Error {
		t.Fatalf("parse: %v", diags)
	}
	return c
}

func TestFromConfig(t *testing.T) {
	specs, warns, err := fromConfig(parseConf(t, sampleConf))
	if err != nil {
		t.Fatal(err)
	}
	if len(specs) != 2 || !specs[0].Group || specs[0].Name != "LB" || len(specs[0].Instances) != 2 || specs[1].Name != "VI_SOLO" {
		t.Fatalf("specs %+v", specs)
	}
	ext, in, solo := specs[0].Instances[0], specs[0].Instances[1], specs[1].Instances[0]
	if ext.Machine.InitialState != StateMaster || ext.Machine.Priority != 150 || ext.Machine.VRID != 51 ||
		ext.AuthType != advert.AuthPass || ext.AuthPass != "secret99" || ext.Machine.GARPMasterDelay != 2*time.Second {
		t.Fatalf("VI_EXT %+v", ext)
	}
	wantVIP := VIP{Addr: netip.MustParsePrefix("192.0.2.100/24"), Dev: "eth0", Brd: netip.MustParseAddr("192.0.2.255"), Scope: 253, Label: "eth0:1"}
	if !reflect.DeepEqual(ext.VIPs, []VIP{wantVIP}) || len(ext.ExcludedVIPs) != 1 {
		t.Fatalf("VIPs %+v excluded %+v", ext.VIPs, ext.ExcludedVIPs)
	}
	// In a sync group member weights are zeroed (keepalived); the group's
	// own tracker applies to every member.
	wantExt := []track{{Name: "script:chk_lb", Weight: 0, InitUp: true}, {Name: "script:chk_must", InitUp: false}}
	if !reflect.DeepEqual(ext.Tracks, wantExt) {
		t.Fatalf("VI_EXT tracks %+v", ext.Tracks)
	}
	if in.Machine.Version != 3 || in.Machine.AdvertInterval != 500*time.Millisecond ||
		!reflect.DeepEqual(in.Tracks, []track{{Name: "interface:eth2", Weight: 0, InitUp: true}, {Name: "script:chk_must", InitUp: false}}) {
		t.Fatalf("VI_INT %+v", in)
	}
	if !solo.Machine.Nopreempt || solo.Machine.PreemptDelay != 10*time.Second ||
		solo.Machine.PrimaryIP != netip.MustParseAddr("203.0.113.1") || len(solo.UnicastPeers) != 1 {
		t.Fatalf("VI_SOLO %+v", solo)
	}
	// nopreempt wins over preempt_delay once normalized, as keepalived.
	mc := solo.Machine
	if err := mc.Normalize(); err != nil || mc.PreemptDelay != 0 {
		t.Fatalf("normalize %v %v", err, mc.PreemptDelay)
	}
	if specs[0].OwnInterface[0] != "eth0" || specs[1].OwnInterface[0] != "eth1" {
		t.Fatalf("own interfaces %v %v", specs[0].OwnInterface, specs[1].OwnInterface)
	}
	_ = warns
}

func TestFromConfigErrors(t *testing.T) {
	for name, text := range map[string]string{
		"AH":       "vrrp_instance A {\n interface eth0\n virtual_router_id 1\n authentication {\n auth_type AH\n auth_pass x\n }\n virtual_ipaddress {\n 192.0.2.1\n }\n}\n",
		"dup vrid": "vrrp_instance A {\n interface eth0\n virtual_router_id 1\n virtual_ipaddress {\n 192.0.2.1\n }\n}\nvrrp_instance B {\n interface eth0\n virtual_router_id 1\n virtual_ipaddress {\n 192.0.2.2\n }\n}\n",
		"ipv6 v2":  "vrrp_instance A {\n interface eth0\n virtual_router_id 1\n version 2\n virtual_ipaddress {\n 2001:db8::1/64\n }\n}\n",
	} {
		c, diags := conf.Parse("x", text, conf.Options{})
		if conf.MaxLevel(diags) >= conf.Error {
			continue // rejected by the parser already: fine
		}
		if _, _, err := fromConfig(c); err == nil {
			t.Errorf("%s: accepted", name)
		} else if !strings.Contains(err.Error(), "A") {
			t.Errorf("%s: error does not name the instance: %v", name, err)
		}
	}
}

// use_vmac, use_ipvlan and the unicast keywords as the runner gets them.
func TestFromConfigVMACAndUnicast(t *testing.T) {
	c, diags := conf.Parse("v.conf", `
vrrp_instance V4 {
  interface eth0
  virtual_router_id 61
  use_vmac
  vmac_xmit_base
  check_unicast_src
  unicast_ttl 9
  promote_secondaries
  unicast_peer {
    192.0.2.2
  }
  virtual_ipaddress {
    192.0.2.200/24
  }
  virtual_ipaddress_excluded {
    2001:db8::9/64
  }
}
vrrp_instance V6 {
  interface eth0
  virtual_router_id 62
  use_vmac vm6
  virtual_ipaddress {
    2001:db8::200/64
  }
}
vrrp_instance IPV {
  interface eth1
  virtual_router_id 63
  use_ipvlan ipv1 192.0.2.77/24 private
  virtual_ipaddress {
    192.0.2.201/24
  }
}
`, conf.Options{})
	if conf.MaxLevel(diags) >= conf.Error {
		t.Fatal(diags)
	}
	specs, warns, err := fromConfig(c)
	if err != nil {
		t.Fatal(err)
	}
	for _, w := range warns {
		if strings.Contains(w, "vmac") || strings.Contains(w, "promote") {
			t.Errorf("warning %q", w)
		}
	}
	got := map[string]instanceConfig{}
	for _, s := range specs {
		got[s.Name] = s.Instances[0]
	}
	v4, v6, ipv := got["V4"], got["V6"], got["IPV"]
	if v4.Interface != "vrrp.61" || v4.srcInterface() != "eth0" || v4.sockInterface() != "eth0" || !v4.XmitBase ||
		v4.VMAC.MAC.String() != "00:00:5e:00:01:3d" || v4.VMAC.IPv6 || !v4.VMAC.KeepIPv6 {
		t.Errorf("V4: %+v %+v", v4, v4.VMAC)
	}
	if !v4.CheckUnicastSrc || v4.UnicastTTL != 9 || !v4.PromoteSecondaries || v4.connKey().ttl != 9 {
		t.Errorf("V4 unicast: check %v ttl %d promote %v", v4.CheckUnicastSrc, v4.UnicastTTL, v4.PromoteSecondaries)
	}
	if v6.Interface != "vm6" || v6.sockInterface() != "vm6" || v6.VMAC.MAC.String() != "00:00:5e:00:02:3e" || !v6.VMAC.IPv6 || v6.CheckUnicastSrc {
		t.Errorf("V6: %+v %+v", v6, v6.VMAC)
	}
	if ipv.Interface != "ipv1" || !ipv.VMAC.IPvlan || ipv.VMAC.MAC != nil || ipv.VMAC.Mode != "private" || ipv.VMAC.Addr != netip.MustParsePrefix("192.0.2.77/24") || ipv.VMAC.Base != "eth1" ||
		ipv.Machine.PrimaryIP != netip.MustParseAddr("192.0.2.77") || ipv.garpInterface() != "eth1" || ipv.VIPs[0].Dev != "eth1" || v4.garpInterface() != "vrrp.61" {
		t.Errorf("IPV: %+v %+v", ipv, ipv.VMAC)
	}
}

// Two instances of one VRID: the second VMAC is named as keepalived 2.2.7
// names it (vrrp6.VRID for IPv6, vrrp1.VRID for IPv4).
func TestVMACDefaultNames(t *testing.T) {
	v4 := "vrrp_instance A {\n interface eth0\n virtual_router_id 51\n use_vmac\n virtual_ipaddress {\n  192.0.2.1/24\n }\n}\n"
	v6 := "vrrp_instance B {\n interface eth0\n virtual_router_id 51\n use_vmac\n virtual_ipaddress {\n  2001:db8::1/64\n }\n}\n"
	for _, tc := range []struct{ text, a, b string }{
		{v4 + v6, "vrrp.51", "vrrp6.51"},
		{v6 + v4, "vrrp1.51", "vrrp.51"},
	} {
		c := confText(t, tc.text)
		if a, b := c.Instance("A").VMACInterface(), c.Instance("B").VMACInterface(); a != tc.a || b != tc.b {
			t.Errorf("A %s, B %s; want %s, %s", a, b, tc.a, tc.b)
		}
	}
}
