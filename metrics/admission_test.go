package metrics

import (
	"context"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"
)

// oneAtATime: two requests admitted, served one after the other; a third
// gets 503 at once; an admitted request whose client leaves while it waits
// frees its place without being served.
func TestOneAtATime(t *testing.T) {
	release := make(chan struct{})
	var running, most, served atomic.Int32
	h := oneAtATime(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := running.Add(1)
		if n > most.Load() {
			most.Store(n)
		}
		<-release
		running.Add(-1)
		served.Add(1)
	}), 2)
	do := func(ctx context.Context) chan int {
		ch := make(chan int, 1)
		go func() {
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil).WithContext(ctx))
			ch <- rec.Code
		}()
		return ch
	}
	first := do(context.Background())
	for running.Load() != 1 {
		time.Sleep(time.Millisecond)
	}
	ctx, cancel := context.WithCancel(context.Background())
	second := do(ctx) // admitted, waiting
	time.Sleep(20 * time.Millisecond)
	if code := <-do(context.Background()); code != http.StatusServiceUnavailable {
		t.Fatalf("third request: %d, want 503", code)
	}
	cancel() // the waiting client leaves: its place is free again
	if code := <-second; code != http.StatusOK || served.Load() != 0 {
		t.Fatalf("the request that left: %d, %d served", code, served.Load())
	}
	third := do(context.Background())
	time.Sleep(20 * time.Millisecond)
	if running.Load() != 1 {
		t.Fatalf("%d requests collected at once", running.Load())
	}
	close(release)
	if <-first != http.StatusOK || <-third != http.StatusOK {
		t.Fatal("admitted requests not served")
	}
	if most.Load() != 1 || served.Load() != 2 {
		t.Fatalf("at most %d at once, %d served; want 1 and 2", most.Load(), served.Load())
	}
}
