package main

import (
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

// Named faults (issue 12, docs/RELIABILITY.md) on the built binary in
// network namespaces, observed as an operator would: adverts on the wire,
// addresses, /metrics.

// gaps returns how many adverts were seen in [from, to] and the longest
// gap between two of them (from and to count as ends).
func (c *advertCounter) gaps(from, to time.Time) (n int, longest time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	last := from
	for _, at := range c.times {
		if at.Before(from) || at.After(to) {
			continue
		}
		n++
		longest = max(longest, at.Sub(last))
		last = at
	}
	return n, max(longest, to.Sub(last))
}

// assertAdvertsOnTime checks that adverts every interval were seen in
// [from, to]: none missing, no gap over interval plus margin.
func assertAdvertsOnTime(t *testing.T, c *advertCounter, from, to time.Time, interval, margin time.Duration) {
	t.Helper()
	n, longest := c.gaps(from, to)
	want := int(to.Sub(from) / interval)
	t.Logf("%d adverts in %v (interval %v), longest gap %v", n, to.Sub(from).Round(time.Millisecond), interval, longest.Round(time.Microsecond))
	if n < want-1 || longest > interval+margin {
		t.Errorf("adverts late or missing: %d in %v, want %d; longest gap %v (> %v)", n, to.Sub(from), want, longest, interval+margin)
	}
}

// silentSMTP listens on 127.0.0.1 in ns and accepts connections without
// ever answering; it returns the port.
func silentSMTP(t *testing.T, ns string) int {
	t.Helper()
	var l net.Listener
	if err := inNetns(ns, func() error {
		var err error
		l, err = net.Listen("tcp", "127.0.0.1:0")
		return err
	}); err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var conns []net.Conn
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		l.Close()
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
	})
	return l.Addr().(*net.TCPAddr).Port
}

const notifyFaultConf = `global_defs {
  router_id lb-a
  notification_email {
    ops@example.com
  }
  notification_email_from lvsd@example.com
  smtp_server 127.0.0.1 %[1]d
  smtp_connect_timeout 30
  smtp_alert
}
vrrp_track_file flip {
  file %[2]s/flip
  weight 0
}
vrrp_instance VI_1 {
  state BACKUP
  interface eth0
  virtual_router_id 51
  priority 150
  advert_int 1
  virtual_ipaddress {
    192.0.2.100/24
  }
  notify_master %[2]s/hang.sh
  notify %[2]s/loud.sh
}
vrrp_instance VI_2 {
  state BACKUP
  interface eth0
  virtual_router_id 52
  priority 100
  advert_int 1
  virtual_ipaddress {
    192.0.2.101/24
  }
  track_file {
    flip
  }
  notify_backup %[2]s/hang.sh
  notify_fault %[2]s/hang.sh
}
`

// TestNetnsFaultNotifyAndMail: lvsd MASTER of VI_1, whose notify_master
// hangs (sleep 3600) and whose notify writes 16 MB to its standard output;
// the mail server accepts and never answers. VI_2, on the same notifier
// and mailer, is flipped between FAULT and BACKUP by its track_file 500
// times each way (about 1,000 transitions, each a hanging script and a
// mail). Throughout, VI_1's adverts are on the wire every second, VI_1
// stays MASTER with its VIP; VI_2 ends in the state its file says; the
// scripts and mails beyond the bounded queues are dropped and counted.
func TestNetnsFaultNotifyAndMail(t *testing.T) {
	integration(t, "ip")
	bin := buildLvsd(t)
	n := newOpsNet(t)
	dir, err := os.MkdirTemp("", "lvsd-notify-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	loudDone := filepath.Join(dir, "loud.done")
	for name, body := range map[string]string{
		"hang.sh": "#!/bin/sh\nexec sleep 3600\n",
		"loud.sh": "#!/bin/sh\nhead -c 16000000 /dev/zero\necho \"$*\" >> " + loudDone + "\n",
	} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	flip := filepath.Join(dir, "flip")
	if err := os.WriteFile(flip, []byte("0\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	port := silentSMTP(t, n.a)
	adverts := countAdvertsVRID(t, n.br, "va", netip.MustParseAddr("192.0.2.1"), 51)
	a := startDirectorConf(t, bin, n.a, "lb-a", fmt.Sprintf(notifyFaultConf, port, dir), nil)
	waitUntil(t, 15*time.Second, "VI_1 MASTER with its VIP", func() bool {
		return a.state(t) == 2 && hasAddr(t, n.a, "192.0.2.100/24")
	})
	waitUntil(t, 10*time.Second, "the loud notify script's end", func() bool {
		_, err := os.Stat(loudDone)
		return err == nil
	})

	// The storm: 1,000 writes of the tracked file, alternating.
	from := time.Now()
	for i := range 1000 {
		v := "1\n"
		if i%2 == 1 {
			v = "0\n"
		}
		if err := os.WriteFile(flip, []byte(v), 0o644); err != nil {
			t.Fatal(err)
		}
		time.Sleep(2 * time.Millisecond)
	}
	// Ends with 1: VI_2 in FAULT.
	if err := os.WriteFile(flip, []byte("1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, 5*time.Second, "VI_2 FAULT", func() bool {
		v, ok := find(a.metrics(t), "keepalived_vrrp_state", "iname", "VI_2")
		return ok && v == 3
	})
	time.Sleep(2 * time.Second) // two more adverts' worth after the storm
	to := time.Now()
	assertAdvertsOnTime(t, adverts, from, to, time.Second, 300*time.Millisecond)

	ss := a.metrics(t)
	get := func(name string, labels ...string) float64 {
		v, ok := find(ss, name, labels...)
		if !ok {
			t.Fatalf("no %s%v", name, labels)
		}
		return v
	}
	if v := get("keepalived_vrrp_state", "iname", "VI_1"); v != 2 {
		t.Errorf("VI_1 state %v after the storm, want MASTER (2)", v)
	}
	if v := get("keepalived_become_master_total", "iname", "VI_1"); v != 1 {
		t.Errorf("VI_1 became MASTER %v times, want 1", v)
	}
	if !hasAddr(t, n.a, "192.0.2.100/24") {
		t.Errorf("VI_1's VIP lost")
	}
	run := get("lvsd_notify_scripts_total", "notifier", "vrrp", "result", "run")
	dropped := get("lvsd_notify_scripts_total", "notifier", "vrrp", "result", "dropped")
	mDropped := get("lvsd_notify_mails_total", "notifier", "vrrp", "result", "dropped")
	mSent := get("lvsd_notify_mails_total", "notifier", "vrrp", "result", "sent")
	t.Logf("notify scripts: %v run, %v dropped; mails: %v dropped, %v sent", run, dropped, mDropped, mSent)
	// VI_2's transitions: each queues one hanging script behind the first.
	if dropped < 200 || run > 10 {
		t.Errorf("scripts: %v run, %v dropped; want the queue behind the hung script bounded (256) and the rest dropped", run, dropped)
	}
	if mDropped < 200 || mSent != 0 {
		t.Errorf("mails: %v dropped, %v sent; want the queue behind the silent server bounded and the rest dropped", mDropped, mSent)
	}
}
