package vrrp

import (
	"errors"
	"os"
	"strconv"

	"github.com/lvsd/lvsd/conf"
)

// trackFileReadLimit is how much of a tracked file is read (keepalived
// reads 127 bytes).
const trackFileReadLimit = 127

// parseTrackValue reads a number as C's strtol with base 0 does: leading
// white space, a sign, then decimal, 0x hexadecimal or 0 octal digits up
// to the first other character; no digits is 0. ok is false when the
// number does not fit in 32 bits (keepalived then ignores the read).
func parseTrackValue(b []byte) (v int, ok bool) {
	i := 0
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r' || b[i] == '\v' || b[i] == '\f') {
		i++
	}
	neg := false
	if i < len(b) && (b[i] == '+' || b[i] == '-') {
		neg = b[i] == '-'
		i++
	}
	base := 10
	switch {
	case i+2 < len(b) && b[i] == '0' && (b[i+1] == 'x' || b[i+1] == 'X') && isDigit(b[i+2], 16):
		base, i = 16, i+2
	case i < len(b) && b[i] == '0':
		base = 8
	}
	j := i
	for j < len(b) && isDigit(b[j], base) {
		j++
	}
	if j == i {
		return 0, true
	}
	n, err := strconv.ParseInt(string(b[i:j]), base, 64)
	if err != nil || n > 1<<31 {
		return 0, false
	}
	if neg {
		n = -n
	}
	if n < -(1<<31) || n > 1<<31-1 {
		return 0, false
	}
	return int(n), true
}

func isDigit(c byte, base int) bool {
	switch {
	case c >= '0' && c <= '7':
		return true
	case c == '8' || c == '9':
		return base >= 10
	case base == 16 && (c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F'):
		return true
	}
	return false
}

// readTrackFile returns the value of a tracked file: a missing or empty
// file is 0. ok is false when the content is not a usable number (the
// previous value stays).
func readTrackFile(path string) (v int, ok bool) {
	f, err := os.Open(path)
	if err != nil {
		return 0, true
	}
	defer f.Close()
	buf := make([]byte, trackFileReadLimit)
	n, _ := f.Read(buf)
	return parseTrackValue(buf[:n])
}

// initTrackFile writes init_file's value when the file does not exist, or
// always with overwrite.
func initTrackFile(f *conf.TrackFile) error {
	if !f.InitFile {
		return nil
	}
	if !f.InitOverwrite {
		if _, err := os.Stat(f.Path); err == nil || !errors.Is(err, os.ErrNotExist) {
			return nil
		}
	}
	return os.WriteFile(f.Path, []byte(strconv.Itoa(f.InitValue)+"\n"), 0o644)
}

// trackFileConfigs returns the track_files some instance tracks.
func trackFileConfigs(c *conf.Config, specs []runnerSpec) map[string]conf.TrackFile {
	used := map[string]bool{}
	for _, s := range specs {
		for _, ic := range s.Instances {
			for _, t := range ic.Tracks {
				used[t.Name] = true
			}
		}
	}
	out := map[string]conf.TrackFile{}
	for _, f := range c.TrackFiles {
		if used[trackFileName(f.Name)] {
			out[f.Name] = *f
		}
	}
	return out
}
