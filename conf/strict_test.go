package conf

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// strictCases are configurations keepalived 2.2.7 changes under strict
// mode (vrrp_strict, or strict_mode in the instance), each with its
// message (keepalived's words, after "(A) ") and where lvsd reports it.
type strictCase struct {
	name, global, inst string
	vip                string // default 192.0.2.9
	// want: keepalived's messages, reported by lvsd on the line marked
	// "#"; none: the configuration passes as it is.
	want  []string
	check func(*testing.T, *VRRPInstance)
}

var strictCases = []strictCase{
	{name: "state MASTER", global: "vrrp_strict", inst: "state MASTER #\npriority 150",
		want:  []string{"(A) State MASTER must match being address owner"},
		check: func(t *testing.T, in *VRRPInstance) { expect(t, "state", in.State, "BACKUP") }},
	{name: "state MASTER of the owner", global: "vrrp_strict", inst: "state MASTER\npriority 255"},
	{name: "state MASTER, strict_mode", inst: "strict_mode\nstate MASTER #\npriority 150",
		want: []string{"(A) State MASTER must match being address owner"}},
	{name: "state MASTER and nopreempt", global: "vrrp_strict", inst: "state MASTER #\npriority 100\nnopreempt",
		want:  []string{"(A) State MASTER must match being address owner"},
		check: func(t *testing.T, in *VRRPInstance) { expect(t, "nopreempt", in.NoPreempt, true) }},
	{name: "authentication", global: "vrrp_strict", inst: "authentication { #\nauth_type PASS\nauth_pass x\n}",
		want:  []string{"(A) Strict mode does not support authentication. Ignoring."},
		check: func(t *testing.T, in *VRRPInstance) { expect(t, "auth", in.Auth.Type, "") }},
	{name: "unicast peers (kept, as keepalived 2.2.7)", global: "vrrp_strict", inst: "unicast_peer {\n192.0.2.2\n}",
		check: func(t *testing.T, in *VRRPInstance) { expect(t, "peers", len(in.UnicastPeers), 1) }},
	{name: "first IPv6 VIP not link-local", global: "vrrp_strict", inst: "version 3", vip: "2001:db8::1 #",
		want: []string{"(A) the first IPv6 VIP address must be link local"}},
	{name: "preempt_delay", global: "vrrp_strict", inst: "preempt_delay 5 #",
		want:  []string{"(A) preempt_delay is incompatible with strict mode - resetting"},
		check: func(t *testing.T, in *VRRPInstance) { expect(t, "preempt_delay", in.PreemptDelay, time.Duration(0)) }},
	{name: "preempt_delay 0", global: "vrrp_strict", inst: "preempt_delay 0"},
	{name: "down_timer_adverts", global: "vrrp_strict", inst: "down_timer_adverts 5 #",
		want: []string{"(A) down_timer_adverts is incompatible with strict mode - resetting"}},
	{name: "down_timer_adverts 3", global: "vrrp_strict", inst: "down_timer_adverts 3"},
	{name: "accept, VRRPv2", global: "vrrp_strict", inst: "accept #",
		want:  []string{"(A) warning - accept mode for VRRP version 2 does not comply with RFC3768 - resetting"},
		check: func(t *testing.T, in *VRRPInstance) { expect(t, "accept", in.Accept, false) }},
	{name: "accept, VRRPv2, strict_mode", inst: "strict_mode\naccept #",
		want: []string{"(A) warning - accept mode for VRRP version 2 does not comply with RFC3768 - resetting"}},
	{name: "accept, VRRPv3", global: "vrrp_strict", inst: "accept\nversion 3",
		check: func(t *testing.T, in *VRRPInstance) { expect(t, "accept", in.Accept, true) }},
	{name: "accept of the owner", global: "vrrp_strict", inst: "accept\npriority 255"},
	{name: "garp_lower_prio_repeat", global: "vrrp_strict", inst: "garp_lower_prio_repeat 3 #",
		want:  []string{"(A) Strict mode requires no repeat garps. resetting"},
		check: func(t *testing.T, in *VRRPInstance) { expect(t, "repeat", in.GARP.LowerPrioRepeat, 0) }},
	{name: "vrrp_garp_lower_prio_repeat (global: not checked)", global: "vrrp_strict\nvrrp_garp_lower_prio_repeat 2"},
	{name: "garp_lower_prio_delay", global: "vrrp_strict", inst: "garp_lower_prio_delay 3 #",
		want: []string{"(A) Strict mode requires no repeat garp delay. resetting"}},
	{name: "lower_prio_no_advert false", global: "vrrp_strict", inst: "lower_prio_no_advert false #",
		want:  []string{"(A) Strict mode requires no lower priority advert. resetting"},
		check: func(t *testing.T, in *VRRPInstance) { expect(t, "lower_prio_no_advert", in.LowerPrioNoAdvert, true) }},
	{name: "higher_prio_send_advert", global: "vrrp_strict", inst: "higher_prio_send_advert #",
		want: []string{"(A) strict mode requires higher_prio_send_advert to be clear. resetting"},
		check: func(t *testing.T, in *VRRPInstance) {
			expect(t, "higher_prio_send_advert", in.HigherPrioSendAdvert, false)
		}},
	{name: "vrrp_higher_prio_send_advert (global: not checked)", global: "vrrp_strict\nvrrp_higher_prio_send_advert"},
	{name: "nopreempt", global: "vrrp_strict", inst: "nopreempt"},
	{name: "no strict: state MASTER", inst: "state MASTER\npriority 150"},
}

