// Package execscript runs the scripts of keepalived.conf (a conf.Script:
// MISC_CHECK's misc_path, notify_up/down, the VRRP notify scripts,
// vrrp_script, quorum_up/down) the one way lvsd runs them:
//
//   - without a shell: the first word is the program (looked up in PATH when
//     it has no '/'), the others its arguments as they are;
//   - as a user: the script's own (and group), else global_defs script_user
//     (and script_group), else keepalived_script when that user exists, else
//     lvsd's own: keepalived's order. A user or group is a name or a numeric
//     id; without a group the user's primary group is used; when lvsd is root
//     the user's supplementary groups replace lvsd's;
//   - in a process group of its own, with standard input and output on
//     /dev/null and lvsd's environment;
//   - bounded: on timeout, or when the caller's context ends, the whole group
//     gets SIGTERM, then SIGKILL after a grace (default a second, as
//     keepalived), and whatever the script left in its group is killed once
//     it has exited.
//
// Success is keepalived's: exit status 0, in time.
package execscript

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/lvsd/lvsd/conf"
)

// DefaultKillGrace is how long a timed-out script's process group has
// between SIGTERM and SIGKILL unless Command.KillGrace says otherwise.
const DefaultKillGrace = time.Second

// DefaultUser is the user scripts run as when neither the script nor
// global_defs names one, if it exists (keepalived's).
const DefaultUser = "keepalived_script"

// Command is a resolved script: its command line and who it runs as. It is
// not changed by running it, and may run several times at once.
type Command struct {
	Args []string
	// Cred is the user and groups to run as; nil runs as lvsd itself.
	Cred *syscall.Credential
	// User names the configured user, for logs ("" when lvsd's own).
	User string
	// KillGrace is the time between SIGTERM and SIGKILL; 0 is
	// DefaultKillGrace.
	KillGrace time.Duration
}

// Resolve turns a configured script into a Command, resolving its user in
// keepalived's order (see the package documentation). g may be nil. User
// lookups are remembered for a few seconds.
func Resolve(s *conf.Script, g *conf.Global) (*Command, error) {
	if s == nil || len(s.Args) == 0 {
		return nil, errors.New("empty command")
	}
	c := &Command{Args: append([]string(nil), s.Args...)}
	name, group := s.User, s.Group
	if name == "" && g != nil {
		name, group = g.ScriptUser, g.ScriptGroup
	}
	if name == "" {
		if cred, err := creds.get(DefaultUser, ""); err == nil {
			c.Cred, c.User = cred, DefaultUser
		}
		return c, nil
	}
	cred, err := creds.get(name, group)
	if err != nil {
		return nil, err
	}
	c.Cred, c.User = cred, name
	return c, nil
}

// LookupError is a user or group that cannot be used.
type LookupError struct {
	Kind string // "user" or "group"
	Name string // as configured
	Err  error
}

func (e *LookupError) Error() string {
	var (
		uu  user.UnknownUserError
		uid user.UnknownUserIdError
		ug  user.UnknownGroupError
		gid user.UnknownGroupIdError
	)
	if errors.As(e.Err, &uu) || errors.As(e.Err, &uid) || errors.As(e.Err, &ug) || errors.As(e.Err, &gid) {
		return fmt.Sprintf("unknown %s %q", e.Kind, e.Name)
	}
	return fmt.Sprintf("%s %q: %v", e.Kind, e.Name, e.Err)
}

func (e *LookupError) Unwrap() error { return e.Err }

// Credential looks up a user (name or numeric id) and an optional group
// (name or numeric id; "" is the user's primary group). It returns nil when
// that is already who lvsd is. As root the user's supplementary groups are
// set too; otherwise lvsd's are kept (only root may change them).
func Credential(name, group string) (*syscall.Credential, error) {
	u, err := lookup(name, user.Lookup, user.LookupId)
	if err != nil {
		return nil, &LookupError{Kind: "user", Name: name, Err: err}
	}
	uid, err := strconv.ParseUint(u.Uid, 10, 32)
	if err != nil {
		return nil, &LookupError{Kind: "user", Name: name, Err: fmt.Errorf("uid %q is not a number", u.Uid)}
	}
	gid, err := strconv.ParseUint(u.Gid, 10, 32)
	if err != nil {
		return nil, &LookupError{Kind: "user", Name: name, Err: fmt.Errorf("gid %q is not a number", u.Gid)}
	}
	if group != "" {
		gr, err := lookup(group, user.LookupGroup, user.LookupGroupId)
		if err != nil {
			return nil, &LookupError{Kind: "group", Name: group, Err: err}
		}
		if gid, err = strconv.ParseUint(gr.Gid, 10, 32); err != nil {
			return nil, &LookupError{Kind: "group", Name: group, Err: fmt.Errorf("gid %q is not a number", gr.Gid)}
		}
	}
	if int(uid) == os.Geteuid() && int(gid) == os.Getegid() {
		return nil, nil // already that user
	}
	cred := &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}
	if os.Geteuid() == 0 {
		// Groups replace lvsd's (none if the lookup fails: root's go).
		if ids, err := u.GroupIds(); err == nil {
			for _, s := range ids {
				if v, err := strconv.ParseUint(s, 10, 32); err == nil {
					cred.Groups = append(cred.Groups, uint32(v))
				}
			}
		}
	} else {
		cred.NoSetGroups = true
	}
	return cred, nil
}

// lookup finds a user or a group by name, else, when name is a number, by
// id (the error is then the id lookup's).
func lookup[T any](name string, byName, byID func(string) (T, error)) (T, error) {
	v, err := byName(name)
	if err != nil {
		if _, nerr := strconv.ParseUint(name, 10, 32); nerr == nil {
			v, err = byID(name)
		}
	}
	return v, err
}

