package lab

import (
	_ "embed"
	"strconv"
)

// libScript is /lab/lib.sh in the VM: topology helpers for scenarios.
//
//go:embed lib.sh
var libScript []byte

// Addresses of the lab topology built by topo_nat in lib.sh. Only the
// documentation ranges 192.0.2.0/24 and 198.51.100.0/24 are used, and only
// inside network namespaces of the VM.
const (
	VIP        = "192.0.2.100"    // public virtual address (reference: 192.168.1.1)
	PrivateVIP = "198.51.100.254" // real servers' gateway (reference: 10.0.0.100)
	ClientIP   = "192.0.2.10"
	DirectorA  = "dirA" // the MASTER director's namespace
	DirectorB  = "dirB" // the BACKUP director's namespace
)

// RealServerIP is the address of real server rsN (reference: 10.0.0.7N).
func RealServerIP(n int) string {
	return "198.51.100." + strconv.Itoa(70+n)
}
