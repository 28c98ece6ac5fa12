// Package scriptqueue runs jobs one after the other, in the order they were
// queued, in a goroutine that lives while the queue has work: the notify
// scripts of a VRRP instance, sync group or real server, which must neither
// overlap nor change order, and the alert e-mail. Push never waits for a
// job; how a job runs (its timeout, what it logs, whether it still runs at
// shutdown) is the job runner's.
package scriptqueue

import "sync"

// Queue is a queue of jobs of type T; make one with New.
type Queue[T any] struct {
	run func(T)
	wg  *sync.WaitGroup
	max int

	mu      sync.Mutex
	jobs    []T // waiting, not the one running
	running bool
}

// New returns a queue whose jobs run with run. The goroutine that runs them
// is counted in wg from the Push that starts it until the queue is empty.
// max bounds the jobs waiting (0: no bound).
func New[T any](run func(T), wg *sync.WaitGroup, max int) *Queue[T] {
	return &Queue[T]{run: run, wg: wg, max: max}
}

// Push queues jobs, in order, after those already queued. It queues all of
// them or, when they would take the queue past its bound, none and reports
// false.
func (q *Queue[T]) Push(jobs ...T) bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.max > 0 && len(q.jobs)+len(jobs) > q.max {
		return false
	}
	q.jobs = append(q.jobs, jobs...)
	if q.running || len(q.jobs) == 0 {
		return true
	}
	q.running = true
	q.wg.Add(1)
	go q.work()
	return true
}

// Idle reports whether the queue has no job waiting or running.
func (q *Queue[T]) Idle() bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	return !q.running
}

func (q *Queue[T]) work() {
	defer q.wg.Done()
	for {
		q.mu.Lock()
		if len(q.jobs) == 0 {
			q.running = false
			q.mu.Unlock()
			return
		}
		j := q.jobs[0]
		var zero T
		q.jobs[0] = zero // the job is not kept by the array
		q.jobs = q.jobs[1:]
		q.mu.Unlock()
		q.run(j)
	}
}
