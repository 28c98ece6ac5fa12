package lab

import (
	"archive/tar"
	"bufio"
	"bytes"
	"context"
	_ "embed"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
)

//go:embed init.sh
var initScript []byte

// Scenario is one VM run.
type Scenario struct {
	Name string
	// Script is /lab/scenario.sh, sourced by busybox sh in /lab after the
	// modules are loaded and /lab/lib.sh (the topology helpers) is sourced.
	// It writes whatever it wants returned under /results; its exit status
	// is Result.ExitCode. Note busybox sh runs its applets before PATH:
	// lib.sh makes "ip" iproute2's; call other real tools by full path if
	// busybox has an applet of the same name.
	Script string
	// Files are placed under /lab/files/ (relative names).
	Files map[string][]byte
	// Timeout bounds the whole VM run (default 3 minutes). The scenario
	// itself is killed inside the VM 15 s earlier so results still come back.
	Timeout time.Duration
	// Console, when set, receives the console output live.
	Console io.Writer
	// MemoryMB and CPUs size the VM (defaults 1024 and 2).
	MemoryMB int
	CPUs     int
	// WithLVSD requires the lvsd binary in the image.
	WithLVSD bool
	// HostFiles are host files (absolute paths: programs whose shared
	// libraries the base image already has, e.g. Debian's Go-built
	// prometheus) copied into the VM at the same path.
	HostFiles []string
	// Logf receives the lab's progress lines for this run (default: the
	// Logf given to Build).
	Logf Logf
}

// Result is what a scenario run returned.
type Result struct {
	ExitCode int // scenario exit status, -1 when unknown
	TimedOut bool
	Console  string            // the serial console, \r stripped
	Files    map[string][]byte // /results of the VM, by relative path
	Accel    string            // "kvm" or "tcg"
	Boot     time.Duration     // qemu start until the VM ran the scenario
	Scenario time.Duration     // scenario run time
	Total    time.Duration     // qemu start until qemu exit
}

// File returns a result file as a string ("" when absent).
func (r *Result) File(name string) string { return string(r.Files[name]) }

// probeScript is /init of the accelerator probe VM.
const probeScript = "#!/bin/sh\necho LVSD-LAB-PROBE-OK\nreboot -f\n"

// chooseAccel picks "kvm" or "tcg". The KVM probe result is cached in the
// image directory per host boot.
func (img *Image) chooseAccel(ctx context.Context) (string, error) {
	switch a := os.Getenv(EnvAccel); a {
	case "kvm", "tcg":
		return a, nil
	case "":
	default:
		return "", fmt.Errorf("lab: %s=%q: want kvm or tcg", EnvAccel, a)
	}
	f, err := os.OpenFile("/dev/kvm", os.O_RDWR, 0)
	if err != nil {
		img.logf.printf("lab: /dev/kvm not usable (%v): using TCG emulation (slower)", err)
		return "tcg", nil
	}
	f.Close()
	bootID, _ := os.ReadFile("/proc/sys/kernel/random/boot_id")
	stamp := filepath.Join(img.Dir, "accel-"+strings.TrimSpace(string(bootID)))
	if b, err := os.ReadFile(stamp); err == nil {
		return strings.TrimSpace(string(b)), nil
	}
	t0 := time.Now()
	accel := "tcg"
	if img.probeKVM(ctx) {
		accel = "kvm"
		img.logf.printf("lab: KVM probe booted in %v: using KVM", time.Since(t0).Round(time.Millisecond))
	} else {
		img.logf.printf("lab: /dev/kvm opens but a KVM guest did not boot within %v (nested KVM?): using TCG emulation", time.Since(t0).Round(time.Second))
	}
	old, _ := filepath.Glob(filepath.Join(img.Dir, "accel-*"))
	for _, o := range old {
		os.Remove(o)
	}
	os.WriteFile(stamp, []byte(accel+"\n"), 0o644)
	return accel, nil
}

func (img *Image) probeKVM(ctx context.Context) bool {
	qemu, err := lookTool("qemu-system-x86_64")
	if err != nil {
		return false
	}
	dir, err := os.MkdirTemp("", "lvsd-lab-probe-")
	if err != nil {
		return false
	}
	defer os.RemoveAll(dir)
	t := newTree()
	t.file("init", 0o755, []byte(probeScript))
	var ov bytes.Buffer
	if err := t.write(&ov, os.ReadFile); err != nil {
		return false
	}
	initrd := filepath.Join(dir, "initrd")
	if err := catFiles(initrd, img.Base, ov.Bytes()); err != nil {
		return false
	}
	pctx, cancel := context.WithTimeout(ctx, 12*time.Second)
	defer cancel()
	args := append(qemuArgs(initrd, img.Kernel, "", 512, 1), "-enable-kvm", "-cpu", "host")
	cmd := exec.CommandContext(pctx, qemu, args...)
	cmd.WaitDelay = 2 * time.Second
	out, _ := cmd.Output()
	return bytes.Contains(out, []byte("LVSD-LAB-PROBE-OK"))
}

