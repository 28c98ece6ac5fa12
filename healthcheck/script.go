package healthcheck

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

// killGrace is how long a timed-out script has between SIGTERM and SIGKILL
// (keepalived's grace too).
var killGrace = time.Second

// script runs a command line without a shell, in a process group of its own,
// as its configured user.
type script struct {
	args []string
	cred *syscall.Credential // nil: as lvsd
}

// newScript resolves the user a script runs as: its own user (and group),
// else global_defs script_user, else keepalived_script when that user exists,
// else lvsd's own.
func newScript(s *conf.Script, g *conf.Global) (*script, error) {
	if s == nil || len(s.Args) == 0 {
		return nil, errors.New("empty command")
	}
	sc := &script{args: s.Args}
	name, group := s.User, s.Group
	if name == "" && g != nil {
		name, group = g.ScriptUser, g.ScriptGroup
	}
	if name == "" {
		// keepalived's default user, when it exists.
		if _, err := creds.get("keepalived_script", ""); err == nil {
			name = "keepalived_script"
		}
	}
	if name == "" {
		return sc, nil
	}
	cred, err := creds.get(name, group)
	if err != nil {
		return nil, err
	}
	sc.cred = cred
	return sc, nil
}

// creds remembers user lookups for a few seconds: a reload resolves the user
// of every script, and each lookup reads /etc/passwd and /etc/group.
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
	cred, err := credential(name, group)
	c.mu.Lock()
	if len(c.m) > 1000 {
		clear(c.m)
	}
	c.m[k] = credEntry{cred: cred, err: err, at: now}
	c.mu.Unlock()
	return cred, err
}

func credential(name, group string) (*syscall.Credential, error) {
	u, err := user.Lookup(name)
	if err != nil {
		if _, nerr := strconv.Atoi(name); nerr == nil {
			u, err = user.LookupId(name)
		}
		if err != nil {
			return nil, fmt.Errorf("user %s: %v", name, err)
		}
	}
	uid, _ := strconv.ParseUint(u.Uid, 10, 32)
	gid, _ := strconv.ParseUint(u.Gid, 10, 32)
	if group != "" {
		gr, err := user.LookupGroup(group)
		if err != nil {
			if _, nerr := strconv.Atoi(group); nerr == nil {
				gr, err = user.LookupGroupId(group)
			}
			if err != nil {
				return nil, fmt.Errorf("group %s: %v", group, err)
			}
		}
		gid, _ = strconv.ParseUint(gr.Gid, 10, 32)
	}
	if int(uid) == os.Geteuid() && int(gid) == os.Getegid() {
		return nil, nil // already that user
	}
	cred := &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}
	if os.Geteuid() == 0 {
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

// exit is how a script run ended.
type exit struct {
	code     int // exit status; -1 when killed by a signal or not started
	signal   syscall.Signal
	timedOut bool
	err      error // could not start
}

func (e exit) String() string {
	switch {
	case e.err != nil:
		return e.err.Error()
	case e.timedOut:
		return "timed out"
	case e.code < 0:
		return "killed by signal " + strconv.Itoa(int(e.signal))
	}
	return "exited with status " + strconv.Itoa(e.code)
}

// run starts the script and waits at most timeout for it. On timeout (or when
// ctx ends) its process group gets SIGTERM, then SIGKILL after killGrace.
func (s *script) run(ctx context.Context, timeout time.Duration) exit {
	cmd := exec.Command(s.args[0], s.args[1:]...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Credential: s.cred}
	// Stdin, Stdout and Stderr stay nil: /dev/null, and no pipe to wait on.
	if err := cmd.Start(); err != nil {
		return exit{code: -1, err: err}
	}
	pgid := cmd.Process.Pid
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	t := time.NewTimer(timeout)
	defer t.Stop()
	var err error
	timedOut := false
	select {
	case err = <-done:
	case <-t.C:
		timedOut = true
	case <-ctx.Done():
		timedOut = true
	}
	if timedOut {
		syscall.Kill(-pgid, syscall.SIGTERM)
		g := time.NewTimer(killGrace)
		select {
		case err = <-done:
			g.Stop()
		case <-g.C:
			syscall.Kill(-pgid, syscall.SIGKILL)
			err = <-done
		}
		// Whatever the script left behind in its group goes too.
		syscall.Kill(-pgid, syscall.SIGKILL)
	}
	e := exit{code: -1, timedOut: timedOut}
	if cmd.ProcessState != nil {
		ws, _ := cmd.ProcessState.Sys().(syscall.WaitStatus)
		switch {
		case ws.Exited():
			e.code = ws.ExitStatus()
		case ws.Signaled():
			e.signal = ws.Signal()
		}
	} else if err != nil {
		e.err = err
	}
	if timedOut && e.code >= 0 {
		// It finished on SIGTERM with a status of its own: still a timeout.
		e.code = -1
	}
	return e
}

// miscProbe is MISC_CHECK: exit status 0 is up, anything else down; with
// misc_dynamic 1 is down and 2-255 up with weight status-2.
type miscProbe struct {
	sc      *script
	timeout time.Duration
	dynamic bool
	err     error // the user could not be resolved: every attempt fails
}

func newMiscProbe(c *conf.Checker, g *conf.Global) (*miscProbe, error) {
	if c.MiscPath == nil {
		return nil, errors.New("MISC_CHECK without misc_path")
	}
	p := &miscProbe{timeout: c.MiscTimeout, dynamic: c.MiscDynamic}
	if p.timeout <= 0 {
		p.timeout = c.Timers.DelayLoop
	}
	if p.timeout <= 0 {
		p.timeout = 60 * time.Second
	}
	sc, err := newScript(c.MiscPath, g)
	if err != nil {
		// Keep the checker (down, with the reason) rather than drop it silently.
		p.err = err
		p.sc = &script{args: c.MiscPath.Args}
		return p, nil
	}
	p.sc = sc
	return p, nil
}

func (p *miscProbe) probe(ctx context.Context) result {
	if p.err != nil {
		return fail("%s: %v", p.sc.args[0], p.err)
	}
	e := p.sc.run(ctx, p.timeout)
	switch {
	case e.err != nil:
		return fail("%s: %v", p.sc.args[0], e.err)
	case e.timedOut:
		return fail("%s timed out after %s", p.sc.args[0], p.timeout)
	case e.code == 0:
		return pass(p.sc.args[0] + " exited with status 0")
	case e.code < 0:
		return fail("%s %s", p.sc.args[0], e)
	case p.dynamic && e.code >= 2:
		r := pass(fmt.Sprintf("%s exited with status %d", p.sc.args[0], e.code))
		r.weight = e.code - 2
		return r
	}
	return fail("%s %s", p.sc.args[0], e)
}
