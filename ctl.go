package main

// The control socket (package control) on the daemon's side, and its
// client, `lvsd ctl`.

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/lvsd/lvsd/control"
	"github.com/lvsd/lvsd/ipvs"
	"github.com/lvsd/lvsd/status"
)

// startControl serves the control socket (unless disabled) and returns
// the function that stops it. A socket that cannot be created is logged,
// not fatal: VRRP and IPVS matter more. reloads reaches serve's loop,
// which owns the reload.
func startControl(ctx context.Context, o *options, log *slog.Logger, d *daemon, op *ops, reloads chan chan control.ReloadResult) func() {
	path := ctlSocketPath(o)
	if path == "" {
		return func() {}
	}
	gid, err := control.LookupGroup(o.ctlGroup)
	if err != nil {
		log.Error("control socket not started", "path", path, "err", err)
		return func() {}
	}
	ln, err := control.Listen(path, gid)
	if err != nil {
		log.Error("control socket not started", "path", path, "err", err)
		return func() {}
	}
	cmds := control.Commands{
		Status: func() any { return status.Build(op.src) },
		Reload: func() control.ReloadResult {
			reply := make(chan control.ReloadResult, 1)
			select {
			case reloads <- reply:
				return <-reply
			case <-ctx.Done():
				return control.ReloadResult{Err: errors.New("the daemon is stopping")}
			}
		},
	}
	if d.rec != nil {
		cmds.IPVS = func(args []string) (string, error) { return ipvsListing(d.newKernel, args) }
		cmds.Drain = d.rec.SetDrain
		cmds.DrainDirector = d.drainDirector
	}
	if d.vrrp != nil {
		cmds.Failover = d.vrrp.Failover
	}
	srv := control.NewServer(cmds, control.Options{Group: gid, Logger: log.With("subsystem", "control")})
	log.Info("control socket", "path", path, "group", o.ctlGroup)
	cctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { srv.Serve(cctx, ln); close(done) }()
	return func() { cancel(); <-done }
}

// ipvsListing answers lvsd ctl ipvs: ipvsadm's listing for args, read
// through a netlink socket of its own.
func ipvsListing(newKernel func() (ipvs.Kernel, error), args []string) (string, error) {
	if _, err := ipvs.ParseListArgs(args); err != nil {
		return "", err
	}
	k, err := newKernel()
	if err != nil {
		return "", err
	}
	defer k.Close()
	ir, ok := k.(ipvs.InfoReader)
	if !ok {
		return "", errors.New("this IPVS access cannot list the table")
	}
	return ipvs.Listing(ir, args)
}

const ctlUsage = `Usage: lvsd ctl [--socket PATH | -p PIDFILE] [--timeout DURATION] COMMAND
Commands:
  status [--json]               VRRP instances and virtual servers with health
  ipvs [IPVSADM OPTIONS]        the kernel table as ipvsadm -L -n prints it
                                (--stats --rate --exact --thresholds --persistent-conn
                                --tun-info --nosort -c, -t/-u/--sctp-service ADDR:PORT, -f MARK [-6])
  ipvs save                     ipvsadm -S -n: the commands that rebuild the table
  drain VS RS                   weight 0 for the real server RS of VS until enabled
  enable VS RS                  undo drain
  drain                         this director: its BGP routes get GRACEFUL_SHUTDOWN,
                                withdrawn after drain_time (IPVS goes on serving)
  enable                        this director: its BGP routes announced again
  failover INSTANCE [--for D]   the MASTER gives up and stays BACKUP (for D, or until cleared)
  failover --clear INSTANCE     let the instance be MASTER again
  reload                        reload the configuration (as SIGHUP) and print the outcome
`

// Exit codes of lvsd ctl.
const (
	ctlOK       = 0
	ctlFailed   = 1 // the daemon answered with an error, or a reload was rejected
	ctlUsageErr = 2
	ctlNoDaemon = 3 // no answer on the socket
)