// creds remembers lookups for a few seconds: a reload resolves the user of
// every script (thousands of MISC_CHECKs), and each lookup reads /etc/passwd
// and /etc/group.
var creds = &credCache{m: map[[2]string]credEntry{}}

const credTTL = 10 * time.Second

type credCache struct {
	mu sync.Mutex
	m  map[[2]string]credEntry
}

type credEntry struct {
	cred *syscall.Credential
	err  error
	at   time.Time
}

func (c *credCache) get(name, group string) (*syscall.Credential, error) {
	k := [2]string{name, group}
	now := time.Now()
	c.mu.Lock()
	e, ok := c.m[k]
	c.mu.Unlock()
	if ok && now.Sub(e.at) < credTTL {
		return e.cred, e.err
	}
	cred, err := Credential(name, group)
	c.mu.Lock()
	if len(c.m) > 1000 {
		clear(c.m)
	}
	c.m[k] = credEntry{cred: cred, err: err, at: now}
	c.mu.Unlock()
	return cred, err
}

// Result is how one run ended.
type Result struct {
	// Code is the exit status; -1 when the script was killed by a signal,
	// timed out, was cancelled or did not start.
	Code int
	// Signal is the signal that ended it, if one did.
	Signal syscall.Signal
	// TimedOut: the timeout passed and the process group was killed.
	TimedOut bool
	// Canceled: the context ended first and the process group was killed
	// (or, when it had ended before, the script was not started).
	Canceled bool
	// Err is why the script could not start.
	Err      error
	Duration time.Duration
}

// OK reports keepalived's success: exit status 0, in time.
func (r Result) OK() bool { return r.Err == nil && !r.TimedOut && !r.Canceled && r.Code == 0 }

func (r Result) String() string {
	switch {
	case r.Err != nil:
		return r.Err.Error()
	case r.TimedOut:
		return "timed out"
	case r.Canceled:
		return "cancelled"
	case r.Code < 0:
		return "killed by signal " + strconv.Itoa(int(r.Signal)) + " (" + r.Signal.String() + ")"
	}
	return "exited with status " + strconv.Itoa(r.Code)
}

// Process is a started script.
type Process struct {
	cmd   *exec.Cmd
	start time.Time
	grace time.Duration
	done  chan struct{} // closed once the script has been reaped
}

// Start starts the command with extra arguments appended, in a process
// group of its own. The caller must Wait for it.
func (c *Command) Start(extra ...string) (*Process, error) {
	args := append(append([]string(nil), c.Args...), extra...)
	if len(args) == 0 {
		return nil, errors.New("empty command")
	}
	cmd := exec.Command(args[0], args[1:]...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Credential: c.Cred}
	// Stdin, Stdout and Stderr stay nil: /dev/null, and no pipe that a
	// straggler could hold open.
	p := &Process{cmd: cmd, start: time.Now(), grace: c.KillGrace, done: make(chan struct{})}
	if p.grace <= 0 {
		p.grace = DefaultKillGrace
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	go func() {
		_ = cmd.Wait()
		close(p.done)
	}()
	return p, nil
}

// Pid is the script's process id, which is also its process group's.
func (p *Process) Pid() int { return p.cmd.Process.Pid }

// Wait waits for the script until timeout (0: no limit) has passed since it
// started, or ctx ends. Then its process group gets SIGTERM and, if the
// script has not exited after the grace, SIGKILL. Once the script has
// exited after such a kill, whatever remains in its group gets SIGKILL. A
// script that exits by itself leaves its group alone (a notify script may
// start a daemon). Call Wait once.
func (p *Process) Wait(ctx context.Context, timeout time.Duration) Result {
	if ctx == nil {
		ctx = context.Background()
	}
	var deadline <-chan time.Time
	if timeout > 0 {
		t := time.NewTimer(time.Until(p.start.Add(timeout)))
		defer t.Stop()
		deadline = t.C
	}
	r := Result{Code: -1}
	select {
	case <-p.done:
	case <-deadline:
		r.TimedOut = true
	case <-ctx.Done():
		r.Canceled = true
	}
	if r.TimedOut || r.Canceled {
		p.kill()
	}
	r.Duration = time.Since(p.start)
	if ws, ok := p.cmd.ProcessState.Sys().(syscall.WaitStatus); ok {
		switch {
		case ws.Exited() && !r.TimedOut && !r.Canceled:
			// A script that exits with a status of its own on SIGTERM still
			// timed out: Code stays -1.
			r.Code = ws.ExitStatus()
		case ws.Signaled():
			r.Signal = ws.Signal()
		}
	}
	return r
}

// kill ends the process group: SIGTERM, SIGKILL after the grace if the
// script still runs, and SIGKILL to what it left behind.
func (p *Process) kill() {
	pgid := p.cmd.Process.Pid
	_ = syscall.Kill(-pgid, syscall.SIGTERM)
	g := time.NewTimer(p.grace)
	select {
	case <-p.done:
		g.Stop()
	case <-g.C:
		_ = syscall.Kill(-pgid, syscall.SIGKILL)
		<-p.done
	}
	_ = syscall.Kill(-pgid, syscall.SIGKILL)
}

// Run starts the command with extra arguments appended and waits for it as
// Wait does. When ctx has already ended the script is not started.
func (c *Command) Run(ctx context.Context, timeout time.Duration, extra ...string) Result {
	if ctx == nil {
		ctx = context.Background()
	}
	if ctx.Err() != nil {
		return Result{Code: -1, Canceled: true}
	}
	start := time.Now()
	p, err := c.Start(extra...)
	if err != nil {
		return Result{Code: -1, Err: err, Duration: time.Since(start)}
	}
	return p.Wait(ctx, timeout)
}
