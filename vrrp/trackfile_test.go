package vrrp

import (
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/lvsd/lvsd/conf"
)

func TestParseTrackValue(t *testing.T) {
	for _, c := range []struct {
		in   string
		want int
		ok   bool
	}{
		{"", 0, true}, {"7\n", 7, true}, {"  -12 apples", -12, true}, {"+5", 5, true},
		{"0x1f", 31, true}, {"0X10", 16, true}, {"010", 8, true}, {"09", 0, true}, {"0x", 0, true},
		{"abc", 0, true}, {"2147483647", 2147483647, true}, {"-2147483648", -2147483648, true},
		{"2147483648", 0, false}, {"99999999999999999999", 0, false},
	} {
		got, ok := parseTrackValue([]byte(c.in))
		if got != c.want || ok != c.ok {
			t.Errorf("parseTrackValue(%q) = %d, %v; want %d, %v", c.in, got, ok, c.want, c.ok)
		}
	}
}

// A track_file's value: weight 0 is a FAULT on a non-zero value (reverse:
// on zero); otherwise value × weight (negated with reverse), limited to
// -254..254, -254 being a FAULT.
func TestTrackerFileValues(t *testing.T) {
	for _, c := range []struct {
		weight  int
		reverse bool
		value   int
		w       int
		fault   bool
	}{
		{0, false, 0, 0, false}, {0, false, 3, 0, true}, {0, true, 0, 0, true}, {0, true, -1, 0, false},
		{1, false, 10, 10, false}, {-10, false, 3, -30, false}, {-10, true, 3, 30, false},
		{1, false, 300, 254, false}, {1, false, -253, -253, false}, {1, false, -254, 0, true},
		{100, false, -3, 0, true}, {2147483647, false, 2, 254, false},
	} {
		tr, err := newTracker([]track{{Name: "file:f", Weight: c.weight, Reverse: c.reverse, File: true}})
		if err != nil {
			t.Fatal(err)
		}
		tr.SetValue("file:f", c.value)
		if w, f := tr.Status(); w != c.w || f != c.fault {
			t.Errorf("weight %d reverse %v value %d: status %d fault %v, want %d %v", c.weight, c.reverse, c.value, w, f, c.w, c.fault)
		}
	}
	tr, _ := newTracker([]track{{Name: "file:f", Weight: -5, File: true, InitValue: 2}, {Name: "script:s", Weight: 3, InitUp: true}})
	if w, f := tr.Status(); w != -7 || f {
		t.Fatalf("initial status %d %v, want -7 false", w, f)
	}
	if !tr.SetValue("file:f", 0) || tr.SetValue("file:f", 0) || tr.SetValue("script:s", 9) {
		t.Fatal("SetValue reports changes wrongly")
	}
}

// The watcher sees a file written in place, moved in, and deleted (0).
func TestFileWatcher(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "prio")
	var mu sync.Mutex
	var got []int
	report := func(name string, v int) {
		mu.Lock()
		got = append(got, v)
		mu.Unlock()
	}
	w, err := startFileWatcher(map[string]conf.TrackFile{"f": {Name: "f", Path: path}}, report, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	defer w.close()
	wait := func(want int) {
		t.Helper()
		deadline := time.Now().Add(5 * time.Second)
		for time.Now().Before(deadline) {
			mu.Lock()
			n := len(got)
			last := 0
			if n > 0 {
				last = got[n-1]
			}
			mu.Unlock()
			if n > 0 && last == want {
				return
			}
			time.Sleep(10 * time.Millisecond)
		}
		t.Fatalf("values reported %v, want the last %d", got, want)
	}
	if err := os.WriteFile(path, []byte("5\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	wait(5)
	tmp := filepath.Join(dir, ".prio.tmp")
	if err := os.WriteFile(tmp, []byte("-3"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
	wait(-3)
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	wait(0)
	// Other files of the directory are not reported.
	mu.Lock()
	n := len(got)
	mu.Unlock()
	if err := os.WriteFile(filepath.Join(dir, "other"), []byte("9"), 0o644); err != nil {
		t.Fatal(err)
	}
	time.Sleep(100 * time.Millisecond)
	mu.Lock()
	defer mu.Unlock()
	for _, v := range got[n:] {
		if v == 9 {
			t.Fatalf("another file's value reported: %v", got)
		}
	}
}

func TestInitTrackFile(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "f")
	f := &conf.TrackFile{Path: p, InitFile: true, InitValue: 4}
	if err := initTrackFile(f); err != nil {
		t.Fatal(err)
	}
	if v, _ := readTrackFile(p); v != 4 {
		t.Fatalf("value %d after init_file 4", v)
	}
	os.WriteFile(p, []byte("7"), 0o644)
	initTrackFile(f)
	if v, _ := readTrackFile(p); v != 7 {
		t.Fatalf("init_file without overwrite replaced the value: %d", v)
	}
	f.InitOverwrite = true
	initTrackFile(f)
	if v, _ := readTrackFile(p); v != 4 {
		t.Fatalf("init_file overwrite: %d", v)
	}
}

// A file whose directory cannot be watched does not stop the others.
func TestFileWatcherMissingDir(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "ok")
	got := make(chan int, 8)
	w, err := startFileWatcher(map[string]conf.TrackFile{
		"gone": {Name: "gone", Path: filepath.Join(dir, "no", "such", "dir", "f")},
		"ok":   {Name: "ok", Path: path},
	}, func(name string, v int) {
		if name == "ok" {
			got <- v
		}
	}, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	defer w.close()
	if err := os.WriteFile(path, []byte("12"), 0o644); err != nil {
		t.Fatal(err)
	}
	select {
	case v := <-got:
		if v != 12 {
			t.Fatalf("value %d", v)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no report")
	}
}
