package notify

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/lvsd/lvsd/conf"
	"github.com/lvsd/lvsd/internal/execscript"
	"github.com/lvsd/lvsd/internal/smtptest"
)

// argvScript writes an executable shell script that appends its arguments
// (one line per run, prefixed by tag) to out, after sleeping sleep.
func argvScript(t *testing.T, dir, name, out, sleep string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	body := "#!/bin/sh\n"
	if sleep != "" {
		body += "sleep " + sleep + "\n"
	}
	body += fmt.Sprintf("echo \"%s $*\" >> %s\n", name, out)
	if err := os.WriteFile(p, []byte(body), 0o755); err != nil {
		t.Fatal(err)
	}
	return p
}

func parseConf(t *testing.T, text string) *conf.Config {
	t.Helper()
	c, diags := conf.Parse("test.conf", text, conf.Options{})
	if conf.MaxLevel(diags) >= conf.Error {
		t.Fatalf("config: %v", diags)
	}
	return c
}

func readLines(t *testing.T, p string) []string {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	s := strings.TrimSpace(string(b))
	if s == "" {
		return nil
	}
	return strings.Split(s, "\n")
}

func TestNotifyScriptsArgumentsAndOrder(t *testing.T) {
	dir := t.TempDir()
	out := filepath.Join(dir, "out")
	m := argvScript(t, dir, "master.sh", out, "0.2")
	b := argvScript(t, dir, "backup.sh", out, "")
	f := argvScript(t, dir, "fault.sh", out, "")
	s := argvScript(t, dir, "stop.sh", out, "")
	any := argvScript(t, dir, "any.sh", out, "")
	gm := argvScript(t, dir, "gmaster.sh", out, "")
	c := parseConf(t, fmt.Sprintf(`
vrrp_sync_group G1 {
  group { VI_1 VI_2 }
  notify_master %s
  notify "%s grp"
}
vrrp_instance VI_1 {
  interface eth0
  virtual_router_id 1
  priority 100
  virtual_ipaddress { 192.0.2.1 }
  notify_master "%s one 'two words'"
  notify_backup %s
  notify_fault %s
  notify_stop %s
  notify %s
}
vrrp_instance VI_2 {
  interface eth0
  virtual_router_id 2
  priority 100
  virtual_ipaddress { 192.0.2.2 }
}
`, gm, any, m, b, f, s, any))
	n := New(c, Options{})
	start := time.Now()
	for _, ev := range []Event{
		{Name: "VI_1", State: "BACKUP", Priority: 100},
		{Name: "VI_1", State: "MASTER", Priority: 100},
		{Group: true, Name: "G1", State: "MASTER"},
		{Name: "VI_1", State: "FAULT", Priority: 100},
		{Name: "VI_2", State: "MASTER", Priority: 100}, // nothing configured
		{Name: "nope", State: "MASTER"},
		{Name: "VI_1", State: "STOP", Priority: 100},
	} {
		n.Post(ev)
	}
	if d := time.Since(start); d > 100*time.Millisecond {
		t.Fatalf("Post blocked for %v", d)
	}
	if !n.Flush(10 * time.Second) {
		t.Fatal("notifications did not finish")
	}
	n.Close()
	var inst, grp []string
	for _, l := range readLines(t, out) {
		if strings.HasPrefix(l, "gmaster.sh") || strings.Contains(l, "GROUP") {
			grp = append(grp, l)
		} else {
			inst = append(inst, l)
		}
	}
	want := []string{
		"backup.sh ", "any.sh INSTANCE VI_1 BACKUP 100",
		"master.sh one two words", "any.sh INSTANCE VI_1 MASTER 100",
		"fault.sh ", "any.sh INSTANCE VI_1 FAULT 100",
		"stop.sh ", "any.sh INSTANCE VI_1 STOP 100",
	}
	if strings.Join(inst, "|") != strings.Join(want, "|") {
		t.Fatalf("instance notifications:\n%s\nwant:\n%s", strings.Join(inst, "\n"), strings.Join(want, "\n"))
	}
	wantG := []string{"gmaster.sh ", "any.sh grp GROUP G1 MASTER 0"}
	if strings.Join(grp, "|") != strings.Join(wantG, "|") {
		t.Fatalf("group notifications:\n%s\nwant:\n%s", strings.Join(grp, "\n"), strings.Join(wantG, "\n"))
	}
	// After Close nothing runs.
	n.Post(Event{Name: "VI_1", State: "MASTER", Priority: 100})
	time.Sleep(300 * time.Millisecond)
	if l := readLines(t, out); len(l) != len(want)+len(wantG) {
		t.Fatalf("ran after Close: %v", l)
	}
}

