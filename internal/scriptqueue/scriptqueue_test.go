package scriptqueue

import (
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// Jobs run in the order pushed, one at a time, while Push returns at once.
func TestOrderOneAtATime(t *testing.T) {
	var wg sync.WaitGroup
	var mu sync.Mutex
	var got []int
	var running, overlap atomic.Int32
	release := make(chan struct{})
	q := New(func(i int) {
		if running.Add(1) > 1 {
			overlap.Store(1)
		}
		if i == 0 {
			<-release // the first job holds the queue
		}
		mu.Lock()
		got = append(got, i)
		mu.Unlock()
		running.Add(-1)
	}, &wg, 0)
	q.Push(0)
	for i := 1; i < 50; i++ {
		if !q.Push(i, i+1000) {
			t.Fatal("unbounded queue refused a job")
		}
	}
	if q.Idle() {
		t.Fatal("idle with jobs")
	}
	close(release)
	wg.Wait()
	if !q.Idle() {
		t.Fatal("not idle once done")
	}
	if overlap.Load() != 0 {
		t.Fatal("two jobs ran at once")
	}
	want := []int{0}
	for i := 1; i < 50; i++ {
		want = append(want, i, i+1000)
	}
	if len(got) != len(want) {
		t.Fatalf("ran %d jobs, want %d", len(got), len(want))
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("job %d was %d, want %d (order kept)", i, got[i], want[i])
		}
	}
	// The queue starts again after it went idle.
	q.Push(7)
	wg.Wait()
	if got[len(got)-1] != 7 {
		t.Fatal("job pushed to an idle queue did not run")
	}
}

// The bound counts the waiting jobs, not the running one; a push that would
// pass it queues nothing.
func TestBound(t *testing.T) {
	var wg sync.WaitGroup
	release := make(chan struct{})
	var ran atomic.Int32
	q := New(func(int) { <-release; ran.Add(1) }, &wg, 3)
	if !q.Push(1) {
		t.Fatal("first push refused")
	}
	deadline := time.Now().Add(5 * time.Second)
	for { // wait until job 1 runs (no longer waiting)
		q.mu.Lock()
		n := len(q.jobs)
		q.mu.Unlock()
		if n == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("first job did not start")
		}
		time.Sleep(time.Millisecond)
	}
	if !q.Push(2, 3) {
		t.Fatal("push within the bound refused")
	}
	if q.Push(4, 5) {
		t.Fatal("push past the bound accepted")
	}
	if !q.Push(4) {
		t.Fatal("push up to the bound refused")
	}
	if q.Push(5) {
		t.Fatal("push past the bound accepted")
	}
	close(release)
	wg.Wait()
	if n := ran.Load(); n != 4 {
		t.Fatalf("%d jobs ran, want 4", n)
	}
}
