package healthcheck

import (
	"context"
	"errors"
	"log/slog"
	"math/rand/v2"
	"net/netip"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/lvsd/lvsd/internal/clock"

	"github.com/lvsd/lvsd/conf"
)

// Event is a change of a real server's state: its initial state when the
// scheduler starts (or when a reload adds it), then every change of Up or
// Weight.
type Event struct {
	VS     string         // conf VirtualServer.Key()
	RS     netip.AddrPort // conf RealServer.AddrPort()
	Up     bool
	Weight int // weight set by misc_dynamic checkers; -1 when none (use the configured weight)
	Reason string
	At     time.Time
}

// Observation describes one check attempt, for metrics and benchmarks.
type Observation struct {
	VS       string
	RS       netip.AddrPort
	Type     string // checker type, e.g. TCP_CHECK
	Due      time.Time
	Start    time.Time
	Duration time.Duration
	OK       bool
	Retry    bool // the attempt was a retry after a failure
	Reason   string
}

// Options tune a Scheduler; the zero value is usable.
type Options struct {
	// Workers bounds the checks running at once (default 1024). A check due
	// while all are busy waits for the first free one.
	Workers int
	// Clock is the time source (default clock.System). With clock.System the
	// scheduler waits in its poller (an epoll instance with a timerfd) and
	// runs TCP_CHECKs in its own goroutine; with another clock (tests) it
	// waits on the clock's AfterFunc timers and runs every check in a worker.
	Clock clock.Clock
	// Logger receives transitions (default slog.Default()).
	Logger *slog.Logger
	// NotifyTimeout bounds notify_up / notify_down scripts (default 30s).
	NotifyTimeout time.Duration
	// Observe, when set, is called after every check attempt, from the
	// goroutine that ran it (the scheduler's own for TCP_CHECK); it must be
	// quick and safe for concurrent use.
	Observe func(Observation)
	// Alert, when set, is called on every checker transition (for
	// smtp_alert), with the scheduler's lock held: it must not block.
	Alert func(Alert)
	// RealServer, when set, is called where notify_up or notify_down run:
	// a real server's change of state (and, with rs_init_notifies, the
	// start of one that is up), with the scheduler's lock held: it must
	// not block (keepalived's FIFO RS line).
	RealServer func(vs *conf.VirtualServer, rs *conf.RealServer, up bool)
	// Started, when set, is called once Run has emitted the initial
	// states (and the rs_init_notifies RealServer calls), before any
	// check completes, with the scheduler's lock held: it must not block.
	Started func()
}

// Alert is one checker's transition.
type Alert struct {
	VS        *conf.VirtualServer
	RS        *conf.RealServer
	Checker   string // TCP_CHECK, HTTP_GET, ...
	CheckerUp bool   // the checker's new state
	Reason    string // the attempt's outcome ("connection refused", ...)
	Up        bool   // the real server's state after the change
	RSChanged bool   // the real server changed state with it
}

// DefaultWorkers is the default of Options.Workers.
const DefaultWorkers = 1024

// batchSlack lets one wake-up start the checks due within it.
const batchSlack = time.Millisecond

// Scheduler runs the health checks of a configuration: one goroutine keeps the
// checkers in a heap ordered by due time, runs each due TCP_CHECK itself
// (watching the connections still pending in its poller) and hands the other
// checks to worker goroutines, at most Options.Workers attempts at once.
type Scheduler struct {
	opts  Options
	clock clock.Clock
	log   *slog.Logger

	events chan Event
	evMu   sync.Mutex
	evq    []Event
	evSig  chan struct{}

	wake    chan struct{}
	jobs    chan job // to idle workers
	results chan completion
	started atomic.Bool
	wg      sync.WaitGroup // workers and notify scripts
	base    time.Time      // heap keys count from here

	mu       sync.Mutex
	global   conf.Global
	servers  map[rsKey]*rsState
	order    []*rsState
	local    map[netip.Addr]bool   // addresses on this host (ha_suspend); nil: unknown
	heap     timeHeap[*checkState] // by due time, then by when scheduled
	ready    []*checkState         // due, waiting for a free worker
	inflight int
	running  bool
	ctx      context.Context
	seq      uint64

	// run goroutine only
	timer   clock.Timer
	armed   bool
	armedAt time.Time
	workers int // started

	// poll is the poller Run waits in, if any (clock.System on Linux); the
	// rest is its run goroutine's only.
	poll    atomic.Pointer[poller]
	pending map[int]*pendingConn   // by socket
	pendq   timeHeap[*pendingConn] // by deadline
	settled []completion           // to apply
	quick   []job
	wall    time.Time // the last time.Now(), for pollNow

	// test hooks
	randN     func(n int64) int64
	newProber func(c *conf.Checker, rs *conf.RealServer, g *conf.Global) (prober, error)
}

