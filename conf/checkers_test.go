package conf

import (
	"bytes"
	"fmt"
	"strings"
	"testing"
)

// TestNewCheckersSupported: SMTP_CHECK, DNS_CHECK, UDP_CHECK and PING_CHECK
// are run by lvsd: a configuration with them has no diagnostic at all (in
// particular no "parsed, not supported yet").
func TestNewCheckersSupported(t *testing.T) {
	text := virtServer(realServer(
		checkerBlock(CheckSMTP, "helo_name lb.example", "connect_timeout 3"),
		checkerBlock(CheckDNS, "type A", "name www.example.com"),
		checkerBlock(CheckUDP, "payload 0102", "require_reply 01 x2", "max_reply_length 10"),
		checkerBlock(CheckPing, "connect_ip 192.168.0.2", "retry 2"),
	))
	cfg, diags := Parse("test.conf", text, Options{ConfigID: "test"})
	for _, d := range diags {
		t.Errorf("unexpected diagnostic: %v", d)
	}
	var types []string
	for _, c := range rs0(cfg).Checkers {
		types = append(types, c.Type)
	}
	if got := strings.Join(types, " "); got != "SMTP_CHECK DNS_CHECK UDP_CHECK PING_CHECK" {
		t.Errorf("checkers %s", got)
	}
}

// TestReadHexStr: keepalived's hex string format, with the man page's example.
func TestReadHexStr(t *testing.T) {
	for _, tc := range []struct {
		in         string
		wild       bool
		data, mask []byte
		err        bool
	}{
		{in: "Ab12f 3 456 546443123", data: []byte{0xab, 0x12, 0x0f, 0x03, 0x45, 0x06, 0x54, 0x64, 0x43, 0x12, 0x03}},
		{in: "0102 a", data: []byte{1, 2, 0x0a}},
		{in: "\tff  00\t", data: []byte{0xff, 0}},
		{in: "1x X2 x", wild: true, data: []byte{0x10, 0x02, 0}, mask: []byte{0x0f, 0xf0, 0x0f}},
		{in: "1x", err: true}, // no wildcard in a payload
		{in: "zz", err: true},
		{in: "  ", err: true},
	} {
		data, mask, err := readHexStr(tc.in, tc.wild)
		if tc.err {
			if err == nil {
				t.Errorf("%q: got % x, want an error", tc.in, data)
			}
			continue
		}
		if err != nil || !bytes.Equal(data, tc.data) || !bytes.Equal(mask, tc.mask) || (tc.mask == nil) != (mask == nil) {
			t.Errorf("%q: got % x mask % x (%v), want % x mask % x", tc.in, data, mask, err, tc.data, tc.mask)
		}
	}
}

