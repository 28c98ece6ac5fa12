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
// gets 503 at once; an admitted request whose context ends while it waits
// (an HTTP/1.0 scraper half-closing its side does that) is still served.
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
		w.Write([]byte("metrics"))
	}), 2)
	do := func(ctx context.Context) chan *httptest.ResponseRecorder {
		ch := make(chan *httptest.ResponseRecorder, 1)
		go func() {
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil).WithContext(ctx))
			ch <- rec
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
	if rec := <-do(context.Background()); rec.Code != http.StatusServiceUnavailable {
		t.Fatalf("third request: %d, want 503", rec.Code)
	}
	cancel() // the waiting scraper half-closed: it still wants its answer
	time.Sleep(20 * time.Millisecond)
	if running.Load() != 1 {
		t.Fatalf("%d requests collected at once", running.Load())
	}
	close(release)
	for i, ch := range []chan *httptest.ResponseRecorder{first, second} {
		if rec := <-ch; rec.Code != http.StatusOK || rec.Body.String() != "metrics" {
			t.Fatalf("admitted request %d: %d %q, want 200 with the metrics", i+1, rec.Code, rec.Body.String())
		}
	}
	if most.Load() != 1 || served.Load() != 2 {
		t.Fatalf("at most %d at once, %d served; want 1 and 2", most.Load(), served.Load())
	}
}
