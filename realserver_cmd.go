package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/lvsd/lvsd/conf"
	"github.com/lvsd/lvsd/internal/netwatch"
	"github.com/lvsd/lvsd/realserver"
)

const defaultRealserverState = "/run/lvsd-realserver/state.json"

// addrList is a repeatable flag of addresses (each may be a comma list).
type addrList []netip.Addr

func (l *addrList) String() string { return fmt.Sprint(*l) }
func (l *addrList) Set(v string) error {
	for _, s := range strings.Split(v, ",") {
		a, err := netip.ParseAddr(strings.TrimSpace(s))
		if err != nil {
			return err
		}
		*l = append(*l, a.Unmap())
	}
	return nil
}

type strList []string

func (l *strList) String() string     { return strings.Join(*l, ",") }
func (l *strList) Set(v string) error { *l = append(*l, strings.Split(v, ",")...); return nil }

type realserverOpts struct {
	config         string
	dr, ipip, gre  addrList
	arpIfs         strList
	state          string
	apply, remove  bool
	dryRun         bool
	period         time.Duration
	configExplicit bool
}

// realserverMain is `lvsd realserver`: the real-server side of DR and TUN
// (see package realserver), as a daemon or one-shot (--apply, --remove).
func realserverMain(args []string, stdout, stderr io.Writer) int {
	var o realserverOpts
	fs := flag.NewFlagSet("lvsd realserver", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&o.config, "f", defaultConfigFile, "the directors' keepalived.conf: VIPs of the virtual servers that have a local address as a DR or TUN real server")
	fs.Var(&o.dr, "vip", "a DR VIP to put on lo (repeatable, or a comma list)")
	fs.Var(&o.ipip, "tun-vip", "a TUN (ipip) VIP to put on tunl0 / ip6tnl0 (repeatable)")
	fs.Var(&o.gre, "gre-vip", "a TUN (gre) VIP to put on gre0 / ip6gre0 (repeatable)")
	fs.Var(&o.arpIfs, "arp-interface", "an interface that gets arp_ignore=1/arp_announce=2 besides all and lo (repeatable)")
	fs.StringVar(&o.state, "state", defaultRealserverState, "state file: what to undo on stop or --remove")
	fs.BoolVar(&o.apply, "apply", false, "set up once and exit (undo later with --remove)")
	fs.BoolVar(&o.remove, "remove", false, "undo what an earlier run set up, from the state file, and exit")
	fs.BoolVar(&o.dryRun, "n", false, "print the spec (VIPs per device, sysctls) and exit")
	fs.DurationVar(&o.period, "period", realserver.DefaultPeriod, "how often everything is re-checked (drift repaired)")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return exitOK
		}
		return exitProgramError
	}
	fs.Visit(func(f *flag.Flag) { o.configExplicit = o.configExplicit || f.Name == "f" })
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "lvsd realserver: unexpected argument %q\n", fs.Arg(0))
		return exitProgramError
	}
	log := slog.New(slog.NewTextHandler(stderr, nil))
	k := realserver.System{}
	if o.remove {
		return oneShot(o.state, stdout, stderr, func(saved *realserver.Saved) ([]realserver.Change, error) {
			return realserver.Remove(k, saved)
		})
	}
	spec, err := o.spec(log)
	if err != nil {
		fmt.Fprintf(stderr, "lvsd realserver: %v\n", err)
		return exitConfig
	}
	if o.dryRun {
		fmt.Fprintf(stdout, "dr %v\nipip %v\ngre %v\narp-interfaces %v\n", spec.DR,
			spec.TUN[realserver.TunnelIPIP], spec.TUN[realserver.TunnelGRE], spec.ARPInterfaces)
		return exitOK
	}
	if o.apply {
		return oneShot(o.state, stdout, stderr, func(saved *realserver.Saved) ([]realserver.Change, error) {
			return realserver.Reconcile(k, spec, saved)
		})
	}
	return o.daemon(log, k, spec)
}

// oneShot runs do on the state of the state file, prints what it changed
// and saves the state.
func oneShot(state string, stdout, stderr io.Writer, do func(*realserver.Saved) ([]realserver.Change, error)) int {
	saved, err := realserver.LoadState(state)
	if err == nil {
		var changes []realserver.Change
		changes, err = do(&saved)
		for _, c := range changes {
			fmt.Fprintln(stdout, c)
		}
		err = errors.Join(err, realserver.SaveState(state, saved))
	}
	if err != nil {
		fmt.Fprintf(stderr, "lvsd realserver: %v\n", err)
		return exitProgramError
	}
	return exitOK
}

// spec is the desired state from the flags and, unless only flags were
// given, the configuration file.
func (o *realserverOpts) spec(log *slog.Logger) (realserver.Spec, error) {
	spec := realserver.Spec{TUN: map[string][]netip.Addr{}}
	fromFlags := len(o.dr)+len(o.ipip)+len(o.gre) > 0
	if o.configExplicit || !fromFlags {
		cfg, diags := conf.Load(o.config, conf.Options{})
		if conf.MaxLevel(diags) >= conf.Fatal {
			return spec, fmt.Errorf("%s: %v", o.config, firstFatal(diags))
		}
		local, err := realserver.LocalAddrs()
		if err != nil {
			return spec, err
		}
		var notes []string
		spec, notes = realserver.FromConfig(cfg, local)
		for _, n := range notes {
			log.Warn("realserver: " + n)
		}
		if spec.Empty() {
			log.Warn("realserver: no virtual server of the configuration has a local address as a DR or TUN real server", "config", o.config)
		}
	}
	spec.DR = append(spec.DR, o.dr...)
	spec.TUN[realserver.TunnelIPIP] = append(spec.TUN[realserver.TunnelIPIP], o.ipip...)
	spec.TUN[realserver.TunnelGRE] = append(spec.TUN[realserver.TunnelGRE], o.gre...)
	spec.ARPInterfaces = o.arpIfs
	return spec, nil
}

// daemon keeps the set-up until SIGTERM/SIGINT, re-reads the configuration
// on SIGHUP and repairs drift on every address or link change.
func (o *realserverOpts) daemon(log *slog.Logger, k realserver.Kernel, spec realserver.Spec) int {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	d := realserver.NewDaemon(k, log)
	d.StatePath = o.state
	d.Period = o.period
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	go func() {
		for {
			select {
			case <-ctx.Done():
				return
			case <-hup:
				s, err := o.spec(log)
				if err != nil {
					log.Error("realserver: reload rejected, the running set-up is kept", "err", err)
					continue
				}
				log.Info("realserver: reloaded")
				d.SetSpec(s)
			}
		}
	}()
	if w, err := netwatch.New(netwatch.Options{Logger: log}); err != nil {
		log.Warn("realserver: not following address changes (drift is repaired every period)", "err", err)
	} else {
		go w.Run(ctx, func(evs []netwatch.Event) {
			for _, e := range evs {
				if e.Kind == netwatch.AddrDeleted || e.Kind.IsLink() {
					d.Kick()
					return
				}
			}
		})
	}
	log.Info("realserver: running", "dr", spec.DR, "ipip", spec.TUN[realserver.TunnelIPIP], "gre", spec.TUN[realserver.TunnelGRE])
	if err := d.Run(ctx, spec); err != nil {
		log.Error("realserver: removing the set-up", "err", err)
		return exitProgramError
	}
	log.Info("realserver: stopped, set-up removed")
	return exitOK
}
