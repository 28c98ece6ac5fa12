// Package owner is the request/reply step between a goroutine that owns a
// piece of state and the others: post a request on the owner's channel,
// wait for its answer, and give up with the caller's error when the owner
// has stopped instead.
package owner

// Call sends req on ch and waits for the owner's answer on reply. When done
// closes first (the owner has stopped), it returns stopped.
func Call[T any](ch chan<- T, req T, reply <-chan error, done <-chan struct{}, stopped error) error {
	select {
	case ch <- req:
	case <-done:
		return stopped
	}
	select {
	case err := <-reply:
		return err
	case <-done:
		return stopped
	}
}
