// Package notify runs what keepalived runs on a VRRP transition: the
// notify_master|backup|fault|stop and notify scripts of instances and sync
// groups, and smtp_alert e-mail. Scripts run through execscript: without a
// shell, as their configured user, in a process group of their own that is
// killed on timeout and at shutdown.
package notify

import (
	"context"
	"log/slog"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/lvsd/lvsd/conf"
	"github.com/lvsd/lvsd/internal/execscript"
	"github.com/lvsd/lvsd/internal/scriptqueue"
)

// Event is one transition of an instance or a sync group.
type Event struct {
	Group bool   // a vrrp_sync_group (else a vrrp_instance)
	Name  string // its name
	// State is MASTER, BACKUP, FAULT or STOP; or, for an instance, an
	// event that is no transition: MASTER_PRIORITY or BACKUP_PRIORITY (its
	// effective priority changed), MASTER_RX_LOWER_PRI (as MASTER it heard
	// a lower priority).
	State    string
	Priority int // effective priority; keepalived passes 0 for a group
}

// The events of an instance that are not transitions.
const (
	MasterPriority   = "MASTER_PRIORITY"
	BackupPriority   = "BACKUP_PRIORITY"
	MasterRxLowerPri = "MASTER_RX_LOWER_PRI"
)

// Options are optional settings of a Notifier.
type Options struct {
	Logger *slog.Logger
	// Timeout bounds each notify script (default 30s): a hung script must
	// not hold the later notifications of its instance for ever.
	Timeout time.Duration
	// CloseWait bounds how long Close waits for queued work (default 5s);
	// then running scripts are killed.
	CloseWait time.Duration
	// Now is the clock of the e-mail Date header (default time.Now).
	Now func() time.Time
	// FIFO, when set, receives the FIFO lines of the events (VRRP) or of
	// the checkers (RealServerFIFO, QuorumFIFO).
	FIFO *FIFOs
}

// maxQueue bounds the work queued for one instance or group, and for the
// mailer; beyond it events are dropped (and logged).
const maxQueue = 256

type target struct {
	notify conf.Notify
	smtp   bool
	// Instances only: priority changes to the FIFOs (its own
	// notify_priority_changes or its group's), notify_master_rx_lower_pri.
	priorityChanges bool
	rxLowerPri      *conf.Script
}

type job struct {
	what  string
	cmd   *execscript.Command
	extra []string
}

// Notifier runs notify scripts and sends smtp_alert e-mail. Post never
// blocks: scripts are queued per instance or group and run in order there,
// each queue in its own goroutine while it has work; e-mail is queued to
// the mailer, which sends it in order in the same way.
type Notifier struct {
	opts Options
	log  *slog.Logger

	mu        sync.Mutex
	global    conf.Global
	instances map[string]target
	groups    map[string]target
	queues    map[string]*scriptqueue.Queue[job]
	lastMail  map[string]string
	mail      *scriptqueue.Queue[Mail]
	closed    bool
	hold      *startHold // the checkers' start-up lines (HoldStart)
	wg        sync.WaitGroup
	ctx       context.Context
	cancel    context.CancelFunc

	scriptsRun, scriptsDropped        atomic.Uint64
	mailSent, mailFailed, mailDropped atomic.Uint64
}

// Stats are a Notifier's counters since it was made.
type Stats struct {
	ScriptsRun     uint64 // notify scripts run (whatever their result)
	ScriptsDropped uint64 // notify scripts not run: their queue was full
	MailSent       uint64 // smtp_alert mails the server accepted
	MailFailed     uint64 // smtp_alert mails the server refused, or that could not be sent
	MailDropped    uint64 // smtp_alert mails not sent: the mail queue was full
}

// Stats returns the counters; safe for concurrent use.
func (n *Notifier) Stats() Stats {
	return Stats{
		ScriptsRun: n.scriptsRun.Load(), ScriptsDropped: n.scriptsDropped.Load(),
		MailSent: n.mailSent.Load(), MailFailed: n.mailFailed.Load(), MailDropped: n.mailDropped.Load(),
	}
}

