package proctrack

import (
	"context"
	"errors"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/lvsd/lvsd/conf"
	"github.com/lvsd/lvsd/internal/clock"
)

// Kind is the kind of a process event.
type Kind uint8

const (
	Fork Kind = iota + 1 // PID is the child, Parent its parent
	Exec
	Comm // Comm is the new name
	Exit
	Lost // the kernel dropped events: the table must be read again
)

// Event is one process event of a Source (processes only, not threads).
type Event struct {
	Kind   Kind
	PID    int
	Parent int
	Comm   string
}

// Source delivers process events: the kernel's process connector.
type Source interface {
	// Events is closed when the source fails or is closed.
	Events() <-chan Event
	Close() error
}

// ErrNoConnector says that the process connector cannot be had here;
// the tracker then polls.
var ErrNoConnector = errors.New("proctrack: the kernel's process connector is not available")

// DefaultPollInterval is how often the process table is read when the
// connector is not available.
const DefaultPollInterval = time.Second

// lostRescanDelay is how long after lost events the table is read again
// (keepalived: one second, to let things settle).
const lostRescanDelay = time.Second

// Options are a Tracker's dependencies; the zero value is the real thing.
type Options struct {
	Logger *slog.Logger
	Clock  clock.Clock
	Procs  Procs
	// Open opens the event source (nil: the process connector); an
	// error wrapping ErrNoConnector makes the tracker poll.
	Open func() (Source, error)
	// ReadBuffer is the connector's receive buffer (0: the kernel's),
	// set beyond net.core.rmem_max with ForceBuffer
	// (process_monitor_rcv_bufs and its _force).
	ReadBuffer   int
	ForceBuffer  bool
	PollInterval time.Duration
}

// Tracker follows the tracked processes of a configuration. New reads the
// process table and reports the initial status of each before it returns;
// Run follows the events; Apply takes a new configuration.
type Tracker struct {
	opts   Options
	log    *slog.Logger
	report func(name string, up bool)

	msgs    chan func()
	applyCh chan applyReq
	quit    chan struct{} // closed when Run returns

	mu   sync.Mutex
	snap []Status
	mode string

	// Owned by Run's goroutine once it runs (New's before).
	st  *state
	src Source
}

type applyReq struct {
	specs []Spec
	done  chan struct{}
}

// New builds a tracker for cfg's tracked processes; report receives each
// (name, quorum) change, from the tracker's goroutine (at first from
// New's). With nothing to track it idles.
func New(cfg *conf.Config, report func(name string, up bool), opts Options) *Tracker {
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.Clock == nil {
		opts.Clock = clock.System{}
	}
	if opts.Procs == nil {
		opts.Procs = procFS{}
	}
	if opts.PollInterval <= 0 {
		opts.PollInterval = DefaultPollInterval
	}
	if opts.Open == nil {
		rb, force := opts.ReadBuffer, opts.ForceBuffer
		opts.Open = func() (Source, error) { return openConnector(rb, force) }
	}
	t := &Tracker{opts: opts, log: opts.Logger, report: report, msgs: make(chan func(), 64), applyCh: make(chan applyReq), quit: make(chan struct{})}
	t.configure(Specs(cfg))
	return t
}

// post runs fn on the tracker's goroutine (never once Run has returned).
func (t *Tracker) post(fn func()) {
	select {
	case t.msgs <- fn:
	case <-t.quit:
	}
}

