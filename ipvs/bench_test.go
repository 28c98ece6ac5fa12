package ipvs

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/lvsd/lvsd/conf"
)

// benchConf is 1,000 virtual servers × 10 real servers.
func benchConf(b testing.TB, w0 int) *conf.Config {
	var s strings.Builder
	for i := 0; i < 1000; i++ {
		fmt.Fprintf(&s, "virtual_server 10.100.%d.%d 80 {\n\tprotocol TCP\n\tlvs_sched wrr\n", i/250, i%250+1)
		for j := 0; j < 10; j++ {
			n, w := i*10+j, j+1
			if n == 0 {
				w = w0
			}
			fmt.Fprintf(&s, "\treal_server 10.200.%d.%d 80 {\n\t\tweight %d\n\t}\n", n/250, n%250+1, w)
		}
		s.WriteString("}\n")
	}
	cfg, _ := conf.Parse("bench.conf", s.String(), conf.Options{ConfigID: "bench"})
	if len(cfg.VirtualServers) != 1000 {
		b.Fatalf("%d virtual servers", len(cfg.VirtualServers))
	}
	return cfg
}

// BenchmarkStart measures the reconciler's own cost of programming 1,000
// virtual servers × 10 real servers into an empty (fake) kernel: desired
// state, diff and bookkeeping, without netlink.
func BenchmarkStart(b *testing.B) {
	cfg := benchConf(b, 1)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		k := newFakeKernel()
		r := New(cfg, k, Options{Logger: quietLogger(), RepairInterval: -1})
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error)
		go func() { done <- r.Run(ctx) }()
		<-r.Ready()
		b.StopTimer()
		if n := r.Counters().Mutations(); n != 11000 {
			b.Fatalf("%d mutations", n)
		}
		cancel()
		<-done
		b.StartTimer()
	}
}

// BenchmarkReload measures a reload of 1,000 × 10 with one weight changed.
func BenchmarkReload(b *testing.B) {
	cfgs := []*conf.Config{benchConf(b, 1), benchConf(b, 77)}
	k := newFakeKernel()
	r := New(cfgs[0], k, Options{Logger: quietLogger(), RepairInterval: -1})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go r.Run(ctx)
	<-r.Ready()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		r.state.Lock()
		r.mu.Lock()
		r.pendingCfg = cfgs[(i+1)%2]
		r.mu.Unlock()
		r.processPending()
		r.state.Unlock()
	}
	b.StopTimer()
	if n := r.Counters().Mutations(); n > 11000+uint64(b.N) {
		b.Fatalf("%d mutations", n)
	}
}
