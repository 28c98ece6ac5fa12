package proctrack

import (
	"bytes"
	"os"
	"strconv"
	"strings"
)

// procFS reads /proc.
type procFS struct{}

// List reads every process of /proc: its comm from /proc/PID/stat, where
// the state shows zombies (left out, as keepalived does: a zombie has no
// command line).
func (procFS) List(cmdline bool) ([]Info, error) {
	d, err := os.Open("/proc")
	if err != nil {
		return nil, err
	}
	defer d.Close()
	names, err := d.Readdirnames(-1)
	if err != nil {
		return nil, err
	}
	out := make([]Info, 0, len(names))
	for _, n := range names {
		if n == "" || n[0] < '1' || n[0] > '9' {
			continue
		}
		pid, err := strconv.Atoi(n)
		if err != nil {
			continue
		}
		b, err := os.ReadFile("/proc/" + n + "/stat")
		if err != nil {
			continue // gone
		}
		comm, state, ok := parseStat(b)
		if !ok || state == 'Z' {
			continue
		}
		in := Info{PID: pid, Comm: comm}
		if cmdline {
			if in.Cmdline, err = os.ReadFile("/proc/" + n + "/cmdline"); err != nil {
				continue
			}
		}
		out = append(out, in)
	}
	return out, nil
}

// parseStat returns the comm and the state of a /proc/PID/stat line:
// "PID (COMM) S ...", COMM being anything (even parentheses).
func parseStat(b []byte) (comm string, state byte, ok bool) {
	i := bytes.IndexByte(b, '(')
	j := bytes.LastIndexByte(b, ')')
	if i < 0 || j < i || j+2 >= len(b) {
		return "", 0, false
	}
	return string(b[i+1 : j]), b[j+2], true
}

// Read reads one process's comm (and command line).
func (procFS) Read(pid int, cmdline bool) (Info, bool) {
	dir := "/proc/" + strconv.Itoa(pid) + "/"
	b, err := os.ReadFile(dir + "comm")
	if err != nil {
		return Info{}, false
	}
	in := Info{PID: pid, Comm: strings.TrimSuffix(string(b), "\n")}
	if cmdline {
		if in.Cmdline, err = os.ReadFile(dir + "cmdline"); err != nil {
			return Info{}, false
		}
	}
	return in, true
}
