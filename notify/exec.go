// Package notify runs what keepalived runs on a VRRP transition: the
// notify_master|backup|fault|stop and notify scripts of instances and sync
// groups, and smtp_alert e-mail. Commands run without a shell, as their
// configured user, in a process group of their own that is killed on
// timeout. It also provides that command runner to the vrrp_script trackers.
package notify

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"strconv"
	"syscall"
	"time"

	"github.com/lvsd/lvsd/conf"
)

// KillGrace is how long a timed-out command has between SIGTERM and
// SIGKILL to its process group.
var KillGrace = time.Second

// Command is a resolved command line: no shell, a fixed user.
type Command struct {
	Args []string
	// Cred is the user and groups to run as; nil runs as lvsd itself.
	Cred *syscall.Credential
	// User names the user for logs ("" when lvsd's own).
	User string
}

// Resolve turns a configured script into a Command. The user is the
// script's own, else global_defs script_user (and script_group), else
// keepalived_script when that user exists, else lvsd's own: keepalived's
// order.
func Resolve(s *conf.Script, g *conf.Global) (*Command, error) {
	if s == nil || len(s.Args) == 0 {
		return nil, errors.New("notify: empty command")
	}
	c := &Command{Args: append([]string(nil), s.Args...)}
	name, group := s.User, s.Group
	if name == "" && g != nil {
		name, group = g.ScriptUser, g.ScriptGroup
	}
	if name == "" {
		if _, err := user.Lookup("keepalived_script"); err == nil {
			name = "keepalived_script"
		}
	}
	if name == "" {
		return c, nil
	}
	cred, err := Credential(name, group)
	if err != nil {
		return nil, err
	}
	c.Cred, c.User = cred, name
	return c, nil
}

// Credential looks up a user (name or numeric id) and an optional group;
// without a group the user's primary group is used. It returns nil when
// that is already who we are.
func Credential(name, group string) (*syscall.Credential, error) {
	u, err := user.Lookup(name)
	if err != nil {
		if _, nerr := strconv.Atoi(name); nerr == nil {
			u, err = user.LookupId(name)
		}
		if err != nil {
			return nil, fmt.Errorf("notify: user %s: %w", name, err)
		}
	}
	uid, err := strconv.ParseUint(u.Uid, 10, 32)
	if err != nil {
		return nil, fmt.Errorf("notify: user %s: uid %q", name, u.Uid)
	}
	gid, err := strconv.ParseUint(u.Gid, 10, 32)
	if err != nil {
		return nil, fmt.Errorf("notify: user %s: gid %q", name, u.Gid)
	}
	if group != "" {
		gr, err := user.LookupGroup(group)
		if err != nil {
			if _, nerr := strconv.Atoi(group); nerr == nil {
				gr, err = user.LookupGroupId(group)
			}
			if err != nil {
				return nil, fmt.Errorf("notify: group %s: %w", group, err)
			}
		}
		if gid, err = strconv.ParseUint(gr.Gid, 10, 32); err != nil {
			return nil, fmt.Errorf("notify: group %s: gid %q", group, gr.Gid)
		}
	}
	if int(uid) == os.Geteuid() && int(gid) == os.Getegid() {
		return nil, nil
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

// Result is how one run ended.
type Result struct {
	Code     int            // exit status; -1 when killed, timed out or not started
	Signal   syscall.Signal // the signal that ended it, if any
	TimedOut bool
	Err      error // could not start
	Duration time.Duration
}

// OK reports keepalived's success: exit status 0, in time.
func (r Result) OK() bool { return r.Err == nil && !r.TimedOut && r.Code == 0 }

func (r Result) String() string {
	switch {
	case r.Err != nil:
		return r.Err.Error()
	case r.TimedOut:
		return "timed out"
	case r.Code < 0:
		return "killed by signal " + r.Signal.String()
	}
	return "exited with status " + strconv.Itoa(r.Code)
}

// Run runs the command with extra arguments appended and waits at most
// timeout (0: no limit) for it. On timeout, or when ctx ends, its process
// group gets SIGTERM, then SIGKILL after KillGrace; whatever it left in its
// group is killed too. Standard input and output are /dev/null.
func (c *Command) Run(ctx context.Context, timeout time.Duration, extra ...string) Result {
	start := time.Now()
	args := append(append([]string(nil), c.Args...), extra...)
	cmd := exec.Command(args[0], args[1:]...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Credential: c.Cred}
	if err := cmd.Start(); err != nil {
		return Result{Code: -1, Err: err, Duration: time.Since(start)}
	}
	pgid := cmd.Process.Pid
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	var tc <-chan time.Time
	if timeout > 0 {
		t := time.NewTimer(timeout)
		defer t.Stop()
		tc = t.C
	}
	timedOut := false
	select {
	case <-done:
	case <-tc:
		timedOut = true
	case <-ctx.Done():
		timedOut = true
	}
	if timedOut {
		_ = syscall.Kill(-pgid, syscall.SIGTERM)
		g := time.NewTimer(KillGrace)
		select {
		case <-done:
			g.Stop()
		case <-g.C:
			_ = syscall.Kill(-pgid, syscall.SIGKILL)
			<-done
		}
		_ = syscall.Kill(-pgid, syscall.SIGKILL)
	}
	r := Result{Code: -1, TimedOut: timedOut, Duration: time.Since(start)}
	if ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); ok {
		switch {
		case ws.Exited() && !timedOut:
			r.Code = ws.ExitStatus()
		case ws.Signaled():
			r.Signal = ws.Signal()
		}
	}
	return r
}
