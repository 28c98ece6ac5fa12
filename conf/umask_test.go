package conf

import "testing"

// global_defs umask: keepalived's NUMBER (base 0) or BITS forms.
func TestUmask(t *testing.T) {
	for text, want := range map[string]int{
		"":                        -1,
		"umask 0027":              0o27,
		"umask 0x12":              0o22,
		"umask 18":                0o22,
		"umask IWGRP|IWOTH":       0o22,
		"umask IWGRP | IRWXO":     -2, // IRWXO is no bit name of keepalived's: an error
		"umask IXUSR|IRGRP|IXOTH": 0o141,
	} {
		c, diags := Parse("t.conf", "global_defs {\n "+text+"\n}\n", Options{})
		if want == -2 {
			if MaxLevel(diags) < Error {
				t.Errorf("%q: no error", text)
			}
			continue
		}
		if MaxLevel(diags) >= Error || c.Global.Umask != want {
			t.Errorf("%q: umask %#o, want %#o (%v)", text, c.Global.Umask, want, diags)
		}
	}
}
