package healthcheck

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

func miscConf(path string, alpha bool, extra string) string {
	a := ""
	if alpha {
		a = "alpha"
	}
	return fmt.Sprintf(`
virtual_server 192.0.2.1 80 {
    protocol TCP
  delay_loop 1
  %s
  real_server 127.0.0.1 80 {
    weight 3
    MISC_CHECK {
      misc_path "%s"
      warmup 0
      %s
    }
  }
}`, a, path, extra)
}

func TestMisc(t *testing.T) {
	t.Parallel()
	exit := func(code int) string { return scriptPath("exit" + strconv.Itoa(code)) }
	t.Run("exit 0", func(t *testing.T) {
		t.Parallel()
		r := startRun(t, miscConf(exit(0), true, ""), Options{})
		r.expect(t, false, 0)
		r.expect(t, true, 0)
	})
	t.Run("exit 1", func(t *testing.T) {
		t.Parallel()
		r := startRun(t, miscConf(exit(1), false, ""), Options{})
		r.expect(t, true, 0)
		ev := r.expect(t, false, 0) // MISC_CHECK retry defaults to 0
		if !strings.Contains(ev.Reason, "exited with status 1") {
			t.Errorf("reason %q", ev.Reason)
		}
	})
	t.Run("exit 7", func(t *testing.T) {
		t.Parallel()
		r := startRun(t, miscConf(exit(7), false, ""), Options{})
		r.expect(t, true, 0)
		r.expect(t, false, 0)
	})
	t.Run("exit 7 misc_dynamic", func(t *testing.T) {
		t.Parallel()
		r := startRun(t, miscConf(exit(7), false, "misc_dynamic"), Options{})
		if ev := r.expect(t, true, 0); ev.Weight != -1 {
			t.Fatalf("initial weight %d, want -1", ev.Weight)
		}
		if ev := r.expect(t, true, 0); ev.Weight != 5 {
			t.Fatalf("weight %d, want 5 (%s)", ev.Weight, ev.Reason)
		}
		r.none(t, 1200*time.Millisecond) // the same weight again is no event
		if st := r.s.Snapshot()[0]; st.Weight != 5 || st.Checkers[0].Checks < 2 {
			t.Fatalf("snapshot %+v", st)
		}
	})
	t.Run("exit 1 misc_dynamic", func(t *testing.T) {
		t.Parallel()
		r := startRun(t, miscConf(exit(1), false, "misc_dynamic"), Options{})
		r.expect(t, true, 0)
		r.expect(t, false, 0)
	})
	t.Run("arguments without a shell", func(t *testing.T) {
		t.Parallel()
		r := startRun(t, miscConf(scriptPath("args")+` 'a b' '\$HOME'`, true, ""), Options{})
		r.expect(t, false, 0)
		ev := r.next(t, 2*time.Second)
		if !ev.Up {
			st := r.s.Snapshot()[0]
			t.Fatalf("script saw other arguments: %s / %s", ev.Reason, st.Checkers[0].LastReason)
		}
	})
	t.Run("hanging script killed at misc_timeout", func(t *testing.T) {
		t.Parallel()
		pidFile := filepath.Join(t.TempDir(), "hang.pid")
		r := startRun(t, miscConf(scriptPath("hang")+" "+pidFile, false, "misc_timeout 0.3"), Options{})
		r.expect(t, true, 0)
		ev := r.expect(t, false, 300*time.Millisecond)
		if !strings.Contains(ev.Reason, "timed out") {
			t.Errorf("reason %q", ev.Reason)
		}
		b, err := os.ReadFile(pidFile)
		if err != nil {
			t.Fatal(err)
		}
		pid, _ := strconv.Atoi(strings.TrimSpace(string(b)))
		// Signals are asynchronous: the child dies when next scheduled.
		for i := 0; i < 50 && pid > 0 && alive(pid); i++ {
			time.Sleep(10 * time.Millisecond)
		}
		if pid <= 0 || alive(pid) {
			t.Fatalf("the script's child %d survived its process group's kill by 500ms", pid)
		}
	})
}

// alive reports whether pid runs (a zombie waiting for its reaper does not).
func alive(pid int) bool {
	if syscall.Kill(pid, 0) != nil {
		return false
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	return i < 0 || i+2 >= len(s) || s[i+2] != 'Z'
}

// "user USERNAME": the script runs as that user (needs root).
func TestMiscUser(t *testing.T) {
	t.Parallel()
	if os.Geteuid() != 0 {
		t.Skip("needs root to change user")
	}
	r := startRun(t, miscConf(scriptPath("whoami"), true, "user nobody nogroup"), Options{})
	r.expect(t, false, 0)
	if ev := r.next(t, 2*time.Second); !ev.Up {
		t.Fatalf("script did not run as nobody:nogroup: %s / %s", ev.Reason, r.s.Snapshot()[0].Checkers[0].LastReason)
	}
}
