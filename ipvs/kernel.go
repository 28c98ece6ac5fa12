package ipvs

import (
	"errors"
	"net/netip"
	"time"
)

// Kernel is the access to the IPVS table the reconciler needs. NewKernel
// returns the real one (generic netlink); tests use a fake.
//
// Errors that mean "already so" are not errors: creating an existing entry
// and removing a missing one are reported (the reconciler repairs its
// picture), but stopping a sync daemon that is not running, or starting one
// that already runs, returns nil.
type Kernel interface {
	// Reader lists the services and their destinations (snapshot.go:
	// all a Snapshot needs).
	Reader

	CreateService(Service) error
	UpdateService(Service) error
	RemoveService(ServiceKey) error
	CreateDestination(ServiceKey, Destination) error
	UpdateDestination(ServiceKey, Destination) error
	RemoveDestination(ServiceKey, DestKey) error

	// Timeouts reads the connection timeouts; SetTimeouts changes the
	// non-zero ones.
	Timeouts() (Timeouts, error)
	SetTimeouts(Timeouts) error

	// SyncDaemons lists the running connection-synchronisation daemons.
	SyncDaemons() ([]SyncDaemon, error)
	StartSyncDaemon(SyncDaemon) error
	StopSyncDaemon(SyncState) error

	// Flush removes every service of the table.
	Flush() error
	Close() error
}

// BatchKernel is a Kernel that performs many operations in one exchange
// (NewKernel's does). ApplyOps performs them in order and returns one error
// per operation; a failed operation does not stop the next ones.
type BatchKernel interface {
	Kernel
	ApplyOps(ops []Op) []error
}

// errUnknownOutcome marks operations whose acknowledgement never came: the
// reconciler re-reads the kernel.
var errUnknownOutcome = errors.New("netlink: no acknowledgement (outcome unknown)")

// applyEach performs operations one by one.
func applyEach(k Kernel, ops []Op) []error {
	errs := make([]error, len(ops))
	for i, op := range ops {
		sk := op.Service.ServiceKey
		switch op.Kind {
		case OpCreateService:
			errs[i] = k.CreateService(op.Service)
		case OpUpdateService:
			errs[i] = k.UpdateService(op.Service)
		case OpRemoveService:
			errs[i] = k.RemoveService(sk)
		case OpCreateDest:
			errs[i] = k.CreateDestination(sk, op.Dest)
		case OpUpdateDest:
			errs[i] = k.UpdateDestination(sk, op.Dest)
		case OpRemoveDest:
			errs[i] = k.RemoveDestination(sk, op.Dest.DestKey)
		}
	}
	return errs
}

// ServiceInfo is a service as listed, with its counters.
type ServiceInfo struct {
	Service
	Stats Stats
}

// DestInfo is a destination as listed, with its counters.
type DestInfo struct {
	Destination
	ActiveConns   uint32
	InactiveConns uint32
	PersistConns  uint32
	Stats         Stats
}

// Timeouts are IPVS's connection timeouts (ipvsadm --set); zero leaves a
// value as it is.
type Timeouts struct {
	TCP    time.Duration `json:"tcp"`
	TCPFin time.Duration `json:"tcpfin"`
	UDP    time.Duration `json:"udp"`
}

// SyncState is the role of a sync daemon (IP_VS_STATE_*).
type SyncState uint32

// Sync daemon roles.
const (
	SyncMaster SyncState = 1
	SyncBackup SyncState = 2
)

var syncStateNames = map[SyncState]string{SyncMaster: "master", SyncBackup: "backup"}

func (s SyncState) String() string {
	if name, ok := syncStateNames[s]; ok {
		return name
	}
	return "none"
}

// SyncDaemon is a connection-synchronisation daemon's parameters; zero
// values leave the kernel's defaults.
type SyncDaemon struct {
	State     SyncState  `json:"state"`
	Interface string     `json:"interface"`
	SyncID    uint32     `json:"sync_id"`
	MaxLen    uint16     `json:"maxlen,omitempty"`
	Group     netip.Addr `json:"group,omitempty"`
	Port      uint16     `json:"port,omitempty"`
	TTL       uint8      `json:"ttl,omitempty"`
}