// New returns a notifier for the configuration.
func New(c *conf.Config, opts Options) *Notifier {
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.Timeout <= 0 {
		opts.Timeout = 30 * time.Second
	}
	if opts.CloseWait <= 0 {
		opts.CloseWait = 5 * time.Second
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	n := &Notifier{opts: opts, log: opts.Logger, queues: map[string]*scriptqueue.Queue[job]{}, lastMail: map[string]string{}}
	n.ctx, n.cancel = context.WithCancel(context.Background())
	n.mail = scriptqueue.New(n.send, &n.wg, maxQueue)
	n.Apply(c)
	return n
}

// VRRPAlerts reports whether smtp_alert is on for an instance or a sync
// group, by keepalived's chain: the element's smtp_alert, else global
// smtp_alert_vrrp, else global smtp_alert, else off.
func VRRPAlerts(own *bool, g *conf.Global) bool {
	for _, b := range []*bool{own, g.SMTPAlertVRRP, g.SMTPAlert} {
		if b != nil {
			return *b
		}
	}
	return false
}

// Apply switches to a new configuration; events posted afterwards use it.
// Call it before the VRRP engine's Apply: the new instances' first
// transitions follow at once.
func (n *Notifier) Apply(c *conf.Config) {
	inst := map[string]target{}
	groups := map[string]target{}
	groupPrio := map[string]bool{}
	for _, sg := range c.SyncGroups {
		groups[sg.Name] = target{notify: sg.Notify, smtp: VRRPAlerts(sg.SMTPAlert, &c.Global)}
		for _, name := range sg.Group {
			groupPrio[name] = sg.NotifyPriorityChanges
		}
	}
	for _, in := range c.Instances {
		inst[in.Name] = target{notify: in.Notify, smtp: VRRPAlerts(in.SMTPAlert, &c.Global),
			priorityChanges: in.NotifyPriorityChanges || groupPrio[in.Name], rxLowerPri: in.NotifyMasterRxLowerPri}
	}
	n.mu.Lock()
	// Instances and groups removed by this reload keep their scripts for
	// the STOP they are about to report (until the next reload).
	for name, tg := range n.instances {
		if _, ok := inst[name]; !ok {
			inst[name] = tg
		}
	}
	for name, tg := range n.groups {
		if _, ok := groups[name]; !ok {
			groups[name] = tg
		}
	}
	n.global, n.instances, n.groups = c.Global, inst, groups
	n.mu.Unlock()
}

// Post queues the scripts and the e-mail of one transition.
func (n *Notifier) Post(ev Event) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.closed {
		return
	}
	kind, tg, ok := "INSTANCE", n.instances[ev.Name], false
	if ev.Group {
		kind = "GROUP"
		tg, ok = n.groups[ev.Name]
	} else {
		_, ok = n.instances[ev.Name]
	}
	if !ok {
		return
	}
	key := kind + " " + ev.Name
	var specific *conf.Script
	switch ev.State {
	case MasterPriority, BackupPriority:
		if tg.priorityChanges {
			n.opts.FIFO.WriteVRRP(VRRPLine(ev))
		}
		return
	case MasterRxLowerPri:
		// keepalived runs the script (with no arguments) and writes the
		// line whether the script is configured or not.
		if tg.rxLowerPri != nil {
			if jobs := n.resolve(nil, key, "notify_master_rx_lower_pri", tg.rxLowerPri, nil); len(jobs) > 0 {
				n.enqueue(key, jobs)
			}
		}
		n.opts.FIFO.WriteVRRP(VRRPLine(ev))
		return
	case "MASTER":
		specific = tg.notify.Master
	case "BACKUP":
		specific = tg.notify.Backup
	case "FAULT":
		specific = tg.notify.Fault
	case "STOP":
		specific = tg.notify.Stop
	default:
		return
	}
	var jobs []job
	// keepalived runs notify_<state> first, then notify.
	if specific != nil {
		jobs = n.resolve(jobs, key, "notify_"+lower(ev.State), specific, nil)
	}
	if tg.notify.Any != nil {
		jobs = n.resolve(jobs, key, "notify", tg.notify.Any, []string{kind, ev.Name, ev.State, strconv.Itoa(ev.Priority)})
	}
	if len(jobs) > 0 {
		n.enqueue(key, jobs)
	}
	n.opts.FIFO.WriteVRRP(VRRPLine(ev))
	if tg.smtp && n.lastMail[key] != ev.State {
		if m, ok := VRRPMail(&n.global, ev, n.opts.Now()); ok {
			n.lastMail[key] = ev.State
			n.enqueueMail(m)
		}
	}
}

