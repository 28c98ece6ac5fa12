package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/lvsd/lvsd/conf"
	"github.com/lvsd/lvsd/ipvs"
	"github.com/lvsd/lvsd/status"
)

// weight returns the weight of a destination (-1: absent).
func (k *memKernel) weight(sk ipvs.ServiceKey, dk ipvs.DestKey) int {
	k.mu.Lock()
	defer k.mu.Unlock()
	if s := k.svcs[sk]; s != nil {
		if d, ok := s.Dests[dk]; ok {
			return d.Weight
		}
	}
	return -1
}

// reloadBenchConfig is the lab benchmark's configuration (integration/
// ipvs_bench_test.go): 1,000 virtual servers × 10 real servers, the first
// real server's weight w0.
func reloadBenchConfig(w0 int) string {
	var b strings.Builder
	b.WriteString("global_defs {\n\trouter_id bench\n}\n")
	for i := 0; i < 1000; i++ {
		fmt.Fprintf(&b, "virtual_server 10.100.%d.%d 80 {\n\tprotocol TCP\n\tlvs_sched wrr\n\tlvs_method NAT\n", i/250, i%250+1)
		for j := 0; j < 10; j++ {
			n, w := i*10+j, j+1
			if n == 0 {
				w = w0
			}
			fmt.Fprintf(&b, "\treal_server 10.200.%d.%d 80 {\n\t\tweight %d\n\t}\n", n/250, n%250+1, w)
		}
		b.WriteString("}\n")
	}
	return b.String()
}

// BenchmarkReloadOneWeight is lvsd's SIGHUP path natively, on the lab
// benchmark's configuration with one real server's weight changed: read and
// parse the file, check it against the running one, hand it to the
// subsystems, until the reconciler has sent the change to the kernel (an
// in-memory one here: the lab VM runs the real kernel, but emulated). Each
// reload must cost exactly one mutation.
func BenchmarkReloadOneWeight(b *testing.B) {
	dir := b.TempDir()
	path := filepath.Join(dir, "keepalived.conf")
	texts := []string{reloadBenchConfig(1), reloadBenchConfig(77)}
	if err := os.WriteFile(path, []byte(texts[0]), 0o644); err != nil {
		b.Fatal(err)
	}
	o := &options{configFile: path, checkOnly: true}
	cfg, running := conf.Load(path, loadOptions(o))
	s := &server{o: o, diags: running}
	k := newMemKernel()
	d, err := newDaemon(o, slog.New(slog.NewTextHandler(io.Discard, nil)), cfg, deps{newKernel: func() (ipvs.Kernel, error) { return k, nil }})
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer func() { cancel(); d.wait() }()
	d.start(ctx, cfg)
	<-d.programmed()
	sk := ipvs.ServiceKey{Family: ipvs.INET, Proto: ipvs.TCP, Addr: netip.MustParseAddr("10.100.0.1"), Port: 80}
	dk := ipvs.DestKey{Addr: netip.MustParseAddr("10.200.0.1"), Port: 80}
	time.Sleep(100 * time.Millisecond) // the checkers' initial events
	k.mu.Lock()
	m0 := k.mutations
	k.mu.Unlock()
	if m0 != 11000 {
		b.Fatalf("start-up: %d mutations, want 11000", m0)
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		next := (i + 1) % 2
		if err := os.WriteFile(path, []byte(texts[next]), 0o644); err != nil {
			b.Fatal(err)
		}
		want := []int{1, 77}[next]
		b.StartTimer()

		// What serve does on SIGHUP (without the logging and sd_notify).
		restore := relaxGC()
		cfg, diags := conf.Load(path, loadOptions(o))
		if err := s.validate(diags); err != nil {
			b.Fatalf("reload rejected: %v", err)
		}
		s.diags = diags
		d.apply(cfg)
		restore()
		for k.weight(sk, dk) != want {
			<-k.changed
		}
	}
	b.StopTimer()
	k.mu.Lock()
	got := k.mutations - m0
	k.mu.Unlock()
	b.ReportMetric(float64(got)/float64(b.N), "mutations/op")
	if got != b.N {
		b.Errorf("%d reloads made %d mutations, want 1 each", b.N, got)
	}
}

// A reload bringing the first virtual server into a configuration that had
// none programs it, and the status shows it: the reconciler built at start
// idled until then.
func TestReloadStartsIPVS(t *testing.T) {
	o := &options{checkOnly: true}
	parse := func(text string) *conf.Config {
		cfg, diags := conf.Parse("t.conf", text, conf.Options{ConfigID: "t"})
		if conf.MaxLevel(diags) >= conf.Error {
			t.Fatalf("%v", diags)
		}
		return cfg
	}
	cfg := parse("global_defs {\n router_id t\n}\n")
	k := newMemKernel()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	rec := newRecorders()
	dp := rec.deps()
	dp.newKernel = func() (ipvs.Kernel, error) { return k, nil }
	d, err := newDaemon(o, log, cfg, dp)
	if err != nil {
		t.Fatal(err)
	}
	op := newOps(o, log, cfg, time.Now(), d, rec)
	ctx, cancel := context.WithCancel(context.Background())
	defer func() { cancel(); d.wait() }()
	d.start(ctx, cfg)
	<-d.programmed()
	if st := status.Build(op.src); st.IPVS.Running || len(st.VirtualServers) != 0 || k.mutationCount() != 0 {
		t.Fatalf("IPVS is reported or programmed without a virtual server: %+v, %d mutations", st.IPVS, k.mutationCount())
	}
	cfg = parse("virtual_server 192.0.2.1 80 {\n protocol TCP\n real_server 10.0.0.1 80 {\n  weight 3\n }\n}\n")
	d.apply(cfg)
	op.reloaded(o, cfg, nil)
	sk := ipvs.ServiceKey{Family: ipvs.INET, Proto: ipvs.TCP, Addr: netip.MustParseAddr("192.0.2.1"), Port: 80}
	deadline := time.After(5 * time.Second)
	for k.weight(sk, ipvs.DestKey{Addr: netip.MustParseAddr("10.0.0.1"), Port: 80}) != 3 {
		select {
		case <-k.changed:
		case <-deadline:
			t.Fatalf("after the reload the kernel has weight %d, want 3", k.weight(sk, ipvs.DestKey{Addr: netip.MustParseAddr("10.0.0.1"), Port: 80}))
		}
	}
	st := status.Build(op.src)
	if !st.IPVS.Running || len(st.VirtualServers) != 1 {
		t.Fatalf("status after the reload: ipvs %+v, %d virtual servers", st.IPVS, len(st.VirtualServers))
	}
}
