package status

import (
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/lvsd/lvsd/conf"
	"github.com/lvsd/lvsd/vrrp"
)

// The recorder's status must be what vrrp's ScriptTracker tells the
// instances, run after run: drive a real tracker through the recorder with
// scripted results and compare after each run.
func TestScriptRecorderMatchesTracker(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for _, c := range []struct {
		rise, fall int
		initFail   bool
	}{{1, 1, false}, {1, 1, true}, {2, 3, false}, {3, 2, true}, {4, 1, false}, {1, 4, true}} {
		t.Run(fmt.Sprintf("rise%d_fall%d_initfail%v", c.rise, c.fall, c.initFail), func(t *testing.T) {
			results := make(chan bool)
			called := make(chan struct{})
			rec := NewScriptRecorder()
			cfg := vrrp.ScriptConfig{Name: "chk", Args: []string{"/bin/true"}, Interval: time.Millisecond, Timeout: time.Second,
				Rise: c.rise, Fall: c.fall, InitFail: c.initFail}
			fake := func(vrrp.ScriptConfig, *conf.Global) vrrp.ScriptExec {
				return func(ctx context.Context, _ time.Duration) (bool, string) {
					select {
					case called <- struct{}{}:
					case <-ctx.Done():
						return false, "stopped"
					}
					select {
					case ok := <-results:
						return ok, fmt.Sprint("ok=", ok)
					case <-ctx.Done():
						return false, "stopped"
					}
				}
			}
			exec := rec.ScriptExec(fake)(cfg, &conf.Global{})
			var mu sync.Mutex
			told := !c.initFail // what the instances assume before any report
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan struct{})
			go func() {
				defer close(done)
				vrrp.NewScriptTracker(cfg, exec, nil, slog.New(slog.DiscardHandler)).Run(ctx, func(up bool) { mu.Lock(); told = up; mu.Unlock() })
			}()
			defer func() { cancel(); <-done }()
			scripts := &conf.Config{Scripts: []*conf.VRRPScript{{Name: "chk", InitFail: c.initFail}}}
			wait := func() {
				select {
				case <-called:
				case <-time.After(5 * time.Second):
					t.Fatal("the tracker did not run the script")
				}
			}
			wait()
			for i := 0; i < 60; i++ {
				ok := rng.IntN(3) > 0
				results <- ok
				wait() // the run is accounted and reported
				mu.Lock()
				want := told
				mu.Unlock()
				got := rec.Scripts(scripts)[0]
				if got.Good != want || got.Runs != uint64(i+1) || got.LastOK != ok {
					t.Fatalf("run %d (ok=%v): recorder %+v, tracker told %v", i, ok, got, want)
				}
			}
		})
	}
}

func TestConfigScripts(t *testing.T) {
	cfg, _ := conf.Parse("t.conf", "vrrp_script a {\n script \"/bin/check a\"\n}\nvrrp_script b {\n script /bin/b\n init_fail\n}\n", conf.Options{})
	got := ConfigScripts(cfg)
	if len(got) != 2 || !got[0].Good || got[0].Command != "/bin/check a" || got[1].Good || got[1].Runs != 0 {
		t.Errorf("%+v", got)
	}
}
