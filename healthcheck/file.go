package healthcheck

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"strconv"

	"github.com/lvsd/lvsd/conf"
)

// fileProbe is FILE_CHECK: the value of a track_file's file (keepalived's
// reading: the number its first bytes start with, in C's strtol base 0; 0
// when the file is missing, empty or holds no number). With weight 0 a
// non-zero value (reverse: zero) is down; otherwise it is up and its value
// times the weight (negated with reverse) is added to the real server's
// weight: a way to drain a server (weight 0) without a reload.
type fileProbe struct {
	path     string
	weight   int
	reverse  bool
	rsWeight int
}

func newFileProbe(c *conf.Checker, rs *conf.RealServer) *fileProbe {
	return &fileProbe{path: c.FilePath, weight: c.FileWeight, reverse: c.FileReverse, rsWeight: rs.Weight}
}

func (p *fileProbe) probe(context.Context) result {
	v, err := fileValue(p.path)
	if err != nil {
		return fail("%v", err)
	}
	if p.weight == 0 {
		if (v != 0) != p.reverse {
			return fail("%s holds %d", p.path, v)
		}
		return pass(p.path + " holds " + strconv.FormatInt(v, 10))
	}
	s := v * int64(p.weight)
	if p.reverse {
		s = -s
	}
	w := min(max(int64(p.rsWeight)+s, 0), 1<<31-1)
	r := pass(p.path + " holds " + strconv.FormatInt(v, 10))
	r.weight = int(w)
	return r
}

// fileValue reads a tracked file's value as keepalived does.
func fileValue(path string) (int64, error) {
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	defer f.Close()
	buf := make([]byte, 127)
	n, _ := f.Read(buf)
	return strtol(string(buf[:n])), nil
}

// strtol is C's strtol(s, NULL, 0) on a 64-bit long: leading blanks, a
// sign, 0x for hexadecimal and 0 for octal, then as many digits as there
// are; 0 without any.
func strtol(s string) int64 {
	i := 0
	for i < len(s) && (s[i] == ' ' || (s[i] >= '\t' && s[i] <= '\r')) {
		i++
	}
	neg := false
	if i < len(s) && (s[i] == '+' || s[i] == '-') {
		neg = s[i] == '-'
		i++
	}
	base := int64(10)
	switch {
	case i+2 < len(s) && s[i] == '0' && (s[i+1] == 'x' || s[i+1] == 'X') && digit(s[i+2]) < 16:
		base, i = 16, i+2
	case i < len(s) && s[i] == '0':
		base = 8
	}
	var v int64
	for ; i < len(s); i++ {
		d := digit(s[i])
		if d >= base {
			break
		}
		if v > (1<<62)/base {
			v = 1 << 62 // saturates: far beyond any weight
			continue
		}
		v = v*base + d
	}
	if neg {
		return -v
	}
	return v
}

// digit is the value of a digit of base up to 16, or 99.
func digit(c byte) int64 {
	switch {
	case c >= '0' && c <= '9':
		return int64(c - '0')
	case c >= 'a' && c <= 'f':
		return int64(c-'a') + 10
	case c >= 'A' && c <= 'F':
		return int64(c-'A') + 10
	}
	return 99
}
