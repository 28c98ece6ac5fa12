package lab

import (
	"encoding/json"
	"testing"
)

// The report of labhelper hold as the VM writes it, and what the
// failover checks count from it.
func TestHoldReport(t *testing.T) {
	const text = `{"phases":3,"conns":[
{"server":"rs1","answers":[5,1,3],"bytes_out":100,"bytes_in":200},
{"server":"rs2","answers":[5,0,1],"bytes_out":10,"bytes_in":20},
{"server":"rs1","answers":[5,0,0],"bytes_out":1,"bytes_in":2,"err_kind":"reset","err_phase":1,"err":"read: connection reset by peer"},
{"server":"rs2","answers":[4,0,2],"err_kind":"timeout","err_phase":2,"err":"i/o timeout"}]}`
	var r HoldReport
	if err := json.Unmarshal([]byte(text), &r); err != nil {
		t.Fatal(err)
	}
	if got := r.Kept(2, 2); got != 1 {
		t.Errorf("Kept(2, 2) = %d, want 1 (an error ends a connection whatever it answered)", got)
	}
	if got := r.Kept(2, 1); got != 2 {
		t.Errorf("Kept(2, 1) = %d, want 2", got)
	}
	if got := r.Kept(5, 0); got != 0 {
		t.Errorf("Kept of a phase not reached = %d, want 0", got)
	}
	if e := r.Errors(); len(e) != 2 || e["reset"] != 1 || e["timeout"] != 1 {
		t.Errorf("Errors = %v", e)
	}
	if out, in := r.Bytes(); out != 111 || in != 222 {
		t.Errorf("Bytes = %d, %d", out, in)
	}
}
