// Package netwatch follows the links and addresses of a network namespace
// over rtnetlink: one socket per Watcher, subscribed to link, IPv4 address
// and IPv6 address changes (RTNLGRP_LINK, RTNLGRP_IPV4_IFADDR,
// RTNLGRP_IPV6_IFADDR), which also lists them.
//
// A Watcher keeps what it knows (links by index, addresses by interface and
// prefix) and reports changes to it as typed events: a link up, down or
// gone, an address added or deleted. A message that changes nothing (an
// IPv6 address leaving its tentative state, a link's statistics) makes no
// event, except that every address deletion the kernel notifies is
// reported, known or not.
//
// The kernel drops notifications that do not fit in the socket's receive
// buffer and says so (ENOBUFS). The Watcher notices, counts the overrun and
// lists everything again, reporting the difference from what it knew as
// events: a handler sees the same sequence of states as if nothing had
// been dropped, some intermediate ones aside. Losses are noticed in
// socket.read, counted and logged in Watcher.lost and repaired by
// Watcher.list. A socket that fails otherwise (or is closed under the
// Watcher) is reopened, subscribed and listed again the same way, after a
// pause that grows to maxReopenDelay. After every such new listing the
// handler also receives a Resynced event: what it keeps of the kernel's
// state beyond the links and addresses (a VIP it expects, a route) is
// worth checking then.
package netwatch

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// Kind is what an Event reports.
type Kind uint8

const (
	// LinkUp: a link is up (administratively and operationally; see Up),
	// newly seen, come up or renamed.
	LinkUp Kind = iota + 1
	// LinkDown: a link is not up, newly seen, gone down or renamed.
	LinkDown
	// LinkGone: a link was deleted (or left the namespace).
	LinkGone
	// AddrAdded: an address was added to an interface.
	AddrAdded
	// AddrDeleted: an address was removed from an interface.
	AddrDeleted
	// Resynced: notifications were lost (an overrun) or the socket failed
	// and was reopened; the links and addresses were listed again and the
	// events before this one are the difference. It carries nothing else.
	Resynced
)

var kindNames = [...]string{LinkUp: "link-up", LinkDown: "link-down", LinkGone: "link-gone", AddrAdded: "addr-added", AddrDeleted: "addr-deleted", Resynced: "resynced"}

func (k Kind) String() string {
	if int(k) < len(kindNames) && kindNames[k] != "" {
		return kindNames[k]
	}
	return fmt.Sprintf("kind(%d)", uint8(k))
}

// IsLink reports whether k is a link event (not an address event).
func (k Kind) IsLink() bool { return k == LinkUp || k == LinkDown || k == LinkGone }

// Event is one change of a link or an address.
type Event struct {
	Kind Kind
	// Index and Name are the interface: the link itself, or the one that
	// holds the address (Name is empty if that link is not known).
	Index int
	Name  string
	// Prefix is the address and its prefix length (address events only).
	Prefix netip.Prefix
}

func (e Event) String() string {
	if e.Kind == Resynced {
		return e.Kind.String()
	}
	if e.Kind.IsLink() {
		return fmt.Sprintf("%v %d(%s)", e.Kind, e.Index, e.Name)
	}
	return fmt.Sprintf("%v %v on %d(%s)", e.Kind, e.Prefix, e.Index, e.Name)
}

// Link is a link as last reported.
type Link struct {
	Index int
	Name  string
	Up    bool
}

// Addr is an address on an interface.
type Addr struct {
	Index  int
	Prefix netip.Prefix
}

// Options are optional settings of New.
type Options struct {
	// Namespace to watch (default: the caller's).
	Namespace *netns.NsHandle
	// ReadBuffer is the socket's receive buffer in bytes (SO_RCVBUF; the
	// kernel doubles it and caps it at net.core.rmem_max); 0: the kernel's
	// default, net.core.rmem_default. An overrun loses nothing for good
	// (see the package documentation).
	ReadBuffer int
	// ForceBuffer sets ReadBuffer with SO_RCVBUFFORCE, beyond
	// net.core.rmem_max (CAP_NET_ADMIN). A buffer that cannot be set is
	// logged, and the kernel's is used.
	ForceBuffer bool
	// Logger for overruns and for a watch that stops on an error (default:
	// slog.Default()).
	Logger *slog.Logger
}

// Watcher follows the links and addresses of one network namespace.
type Watcher struct {
	log      *slog.Logger
	opts     Options
	s        *socket
	overruns atomic.Uint64
	reopens  atomic.Uint64
	closed   atomic.Bool // by Close or Run's context: no reopening

	mu    sync.Mutex // guards st for Links and Addrs (only Run changes it), s, and opts.ReadBuffer and ForceBuffer
	st    *state
	first []Event // the listing made by New, delivered first by Run
}