func lower(s string) string {
	b := []byte(s)
	for i, c := range b {
		if c >= 'A' && c <= 'Z' {
			b[i] = c + 'a' - 'A'
		}
	}
	return string(b)
}

func (n *Notifier) resolve(jobs []job, key, what string, s *conf.Script, extra []string) []job {
	cmd, err := execscript.Resolve(s, &n.global)
	if err != nil {
		n.log.Warn("notify: script not run", "for", key, "script", what, "pos", s.Pos.String(), "err", err)
		return jobs
	}
	return append(jobs, job{what: what, cmd: cmd, extra: extra})
}

// enqueue is called with n.mu held.
func (n *Notifier) enqueue(key string, jobs []job) {
	q := n.queues[key]
	if q == nil {
		q = scriptqueue.New(func(j job) { n.run(key, j) }, &n.wg, maxQueue)
		n.queues[key] = q
	}
	if !q.Push(jobs...) {
		n.scriptsDropped.Add(uint64(len(jobs)))
		n.log.Error("notify: queue full; notification dropped", "for", key)
	}
}

// run runs a script of key's queue; once shutting down, none.
func (n *Notifier) run(key string, j job) {
	if n.ctx.Err() != nil {
		return
	}
	r := j.cmd.Run(n.ctx, n.opts.Timeout, j.extra...)
	n.scriptsRun.Add(1)
	lvl := slog.LevelDebug
	if !r.OK() {
		lvl = slog.LevelWarn
	}
	n.log.Log(context.Background(), lvl, "notify: script ran", "for", key, "script", j.what,
		"cmd", j.cmd.Args[0], "user", j.cmd.User, "result", r.String(), "took", r.Duration)
}

func (n *Notifier) enqueueMail(m Mail) {
	if !n.mail.Push(m) {
		n.mailDropped.Add(1)
		n.log.Error("notify: mail queue full; alert dropped", "subject", m.Subject)
	}
}

// send sends a mail of the mailer's queue; once shutting down, none.
func (n *Notifier) send(m Mail) {
	if n.ctx.Err() != nil {
		return
	}
	if err := m.Send(n.ctx); err != nil {
		n.mailFailed.Add(1)
		n.log.Warn("notify: smtp alert not sent", "server", m.Server, "subject", m.Subject, "err", err)
	} else {
		n.mailSent.Add(1)
		n.log.Info("notify: smtp alert sent", "server", m.Server, "subject", m.Subject)
	}
}

// Flush waits until everything posted so far has run (for tests and for
// orderly shutdown); it gives up after d.
func (n *Notifier) Flush(d time.Duration) bool {
	done := make(chan struct{})
	go func() { n.wg.Wait(); close(done) }()
	select {
	case <-done:
		return true
	case <-time.After(d):
		return false
	}
}

// Close stops accepting events, waits at most CloseWait for the queued
// ones (the STOP notifications of a shutdown), then kills what still runs
// and returns.
func (n *Notifier) Close() {
	n.mu.Lock()
	n.closed = true
	n.mu.Unlock()
	if !n.Flush(n.opts.CloseWait) {
		n.log.Warn("notify: notifications still running at shutdown; killing them")
	}
	n.cancel()
	n.wg.Wait()
}
