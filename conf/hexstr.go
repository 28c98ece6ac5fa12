package conf

import (
	"errors"
	"fmt"
	"strings"
)

// readHexStr decodes keepalived's free-format hex string, as UDP_CHECK's
// payload and require_reply take it: blanks separate groups, each group is
// read two digits to an octet from its left, and a digit left alone makes an
// octet of its own ("Ab12f 3 456" is AB 12 0F 03 45 06). With wildcard, x or
// X stands for a digit whose value does not matter: its bits are set in mask
// (nil when there is no wildcard).
func readHexStr(s string, wildcard bool) (data, mask []byte, err error) {
	nibble := func(c byte) (v, m byte, ok bool) {
		switch {
		case c >= '0' && c <= '9':
			return c - '0', 0, true
		case c >= 'a' && c <= 'f':
			return c - 'a' + 10, 0, true
		case c >= 'A' && c <= 'F':
			return c - 'A' + 10, 0, true
		case wildcard && (c == 'x' || c == 'X'):
			return 0, 0xf, true
		}
		return 0, 0, false
	}
	wild := false
	for _, w := range strings.Fields(s) {
		for i := 0; i < len(w); i += 2 {
			v, m, ok := nibble(w[i])
			if !ok {
				return nil, nil, fmt.Errorf("'%c' is not a hex digit", w[i])
			}
			if i+1 < len(w) {
				v2, m2, ok := nibble(w[i+1])
				if !ok {
					return nil, nil, fmt.Errorf("'%c' is not a hex digit", w[i+1])
				}
				v, m = v<<4|v2, m<<4|m2
			}
			data = append(data, v)
			mask = append(mask, m)
			wild = wild || m != 0
		}
	}
	if len(data) == 0 {
		return nil, nil, errors.New("empty hex string")
	}
	if !wild {
		mask = nil
	}
	return data, mask, nil
}

// ReplyMatch decodes UDP_CHECK's require_reply pattern: the octets a reply
// must start with (compared over the shorter of the reply and the pattern)
// and the mask of the wildcard bits, which are not compared (nil: none).
// data is nil when require_reply has no pattern.
func (c *Checker) ReplyMatch() (data, mask []byte, err error) {
	if strings.TrimSpace(c.ReplyPattern) == "" {
		return nil, nil, nil
	}
	return readHexStr(c.ReplyPattern, true)
}
