//go:build !linux

package ipvs

import "errors"

type batcher struct{}

func newBatcher(uint16) (*batcher, error) { return nil, errors.New("ipvs: netlink needs Linux") }

func (*batcher) apply(ops []Op) []error { return make([]error, len(ops)) }
func (*batcher) close() error           { return nil }

// persistenceEngines: none outside Linux.
func (k *netlinkKernel) persistenceEngines() (map[ServiceKey]string, error) { return nil, nil }