func TestNewCheckerDiagnostics(t *testing.T) {
	fwmarkRS := func(lines ...string) string {
		return "virtual_server fwmark 1 {\n real_server 192.168.0.1 {\n" + strings.Join(lines, "\n") + "\n }\n}\n"
	}
	runDiagCases(t, []diagCase{
		{
			name: "SMTP and DNS default to their protocol's port without one",
			conf: fwmarkRS("SMTP_CHECK {\n}", "DNS_CHECK {\n}", "SMTP_CHECK {\n connect_port 2525\n}"),
			check: func(t *testing.T, c *Config) {
				k := rs0(c).Checkers
				if len(k) != 3 || k[0].ConnectPort != 25 || k[1].ConnectPort != 53 || k[2].ConnectPort != 2525 {
					t.Errorf("checkers %+v, want SMTP on 25, DNS on 53, SMTP on 2525", k)
				}
			},
		},
		{
			name: "UDP_CHECK without a port",
			conf: fwmarkRS("UDP_CHECK { #u\n}", "PING_CHECK {\n}"),
			want: []string{"u: error: UDP_CHECK: real server 192.168.0.1 of FWM 1: checker has no port to use (set connect_port) - removing checker"},
			check: func(t *testing.T, c *Config) {
				if k := rs0(c).Checkers; len(k) != 1 || k[0].Type != CheckPing {
					t.Errorf("checkers %+v, want PING_CHECK alone", k)
				}
			},
		},
		{
			name: "DNS_CHECK names",
			conf: virtServer(realServer(
				"DNS_CHECK {\n name a..b #e\n}",
				"DNS_CHECK {\n name .a #f\n}",
				"DNS_CHECK {\n name "+strings.Repeat("x", 64)+".example #l\n}",
				"DNS_CHECK {\n name example.com.\n type rrsig\n}",
			)),
			want: []string{
				"e: error: name: DNS_CHECK name 'a..b' has an empty label - ignoring",
				"f: error: name: DNS_CHECK name '.a' has an empty label - ignoring",
				"l: error: name: DNS_CHECK name '" + strings.Repeat("x", 64) + ".example' has a label longer than 63 octets",
			},
			check: func(t *testing.T, c *Config) {
				k := rs0(c).Checkers
				if len(k) != 4 || k[0].DNSName != "." || k[1].DNSName != "." || k[2].DNSName != "." ||
					k[3].DNSName != "example.com." || k[3].DNSType != "RRSIG" {
					t.Errorf("checkers %+v", k)
				}
			},
		},
		{
			name: "UDP_CHECK reply requirements",
			conf: virtServer(realServer(
				"UDP_CHECK {\n require_reply 0q #q\n}",
				"UDP_CHECK { #m\n require_reply 01\n min_reply_length 9\n max_reply_length 8\n}",
				"UDP_CHECK { #n\n require_reply\n max_reply_length 8\n}",
				"UDP_CHECK {\n require_reply\n}",
			)),
			want: []string{
				"q: error: require_reply: invalid hex string '0q' ('q' is not a hex digit) - the reply's content is not checked",
				"m: warning: UDP_CHECK: min_reply_length 9 > max_reply_length 8 - the check will always fail",
				"n: notice: UDP_CHECK: min_reply_length and max_reply_length apply only with a require_reply pattern",
			},
			check: func(t *testing.T, c *Config) {
				k := rs0(c).Checkers
				if len(k) != 4 || !k[0].RequireReply || k[0].ReplyPattern != "" || k[1].ReplyPattern != "01" || !k[3].RequireReply {
					t.Errorf("checkers %+v", k)
				}
			},
		},
	})
}

// TestCheckerKindsRegistry: every entry of the checker registry is a
// real_server keyword: a checker of its type (removed with its reason when an
// empty block cannot run), or a notice for one lvsd only parses past; never
// an unknown keyword.
func TestCheckerKindsRegistry(t *testing.T) {
	for _, kind := range checkerKinds {
		cfg, diags := Parse("test.conf", virtServer(realServer(checkerBlock(kind.name))), Options{ConfigID: "test"})
		var why string
		if kind.incomplete != nil {
			why = kind.incomplete(&Checker{Type: kind.name, CheckerOptions: &CheckerOptions{}})
		}
		var got []string
		for _, d := range diags {
			got = append(got, fmt.Sprintf("%v %s", d.Level, d.Keyword))
			if d.Level == Error && why != "" && strings.Contains(d.Msg, why) {
				continue
			}
			if d.Level != Notice {
				t.Errorf("%s: unexpected diagnostic %v", kind.name, d)
			}
		}
		switch {
		case kind.notYet:
			if len(diags) != 1 || diags[0].Level != Notice || diags[0].Keyword != kind.name {
				t.Errorf("%s: want one notice for it, got %v", kind.name, got)
			}
		case why != "":
			if len(diags) != 1 || len(rs0(cfg).Checkers) != 0 {
				t.Errorf("%s: want it removed (%s), got %v", kind.name, why, got)
			}
		default:
			if len(rs0(cfg).Checkers) != 1 {
				t.Fatalf("%s: no checker parsed", kind.name)
			}
			if c := chk0(cfg); c.Type != kind.name || c.Timers.Retry != kind.retry {
				t.Errorf("%s: checker %s with retry %d, want %d", kind.name, c.Type, c.Timers.Retry, kind.retry)
			}
		}
	}
}