func expect(t *testing.T, what string, got, want any) {
	t.Helper()
	if got != want {
		t.Errorf("%s = %v, want %v", what, got, want)
	}
}

// text is the case's file and the line "#" marks (0: none).
func (c strictCase) text() (string, int) {
	vip := c.vip
	if vip == "" {
		vip = "192.0.2.9"
	}
	text := "global_defs {\n" + c.global + "\n}\nvrrp_instance A {\ninterface eth0\nvirtual_router_id 5\n" + c.inst +
		"\nvirtual_ipaddress {\n" + vip + "\n}\n}\n"
	line := 0
	for i, l := range strings.Split(text, "\n") {
		if strings.HasSuffix(l, "#") {
			line = i + 1
		}
	}
	return strings.ReplaceAll(text, " #", ""), line
}

// TestStrictMode: lvsd reports keepalived's strict-mode messages on the
// line of the keyword and changes the settings as keepalived does; with
// LVSD_INTEGRATION, keepalived 2.2.7 -t on the same file prints the same
// messages (and no others), or none.
func TestStrictMode(t *testing.T) {
	keepalived := ""
	if os.Getenv("LVSD_INTEGRATION") != "" {
		var err error
		if keepalived, err = exec.LookPath("keepalived"); err != nil {
			t.Fatal("LVSD_INTEGRATION is set but keepalived is not installed")
		}
	}
	for _, c := range strictCases {
		t.Run(c.name, func(t *testing.T) {
			text, line := c.text()
			cfg, diags := Parse("s.conf", text, Options{})
			var got []string
			for _, d := range diags {
				if d.Level >= Warning {
					got = append(got, d.String())
				}
			}
			if len(got) != len(c.want) {
				t.Fatalf("diagnostics %q, want %q\n%s", got, c.want, text)
			}
			for i, w := range c.want {
				if !strings.HasPrefix(got[i], "s.conf:"+strconv.Itoa(line)+": ") || !strings.HasSuffix(got[i], ": "+w) {
					t.Errorf("diagnostic %q, want %q at line %d", got[i], w, line)
				}
			}
			if c.check != nil {
				c.check(t, cfg.Instances[0])
			}
			if keepalived == "" {
				return
			}
			path := filepath.Join(t.TempDir(), "k.conf")
			if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
				t.Fatal(err)
			}
			var out bytes.Buffer
			cmd := exec.Command(keepalived, "-t", "-l", "-f", path)
			cmd.Stdout, cmd.Stderr = &out, &out
			_ = cmd.Run()
			klines := strings.Split(strings.TrimSpace(out.String()), "\n")
			if out.Len() == 0 {
				klines = nil
			}
			if len(klines) != len(c.want) {
				t.Fatalf("keepalived -t: %q, lvsd's want %q", klines, c.want)
			}
			for i, w := range c.want {
				if klines[i] != w {
					t.Errorf("keepalived -t: %q, want %q", klines[i], w)
				}
			}
		})
	}
}

// TestVRRPIPTablesNotice: vrrp_iptables gets keepalived 2.2.7's words (its
// Debian build has no iptables and uses nftables), on its line; with
// LVSD_INTEGRATION keepalived -t says the same.
func TestVRRPIPTablesNotice(t *testing.T) {
	const msg = "iptables not supported, using nftables instead. Please replace 'vrrp_iptables and 'vrrp_ipsets' with 'nftables' config option"
	text := "global_defs {\nvrrp_iptables IN OUT\n}\n"
	_, diags := Parse("s.conf", text, Options{})
	if len(diags) != 1 || diags[0].String() != "s.conf:2: error: vrrp_iptables: "+msg {
		t.Fatalf("diagnostics %v", diagStrings(diags))
	}
	if os.Getenv("LVSD_INTEGRATION") == "" {
		return
	}
	path := filepath.Join(t.TempDir(), "k.conf")
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	out, _ := exec.Command("keepalived", "-t", "-l", "-f", path).CombinedOutput()
	if strings.TrimSpace(string(out)) != "(Line 2) "+msg {
		t.Errorf("keepalived -t: %q", out)
	}
}
