package proctrack

import (
	"bytes"
	"time"

	"github.com/lvsd/lvsd/conf"
)

// Spec is one vrrp_track_process as the tracker matches and counts it.
type Spec struct {
	Name    string
	Process string
	// Params are the configured parameters, each followed by a NUL
	// byte, as a command line holds them; nil when none are given.
	Params      []byte
	ParamMatch  string // conf.ParamMatch*
	FullCommand bool
	Quorum      uint64
	QuorumMax   uint64
	ForkDelay   time.Duration
	TermDelay   time.Duration
}

// Specs returns the vrrp_track_processes of a configuration that some
// instance or sync group tracks (keepalived follows only those).
func Specs(c *conf.Config) []Spec {
	used := map[string]bool{}
	for _, in := range c.Instances {
		for _, r := range in.TrackProcess {
			used[r.Name] = true
		}
	}
	for _, g := range c.SyncGroups {
		for _, r := range g.TrackProcess {
			used[r.Name] = true
		}
	}
	var out []Spec
	for _, tp := range c.TrackProcesses {
		if !used[tp.Name] {
			continue
		}
		s := Spec{Name: tp.Name, Process: tp.Process, ParamMatch: tp.ParamMatch, FullCommand: tp.FullCommand,
			Quorum: uint64(tp.Quorum), QuorumMax: uint64(tp.QuorumMax), ForkDelay: tp.ForkDelay, TermDelay: tp.TerminateDelay}
		for _, p := range tp.Params {
			s.Params = append(append(s.Params, p...), 0)
		}
		out = append(out, s)
	}
	return out
}

// inQuorum reports whether n processes make the quorum.
func (s *Spec) inQuorum(n uint64) bool { return n >= s.Quorum && n <= s.QuorumMax }

// Info is what the tracker reads of a process: its comm and, when some
// tracked process needs it, its command line (the NUL-separated words of
// /proc/PID/cmdline).
type Info struct {
	PID     int
	Comm    string
	Cmdline []byte
}

// matches reports whether the process counts for s: by comm, or with
// full_command by argv[0] and, with param_match, the parameters.
func (s *Spec) matches(in Info) bool {
	name := in.Comm
	var params []byte
	if s.FullCommand {
		argv0, rest, _ := bytes.Cut(in.Cmdline, []byte{0})
		name, params = string(argv0), rest
	}
	if name != s.Process {
		return false
	}
	return s.ParamMatch == conf.ParamMatchNone || s.paramsMatch(params)
}

// paramsMatch compares the parameters of a command line (after argv[0])
// with the configured ones: exact, the same; partial, the configured
// words first; initial, as partial but the last configured word may be
// the start of the process's.
func (s *Spec) paramsMatch(actual []byte) bool {
	cfg := s.Params
	switch s.ParamMatch {
	case conf.ParamMatchExact:
		return bytes.Equal(actual, cfg)
	case conf.ParamMatchPartial:
		return bytes.HasPrefix(actual, cfg)
	case conf.ParamMatchInitial:
		if len(cfg) == 0 {
			return true
		}
		return len(actual) >= len(cfg) && bytes.HasPrefix(actual, cfg[:len(cfg)-1])
	}
	return true
}