// qemuArgs is the VM without accelerator options: no network device, the
// serial console on stdout, an optional scratch disk, exit on reboot.
func qemuArgs(initrd, kernel, disk string, mem, cpus int) []string {
	args := []string{
		"-nodefaults", "-no-user-config", "-no-reboot",
		"-m", strconv.Itoa(mem), "-smp", strconv.Itoa(cpus),
		"-display", "none",
		"-chardev", "stdio,id=con0,signal=off", "-serial", "chardev:con0",
		"-kernel", kernel, "-initrd", initrd,
		"-append", "console=ttyS0 quiet loglevel=4 panic=-1 oops=panic",
	}
	if disk != "" {
		args = append(args, "-drive", "file="+disk+",format=raw,if=virtio,cache=unsafe")
	}
	return args
}

// overlay builds the per-run initramfs archive appended to the base one.
func (img *Image) overlay(sc Scenario, timeout time.Duration) ([]byte, error) {
	t := newTree()
	t.file("init", 0o755, initScript)
	t.file("lab/lib.sh", 0o644, libScript)
	t.file("lab/scenario.sh", 0o755, []byte(sc.Script))
	inner := timeout - 15*time.Second
	if inner < 10*time.Second {
		inner = timeout * 3 / 4
	}
	t.file("lab/timeout", 0o644, []byte(strconv.Itoa(int(inner.Seconds()))+"\n"))
	t.file("lab/bin/labhelper", 0o755, img.Helper)
	if img.LVSD != nil {
		t.file("usr/sbin/lvsd", 0o755, img.LVSD)
	}
	for _, p := range sc.HostFiles {
		fi, err := os.Stat(p)
		if err != nil || !filepath.IsAbs(p) {
			return nil, fmt.Errorf("lab: host file %q: %v", p, err)
		}
		t.hostFile(strings.TrimPrefix(p, "/"), uint32(fi.Mode().Perm()), p)
	}
	names := make([]string, 0, len(sc.Files))
	for n := range sc.Files {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		if strings.Contains(n, "..") {
			return nil, fmt.Errorf("lab: bad file name %q", n)
		}
		t.file(path.Join("lab/files", n), 0o644, sc.Files[n])
	}
	var buf bytes.Buffer
	if err := t.write(&buf, os.ReadFile); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

var exitRe = regexp.MustCompile(`LVSD-LAB-EXIT (\d+) results=(\w+)`)

// Run boots the VM, runs the scenario and collects its results. The error
// is non-nil when the VM did not complete (timeout, qemu failure, results
// lost); the Result is returned anyway with whatever was observed. A
// non-zero scenario exit status is not an error: see Result.ExitCode.
func (img *Image) Run(ctx context.Context, sc Scenario) (*Result, error) {
	res := &Result{ExitCode: -1, Files: map[string][]byte{}}
	logf := img.logf
	if sc.Logf != nil {
		logf = sc.Logf
	}
	if sc.WithLVSD && img.LVSD == nil {
		return res, fmt.Errorf("lab: scenario %q needs lvsd but it did not build: %v", sc.Name, img.LVSDError)
	}
	timeout := sc.Timeout
	if timeout <= 0 {
		timeout = 3 * time.Minute
	}
	mem, cpus := sc.MemoryMB, sc.CPUs
	if mem <= 0 {
		mem = 1024
	}
	if cpus <= 0 {
		cpus = 2
	}
	qemu, err := lookTool("qemu-system-x86_64")
	if err != nil {
		return res, &MissingHostError{Missing: []string{"qemu-system-x86_64"}, Pkgs: []string{"qemu-system-x86"}}
	}
	dir, err := os.MkdirTemp("", "lvsd-lab-run-")
	if err != nil {
		return res, err
	}
	defer os.RemoveAll(dir)

	ov, err := img.overlay(sc, timeout)
	if err != nil {
		return res, err
	}
	initrd := filepath.Join(dir, "initrd")
	if err := catFiles(initrd, img.Base, ov); err != nil {
		return res, err
	}
	disk := filepath.Join(dir, "results.img")
	if err := makeSparse(disk, 256<<20); err != nil {
		return res, err
	}
	args := qemuArgs(initrd, img.Kernel, disk, mem, cpus)
	res.Accel = img.Accel
	if res.Accel == "kvm" {
		args = append(args, "-enable-kvm", "-cpu", "host")
	} else {
		args = append(args, "-accel", "tcg,thread=multi", "-cpu", "max")
	}
	rctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	cmd := exec.CommandContext(rctx, qemu, args...)
	cmd.Stdin = nil
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return res, err
	}
	cmd.WaitDelay = 5 * time.Second
	start := time.Now()
	if err := cmd.Start(); err != nil {
		return res, fmt.Errorf("lab: starting qemu: %w", err)
	}
	logf.printf("lab: %s: VM started (%s, %d MiB, %d CPUs, timeout %v)", sc.Name, res.Accel, mem, cpus, timeout)

	var console strings.Builder
	var mu sync.Mutex
	var booted, done time.Time
	readDone := make(chan struct{})
	go func() {
		defer close(readDone)
		r := bufio.NewReaderSize(stdout, 64<<10)
		for {
			line, err := r.ReadString('\n')
			if line != "" {
				line = strings.ReplaceAll(line, "\r", "")
				mu.Lock()
				console.WriteString(line)
				now := time.Now()
				if booted.IsZero() && strings.Contains(line, "LVSD-LAB-BOOTED") {
					booted = now
				}
				if done.IsZero() && strings.Contains(line, "LVSD-LAB-SCENARIO-DONE") {
					done = now
				}
				mu.Unlock()
				if sc.Console != nil {
					io.WriteString(sc.Console, line)
				}
			}
			if err != nil {
				return
			}
		}
	}()
	<-readDone
	werr := cmd.Wait()
	res.Total = time.Since(start)
	mu.Lock()
	res.Console = console.String()
	if !booted.IsZero() {
		res.Boot = booted.Sub(start)
		if !done.IsZero() {
			res.Scenario = done.Sub(booted)
		}
	}
	mu.Unlock()
	if errors.Is(rctx.Err(), context.DeadlineExceeded) {
		res.TimedOut = true
	}
	m := exitRe.FindStringSubmatch(res.Console)
	if m != nil {
		res.ExitCode, _ = strconv.Atoi(m[1])
	}
	if files, err := readResults(disk); err == nil {
		res.Files = files
	} else if m != nil && m[2] == "ok" {
		return res, fmt.Errorf("lab: reading results: %w", err)
	}
	logf.printf("lab: %s: VM finished: exit=%d boot=%v scenario=%v total=%v", sc.Name, res.ExitCode,
		res.Boot.Round(time.Millisecond), res.Scenario.Round(time.Millisecond), res.Total.Round(time.Millisecond))
	switch {
	case res.TimedOut:
		return res, fmt.Errorf("lab: %s: VM killed after %v timeout", sc.Name, timeout)
	case ctx.Err() != nil:
		return res, ctx.Err()
	case m == nil:
		return res, fmt.Errorf("lab: %s: VM ended without an exit marker (qemu: %v; %s)", sc.Name, werr, strings.TrimSpace(stderr.String()))
	case m[2] != "ok":
		return res, fmt.Errorf("lab: %s: VM could not write its results", sc.Name)
	}
	return res, nil
}

func catFiles(dst, base string, extra []byte) error {
	b, err := os.ReadFile(base)
	if err != nil {
		return err
	}
	return os.WriteFile(dst, append(b, extra...), 0o644)
}

func makeSparse(p string, size int64) error {
	f, err := os.Create(p)
	if err != nil {
		return err
	}
	if err := f.Truncate(size); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// readResults reads the tar archive the VM wrote at the start of the disk.
func readResults(disk string) (map[string][]byte, error) {
	f, err := os.Open(disk)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	tr := tar.NewReader(f)
	files := map[string][]byte{}
	for i := 0; i < 100000; i++ {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return files, err
		}
		if h.Typeflag != tar.TypeReg {
			continue
		}
		b, err := io.ReadAll(io.LimitReader(tr, 128<<20))
		if err != nil {
			return files, err
		}
		files[strings.TrimPrefix(path.Clean(h.Name), "./")] = b
	}
	if len(files) == 0 {
		return files, errors.New("no files in the results archive")
	}
	return files, nil
}