func TestScriptUser(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("switching users needs root")
	}
	dir := t.TempDir()
	// nobody must reach the script and write the output.
	for d := dir; d != "/" && d != "."; d = filepath.Dir(d) {
		if fi, err := os.Stat(d); err == nil && fi.Mode().Perm()&0o005 != 0o005 {
			if err := os.Chmod(d, fi.Mode().Perm()|0o005); err != nil {
				t.Fatal(err)
			}
			restore := fi.Mode().Perm()
			t.Cleanup(func() { _ = os.Chmod(d, restore) })
		}
	}
	if err := os.Chmod(dir, 0o777); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "out")
	if err := os.WriteFile(out, nil, 0o666); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(out, 0o666); err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(dir, "id.sh")
	if err := os.WriteFile(p, []byte(fmt.Sprintf("#!/bin/sh\necho \"$(id -u) $(id -g) $*\" >> %s\n", out)), 0o755); err != nil {
		t.Fatal(err)
	}
	c := parseConf(t, fmt.Sprintf(`
global_defs { script_user nobody }
vrrp_instance VI_1 {
  interface eth0
  virtual_router_id 1
  priority 100
  virtual_ipaddress { 192.0.2.1 }
  notify %s
  notify_master %s root
}
`, p, p))
	n := New(c, Options{})
	n.Post(Event{Name: "VI_1", State: "MASTER", Priority: 100})
	n.Close()
	got := readLines(t, out)
	want := []string{"0 0 ", "65534 65534 INSTANCE VI_1 MASTER 100"}
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Fatalf("got %q, want %q (notify_master as root, notify as script_user nobody)", got, want)
	}
	if _, err := execscript.Resolve(&conf.Script{Args: []string{p}, User: "no-such-user-lvsd"}, nil); err == nil {
		t.Fatal("an unknown user resolved")
	}
}

// --- SMTP

