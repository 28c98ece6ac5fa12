package control

import (
	"errors"
	"testing"
	"time"
)

// TestDrainDirector: drain and enable without a virtual and a real server
// reach DrainDirector (the whole director's BGP routes); with them, Drain;
// with only one of them, neither.
func TestDrainDirector(t *testing.T) {
	var got []string
	bgpOn := true
	cmds := Commands{
		Drain: func(vs, rs string, on bool) error { got = append(got, "rs "+vs+" "+rs); return nil },
		DrainDirector: func(on bool) error {
			if !bgpOn {
				return errors.New("no bgp")
			}
			got = append(got, map[bool]string{true: "director drain", false: "director enable"}[on])
			return nil
		},
	}
	path, _ := startServer(t, cmds, -1)
	call := caller(t, path)
	if r := call(Request{Command: CmdDrain}); !r.OK {
		t.Errorf("drain: %+v", r)
	}
	if r := call(Request{Command: CmdEnable}); !r.OK {
		t.Errorf("enable: %+v", r)
	}
	if r := call(Request{Command: CmdDrain, VS: "v", RS: "r"}); !r.OK {
		t.Errorf("drain v r: %+v", r)
	}
	if r := call(Request{Command: CmdDrain, VS: "v"}); r.OK {
		t.Errorf("drain v: %+v", r)
	}
	bgpOn = false
	if r := call(Request{Command: CmdDrain}); r.OK || r.Error != "no bgp" {
		t.Errorf("drain without bgp: %+v", r)
	}
	if want := []string{"director drain", "director enable", "rs v r"}; len(got) != 3 || got[0] != want[0] || got[1] != want[1] || got[2] != want[2] {
		t.Errorf("calls %v, want %v", got, want)
	}
}

// caller returns a function making one call to the server at path.
func caller(t *testing.T, path string) func(Request) Response {
	return func(req Request) Response {
		t.Helper()
		r, err := Call(path, req, 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
}
