package ipvs

import (
	"fmt"
	"sync"
	"syscall"
)

// fakeKernel is an in-memory IPVS table with the kernel's error semantics
// (EEXIST, ESRCH for a missing service, ENOENT for a missing destination),
// recording every mutation.
type fakeKernel struct {
	mu       sync.Mutex
	t        Table
	log      []string // mutations, in order
	timeouts Timeouts
	daemons  map[SyncState]SyncDaemon
	flushes  int
	sysctls  map[string]string // SysctlKernel
	// fail makes an operation fail: key "create-service TCP 1.2.3.4:80" etc.,
	// or by scheduler name "sched:NAME".
	fail map[string]error
}

func newFakeKernel() *fakeKernel {
	return &fakeKernel{t: Table{}, daemons: map[SyncState]SyncDaemon{}, fail: map[string]error{},
		timeouts: Timeouts{TCP: 900e9, TCPFin: 120e9, UDP: 300e9},
		sysctls:  map[string]string{"sloppy_tcp": "0", "sloppy_sctp": "0", "backup_only": "0", "conn_reuse_mode": "1", "expire_nodest_conn": "0"}}
}

func (f *fakeKernel) record(s string) { f.log = append(f.log, s) }

// mutations returns and clears the mutation log.
func (f *fakeKernel) mutations() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	l := f.log
	f.log = nil
	return l
}

func (f *fakeKernel) table() Table {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.t.Clone()
}

func (f *fakeKernel) Services() ([]ServiceInfo, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.fail["services"]; err != nil {
		return nil, err
	}
	var out []ServiceInfo
	for _, k := range f.t.Keys() {
		out = append(out, ServiceInfo{Service: f.t[k].Service, Stats: Stats{Connections: 7}})
	}
	return out, nil
}

func (f *fakeKernel) Destinations(k ServiceKey) ([]DestInfo, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	s := f.t[k]
	if s == nil {
		return nil, nil
	}
	var out []DestInfo
	for _, dk := range s.DestKeys() {
		out = append(out, DestInfo{Destination: s.Dests[dk], ActiveConns: 3, Stats: Stats{Connections: 5}})
	}
	return out, nil
}

func (f *fakeKernel) check(op string, s Service) error {
	if err := f.fail[op]; err != nil {
		return err
	}
	if s.Scheduler != "" {
		if err := f.fail["sched:"+s.Scheduler]; err != nil {
			return err
		}
	}
	return nil
}

func (f *fakeKernel) CreateService(s Service) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.check("create-service "+s.ServiceKey.String(), s); err != nil {
		return err
	}
	if _, ok := f.t[s.ServiceKey]; ok {
		return syscall.EEXIST
	}
	s.Flags |= FlagHashed
	f.t[s.ServiceKey] = &TableService{Service: s, Dests: map[DestKey]Destination{}}
	f.record("create-service " + s.String())
	return nil
}

func (f *fakeKernel) UpdateService(s Service) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.check("update-service "+s.ServiceKey.String(), s); err != nil {
		return err
	}
	ts := f.t[s.ServiceKey]
	if ts == nil {
		return syscall.ESRCH
	}
	s.Flags |= FlagHashed
	ts.Service = s
	f.record("update-service " + s.String())
	return nil
}

func (f *fakeKernel) RemoveService(k ServiceKey) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, ok := f.t[k]; !ok {
		return syscall.ESRCH
	}
	delete(f.t, k)
	f.record("remove-service " + k.String())
	return nil
}

func (f *fakeKernel) CreateDestination(k ServiceKey, d Destination) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.fail["create-dest "+k.String()+" -> "+d.DestKey.String()]; err != nil {
		return err
	}
	ts := f.t[k]
	if ts == nil {
		return syscall.ESRCH
	}
	if _, ok := ts.Dests[d.DestKey]; ok {
		return syscall.EEXIST
	}
	ts.Dests[d.DestKey] = d
	f.record("create-dest " + k.String() + " -> " + d.String())
	return nil
}

func (f *fakeKernel) UpdateDestination(k ServiceKey, d Destination) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	ts := f.t[k]
	if ts == nil {
		return syscall.ESRCH
	}
	if _, ok := ts.Dests[d.DestKey]; !ok {
		return syscall.ENOENT
	}
	ts.Dests[d.DestKey] = d
	f.record("update-dest " + k.String() + " -> " + d.String())
	return nil
}

func (f *fakeKernel) RemoveDestination(k ServiceKey, dk DestKey) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	ts := f.t[k]
	if ts == nil {
		return syscall.ESRCH
	}
	if _, ok := ts.Dests[dk]; !ok {
		return syscall.ENOENT
	}
	delete(ts.Dests, dk)
	f.record("remove-dest " + k.String() + " -> " + dk.String())
	return nil
}

func (f *fakeKernel) Timeouts() (Timeouts, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.timeouts, nil
}

func (f *fakeKernel) SetTimeouts(t Timeouts) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if t.TCP > 0 {
		f.timeouts.TCP = t.TCP
	}
	if t.TCPFin > 0 {
		f.timeouts.TCPFin = t.TCPFin
	}
	if t.UDP > 0 {
		f.timeouts.UDP = t.UDP
	}
	f.record(fmt.Sprintf("set-timeouts %v %v %v", t.TCP, t.TCPFin, t.UDP))
	return nil
}

func (f *fakeKernel) Sysctl(name string) (string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	v, ok := f.sysctls[name]
	if !ok {
		return "", fmt.Errorf("no sysctl %s", name)
	}
	return v, nil
}

func (f *fakeKernel) SetSysctl(name, value string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, ok := f.sysctls[name]; !ok {
		return fmt.Errorf("no sysctl %s", name)
	}
	f.sysctls[name] = value
	return nil
}

func (f *fakeKernel) SyncDaemons() ([]SyncDaemon, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []SyncDaemon
	for _, st := range []SyncState{SyncMaster, SyncBackup} {
		if d, ok := f.daemons[st]; ok {
			out = append(out, d)
		}
	}
	return out, nil
}

func (f *fakeKernel) StartSyncDaemon(d SyncDaemon) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, ok := f.daemons[d.State]; ok {
		return nil
	}
	f.daemons[d.State] = d
	f.record(fmt.Sprintf("start-sync %s %s id %d", d.State, d.Interface, d.SyncID))
	return nil
}

func (f *fakeKernel) StopSyncDaemon(s SyncState) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, ok := f.daemons[s]; !ok {
		return nil
	}
	delete(f.daemons, s)
	f.record("stop-sync " + s.String())
	return nil
}

func (f *fakeKernel) Flush() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.t = Table{}
	f.flushes++
	f.record("flush")
	return nil
}

func (f *fakeKernel) Close() error { return nil }

// handService adds a service behind lvsd's back (another tool).
func (f *fakeKernel) handService(s Service, dests ...Destination) {
	f.mu.Lock()
	defer f.mu.Unlock()
	ts := &TableService{Service: s, Dests: map[DestKey]Destination{}}
	for _, d := range dests {
		ts.Dests[d.DestKey] = d
	}
	f.t[s.ServiceKey] = ts
}

var _ Kernel = (*fakeKernel)(nil)

// batchFake is the fake kernel with ApplyOps, as the real one: the
// reconciler then sends each phase of operations as one batch.
type batchFake struct {
	*fakeKernel
	batches []int // sizes
}

func (b *batchFake) ApplyOps(ops []Op) []error {
	b.mu.Lock()
	b.batches = append(b.batches, len(ops))
	b.mu.Unlock()
	return applyEach(b.fakeKernel, ops)
}

var _ BatchKernel = (*batchFake)(nil)