type completion struct {
	c          *checkState
	res        result
	start, end time.Time
}

// job is an attempt handed to a worker; it carries what the worker may read.
type job struct {
	c     *checkState
	typ   string
	p     prober
	due   time.Time
	retry bool
}

// New builds the scheduler of cfg; nothing runs before Run.
func New(cfg *conf.Config, opts Options) *Scheduler {
	return newScheduler(cfg, opts, nil)
}

func newScheduler(cfg *conf.Config, opts Options, mk func(*conf.Checker, *conf.RealServer, *conf.Global) (prober, error)) *Scheduler {
	if opts.Workers <= 0 {
		opts.Workers = DefaultWorkers
	}
	if opts.Clock == nil {
		opts.Clock = clock.System{}
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.NotifyTimeout <= 0 {
		opts.NotifyTimeout = 30 * time.Second
	}
	if mk == nil {
		mk = newProber
	}
	s := &Scheduler{
		opts:      opts,
		clock:     opts.Clock,
		log:       opts.Logger,
		events:    make(chan Event, 64),
		evSig:     make(chan struct{}, 1),
		wake:      make(chan struct{}, 1),
		jobs:      make(chan job),
		results:   make(chan completion, opts.Workers),
		base:      opts.Clock.Now(),
		servers:   map[rsKey]*rsState{},
		randN:     rand.Int64N,
		newProber: mk,
	}
	s.Apply(cfg)
	return s
}

// Events delivers real server state changes. It is closed when Run returns.
// Events are queued without bound and never dropped while Run runs.
func (s *Scheduler) Events() <-chan Event { return s.events }

// Run checks until ctx is done. It first emits the initial state of every real
// server, then starts each checker after a random delay in [0, warmup]. It
// returns nil once ctx is done and the running checks have stopped.
func (s *Scheduler) Run(ctx context.Context) error {
	if !s.started.CompareAndSwap(false, true) {
		return errors.New("healthcheck: Run called twice")
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	fwdDone := make(chan struct{})
	go func() {
		defer close(fwdDone)
		s.forward(ctx)
	}()

	s.mu.Lock()
	s.start(ctx, s.clock.Now())
	s.mu.Unlock()

	if _, ok := s.clock.(clock.System); ok {
		p, err := newPoller()
		if err == nil {
			err = s.runPolled(ctx, p)
			s.poll.Store(nil)
			if err == nil || ctx.Err() != nil {
				s.mu.Lock()
				s.running = false
				s.mu.Unlock()
				for fd := range s.pending {
					closeFD(fd)
				}
				s.wg.Wait()
				p.close()
				<-fwdDone
				return nil
			}
			// Not expected: the poller failed. Its pending attempts
			// fail, and the loop below takes over.
			s.log.Error("health checks: poller failed, waiting on timers and channels instead", "err", err)
			s.mu.Lock()
			for fd, pc := range s.pending {
				closeFD(fd)
				s.complete(completion{c: pc.j.c, res: fail("connect: %v", err), start: pc.start, end: s.clock.Now()})
			}
			s.pending, s.pendq = nil, nil
			s.applyOutcomes()
			s.mu.Unlock()
			p.close()
		} else {
			s.log.Debug("health checks wait on timers and channels", "reason", err)
		}
	}

	for {
		s.mu.Lock()
		now := s.clock.Now()
		if s.armed && !now.Before(s.armedAt) {
			s.armed = false
		}
		s.popDue(now)
		for s.inflight < s.opts.Workers {
			c, ok := s.takeReady()
			if !ok {
				break
			}
			s.dispatch(ctx, job{c: c, typ: c.cfg.Type, p: c.p, due: c.due, retry: c.isRetry})
		}
		next, any := s.nextDue()
		s.mu.Unlock()
		if any {
			s.arm(now, next)
		}

		select {
		case <-ctx.Done():
			s.mu.Lock()
			s.running = false
			s.mu.Unlock()
			if s.timer != nil {
				s.timer.Stop()
			}
			s.wg.Wait()
			<-fwdDone
			return nil
		case <-s.wake:
		case r := <-s.results:
			s.mu.Lock()
			s.complete(r)
			for i := 0; i < s.opts.Workers; i++ { // drain what else has finished
				select {
				case r = <-s.results:
					s.complete(r)
					continue
				default:
				}
				break
			}
			s.mu.Unlock()
		}
	}
}

// arm makes sure the run loop wakes up at next.
func (s *Scheduler) arm(now, next time.Time) {
	if s.armed && !next.Before(s.armedAt) {
		return
	}
	if s.timer != nil {
		s.timer.Stop()
	}
	s.armed, s.armedAt = true, next
	s.timer = s.clock.AfterFunc(next.Sub(now), s.nudge)
}

func (s *Scheduler) nudge() {
	if p := s.poll.Load(); p != nil {
		p.wake()
		return
	}
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// dispatch hands a job to an idle worker, or starts a worker for it. Workers
// are started as needed, at most Options.Workers, and stay until Run ends: a
// goroutine per attempt would grow a fresh stack every time.
func (s *Scheduler) dispatch(ctx context.Context, j job) {
	select {
	case s.jobs <- j:
		return
	default:
	}
	if s.workers >= s.opts.Workers {
		// inflight < Workers <= started workers: one is about to be idle
		// (it has delivered its result and is coming back for a job),
		// unless Run is ending.
		select {
		case s.jobs <- j:
		case <-ctx.Done():
			s.inflight--
			j.c.running = false
		}
		return
	}
	s.workers++
	s.wg.Add(1)
	go s.worker(ctx, j)
}

func (s *Scheduler) worker(ctx context.Context, j job) {
	defer s.wg.Done()
	for {
		s.execute(ctx, j)
		select {
		case j = <-s.jobs:
		case <-ctx.Done():
			return
		}
	}
}

// execute runs one attempt; it owns no state but the job.
func (s *Scheduler) execute(ctx context.Context, j job) {
	start := s.clock.Now()
	res := j.p.probe(ctx)
	end := s.clock.Now()
	s.observe(j, res, start, end)
	// Never blocks: results has room for every running check.
	s.results <- completion{c: j.c, res: res, start: start, end: end}
	if p := s.poll.Load(); p != nil {
		p.wake()
	}
}

func (s *Scheduler) observe(j job, res result, start, end time.Time) {
	if s.opts.Observe != nil {
		s.opts.Observe(Observation{VS: j.c.rs.key.vs, RS: j.c.rs.key.rs, Type: j.typ, Due: j.due,
			Start: start, Duration: end.Sub(start), OK: res.ok, Retry: j.retry, Reason: res.reason})
	}
}

// pendingConn is an attempt of a quickProber whose connection is pending.
type pendingConn struct {
	j        job
	p        quickProber
	fd       int
	start    time.Time
	deadline time.Time
	idx      int // in pendq
}

// runPolled is Run's loop in a poller: TCP_CHECKs (quickProbers) run in this
// loop, from the socket to the outcome, with the connections still pending
// watched by the poller; the other checks go to workers, which wake the
// poller with their results. It returns once ctx is done.
func (s *Scheduler) runPolled(ctx context.Context, p *poller) error {
	s.pending = map[int]*pendingConn{}
	s.poll.Store(p)
	stop := context.AfterFunc(ctx, p.wake)
	defer stop()
	// Time is read as seldom as it can be: once per wake-up and once per
	// attempt (an attempt ends when the next one starts).
	return p.run(s.connEvent, func() (now time.Time, deadline time.Time, stop bool) {
		if ctx.Err() != nil {
			return now, time.Time{}, true
		}
		now = s.pollNow()
		s.expire(now)

		s.mu.Lock()
		s.applyOutcomes()
		s.popDue(now)
		s.quick = s.quick[:0]
		for s.inflight < s.opts.Workers {
			c, ok := s.takeReady()
			if !ok {
				break
			}
			j := job{c: c, typ: c.cfg.Type, p: c.p, due: c.due, retry: c.isRetry}
			if qp, ok := j.p.(quickProber); ok && qp.quick() {
				s.quick = append(s.quick, j)
				continue
			}
			s.dispatch(ctx, j)
		}
		if len(s.quick) > 0 {
			s.mu.Unlock()
			for i := range s.quick {
				now = s.begin(p, s.quick[i], now)
				s.quick[i] = job{}
			}
			s.mu.Lock()
			s.applyOutcomes()
		}
		next, any := s.nextDue()
		s.mu.Unlock()

		if len(s.pendq) > 0 && (!any || s.pendq[0].item.deadline.Before(next)) {
			next, any = s.pendq[0].item.deadline, true
		}
		if !any {
			return now, time.Time{}, false
		}
		return now, next, false
	})
}

// pollNow is time.Now for the poller loop (whose clock is clock.System):
// it reads the monotonic clock only, and the wall clock once a second. Where
// the clock has no vDSO (some virtual machines) every read is a system call,
// and time.Now makes two.
func (s *Scheduler) pollNow() time.Time {
	if !s.wall.IsZero() {
		if d := time.Since(s.wall); d >= 0 && d < time.Second {
			return s.wall.Add(d)
		}
	}
	s.wall = time.Now()
	return s.wall
}

// begin starts a quick attempt at start: its outcome goes to s.settled, or
// its pending connection to the poller. It returns the time it was done.
func (s *Scheduler) begin(p *poller, j job, start time.Time) time.Time {
	qp := j.p.(quickProber)
	res, fd, timeout, done := qp.begin()
	if !done {
		if err := p.watch(fd); err != nil {
			closeFD(fd)
			res, done = fail("connect: %s", err), true
		}
	}
	end := s.pollNow()
	if done {
		s.finish(j, res, start, end)
		return end
	}
	pc := &pendingConn{j: j, p: qp, fd: fd, start: start, deadline: start.Add(timeout)}
	s.pending[fd] = pc
	s.pendq.push(pc, &pc.idx, int64(pc.deadline.Sub(s.base)), 0)
	return end
}

// connEvent is the poller's event on a pending connection's socket.
func (s *Scheduler) connEvent(fd int) {
	pc := s.pending[fd]
	if pc == nil {
		return
	}
	res, done := pc.p.settle(fd)
	if !done {
		return
	}
	delete(s.pending, fd)
	s.pendq.remove(pc.idx)
	s.poll.Load().unwatch()
	s.finish(pc.j, res, pc.start, s.pollNow())
}

// expire abandons the pending connections whose connect_timeout is over.
func (s *Scheduler) expire(now time.Time) {
	for len(s.pendq) > 0 && !now.Before(s.pendq[0].item.deadline) {
		pc := s.pendq.pop()
		delete(s.pending, pc.fd)
		s.poll.Load().unwatch()
		s.finish(pc.j, pc.p.abandon(pc.fd), pc.start, now)
	}
}

func (s *Scheduler) finish(j job, res result, start, end time.Time) {
	s.observe(j, res, start, end)
	s.settled = append(s.settled, completion{c: j.c, res: res, start: start, end: end})
}

// applyOutcomes completes the attempts that have finished, the workers' and
// the loop's own. s.mu is held.
func (s *Scheduler) applyOutcomes() {
	for i, r := range s.settled {
		s.complete(r)
		s.settled[i] = completion{}
	}
	s.settled = s.settled[:0]
	for {
		select {
		case r := <-s.results:
			s.complete(r)
			continue
		default:
		}
		return
	}
}

// start schedules every checker and emits the initial states. s.mu is held.
func (s *Scheduler) start(ctx context.Context, now time.Time) {
	s.running, s.ctx = true, ctx
	for _, r := range s.order {
		r.since = now
		r.reason = initialReason(r)
		for _, c := range r.checks {
			s.schedule(c, now.Add(s.jitter(c.warmup)))
		}
		s.emit(r, now, r.reason)
		if s.global.RSInitNotifies && r.up {
			// As keepalived's rs_init_notifies: the notifies of a real
			// server that starts up.
			s.notifyChange(r, true)
		}
	}
	if s.opts.Started != nil {
		s.opts.Started()
	}
}

func (s *Scheduler) jitter(max time.Duration) time.Duration {
	if max <= 0 {
		return 0
	}
	return time.Duration(s.randN(int64(max) + 1))
}

func (s *Scheduler) schedule(c *checkState, due time.Time) {
	c.due = due
	s.seq++
	s.heap.push(c, &c.idx, int64(due.Sub(s.base)), s.seq)
}

// popDue moves the checkers due by now to the ready queue.
func (s *Scheduler) popDue(now time.Time) {
	limit := int64(now.Add(batchSlack).Sub(s.base))
	for len(s.heap) > 0 && s.heap[0].at <= limit {
		c := s.heap.pop()
		if c.rs.suspended && !c.removed {
			c.skipped++
			s.schedule(c, nextAfter(c.due, c.interval, now))
			continue
		}
		c.queued = true
		s.ready = append(s.ready, c)
	}
}

// takeReady hands out the next ready checker, marked running.
func (s *Scheduler) takeReady() (*checkState, bool) {
	for len(s.ready) > 0 {
		c := s.ready[0]
		s.ready[0] = nil
		s.ready = s.ready[1:]
		c.queued = false
		if c.removed {
			continue
		}
		c.running = true
		s.inflight++
		return c, true
	}
	s.ready = nil
	return nil, false
}

func (s *Scheduler) nextDue() (time.Time, bool) {
	if len(s.heap) == 0 {
		return time.Time{}, false
	}
	return s.heap[0].item.due, true
}

// complete applies the outcome of an attempt. s.mu is held.
func (s *Scheduler) complete(r completion) {
	s.inflight--
	c := r.c
	c.running = false
	if c.removed || !s.running {
		return
	}
	c.checks++
	c.lastStart, c.lastDur, c.lastOK, c.lastReason = r.start, r.end.Sub(r.start), r.res.ok, r.res.reason
	wasUp := c.up
	wasRetry := c.isRetry
	retry, changed := c.record(r.res.ok)
	if c.dynamic && r.res.ok && r.res.weight >= 0 {
		c.weight = r.res.weight
	}
	switch {
	case retry:
		c.isRetry = true
		s.schedule(c, r.end.Add(c.delayBeforeRetry))
	case wasRetry:
		c.isRetry = false
		s.schedule(c, r.end.Add(c.interval))
	default:
		s.schedule(c, nextAfter(c.due, c.interval, r.end))
	}

	rs := c.rs
	log := func() *slog.Logger { return s.log.With("vs", rs.key.vs, "rs", rs.key.rs.String(), "checker", c.name()) }
	if !r.res.ok && wasUp && c.cfg.LogAllFailures {
		log().Info("health check failed", "reason", r.res.reason, "retry", c.retryIt, "of", c.retry)
	}
	var reason string
	if changed {
		c.transitions++
		if c.up {
			reason = c.name() + " succeeded"
			if r.res.reason != "" {
				reason += ": " + r.res.reason
			}
		} else {
			reason = c.name() + " failed"
			switch {
			case c.retry == 1 && wasRetry:
				reason += " after 1 retry"
			case c.retry > 1 && wasRetry:
				reason += " after " + strconv.Itoa(c.retry) + " retries"
			}
			reason += ": " + r.res.reason
		}
	}
	up, w := rs.allUp(), rs.dynWeight()
	upChanged, wChanged := up != rs.up, w != rs.weight
	switch {
	case upChanged:
		state := "DOWN"
		if up {
			state = "UP"
		}
		log().Warn("real server "+state, "reason", reason, "weight", w)
	case changed:
		log().Info("checker "+upDown(c.up)+", real server stays "+upDown(rs.up), "reason", reason)
	case wChanged:
		reason = c.name() + " set weight " + strconv.Itoa(w)
		log().Info("real server weight changed", "weight", w, "was", rs.weight)
	}
	if changed && s.opts.Alert != nil && rs.vs != nil {
		s.opts.Alert(Alert{VS: rs.vs, RS: rs.cfg, Checker: c.cfg.Type, CheckerUp: c.up, Reason: r.res.reason, Up: up, RSChanged: upChanged})
	}
	if !upChanged && !wChanged {
		return
	}
	rs.up, rs.weight = up, w
	if upChanged {
		rs.transitions++
		rs.since = r.end
		rs.reason = reason
		s.notifyChange(rs, up)
	}
	s.emit(rs, r.end, reason)
}

func upDown(up bool) string {
	if up {
		return "up"
	}
	return "down"
}

// emit queues the event of rs's current state. s.mu is held.
func (s *Scheduler) emit(rs *rsState, at time.Time, reason string) {
	ev := Event{VS: rs.key.vs, RS: rs.key.rs, Up: rs.up, Weight: rs.weight, Reason: reason, At: at}
	s.evMu.Lock()
	s.evq = append(s.evq, ev)
	s.evMu.Unlock()
	select {
	case s.evSig <- struct{}{}:
	default:
	}
}

// forward delivers queued events until ctx is done, then closes Events.
func (s *Scheduler) forward(ctx context.Context) {
	defer close(s.events)
	for {
		s.evMu.Lock()
		q := s.evq
		s.evq = nil
		s.evMu.Unlock()
		for _, ev := range q {
			select {
			case s.events <- ev:
			case <-ctx.Done():
				return
			}
		}
		select {
		case <-s.evSig:
		case <-ctx.Done():
			return
		}
	}
}