func TestSMTPAlert(t *testing.T) {
	sink := smtptest.Start(t)
	port := sink.Port
	c := parseConf(t, fmt.Sprintf(`
global_defs {
  router_id lb1
  notification_email {
    ops@example.com
    oncall@example.org
  }
  notification_email_from lvsd@example.net
  smtp_server 127.0.0.1 %d
  smtp_helo_name director1.example.net
  smtp_connect_timeout 5
  smtp_alert_vrrp
}
vrrp_sync_group G1 {
  group { VI_1 VI_2 }
}
vrrp_instance VI_1 {
  interface eth0
  virtual_router_id 1
  priority 100
  virtual_ipaddress { 192.0.2.1 }
}
vrrp_instance VI_2 {
  interface eth0
  virtual_router_id 2
  priority 100
  virtual_ipaddress { 192.0.2.2 }
  smtp_alert false
}
`, port))
	date := time.Date(2026, 3, 4, 5, 6, 7, 0, time.FixedZone("", 3600))
	n := New(c, Options{Now: func() time.Time { return date }})
	defer n.Close()
	n.Post(Event{Name: "VI_1", State: "MASTER", Priority: 100})
	n.Post(Event{Name: "VI_1", State: "MASTER", Priority: 100}) // same state: no second mail
	n.Post(Event{Name: "VI_2", State: "MASTER", Priority: 100}) // smtp_alert false
	n.Post(Event{Group: true, Name: "G1", State: "FAULT"})
	n.Post(Event{Name: "VI_1", State: "STOP", Priority: 100})
	msgs := sink.Wait(t, 3, 10*time.Second)
	if !n.Flush(5 * time.Second) {
		t.Fatal("mailer did not finish")
	}
	time.Sleep(100 * time.Millisecond)
	if msgs = sink.Wait(t, 3, 10*time.Second); len(msgs) != 3 {
		t.Fatalf("%d mails, want 3", len(msgs))
	}
	subjects := []string{
		"[lb1] VRRP Instance VI_1 - Entering MASTER state",
		"[lb1] VRRP Group G1 - Entering FAULT state",
		"[lb1] VRRP Instance VI_1 - Stopping",
	}
	bodies := []string{
		"=> VRRP Instance is now owning VRRP VIPs <=",
		"=> All VRRP group instances are now in FAULT state <=",
		"=> VRRP Instance stopping <=",
	}
	for i, m := range msgs {
		if m.Helo != "director1.example.net" || m.From != "lvsd@example.net" ||
			strings.Join(m.To, ",") != "ops@example.com,oncall@example.org" {
			t.Fatalf("mail %d envelope: helo %q from %q to %q", i, m.Helo, m.From, m.To)
		}
		for _, h := range []string{
			"Date: Wed, 04 Mar 2026 05:06:07 +0100\r\n",
			"From: lvsd@example.net\r\n",
			"Subject: " + subjects[i] + "\r\n",
			"To: ops@example.com, oncall@example.org\r\n",
			"\r\n\r\n" + bodies[i] + "\r\n",
		} {
			if !strings.Contains(m.Data, h) {
				t.Fatalf("mail %d lacks %q:\n%s", i, h, m.Data)
			}
		}
	}
}

func TestSMTPUnreachableDoesNotBlock(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close() // nothing listens: connection refused
	dir := t.TempDir()
	out := filepath.Join(dir, "out")
	any := argvScript(t, dir, "any.sh", out, "")
	c := parseConf(t, fmt.Sprintf(`
global_defs {
  notification_email { ops@example.com }
  smtp_server 127.0.0.1 %d
  smtp_connect_timeout 1
  smtp_alert
}
vrrp_instance VI_1 {
  interface eth0
  virtual_router_id 1
  priority 100
  virtual_ipaddress { 192.0.2.1 }
  notify %s
}
`, port, any))
	n := New(c, Options{})
	n.Post(Event{Name: "VI_1", State: "MASTER", Priority: 90})
	if !n.Flush(5 * time.Second) {
		t.Fatal("did not finish")
	}
	n.Close()
	if got := readLines(t, out); len(got) != 1 || got[0] != "any.sh INSTANCE VI_1 MASTER 90" {
		t.Fatalf("script output %q", got)
	}
}

// A reload that removes an instance keeps its scripts for its STOP.
func TestApplyKeepsRemovedForStop(t *testing.T) {
	dir := t.TempDir()
	out := filepath.Join(dir, "out")
	any := argvScript(t, dir, "any.sh", out, "")
	inst := func(name string, vrid int) string {
		return fmt.Sprintf("vrrp_instance %s {\n interface eth0\n virtual_router_id %d\n priority 100\n virtual_ipaddress { 192.0.2.%d }\n notify %s\n}\n", name, vrid, vrid, any)
	}
	n := New(parseConf(t, inst("VI_1", 1)+inst("VI_2", 2)), Options{})
	n.Apply(parseConf(t, inst("VI_1", 1)+inst("VI_3", 3)))
	n.Post(Event{Name: "VI_2", State: "STOP", Priority: 100})
	n.Post(Event{Name: "VI_3", State: "BACKUP", Priority: 100})
	n.Close()
	got := readLines(t, out)
	if strings.Join(got, "|") != "any.sh INSTANCE VI_2 STOP 100|any.sh INSTANCE VI_3 BACKUP 100" &&
		strings.Join(got, "|") != "any.sh INSTANCE VI_3 BACKUP 100|any.sh INSTANCE VI_2 STOP 100" {
		t.Fatalf("got %q", got)
	}
}