// New subscribes to the link and address changes of the namespace, then
// lists its links and addresses (Links, Addrs). Run delivers the events;
// Close releases a Watcher that is not run.
func New(opts Options) (*Watcher, error) {
	log := opts.Logger
	if log == nil {
		log = slog.Default()
	}
	w := &Watcher{log: log, opts: opts, st: newState()}
	s, err := w.open()
	if err != nil {
		return nil, err
	}
	w.s = s
	// Subscribed first, then listed: a change that races the listing is
	// both in it and notified, and a notification that changes nothing
	// makes no event.
	if w.first, err = w.list(); err != nil {
		s.close()
		return nil, err
	}
	return w, nil
}

func (w *Watcher) open() (*socket, error) {
	s, err := openSocket(w.opts.Namespace)
	if err != nil {
		return nil, fmt.Errorf("netwatch: subscribing to rtnetlink: %w", err)
	}
	w.mu.Lock()
	n, force := w.opts.ReadBuffer, w.opts.ForceBuffer
	w.mu.Unlock()
	if n > 0 {
		if err := s.setReadBuffer(n, force); err != nil {
			w.log.Warn("netwatch: cannot set the receive buffer; using the kernel's", "bytes", n, "force", force, "err", err)
		}
	}
	if err := s.bind(); err != nil {
		s.close()
		return nil, fmt.Errorf("netwatch: subscribing to rtnetlink: %w", err)
	}
	return s, nil
}

// SetReadBuffer changes the receive buffer (see Options.ReadBuffer and
// ForceBuffer) of the socket and of those that replace it. 0 keeps the
// current socket's size (the kernel cannot be asked for its default
// again); the next socket gets the kernel's default.
func (w *Watcher) SetReadBuffer(n int, force bool) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.opts.ReadBuffer, w.opts.ForceBuffer = n, force
	if n <= 0 || w.s == nil || w.closed.Load() {
		return nil
	}
	return w.s.setReadBuffer(n, force)
}

// ReadBuffer is the receive buffer the kernel gave the socket (SO_RCVBUF:
// twice what was asked, as the kernel counts its bookkeeping).
func (w *Watcher) ReadBuffer() (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.s.readBuffer()
}

// Close closes the socket. Run closes it when it returns.
func (w *Watcher) Close() {
	w.closed.Store(true)
	w.mu.Lock()
	s := w.s
	w.mu.Unlock()
	s.close()
}

// Overruns is how many times notifications were found lost (a receive
// buffer overrun), each time followed by a new listing.
func (w *Watcher) Overruns() uint64 { return w.overruns.Load() }

// Reopens is how many times the socket failed and was reopened, each time
// followed by a new listing.
func (w *Watcher) Reopens() uint64 { return w.reopens.Load() }

// Resyncs is how many new listings repaired a loss: Overruns + Reopens.
func (w *Watcher) Resyncs() uint64 { return w.overruns.Load() + w.reopens.Load() }

// Links returns the links known, by index.
func (w *Watcher) Links() []Link {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.st.sortedLinks()
}

// Addrs returns the addresses known, by interface index and prefix.
func (w *Watcher) Addrs() []Addr {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.st.sortedAddrs()
}

// Run calls fn from the calling goroutine, first with the state listed by
// New (every link as LinkUp or LinkDown, every address as AddrAdded), then
// with the events of every change, those that arrived together in one
// call, until ctx is done; then it closes the watcher and returns nil. A
// loss of notifications is repaired by a new listing (see the package
// documentation); a socket that fails is logged once, reopened and listed
// again, retried with a growing pause while it cannot be. A Watcher is run
// once.
func (w *Watcher) Run(ctx context.Context, fn func([]Event)) error {
	stop := context.AfterFunc(ctx, w.Close)
	defer stop()
	defer w.Close()
	if ctx.Err() != nil {
		return nil
	}
	if len(w.first) > 0 {
		fn(w.first)
	}
	w.first = nil
	delay := minReopenDelay
	for {
		evs, err := w.receive()
		if len(evs) > 0 && ctx.Err() == nil {
			fn(evs)
		}
		if ctx.Err() != nil || w.closed.Load() {
			return nil
		}
		if err == nil {
			delay = minReopenDelay
			continue
		}
		w.log.Error("netwatch: the rtnetlink socket failed; reopening it and listing links and addresses again", "err", err, "retry_in", delay)
		for {
			select {
			case <-ctx.Done():
				return nil
			case <-time.After(delay):
			}
			delay = min(2*delay, maxReopenDelay)
			evs, err := w.reopen()
			if ctx.Err() != nil || w.closed.Load() {
				return nil
			}
			if err != nil {
				w.log.Warn("netwatch: reopening the rtnetlink socket", "err", err, "retry_in", delay)
				continue
			}
			w.log.Warn("netwatch: rtnetlink socket reopened, links and addresses listed again", "reopens", w.reopens.Load())
			fn(evs)
			break
		}
	}
}

