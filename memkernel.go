package main

import (
	"fmt"
	"sync"

	"github.com/lvsd/lvsd/ipvs"
)

// memKernel is an in-memory IPVS table for the daemon's tests and benchmarks
// (and the soak build, soak_lvsdbench.go): the
// userland cost of lvsd without the kernel's (the lab measures that one).
type memKernel struct {
	mu        sync.Mutex
	svcs      map[ipvs.ServiceKey]*ipvs.TableService
	mutations int
	changed   chan struct{} // signalled after every ApplyOps
}

func newMemKernel() *memKernel {
	return &memKernel{svcs: map[ipvs.ServiceKey]*ipvs.TableService{}, changed: make(chan struct{}, 1)}
}

func (k *memKernel) Services() ([]ipvs.ServiceInfo, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	var out []ipvs.ServiceInfo
	for _, s := range k.svcs {
		out = append(out, ipvs.ServiceInfo{Service: s.Service})
	}
	return out, nil
}

func (k *memKernel) Destinations(sk ipvs.ServiceKey) ([]ipvs.DestInfo, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	s := k.svcs[sk]
	if s == nil {
		return nil, fmt.Errorf("no service %s", sk)
	}
	var out []ipvs.DestInfo
	for _, d := range s.Dests {
		out = append(out, ipvs.DestInfo{Destination: d})
	}
	return out, nil
}

func (k *memKernel) ApplyOps(ops []ipvs.Op) []error {
	k.mu.Lock()
	errs := make([]error, len(ops))
	for i, op := range ops {
		sk := op.Service.ServiceKey
		s := k.svcs[sk]
		switch op.Kind {
		case ipvs.OpCreateService:
			if s != nil {
				errs[i] = fmt.Errorf("exists")
				continue
			}
			k.svcs[sk] = &ipvs.TableService{Service: op.Service, Dests: map[ipvs.DestKey]ipvs.Destination{}}
		case ipvs.OpUpdateService:
			s.Service = op.Service
		case ipvs.OpRemoveService:
			delete(k.svcs, sk)
		case ipvs.OpCreateDest, ipvs.OpUpdateDest:
			s.Dests[op.Dest.DestKey] = op.Dest
		case ipvs.OpRemoveDest:
			delete(s.Dests, op.Dest.DestKey)
		}
		k.mutations++
	}
	k.mu.Unlock()
	select {
	case k.changed <- struct{}{}:
	default:
	}
	return errs
}

func (k *memKernel) mutationCount() int {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.mutations
}

func (k *memKernel) one(op ipvs.Op) error { return k.ApplyOps([]ipvs.Op{op})[0] }

func (k *memKernel) CreateService(s ipvs.Service) error {
	return k.one(ipvs.Op{Kind: ipvs.OpCreateService, Service: s})
}
func (k *memKernel) UpdateService(s ipvs.Service) error {
	return k.one(ipvs.Op{Kind: ipvs.OpUpdateService, Service: s})
}
func (k *memKernel) RemoveService(sk ipvs.ServiceKey) error {
	return k.one(ipvs.Op{Kind: ipvs.OpRemoveService, Service: ipvs.Service{ServiceKey: sk}})
}
func (k *memKernel) CreateDestination(sk ipvs.ServiceKey, d ipvs.Destination) error {
	return k.one(ipvs.Op{Kind: ipvs.OpCreateDest, Service: ipvs.Service{ServiceKey: sk}, Dest: d})
}
func (k *memKernel) UpdateDestination(sk ipvs.ServiceKey, d ipvs.Destination) error {
	return k.one(ipvs.Op{Kind: ipvs.OpUpdateDest, Service: ipvs.Service{ServiceKey: sk}, Dest: d})
}
func (k *memKernel) RemoveDestination(sk ipvs.ServiceKey, d ipvs.DestKey) error {
	return k.one(ipvs.Op{Kind: ipvs.OpRemoveDest, Service: ipvs.Service{ServiceKey: sk}, Dest: ipvs.Destination{DestKey: d}})
}
func (k *memKernel) Timeouts() (ipvs.Timeouts, error)        { return ipvs.Timeouts{}, nil }
func (k *memKernel) SetTimeouts(ipvs.Timeouts) error         { return nil }
func (k *memKernel) SyncDaemons() ([]ipvs.SyncDaemon, error) { return nil, nil }
func (k *memKernel) StartSyncDaemon(ipvs.SyncDaemon) error   { return nil }
func (k *memKernel) StopSyncDaemon(ipvs.SyncState) error     { return nil }
func (k *memKernel) Close() error                            { return nil }
func (k *memKernel) Flush() error {
	k.mu.Lock()
	k.svcs = map[ipvs.ServiceKey]*ipvs.TableService{}
	k.mu.Unlock()
	return nil
}
