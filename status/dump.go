package status

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/lvsd/lvsd/vrrp"
	"github.com/lvsd/lvsd/vrrp/advert"
)

// keepalived's dump file names (SIGUSR1 and SIGUSR2), in DumpDir.
const (
	DataFile  = "keepalived.data"
	StatsFile = "keepalived.stats"
)

// DefaultDumpDir is where keepalived writes its dumps.
const DefaultDumpDir = "/tmp"

// ErrUnsafeDumpFile is returned by CreateDumpFile for a path that is a
// symbolic link, not a regular file, hard-linked, or owned by another user.
var ErrUnsafeDumpFile = errors.New("refusing to write the dump file")

// CreateDumpFile opens path for writing a dump, safely in a world-writable
// directory such as /tmp: O_NOFOLLOW|O_CREAT with mode 0600, so a symbolic
// link planted there is never followed. An existing file is used only if it
// is a regular file with a single link owned by us; it is then truncated
// (O_TRUNC's effect, applied after these checks so that nothing is
// truncated through a hard link) and its mode set to 0600.
func CreateDumpFile(path string) (*os.File, error) {
	fd, err := unix.Open(path, unix.O_WRONLY|unix.O_CREAT|unix.O_NOFOLLOW|unix.O_CLOEXEC|unix.O_NONBLOCK|unix.O_NOCTTY, 0o600)
	if err != nil {
		if errors.Is(err, unix.ELOOP) {
			return nil, fmt.Errorf("%w %s: it is a symbolic link", ErrUnsafeDumpFile, path)
		}
		return nil, &os.PathError{Op: "open", Path: path, Err: err}
	}
	fail := func(why string) (*os.File, error) {
		unix.Close(fd)
		return nil, fmt.Errorf("%w %s: %s", ErrUnsafeDumpFile, path, why)
	}
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		unix.Close(fd)
		return nil, &os.PathError{Op: "fstat", Path: path, Err: err}
	}
	switch {
	case st.Mode&unix.S_IFMT != unix.S_IFREG:
		return fail("not a regular file")
	case st.Nlink != 1:
		return fail("it has other hard links")
	case int(st.Uid) != os.Geteuid():
		return fail(fmt.Sprintf("owned by uid %d", st.Uid))
	}
	if err := unix.Fchmod(fd, 0o600); err != nil {
		unix.Close(fd)
		return nil, &os.PathError{Op: "chmod", Path: path, Err: err}
	}
	if err := unix.Ftruncate(fd, 0); err != nil {
		unix.Close(fd)
		return nil, &os.PathError{Op: "truncate", Path: path, Err: err}
	}
	if err := unix.SetNonblock(fd, false); err != nil {
		unix.Close(fd)
		return nil, &os.PathError{Op: "fcntl", Path: path, Err: err}
	}
	return os.NewFile(uintptr(fd), path), nil
}

