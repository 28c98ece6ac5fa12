package main

import (
	"bufio"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// fifo_write_vrrp_states_on_reload side by side with keepalived 2.2.7: after
// a SIGHUP both write to vrrp_notify_fifo a GROUP line per sync group (G1
// of two MASTERs, G2 of one FAULT instance, G3 of one BACKUP) and an
// INSTANCE line per instance not MASTER (VI_5 FAULT, VI_6 BACKUP; none for
// the masters VI_1, VI_3, VI_2: keepalived 2.2.7 writes none). A long
// advert_int keeps the BACKUPs (no peer) BACKUP.
var fifoStatesConf = `global_defs {
  router_id fifostates
  vrrp_notify_fifo {{DIR}}/vrrp.fifo
  fifo_write_vrrp_states_on_reload
}
track_file down {
  file {{SHARED}}/down
  weight 0
}
vrrp_sync_group G1 {
  group {
    VI_1
    VI_3
  }
}
vrrp_sync_group G2 {
  group {
    VI_4
  }
}
vrrp_sync_group G3 {
  group {
    VI_7
  }
}
` + kaVI1 + `  virtual_ipaddress {
    192.0.2.100/24
  }
}
` + fifoStatesInstance("VI_3", 53, 1, "", "") + fifoStatesInstance("VI_4", 54, 1, "track_file {\n    down\n  }\n", "") +
	fifoStatesInstance("VI_5", 55, 1, "track_file {\n    down\n  }\n", "") + fifoStatesInstance("VI_6", 56, 100, "", "") +
	fifoStatesInstance("VI_7", 57, 100, "", "") + fifoStatesInstance("VI_2", 52, 1, "", "  priority 90\n")

func fifoStatesInstance(name string, vrid, advert int, track, prio string) string {
	if prio == "" {
		prio = "  priority 100\n"
	}
	return "vrrp_instance " + name + " {\n  state BACKUP\n  interface eth0\n  virtual_router_id " + strconv.Itoa(vrid) + "\n" + prio +
		"  advert_int " + strconv.Itoa(advert) + "\n  virtual_ipaddress {\n    192.0.2." + strconv.Itoa(vrid+50) + "/24\n  }\n  " + track + "}\n"
}

// fifoLog reads the side's vrrp.fifo again each time the daemon closes it
// (keepalived does at a reload), until the daemon has exited.
type fifoLog struct {
	mu    sync.Mutex
	lines []string
	done  chan struct{}
}

func (s *kaSide) readFIFOAcrossReloads() *fifoLog {
	l := &fifoLog{done: make(chan struct{})}
	path := filepath.Join(s.dir, "vrrp.fifo")
	go func() {
		defer close(l.done)
		for {
			select {
			case <-s.exited:
				return
			default:
			}
			st, err := os.Stat(path)
			if err != nil || st.Mode()&os.ModeNamedPipe == 0 {
				time.Sleep(20 * time.Millisecond)
				continue
			}
			f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NONBLOCK, 0)
			if err != nil {
				time.Sleep(20 * time.Millisecond)
				continue
			}
			// Blocking reads from here, line by line: EOF when the daemon
			// closes it.
			_ = syscall.SetNonblock(int(f.Fd()), false)
			sc := bufio.NewScanner(f)
			for sc.Scan() {
				l.mu.Lock()
				l.lines = append(l.lines, sc.Text())
				l.mu.Unlock()
			}
			f.Close()
			time.Sleep(20 * time.Millisecond)
		}
	}()
	return l
}

func (l *fifoLog) snapshot() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]string(nil), l.lines...)
}

func TestNetnsFIFOStatesOnReloadMatchKeepalived(t *testing.T) {
	bin, shared := kaCompare(t, map[string]string{"down": "1\n"})
	ka := newKASide(t, "keepalived", shared, fifoStatesConf)
	lv := newKASide(t, "lvsd", shared, fifoStatesConf)
	startBoth(t, ka, lv, bin)
	both := []*kaSide{ka, lv}
	logs := map[string]*fifoLog{}
	for _, s := range both {
		logs[s.name] = s.readFIFOAcrossReloads()
	}
	for _, s := range both {
		waitUntil(t, 20*time.Second, s.name+": VI_1, VI_3 and VI_2 MASTER", func() bool {
			a := runCmd(t, "ip", "-n", s.ns, "-4", "-o", "addr", "show", "dev", "eth0")
			return strings.Contains(a, " 192.0.2.100/24 ") && strings.Contains(a, " 192.0.2.103/24 ") && strings.Contains(a, " 192.0.2.102/24 ")
		})
	}
	time.Sleep(1500 * time.Millisecond)
	before := map[string]int{}
	for _, s := range both {
		before[s.name] = len(logs[s.name].snapshot())
		_ = s.cmd.Process.Signal(syscall.SIGHUP)
	}
	time.Sleep(3 * time.Second)
	for _, s := range both {
		_ = s.cmd.Process.Signal(syscall.SIGTERM)
	}
	after := map[string]string{}
	for _, s := range both {
		select {
		case <-logs[s.name].done:
		case <-time.After(15 * time.Second):
			t.Fatalf("%s did not stop", s.name)
		}
		var seg []string
		for _, l := range logs[s.name].snapshot()[before[s.name]:] {
			if strings.Contains(l, " STOP ") {
				break
			}
			seg = append(seg, l)
		}
		after[s.name] = strings.Join(seg, "\n")
	}
	t.Logf("keepalived's lines after the reload:\n%s", after["keepalived"])
	want := strings.Join([]string{`GROUP "G1" MASTER 0`, `GROUP "G2" FAULT 0`, `GROUP "G3" BACKUP 0`,
		`INSTANCE "VI_4" FAULT 100`, `INSTANCE "VI_5" FAULT 100`, `INSTANCE "VI_6" BACKUP 100`, `INSTANCE "VI_7" BACKUP 100`}, "\n")
	if after["keepalived"] != want {
		t.Errorf("keepalived's lines after the reload:\n%s\nwant:\n%s", after["keepalived"], want)
	}
	if after["lvsd"] != after["keepalived"] {
		t.Errorf("after the reload, lvsd wrote:\n%s\nkeepalived:\n%s", after["lvsd"], after["keepalived"])
	}
}