// runCtl is `lvsd ctl ...`.
func runCtl(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("lvsd ctl", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	socket := fs.String("socket", "", "control socket")
	pid := fs.String("p", "", "the daemon's pid file (the socket is beside it)")
	fs.StringVar(pid, "pid", "", "")
	timeout := fs.Duration("timeout", 0, "how long to wait for the daemon")
	if err := fs.Parse(args); err != nil {
		fmt.Fprintf(stderr, "lvsd ctl: %v\n%s", err, ctlUsage)
		return ctlUsageErr
	}
	rest := fs.Args()
	if len(rest) == 0 {
		fmt.Fprint(stderr, ctlUsage)
		return ctlUsageErr
	}
	o := &options{pidFile: *pid}
	if *socket != "" {
		o.ctlSocket, o.ctlSocketSet = *socket, true
	}
	path := ctlSocketPath(o)
	cmd, cargs := rest[0], rest[1:]
	req := control.Request{Command: cmd}
	wait := 10 * time.Second
	jsonOut := false
	usageErr := func(msg string) int {
		fmt.Fprintf(stderr, "lvsd ctl %s: %s\n%s", cmd, msg, ctlUsage)
		return ctlUsageErr
	}
	switch cmd {
	case control.CmdStatus:
		for _, a := range cargs {
			if a != "--json" {
				return usageErr("unexpected " + a)
			}
			jsonOut = true
		}
	case control.CmdIPVS:
		if len(cargs) == 1 && cargs[0] == "save" {
			cargs = []string{"-S", "-n"}
		}
		if len(cargs) == 0 {
			cargs = []string{"-L", "-n"}
		}
		if _, err := ipvs.ParseListArgs(cargs); err != nil {
			return usageErr(err.Error())
		}
		req.Args = cargs
	case control.CmdDrain, control.CmdEnable:
		switch len(cargs) {
		case 0: // the whole director (BGP)
		case 2:
			req.VS, req.RS = cargs[0], cargs[1]
		default:
			return usageErr("needs VS and RS, or nothing (this director)")
		}
	case control.CmdFailover:
		for i := 0; i < len(cargs); i++ {
			switch a := cargs[i]; {
			case a == "--clear":
				req.Clear = true
			case a == "--for" || a == "--timeout":
				if i+1 >= len(cargs) {
					return usageErr(a + " needs a duration")
				}
				i++
				d, err := time.ParseDuration(cargs[i])
				if err != nil || d <= 0 {
					return usageErr("bad duration " + cargs[i])
				}
				req.Timeout = d
			case strings.HasPrefix(a, "-"):
				return usageErr("unexpected " + a)
			case req.Instance == "":
				req.Instance = a
			default:
				return usageErr("one instance only")
			}
		}
		if req.Instance == "" {
			return usageErr("needs an instance")
		}
	case control.CmdReload:
		if len(cargs) != 0 {
			return usageErr("takes no argument")
		}
		wait = 2 * time.Minute // a large configuration takes time
	case "help", "--help", "-h":
		fmt.Fprint(stdout, ctlUsage)
		return ctlOK
	default:
		return usageErr("unknown command")
	}
	if *timeout > 0 {
		wait = *timeout
	}
	resp, err := control.Call(path, req, wait)
	if err != nil {
		fmt.Fprintf(stderr, "lvsd ctl: %s: %v\n", path, err)
		return ctlNoDaemon
	}
	for _, d := range resp.Diagnostics {
		fmt.Fprintln(stderr, d)
	}
	if !resp.OK {
		io.WriteString(stdout, resp.Output)
		fmt.Fprintf(stderr, "lvsd ctl %s: %s\n", cmd, resp.Error)
		return ctlFailed
	}
	switch cmd {
	case control.CmdStatus:
		if jsonOut {
			var v any
			if err := json.Unmarshal(resp.Data, &v); err != nil {
				fmt.Fprintf(stderr, "lvsd ctl: %v\n", err)
				return ctlFailed
			}
			enc := json.NewEncoder(stdout)
			enc.SetIndent("", "  ")
			enc.Encode(v)
			return ctlOK
		}
		var st status.Status
		if err := json.Unmarshal(resp.Data, &st); err != nil {
			fmt.Fprintf(stderr, "lvsd ctl: %v\n", err)
			return ctlFailed
		}
		writeStatusTable(stdout, &st)
	case control.CmdIPVS:
		io.WriteString(stdout, resp.Output)
	case control.CmdDrain:
		if req.VS == "" {
			fmt.Fprintln(stdout, "drained this director: its BGP routes carry GRACEFUL_SHUTDOWN and are withdrawn after drain_time")
		} else {
			fmt.Fprintf(stdout, "drained %s of %s (weight 0 until enabled)\n", req.RS, req.VS)
		}
	case control.CmdEnable:
		if req.VS == "" {
			fmt.Fprintln(stdout, "enabled this director: its BGP routes are announced again")
		} else {
			fmt.Fprintf(stdout, "enabled %s of %s\n", req.RS, req.VS)
		}
	case control.CmdFailover:
		switch {
		case req.Clear:
			fmt.Fprintf(stdout, "%s may be MASTER again\n", req.Instance)
		case req.Timeout > 0:
			fmt.Fprintf(stdout, "%s failed over: BACKUP for %s\n", req.Instance, req.Timeout)
		default:
			fmt.Fprintf(stdout, "%s failed over: BACKUP until failover --clear\n", req.Instance)
		}
	case control.CmdReload:
		fmt.Fprintln(stdout, "configuration reloaded")
	}
	return ctlOK
}

// writeStatusTable prints the status for a terminal: the VRRP instances,
// then every virtual server with its real servers.
func writeStatusTable(w io.Writer, st *status.Status) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "lvsd %s on %s, up since %s; reloads ok %d, failed %d\n\n", st.Version, st.Host, st.Started.Format(time.RFC3339), st.Reloads.Success, st.Reloads.Failure)
	if len(st.Instances) > 0 {
		fmt.Fprintln(tw, "INSTANCE\tSTATE\tPRIORITY\tMASTER\tINTERFACE\tVRID\tNOTE")
		for _, in := range st.Instances {
			note := ""
			if in.FailedOver {
				note = "failed over"
				if !in.FailedOverUntil.IsZero() {
					note += " until " + in.FailedOverUntil.Format(time.RFC3339)
				}
			}
			if in.SyncGroup != "" {
				note = strings.TrimSpace("group " + in.SyncGroup + " " + note)
			}
			fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%s\t%d\t%s\n", in.Name, in.State, in.Priority, dash(in.MasterAddr), in.Interface, in.VRID, note)
		}
		fmt.Fprintln(tw)
	}
	if !st.IPVS.Running && st.IPVS.Error != "" {
		fmt.Fprintf(tw, "IPVS: %s\n\n", st.IPVS.Error)
	}
	writeBGPTable(tw, st.BGP)
	if len(st.VirtualServers) > 0 {
		fmt.Fprintln(tw, "VIRTUAL SERVER\tQUORUM\tREAL SERVER\tHEALTH\tWEIGHT\tNOTE")
		for _, vs := range st.VirtualServers {
			quorum := "-"
			if vs.QuorumUp != nil {
				quorum = map[bool]string{true: "up", false: "down"}[*vs.QuorumUp]
				if vs.SorryActive {
					quorum += " (sorry server)"
				}
			}
			name := vs.Key
			if len(vs.RealServers) == 0 {
				fmt.Fprintf(tw, "%s\t%s\t-\t\t\t\n", name, quorum)
			}
			for i, rs := range vs.RealServers {
				health := map[bool]string{true: "up", false: "down"}[rs.Up]
				weight := fmt.Sprint(rs.Weight)
				if rs.EffectiveWeight >= 0 {
					weight = fmt.Sprint(rs.EffectiveWeight)
				}
				note := ""
				if rs.Drained {
					note = "drained"
				}
				if !rs.HealthKnown && len(rs.Checkers) == 0 {
					note = strings.TrimSpace(note + " unchecked")
				}
				if i > 0 {
					name, quorum = "", ""
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", name, quorum, rs.Addr, health, weight, note)
			}
		}
	}
	tw.Flush()
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