// configure replaces the state: the source is opened first (no event
// missed between the scan and the first event), then the table is read
// and every status reported.
func (t *Tracker) configure(specs []Spec) {
	if t.st != nil {
		t.st.stop()
	}
	mode := "idle"
	if len(specs) == 0 {
		t.closeSource()
	} else if t.src == nil {
		src, err := t.opts.Open()
		switch {
		case err == nil:
			t.src = src
		case errors.Is(err, ErrNoConnector):
			t.log.Warn("track_process: the process connector is not available here; polling the process table instead", "interval", t.opts.PollInterval, "err", err)
		default:
			t.log.Error("track_process: cannot open the process connector; polling the process table instead", "interval", t.opts.PollInterval, "err", err)
		}
	}
	if len(specs) > 0 {
		mode = "poll"
		if t.src != nil {
			mode = "connector"
		}
	}
	old := map[string]bool{}
	if t.st != nil {
		for _, s := range t.st.t {
			old[s.Name] = s.up
		}
	}
	t.st = newState(specs, t.opts.Procs, t.opts.Clock, t.tell, t.post)
	if err := t.st.start(); err != nil {
		t.log.Error("track_process: reading the process table", "err", err)
	}
	for _, s := range t.st.t {
		if up, ok := old[s.Name]; !ok || up != s.up {
			t.log.Info("track_process: quorum "+gainedLost(s.up), "track_process", s.Name, "processes", s.count)
		}
	}
	t.mu.Lock()
	t.mode = mode
	t.mu.Unlock()
	t.publish()
}

func gainedLost(up bool) string {
	if up {
		return "gained"
	}
	return "lost"
}

// tell reports a change (the initial statuses too: the engine's tracker
// ignores a status it has).
func (t *Tracker) tell(name string, up bool) {
	if t.st != nil && t.st.started {
		t.log.Info("track_process: quorum "+gainedLost(up), "track_process", name)
	}
	t.report(name, up)
}

func (t *Tracker) closeSource() {
	if t.src != nil {
		t.src.Close()
		t.src = nil
	}
}

func (t *Tracker) publish() {
	s := t.st.snapshot()
	t.mu.Lock()
	t.snap = s
	t.mu.Unlock()
}

// Snapshot returns each tracked process's count and quorum, and how
// events are followed: "connector", "poll" or "idle".
func (t *Tracker) Snapshot() (mode string, st []Status) {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.mode, slices.Clone(t.snap)
}

// Apply hands the tracker a new configuration and returns once its
// processes are counted and reported.
func (t *Tracker) Apply(cfg *conf.Config) {
	req := applyReq{specs: Specs(cfg), done: make(chan struct{})}
	select {
	case t.applyCh <- req:
		<-req.done
	case <-t.quit:
	}
}

// Run follows the events until ctx is done.
func (t *Tracker) Run(ctx context.Context) error {
	t.st.started = true
	defer func() {
		close(t.quit)
		t.st.stop()
		t.closeSource()
	}()
	var poll <-chan time.Time
	var ticker *time.Ticker
	setPoll := func() {
		if ticker != nil {
			ticker.Stop()
			ticker, poll = nil, nil
		}
		if t.src == nil && len(t.st.t) > 0 {
			ticker = time.NewTicker(t.opts.PollInterval)
			poll = ticker.C
		}
	}
	setPoll()
	defer func() {
		if ticker != nil {
			ticker.Stop()
		}
	}()
	var lost clock.Timer
	for {
		var events <-chan Event
		if t.src != nil {
			events = t.src.Events()
		}
		select {
		case <-ctx.Done():
			return nil
		case req := <-t.applyCh:
			t.configure(req.specs)
			t.st.started = true
			setPoll()
			close(req.done)
		case fn := <-t.msgs:
			fn()
			t.publish()
		case <-poll:
			if err := t.st.rescan(); err != nil {
				t.log.Error("track_process: reading the process table", "err", err)
			}
			t.publish()
		case ev, ok := <-events:
			if !ok {
				t.log.Error("track_process: the process connector failed; polling the process table instead", "interval", t.opts.PollInterval)
				t.closeSource()
				setPoll()
				continue
			}
			if ev.Kind == Lost {
				if lost == nil {
					t.log.Warn("track_process: process events lost; reading the process table again", "after", lostRescanDelay)
					lost = t.opts.Clock.AfterFunc(lostRescanDelay, func() {
						t.post(func() {
							lost = nil
							if err := t.st.rescan(); err != nil {
								t.log.Error("track_process: reading the process table", "err", err)
							}
						})
					})
				}
				continue
			}
			t.st.handle(ev)
			t.publish()
		}
	}
}
