package vrrp

import (
	"errors"
	"fmt"

	"github.com/lvsd/lvsd/conf"
	"github.com/lvsd/lvsd/internal/netwatch"
)

// netlinkBuffers are the receive buffers the configuration asks for.
func netlinkBuffers(g *conf.Global) NetlinkBuffers {
	return NetlinkBuffers{
		Monitor: g.VRRPNetlinkMonitorRcvBufs, MonitorForce: g.VRRPNetlinkMonitorRcvBufsForce,
		Cmd: g.VRRPNetlinkCmdRcvBufs, CmdForce: g.VRRPNetlinkCmdRcvBufsForce,
	}
}

// netlinkResizer is a Kernel whose netlink sockets follow the buffer
// sizes of a reloaded configuration.
type netlinkResizer interface {
	SetNetlinkBuffers(NetlinkBuffers) error
}

func (k *linuxKernel) buffers() NetlinkBuffers {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.bufs
}

// newWatcher opens a notification socket with the monitor buffer, kept
// to be resized until forget; k nil: the kernel's default buffer.
func (k *linuxKernel) newWatcher() (*netwatch.Watcher, error) {
	if k == nil {
		return netwatch.New(netwatch.Options{})
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	w, err := netwatch.New(netwatch.Options{ReadBuffer: k.bufs.Monitor, ForceBuffer: k.bufs.MonitorForce})
	if err != nil {
		return nil, err
	}
	if k.watchers == nil {
		k.watchers = map[*netwatch.Watcher]bool{}
	}
	k.watchers[w] = true
	return w, nil
}

func (k *linuxKernel) forget(w *netwatch.Watcher) {
	if k == nil {
		return
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	delete(k.watchers, w)
}

// SetNetlinkBuffers resizes the open sockets (the watchers' and the
// command socket) and those opened later, as keepalived does on reload.
// A size of 0 leaves an open socket as it is.
func (k *linuxKernel) SetNetlinkBuffers(b NetlinkBuffers) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	if b == k.bufs {
		return nil
	}
	k.bufs = b
	var errs []error
	for w := range k.watchers {
		if err := w.SetReadBuffer(b.Monitor, b.MonitorForce); err != nil {
			errs = append(errs, fmt.Errorf("monitor socket: %w", err))
		}
	}
	if err := k.cmd.resize(b); err != nil {
		errs = append(errs, fmt.Errorf("command socket: %w", err))
	}
	return errors.Join(errs...)
}
