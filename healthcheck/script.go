package healthcheck

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/lvsd/lvsd/conf"
	"github.com/lvsd/lvsd/internal/execscript"
)

// miscProbe is MISC_CHECK: exit status 0 is up, anything else down; with
// misc_dynamic 1 is down and 2-255 up with weight status-2.
type miscProbe struct {
	name    string              // the program, for reasons
	cmd     *execscript.Command // nil when err is set
	timeout time.Duration
	dynamic bool
	err     error // the user could not be resolved: every attempt fails
}

func newMiscProbe(c *conf.Checker, g *conf.Global) (*miscProbe, error) {
	if c.MiscPath == nil || len(c.MiscPath.Args) == 0 {
		return nil, errors.New("MISC_CHECK without misc_path")
	}
	p := &miscProbe{name: c.MiscPath.Args[0], timeout: c.MiscTimeout, dynamic: c.MiscDynamic}
	if p.timeout <= 0 {
		p.timeout = c.Timers.DelayLoop
	}
	if p.timeout <= 0 {
		p.timeout = 60 * time.Second
	}
	// An unresolved user keeps the checker (down, with the reason) rather
	// than dropping it silently.
	p.cmd, p.err = execscript.Resolve(c.MiscPath, g)
	return p, nil
}

func (p *miscProbe) probe(ctx context.Context) result {
	if p.err != nil {
		return fail("%s: %v", p.name, p.err)
	}
	e := p.cmd.Run(ctx, p.timeout)
	switch {
	case e.Err != nil:
		return fail("%s: %v", p.name, e.Err)
	case e.TimedOut:
		return fail("%s timed out after %s", p.name, p.timeout)
	case e.Code == 0:
		return pass(p.name + " exited with status 0")
	case e.Code < 0:
		return fail("%s %s", p.name, e)
	case p.dynamic && e.Code >= 2:
		r := pass(fmt.Sprintf("%s exited with status %d", p.name, e.Code))
		r.weight = e.Code - 2
		return r
	}
	return fail("%s %s", p.name, e)
}
