// Package netnstest holds what the real-kernel tests of several packages
// need to act inside a named network namespace (ip netns add NAME): run a
// function on a thread switched into it, and an HTTP client that dials from
// it. For tests only; the daemon never changes namespace this way.
package netnstest

import (
	"context"
	"net"
	"net/http"
	"runtime"
	"time"

	"github.com/vishvananda/netns"
)

// Do runs fn on the calling goroutine's thread, locked and switched into
// the namespace name, and switches the thread back before unlocking it.
func Do(name string, fn func() error) error {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	orig, err := netns.Get()
	if err != nil {
		return err
	}
	defer orig.Close()
	target, err := netns.GetFromName(name)
	if err != nil {
		return err
	}
	defer target.Close()
	if err := netns.Set(target); err != nil {
		return err
	}
	defer func() {
		if err := netns.Set(orig); err != nil {
			panic(err) // a thread left in the wrong namespace must not be reused
		}
	}()
	return fn()
}

// HTTPClient is a client whose connections are dialled in namespace ns
// (each request a new connection), giving up after timeout.
func HTTPClient(ns string, timeout time.Duration) *http.Client {
	return &http.Client{
		Timeout: timeout,
		Transport: &http.Transport{
			DisableKeepAlives: true,
			DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
				var c net.Conn
				err := Do(ns, func() error {
					var err error
					c, err = (&net.Dialer{Timeout: 2 * time.Second}).DialContext(ctx, network, addr)
					return err
				})
				return c, err
			},
		},
	}
}
