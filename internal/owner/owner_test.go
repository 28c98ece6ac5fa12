package owner

import (
	"errors"
	"testing"
)

func TestCall(t *testing.T) {
	stopped := errors.New("stopped")
	ch, done := make(chan chan error), make(chan struct{})
	go func() {
		r := <-ch
		r <- errors.New("answer")
	}()
	reply := make(chan error, 1)
	if err := Call(ch, reply, reply, done, stopped); err == nil || err.Error() != "answer" {
		t.Fatalf("Call = %v, want the owner's answer", err)
	}
	// An owner that stopped: nobody reads ch.
	close(done)
	if err := Call(ch, reply, reply, done, stopped); err != stopped {
		t.Fatalf("Call after stop = %v, want %v", err, stopped)
	}
	// An owner that took the request and stopped before answering.
	ch2, done2 := make(chan int, 1), make(chan struct{})
	close(done2)
	if err := Call(ch2, 1, make(chan error), done2, stopped); err != stopped {
		t.Fatalf("Call = %v, want %v", err, stopped)
	}
}
