package healthcheck

import (
	"fmt"
	"runtime"
	"strings"
	"testing"
	"unsafe"

	"github.com/lvsd/lvsd/conf"
)

// maxBytesPerTCPCheck bounds the scheduler's memory per TCP_CHECK (issue 17;
// docs/BENCHMARKS.md): its checkState, its real server's rsState, the
// connector and the socket addresses of its lean connect, and its share of
// the scheduler's map, order and heap. The configuration model is not
// counted (conf owns it). Measured: 894 bytes (1,682 before the
// fingerprints became digests and the checker name, the dialer and the
// notify queue were made when needed).
const maxBytesPerTCPCheck = 1024

// TestSchedulerBytesPerCheck: the heap a scheduler of 10,000 TCP_CHECKs
// (100 virtual servers × 100 real servers) retains, per check.
func TestSchedulerBytesPerCheck(t *testing.T) {
	const nVS, nRS = 100, 100
	var b strings.Builder
	for v := range nVS {
		fmt.Fprintf(&b, "virtual_server 192.0.2.%d 80 {\n  delay_loop 60\n  lb_algo rr\n  lb_kind NAT\n  protocol TCP\n", v+1)
		for i := range nRS {
			fmt.Fprintf(&b, "  real_server 203.0.113.%d 80 {\n    weight 1\n    TCP_CHECK {\n      connect_timeout 3\n    }\n  }\n", i+1)
		}
		b.WriteString("}\n")
	}
	cfg, diags := conf.Parse("mem.conf", b.String(), conf.Options{ConfigID: "t"})
	if conf.MaxLevel(diags) >= conf.Error {
		t.Fatal(diags)
	}
	b = strings.Builder{}
	heap := func() uint64 {
		var ms runtime.MemStats
		runtime.GC()
		runtime.GC()
		runtime.ReadMemStats(&ms)
		return ms.HeapAlloc
	}
	before := heap()
	s := New(cfg, Options{})
	after := heap()
	runtime.KeepAlive(s)
	runtime.KeepAlive(cfg)
	n := 0
	for _, r := range s.order {
		n += len(r.checks)
	}
	if n != nVS*nRS {
		t.Fatalf("%d checkers, want %d", n, nVS*nRS)
	}
	per := int64(after-before) / int64(n)
	t.Logf("%d TCP_CHECKs: %d bytes per check (checkState %d, rsState %d, connector %d, rawConnect %d bytes)",
		n, per, unsafe.Sizeof(checkState{}), unsafe.Sizeof(rsState{}), unsafe.Sizeof(connector{}), unsafe.Sizeof(rawConnect{}))
	if per > maxBytesPerTCPCheck {
		t.Errorf("%d bytes per TCP_CHECK, want at most %d", per, maxBytesPerTCPCheck)
	}
}