// The pause before reopening a failed socket, doubled at each failure.
const (
	minReopenDelay = 100 * time.Millisecond
	maxReopenDelay = 5 * time.Second
)

// reopen replaces the socket with a new one, subscribed and listed.
func (w *Watcher) reopen() ([]Event, error) {
	s, err := w.open()
	if err != nil {
		return nil, err
	}
	w.mu.Lock()
	old := w.s
	w.s = s
	w.mu.Unlock()
	old.close()
	if w.closed.Load() { // Close raced the swap
		s.close()
		return nil, errors.New("closed")
	}
	evs, err := w.list()
	if err != nil {
		return nil, err
	}
	w.reopens.Add(1)
	return append(evs, Event{Kind: Resynced}), nil
}

// maxBatch bounds the datagrams read into one call of the handler.
const maxBatch = 64

// receive waits for a datagram, then reads those already queued (up to
// maxBatch), and returns the events they make.
func (w *Watcher) receive() ([]Event, error) {
	var evs []Event
	for i := 0; i < maxBatch; i++ {
		msgs, err := w.s.read(i == 0)
		switch {
		case errors.Is(err, unix.EAGAIN): // nothing more queued
			return evs, nil
		case errors.Is(err, errLost):
			w.lost(err)
			more, err := w.list()
			evs = append(evs, more...)
			if err != nil {
				return evs, err
			}
			evs = append(evs, Event{Kind: Resynced})
			continue
		case err != nil:
			return evs, err
		}
		w.mu.Lock()
		for _, m := range msgs {
			if e, ok := decode(m); ok {
				evs = w.st.apply(e, evs)
			}
		}
		w.mu.Unlock()
	}
	return evs, nil
}

// lost counts and logs notifications lost; the caller lists again.
func (w *Watcher) lost(cause error) {
	n := w.overruns.Add(1)
	w.log.Warn("netwatch: link or address notifications lost; listing links and addresses again", "cause", cause, "overruns", n)
}

// dumps are the listing requests, links first so that an address is
// listed after the link that holds it.
var dumps = []struct {
	typ  uint16
	body []byte
	what string
}{
	{unix.RTM_GETLINK, make([]byte, unix.SizeofIfInfomsg), "links"},
	{unix.RTM_GETADDR, make([]byte, unix.SizeofIfAddrmsg), "addresses"},
}

// maxListings bounds the listings redone because one was inconsistent.
const maxListings = 5

// list lists the links and addresses, replaces the state with them and
// returns the events that make the difference. Notifications read between
// the parts of a listing are applied to it in order (the kernel queues
// both on the socket in the order they happened). A listing that the
// kernel marks inconsistent (NLM_F_DUMP_INTR), or during which
// notifications were lost, is done again.
func (w *Watcher) list() ([]Event, error) {
	for attempt := 1; ; attempt++ {
		next, clean, err := w.listOnce()
		if err != nil {
			return nil, err
		}
		if !clean && attempt < maxListings {
			continue
		}
		if !clean {
			w.log.Warn("netwatch: links and addresses keep changing while listed; using the last listing", "listings", attempt)
		}
		w.mu.Lock()
		defer w.mu.Unlock()
		return w.st.replace(next), nil
	}
}

func (w *Watcher) listOnce() (next *state, clean bool, err error) {
	next, clean = newState(), true
	for _, d := range dumps {
		seq, err := w.s.dump(d.typ, d.body)
		if err != nil {
			return nil, false, fmt.Errorf("netwatch: listing %s: %w", d.what, err)
		}
		for done := false; !done; {
			msgs, err := w.s.read(true)
			if errors.Is(err, errLost) {
				w.lost(err)
				clean = false // the listing itself goes on
				continue
			}
			if err != nil {
				return nil, false, fmt.Errorf("netwatch: listing %s: %w", d.what, err)
			}
			for _, m := range msgs {
				if m.Header.Seq == seq && m.Header.Pid == w.s.pid {
					if m.Header.Flags&unix.NLM_F_DUMP_INTR != 0 {
						clean = false
					}
					switch m.Header.Type {
					case unix.NLMSG_DONE, unix.NLMSG_ERROR:
						if err := replyErr(m); err != nil {
							return nil, false, fmt.Errorf("netwatch: listing %s: %w", d.what, err)
						}
						done = true
						continue
					}
				}
				if e, ok := decode(m); ok {
					next.apply(e, nil)
				}
			}
		}
	}
	return next, clean, nil
}

// replyErr is the error carried by an NLMSG_DONE or NLMSG_ERROR message.
func replyErr(m syscall.NetlinkMessage) error {
	if len(m.Data) < 4 {
		if m.Header.Type == unix.NLMSG_DONE {
			return nil
		}
		return errors.New("short error message")
	}
	if code := int32(nativeEndian.Uint32(m.Data[:4])); code < 0 {
		return syscall.Errno(-code)
	}
	return nil
}