// WriteDumpFile writes one dump to path with CreateDumpFile.
func WriteDumpFile(path string, write func(io.Writer) error) error {
	f, err := CreateDumpFile(path)
	if err != nil {
		return err
	}
	w := bufio.NewWriter(f)
	err = write(w)
	if ferr := w.Flush(); err == nil {
		err = ferr
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

func onOff(b bool, on, off string) string {
	if b {
		return on
	}
	return off
}

// WriteData writes the state dump in the layout of keepalived's
// /tmp/keepalived.data (section banners, one-space instance lines and
// three-space properties), so that tools that read keepalived's dump
// (keepalived-exporter among them) read lvsd's. The IPVS part, which
// keepalived writes to keepalived_check.data from its checker process,
// follows in the same file: lvsd is one process.
func WriteData(w io.Writer, st *Status) error {
	bw := &errWriter{w: w}
	p := bw.printf
	p("------< Global definitions >------\n")
	p(" Daemon = lvsd %s (%s)\n", st.Version, st.GoVersion)
	p(" Host = %s\n", st.Host)
	p(" Config file = %s\n", st.Config)
	p(" Started = %s\n", stamp(st.Started))
	p(" Dump time = %s\n", stamp(st.Time))
	p(" Reloads = %d succeeded, %d failed\n", st.Reloads.Success, st.Reloads.Failure)
	if !st.Reloads.Last.IsZero() {
		p(" Last reload = %s (%s)\n", stamp(st.Reloads.Last), onOff(st.Reloads.LastOK, "OK", "failed: "+one(st.Reloads.LastError)))
	}
	p("------< VRRP Topology >------\n")
	for _, in := range st.Instances {
		p(" VRRP Instance = %s\n", in.Name)
		p("   VRRP Version = %d\n", in.Version)
		p("   State = %s\n", in.State)
		p("   Wantstate = %s\n", in.State)
		if in.SyncGroup != "" {
			p("   Sync group = %s\n", in.SyncGroup)
		}
		p("   Interface = %s\n", in.Interface)
		p("   Gratuitous ARP delay = %d\n", int(in.GARPDelay))
		p("   Virtual Router ID = %d\n", in.VRID)
		p("   Priority = %d\n", in.BasePriority)
		p("   Effective priority = %d\n", in.Priority)
		p("   Advert interval = %d milli-sec\n", int(in.AdvertInt*1000+0.5))
		if in.MasterAddr != "" {
			p("   Master router = %s\n", in.MasterAddr)
		}
		p("   Virtual IP (%d):\n", len(in.VIPs))
		for _, v := range in.VIPs {
			p("     %s dev %s scope global%s\n", v.Addr, v.Dev, onOff(in.State == vrrp.StateMaster.String(), " set", ""))
		}
	}
	if len(st.Scripts) > 0 {
		p("------< VRRP Scripts >------\n")
		for _, s := range st.Scripts {
			p(" VRRP Script = %s\n", s.Name)
			p("   Command = '%s'\n", s.Command)
			p("   Status = %s\n", onOff(s.Good, "GOOD", "BAD"))
			p("   State = idle\n")
			p("   Runs = %d, failed %d\n", s.Runs, s.Failures)
			if !s.LastRun.IsZero() {
				p("   Last run = %s (%s)\n", stamp(s.LastRun), onOff(s.LastOK, "ok", "failed: "+one(s.LastResult)))
			}
		}
	}
	p("------< LVS Topology >------\n")
	switch {
	case st.IPVS.Running:
		p(" IPVS = running%s\n", onOff(st.IPVS.Fresh, "", " (kernel not read: "+one(st.IPVS.Error)+")"))
	case st.IPVS.Error != "":
		p(" IPVS = not programmed: %s\n", one(st.IPVS.Error))
	default:
		p(" IPVS = not running\n")
	}
	for _, vs := range st.VirtualServers {
		p(" VS = %s\n", vs.Name)
		p("   protocol = %s\n", vs.Protocol)
		p("   lb_algo = %s\n", vs.Scheduler)
		p("   lb_kind = %s\n", vs.Method)
		if vs.QuorumUp != nil {
			p("   quorum = %d, current weight %d, %s\n", vs.Quorum, vs.WeightSum, onOff(*vs.QuorumUp, "up", "down"))
		}
		if st.IPVS.Running {
			p("   in sync with the kernel = %s\n", onOff(vs.InSync, "yes", "no"))
		}
		for _, rs := range vs.RealServers {
			p("   RS = %s\n", rs.Addr)
			p("     weight = %d\n", rs.Weight)
			p("     alive = %s\n", onOff(rs.Up, "yes", "no"))
			for _, c := range rs.Checkers {
				p("     %s = %s, last check %s\n", c.Type, onOff(c.Up, "up", "down"), onOff(c.LastOK, "ok", "failed: "+one(c.LastReason)))
			}
		}
		for _, s := range vs.Services {
			p("   Service = %s (%s)\n", s.Name, serviceState(s))
			for _, d := range s.Dests {
				p("     -> %s weight %s (kernel %s) %s active %d inactive %d\n", hostPort(d), weight(d.DesiredWeight), weight(d.KernelWeight),
					onOff(d.InSync, "in sync", "not in sync"), d.ActiveConns, d.InactiveConns)
			}
		}
	}
	for _, s := range st.OtherServices {
		p(" Other service = %s (%s)\n", s.Name, serviceState(s))
	}
	return bw.err
}

func serviceState(s Service) string {
	switch {
	case !s.InKernel:
		return "missing from the kernel"
	case !s.Desired:
		return onOff(s.Owned, "owned, to be removed", "not lvsd's")
	case !s.InSync:
		return "not in sync"
	}
	return "in sync"
}

func hostPort(d Destination) string {
	if d.Addr.Is6() {
		return fmt.Sprintf("[%s]:%d", d.Addr, d.Port)
	}
	return fmt.Sprintf("%s:%d", d.Addr, d.Port)
}

func weight(w *int) string {
	if w == nil {
		return "-"
	}
	return fmt.Sprint(*w)
}

// WriteStats writes the counters in the layout of keepalived's
// /tmp/keepalived.stats, then lvsd's per-reason drop counters in a section
// of their own (which keepalived's readers skip).
func WriteStats(w io.Writer, st *Status) error {
	bw := &errWriter{w: w}
	p := bw.printf
	for _, in := range st.Instances {
		s := in.Stats
		p("VRRP Instance: %s\n", in.Name)
		p("  Advertisements:\n")
		p("    Received: %d\n", s.AdvertRcvd)
		p("    Sent: %d\n", s.AdvertSent)
		p("  Became master: %d\n", s.BecomeMaster)
		p("  Released master: %d\n", s.ReleaseMaster)
		p("  Packet Errors:\n")
		p("    Length: %d\n", PacketLengthErrors(&s))
		p("    TTL: %d\n", s.Drop(advert.DropTTL))
		p("    Invalid Type: %d\n", s.Drop(advert.DropType))
		p("    Advertisement Interval: %d\n", s.Drop(advert.DropInterval))
		p("    Address List: %d\n", s.AddrListErr)
		p("  Authentication Errors:\n")
		p("    Invalid Type: %d\n", 0)
		p("    Type Mismatch: %d\n", s.Drop(advert.DropAuthType))
		p("    Failure: %d\n", s.Drop(advert.DropAuthFailure))
		p("  Priority Zero:\n")
		p("    Received: %d\n", s.PriZeroRcvd)
		p("    Sent: %d\n", s.PriZeroSent)
		p("  Dropped (lvsd):\n")
		for _, r := range advert.DropReasons() {
			p("    %s: %d\n", r, s.Drop(r))
		}
	}
	return bw.err
}

// PacketLengthErrors is keepalived's packet_len_err: packets shorter than
// a VRRP header or whose length does not match their address count.
func PacketLengthErrors(s *Stats) uint64 {
	return s.Drop(advert.DropTooShort) + s.Drop(advert.DropLength)
}

func stamp(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return fmt.Sprintf("%d.%06d (%s)", t.Unix(), t.Nanosecond()/1000, t.Format("Mon Jan _2 15:04:05.000000 2006"))
}

type errWriter struct {
	w   io.Writer
	err error
}

func (e *errWriter) printf(format string, a ...any) {
	if e.err != nil {
		return
	}
	_, e.err = fmt.Fprintf(e.w, format, a...)
}

// one keeps a dump line single-line.
func one(s string) string { return strings.NewReplacer("\n", " ", "\r", " ").Replace(s) }
