// Package lab boots a small real-kernel VM (QEMU + a Debian cloud kernel +
// a busybox initramfs) with IPVS, keepalived, ipvsadm, tcpdump, iproute2,
// lvsd and a test helper inside, runs a shell scenario in it and returns
// what the scenario observed.
//
// The VM has no network device: all traffic stays in network namespaces
// inside it. Input files travel in the initramfs; output files come back
// as a tar archive the VM writes onto a scratch virtio disk.
//
// Nothing is installed by this package. Host tools it needs (see
// HostPackages) are checked up front and reported by Debian package name.
package lab

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
)

// EnvIntegration gates the VM-based tests: unset means skip, set means
// every missing prerequisite is a failure.
const EnvIntegration = "LVSD_INTEGRATION"

// EnvCache overrides the cache directory.
const EnvCache = "LVSD_LAB_CACHE"

// EnvKernelDeb points at a linux-image-*-cloud-amd64 .deb to use instead of
// asking apt for the current one (offline use, pinning).
const EnvKernelDeb = "LVSD_LAB_KERNEL_DEB"

// EnvAccel forces the QEMU accelerator: "kvm" or "tcg". Unset, the lab
// uses KVM when /dev/kvm opens and a probe VM actually boots with it (nested
// KVM can hang in early boot), and TCG otherwise.
const EnvAccel = "LVSD_LAB_ACCEL"

// HostPackages are the Debian packages the lab needs on the host.
var HostPackages = []string{"qemu-system-x86", "busybox-static", "kmod", "ipvsadm", "keepalived", "tcpdump", "iproute2", "bird2"}

// hostTool is one executable the lab needs and the package that ships it.
type hostTool struct {
	name string // looked up in PATH (plus sbin dirs)
	pkg  string
}

var hostTools = []hostTool{
	{"qemu-system-x86_64", "qemu-system-x86"},
	{"busybox", "busybox-static"},
	{"depmod", "kmod"},
	{"ipvsadm", "ipvsadm"},
	{"keepalived", "keepalived"},
	{"tcpdump", "tcpdump"},
	{"ip", "iproute2"},
	{"bird", "bird2"},
	{"ldd", "libc-bin"},
	{"dpkg-deb", "dpkg"},
	{"dpkg-query", "dpkg"},
	{"apt-get", "apt"},
	{"apt-cache", "apt"},
}

// lookTool finds an executable in PATH or the sbin directories that a
// non-login root shell may lack.
func lookTool(name string) (string, error) {
	if p, err := exec.LookPath(name); err == nil {
		return p, nil
	}
	for _, d := range []string{"/usr/local/sbin", "/usr/local/bin", "/usr/sbin", "/usr/bin", "/sbin", "/bin"} {
		p := filepath.Join(d, name)
		if fi, err := os.Stat(p); err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0 {
			return p, nil
		}
	}
	return "", fmt.Errorf("%s not found", name)
}

// MissingHostError lists host prerequisites that are absent.
type MissingHostError struct {
	Missing []string // human readable, one per problem
	Pkgs    []string // Debian packages that would fix it
}

func (e *MissingHostError) Error() string {
	return fmt.Sprintf("lab: host prerequisites missing: %s; install with: apt-get install -y %s",
		strings.Join(e.Missing, "; "), strings.Join(e.Pkgs, " "))
}

// CheckHost reports every missing host tool at once, by package name.
func CheckHost() error {
	var miss []string
	pkgs := map[string]bool{}
	for _, t := range hostTools {
		p, err := lookTool(t.name)
		if err != nil {
			miss = append(miss, fmt.Sprintf("%s (package %s)", t.name, t.pkg))
			pkgs[t.pkg] = true
			continue
		}
		if t.name == "busybox" {
			static, err := isStatic(p)
			if err != nil || !static {
				miss = append(miss, fmt.Sprintf("%s is not statically linked (package busybox-static)", p))
				pkgs["busybox-static"] = true
			}
		}
	}
	if _, err := goTool(); err != nil {
		miss = append(miss, "go toolchain: "+err.Error())
	}
	if len(miss) == 0 {
		return nil
	}
	var list []string
	for p := range pkgs {
		list = append(list, p)
	}
	sort.Strings(list)
	return &MissingHostError{Missing: miss, Pkgs: list}
}

// goTool finds the go command used to build the helper and lvsd binaries.
func goTool() (string, error) {
	if p, err := exec.LookPath("go"); err == nil {
		return p, nil
	}
	for _, p := range []string{filepath.Join(os.Getenv("GOROOT"), "bin", "go"), "/usr/local/go/bin/go"} {
		if fi, err := os.Stat(p); err == nil && !fi.IsDir() {
			return p, nil
		}
	}
	return "", errors.New("go command not found in PATH, $GOROOT/bin or /usr/local/go/bin")
}

// CacheDir returns the cache directory: $LVSD_LAB_CACHE, else
// /var/cache/lvsd-lab when writable, else the user cache dir.
func CacheDir() (string, error) {
	if d := os.Getenv(EnvCache); d != "" {
		return d, os.MkdirAll(d, 0o755)
	}
	d := "/var/cache/lvsd-lab"
	if err := os.MkdirAll(d, 0o755); err == nil && writable(d) {
		return d, nil
	}
	uc, err := os.UserCacheDir()
	if err != nil {
		return "", fmt.Errorf("lab: no cache directory (set %s): %w", EnvCache, err)
	}
	d = filepath.Join(uc, "lvsd-lab")
	return d, os.MkdirAll(d, 0o755)
}

func writable(dir string) bool {
	f, err := os.CreateTemp(dir, ".probe-*")
	if err != nil {
		return false
	}
	name := f.Name()
	f.Close()
	os.Remove(name)
	return true
}

// Logf is the logging hook used by the lab (t.Logf, log.Printf, ...).
type Logf func(format string, args ...any)

func (l Logf) printf(format string, args ...any) {
	if l != nil {
		l(format, args...)
	}
}
