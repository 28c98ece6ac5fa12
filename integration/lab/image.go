package lab

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"debug/elf"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"syscall"
	"time"
)

// imageFormat is bumped whenever the layout of the base image changes, so
// cached images built by older code are rebuilt.
const imageFormat = "lvsd-lab-base-v3"

// kernelMeta is the Debian metapackage whose dependency is the kernel used.
const kernelMeta = "linux-image-cloud-amd64"

// requiredModules must be present in the kernel package (ip_vs_* schedulers
// are added from the ipvs directory). Their dependencies come along.
var requiredModules = []string{"ip_vs", "veth", "bridge", "nf_conntrack", "nf_defrag_ipv4", "nf_defrag_ipv6", "virtio_pci", "virtio_blk"}

// optionalModules are loaded when the kernel ships them (tunnel forwarding,
// VMAC interfaces, VLANs, the nftables table of vrrp_strict).
var optionalModules = []string{"ipip", "ip_tunnel", "tunnel4", "ip6_tunnel", "tunnel6", "fou", "fou6", "gre", "ip_gre", "macvlan", "ipvlan", "8021q", "dummy", "nf_nat", "nf_tables", "nft_dup_ipv4"}

// hostBinaries are copied into the image with their shared libraries.
var hostBinaries = []string{"ipvsadm", "keepalived", "tcpdump", "ip", "bird", "birdc"}

// Image is a bootable lab image: a cached kernel + base initramfs, and the
// freshly built Go binaries added on every run.
type Image struct {
	Dir           string            // cache directory of this base image
	Kernel        string            // vmlinuz path
	Base          string            // base initramfs (uncompressed cpio) path
	Key           string            // cache key of the base image
	KernelVersion string            // uname -r inside the VM
	KernelPackage string            // Debian package and version of the kernel
	Packages      map[string]string // host package versions baked into the image
	Modules       []string          // modules loaded at boot, in load order
	Cached        bool              // base image came from the cache
	Accel         string            // QEMU accelerator: "kvm" or "tcg"
	BuildTime     time.Duration     // time spent in Build (base + Go binaries)

	Helper    []byte // static labhelper binary (/lab/bin/labhelper)
	LVSD      []byte // static lvsd binary (/usr/sbin/lvsd), nil when it did not build
	LVSDError error  // why LVSD is nil

	logf Logf
}

// BuildOptions tune Build.
type BuildOptions struct {
	Logf     Logf
	CacheDir string // default CacheDir()
	NoLVSD   bool   // do not try to build lvsd
}

// manifest is stored beside a cached base image.
type manifest struct {
	Format        string            `json:"format"`
	Key           string            `json:"key"`
	KernelVersion string            `json:"kernel_version"`
	KernelPackage string            `json:"kernel_package"`
	Packages      map[string]string `json:"packages"`
	Modules       []string          `json:"modules"`
	Built         time.Time         `json:"built"`
}

// Build returns a lab image, building the base image when the cache has
// none for the current kernel package, host package versions and inputs.
func Build(ctx context.Context, opt BuildOptions) (*Image, error) {
	start := time.Now()
	if err := CheckHost(); err != nil {
		return nil, err
	}
	cache := opt.CacheDir
	if cache == "" {
		var err error
		if cache, err = CacheDir(); err != nil {
			return nil, err
		}
	}
	unlock, err := lockDir(cache)
	if err != nil {
		return nil, err
	}
	defer unlock()

	img, err := buildBase(ctx, cache, opt.Logf)
	if err != nil {
		return nil, err
	}
	img.logf = opt.Logf
	if img.Accel, err = img.chooseAccel(ctx); err != nil {
		return nil, err
	}

	root, err := moduleRoot(ctx)
	if err != nil {
		return nil, err
	}
	img.Helper, err = goBuild(ctx, root, "github.com/lvsd/lvsd/integration/cmd/labhelper")
	if err != nil {
		return nil, fmt.Errorf("lab: building the test helper: %w", err)
	}
	if opt.NoLVSD {
		img.LVSDError = errors.New("not requested")
	} else {
		img.LVSD, img.LVSDError = goBuild(ctx, root, "github.com/lvsd/lvsd")
	}
	if img.LVSD == nil {
		opt.Logf.printf("lab: lvsd binary NOT in the image (%v); keepalived scenarios still run", firstLine(img.LVSDError))
	} else {
		opt.Logf.printf("lab: lvsd binary built (%d KiB) -> /usr/sbin/lvsd", len(img.LVSD)/1024)
	}
	img.BuildTime = time.Since(start)
	return img, nil
}

func firstLine(err error) string {
	if err == nil {
		return ""
	}
	s := strings.TrimSpace(err.Error())
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		s = s[:i] + " ..."
	}
	return s
}

// lockDir takes an exclusive flock on dir/lock so that concurrent test
// processes do not build the same image twice.
func lockDir(dir string) (func(), error) {
	f, err := os.OpenFile(filepath.Join(dir, "lock"), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, fmt.Errorf("lab: cache lock: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		f.Close()
		return nil, fmt.Errorf("lab: cache lock: %w", err)
	}
	return func() {
		syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
		f.Close()
	}, nil
}

// moduleRoot is the directory of the github.com/lvsd/lvsd module.
func moduleRoot(ctx context.Context) (string, error) {
	gocmd, err := goTool()
	if err != nil {
		return "", err
	}
	out, err := exec.CommandContext(ctx, gocmd, "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("lab: go env GOMOD: %w", err)
	}
	mod := strings.TrimSpace(string(out))
	if mod == "" || mod == os.DevNull {
		return "", errors.New("lab: not inside the github.com/lvsd/lvsd module (run from the repository)")
	}
	return filepath.Dir(mod), nil
}

// goBuild builds a static binary of pkg and returns its bytes.
func goBuild(ctx context.Context, root, pkg string) ([]byte, error) {
	gocmd, err := goTool()
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "lvsd-lab-bin-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	out := filepath.Join(dir, "bin")
	cmd := exec.CommandContext(ctx, gocmd, "build", "-trimpath", "-o", out, pkg)
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH=amd64")
	if b, err := cmd.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("go build %s: %v: %s", pkg, err, strings.TrimSpace(string(b)))
	}
	return os.ReadFile(out)
}

// run runs a host command and returns its stdout.
func run(ctx context.Context, dir string, name string, args ...string) (string, error) {
	p, err := lookTool(name)
	if err != nil {
		return "", err
	}
	cmd := exec.CommandContext(ctx, p, args...)
	cmd.Dir = dir
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return string(out), fmt.Errorf("%s %s: %v: %s", name, strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
	return string(out), nil
}

// kernelDeb finds (downloading when needed) the cloud kernel package.
func kernelDeb(ctx context.Context, cache string, logf Logf) (string, error) {
	if p := os.Getenv(EnvKernelDeb); p != "" {
		if _, err := os.Stat(p); err != nil {
			return "", fmt.Errorf("lab: %s: %w", EnvKernelDeb, err)
		}
		return p, nil
	}
	debs := filepath.Join(cache, "debs")
	if err := os.MkdirAll(debs, 0o755); err != nil {
		return "", err
	}
	pkg, ver, file, err := aptKernel(ctx)
	if err != nil {
		// Offline or no apt lists: use the newest kernel already cached.
		cached, _ := filepath.Glob(filepath.Join(debs, "linux-image-*-cloud-amd64_*.deb"))
		if len(cached) == 0 {
			return "", fmt.Errorf("lab: cannot resolve the %s kernel package (run apt-get update?): %w", kernelMeta, err)
		}
		sort.Strings(cached)
		logf.printf("lab: apt lookup failed (%v); using cached %s", err, filepath.Base(cached[len(cached)-1]))
		return cached[len(cached)-1], nil
	}
	dst := filepath.Join(debs, file)
	if _, err := os.Stat(dst); err == nil {
		return dst, nil
	}
	logf.printf("lab: downloading %s %s", pkg, ver)
	tmp, err := os.MkdirTemp(debs, "dl-")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(tmp)
	os.Chmod(tmp, 0o755) // lets apt's _apt user write when run unsandboxed
	if _, err := run(ctx, tmp, "apt-get", "download", "-q", pkg+"="+ver); err != nil {
		return "", fmt.Errorf("lab: %w", err)
	}
	got, _ := filepath.Glob(filepath.Join(tmp, "*.deb"))
	if len(got) != 1 {
		return "", fmt.Errorf("lab: apt-get download %s left %d .deb files", pkg, len(got))
	}
	if err := os.Rename(got[0], dst); err != nil {
		return "", err
	}
	// Drop older kernels: the cache keeps only what is current.
	old, _ := filepath.Glob(filepath.Join(debs, "linux-image-*.deb"))
	for _, o := range old {
		if o != dst {
			os.Remove(o)
		}
	}
	return dst, nil
}

var dependsRe = regexp.MustCompile(`(linux-image-[0-9][^ ,()|]*-cloud-amd64)`)

// aptKernel resolves linux-image-cloud-amd64 to the versioned kernel
// package, its version and its .deb file name.
func aptKernel(ctx context.Context) (pkg, ver, file string, err error) {
	out, err := run(ctx, "", "apt-cache", "show", "--no-all-versions", kernelMeta)
	if err != nil {
		return "", "", "", err
	}
	for _, l := range strings.Split(out, "\n") {
		if strings.HasPrefix(l, "Depends:") {
			if m := dependsRe.FindStringSubmatch(l); m != nil {
				pkg = m[1]
			}
		}
	}
	if pkg == "" {
		return "", "", "", fmt.Errorf("no kernel dependency in apt-cache show %s", kernelMeta)
	}
	out, err = run(ctx, "", "apt-cache", "show", "--no-all-versions", pkg)
	if err != nil {
		return "", "", "", err
	}
	for _, l := range strings.Split(out, "\n") {
		switch {
		case strings.HasPrefix(l, "Version:"):
			ver = strings.TrimSpace(strings.TrimPrefix(l, "Version:"))
		case strings.HasPrefix(l, "Filename:"):
			file = path.Base(strings.TrimSpace(strings.TrimPrefix(l, "Filename:")))
		}
	}
	if ver == "" || file == "" {
		return "", "", "", fmt.Errorf("apt-cache show %s: no Version/Filename", pkg)
	}
	return pkg, ver, file, nil
}

// hostFile is a host file to copy into the image.
type hostFile struct {
	dest string // image path, no leading slash
	src  string
}

// imagePath maps a host path onto the merged-/usr layout of the image.
func imagePath(p string) string {
	p = clean(p)
	for _, d := range []string{"bin/", "sbin/", "lib/", "lib64/"} {
		if strings.HasPrefix(p, d) {
			return "usr/" + p
		}
	}
	return p
}

var lddRe = regexp.MustCompile(`(?:=>\s*)?(/[^\s]+)\s+\(0x`)

// sharedLibs lists the libraries (and loader) a dynamic binary needs.
func sharedLibs(ctx context.Context, bin string) ([]string, error) {
	out, err := run(ctx, "", "ldd", bin)
	if err != nil {
		return nil, err
	}
	var libs []string
	for _, l := range strings.Split(out, "\n") {
		if strings.Contains(l, "not found") {
			return nil, fmt.Errorf("ldd %s: %s", bin, strings.TrimSpace(l))
		}
		if m := lddRe.FindStringSubmatch(l); m != nil {
			libs = append(libs, m[1])
		}
	}
	return libs, nil
}

func isStatic(p string) (bool, error) {
	f, err := elf.Open(p)
	if err != nil {
		return false, err
	}
	defer f.Close()
	for _, prog := range f.Progs {
		if prog.Type == elf.PT_INTERP {
			return false, nil
		}
	}
	return true, nil
}

// hostFiles collects busybox, the host binaries and their libraries.
func hostFiles(ctx context.Context) ([]hostFile, error) {
	var files []hostFile
	seen := map[string]bool{}
	addFile := func(dest, src string) {
		dest = clean(dest)
		if !seen[dest] {
			seen[dest] = true
			files = append(files, hostFile{dest, src})
		}
	}
	bb, err := lookTool("busybox")
	if err != nil {
		return nil, err
	}
	addFile("usr/bin/busybox", bb)
	for _, name := range hostBinaries {
		p, err := lookTool(name)
		if err != nil {
			return nil, err
		}
		if r, err := filepath.EvalSymlinks(p); err == nil {
			p = r
		}
		addFile(imagePath(p), p)
		libs, err := sharedLibs(ctx, p)
		if err != nil {
			return nil, err
		}
		for _, l := range libs {
			addFile(imagePath(l), l)
		}
	}
	// glibc dlopens libgcc_s for thread cancellation.
	for _, l := range []string{"/lib/x86_64-linux-gnu/libgcc_s.so.1"} {
		if _, err := os.Stat(l); err == nil {
			addFile(imagePath(l), l)
		}
	}
	for _, f := range []string{"/etc/protocols", "/etc/services"} {
		if _, err := os.Stat(f); err == nil {
			addFile(clean(f), f)
		}
	}
	sort.Slice(files, func(i, j int) bool { return files[i].dest < files[j].dest })
	return files, nil
}

// packageVersions asks dpkg for the versions of the host packages.
func packageVersions(ctx context.Context) map[string]string {
	v := map[string]string{}
	for _, p := range HostPackages {
		out, err := run(ctx, "", "dpkg-query", "-W", "-f=${Version}", p)
		if err != nil {
			out = "unknown"
		}
		v[p] = strings.TrimSpace(out)
	}
	return v
}

// baseKey hashes everything the base image is made of.
func baseKey(deb string, files []hostFile, pkgs map[string]string) (string, error) {
	h := sha256.New()
	fmt.Fprintf(h, "%s\n", imageFormat)
	fi, err := os.Stat(deb)
	if err != nil {
		return "", err
	}
	fmt.Fprintf(h, "kernel %s %d\n", filepath.Base(deb), fi.Size())
	fmt.Fprintf(h, "modules %v %v\n", requiredModules, optionalModules)
	var names []string
	for p := range pkgs {
		names = append(names, p)
	}
	sort.Strings(names)
	for _, p := range names {
		fmt.Fprintf(h, "pkg %s %s\n", p, pkgs[p])
	}
	for _, f := range files {
		fh := sha256.New()
		r, err := os.Open(f.src)
		if err != nil {
			return "", err
		}
		_, err = io.Copy(fh, r)
		r.Close()
		if err != nil {
			return "", err
		}
		fmt.Fprintf(h, "file %s %x\n", f.dest, fh.Sum(nil))
	}
	return hex.EncodeToString(h.Sum(nil))[:20], nil
}

func buildBase(ctx context.Context, cache string, logf Logf) (*Image, error) {
	deb, err := kernelDeb(ctx, cache, logf)
	if err != nil {
		return nil, err
	}
	files, err := hostFiles(ctx)
	if err != nil {
		return nil, fmt.Errorf("lab: %w", err)
	}
	pkgs := packageVersions(ctx)
	pkgs["kernel"] = strings.TrimSuffix(filepath.Base(deb), ".deb")
	key, err := baseKey(deb, files, pkgs)
	if err != nil {
		return nil, err
	}
	dir := filepath.Join(cache, "base-"+key)
	if img, err := loadBase(dir); err == nil {
		now := time.Now()
		os.Chtimes(dir, now, now) // in use: keep it from pruning
		pruneBases(cache, dir)
		img.Cached = true
		logf.printf("lab: base image %s from cache (kernel %s)", key, img.KernelVersion)
		return img, nil
	}
	logf.printf("lab: building base image %s from %s", key, filepath.Base(deb))
	t0 := time.Now()
	tmp, err := os.MkdirTemp(cache, "build-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(tmp)
	kroot := filepath.Join(tmp, "kernel")
	if _, err := run(ctx, "", "dpkg-deb", "-x", deb, kroot); err != nil {
		return nil, fmt.Errorf("lab: %w", err)
	}
	kvers, _ := filepath.Glob(filepath.Join(kroot, "lib/modules/*"))
	if len(kvers) != 1 {
		return nil, fmt.Errorf("lab: %s ships %d module trees, want 1", filepath.Base(deb), len(kvers))
	}
	kver := filepath.Base(kvers[0])
	vmlinuz := filepath.Join(kroot, "boot", "vmlinuz-"+kver)
	if _, err := os.Stat(vmlinuz); err != nil {
		return nil, fmt.Errorf("lab: kernel image missing in %s: %w", filepath.Base(deb), err)
	}
	if _, err := run(ctx, "", "depmod", "-b", kroot, kver); err != nil {
		return nil, fmt.Errorf("lab: %w", err)
	}
	moddir := filepath.Join(kroot, "lib/modules", kver)
	order, depLines, err := moduleClosure(moddir)
	if err != nil {
		return nil, err
	}

	t := newTree()
	for _, d := range []string{"usr/bin", "usr/sbin", "usr/lib", "usr/lib64"} {
		t.mkdirAll(d)
	}
	for _, l := range []string{"bin", "sbin", "lib", "lib64"} {
		t.symlink(l, "usr/"+l)
	}
	for _, d := range []string{"proc", "sys", "dev", "run", "tmp", "var", "etc", "root", "lab", "results"} {
		t.mkdirAll(d)
	}
	t.add(&entry{Name: "dev/console", Mode: modeChr | 0o600, Major: 5, Minor: 1})
	t.add(&entry{Name: "dev/null", Mode: modeChr | 0o666, Major: 1, Minor: 3})
	t.symlink("var/run", "../run")
	// tcpdump drops privileges to user "tcpdump": map it to root so that
	// captures can be written anywhere in this throw-away VM.
	t.file("etc/passwd", 0o644, []byte("root:x:0:0:root:/root:/bin/sh\ntcpdump:x:0:0:tcpdump:/:/bin/false\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n"))
	t.file("etc/group", 0o644, []byte("root:x:0:\nnogroup:x:65534:\n"))
	t.file("etc/hosts", 0o644, []byte("127.0.0.1 localhost\n"))
	for _, f := range files {
		st, err := os.Stat(f.src)
		if err != nil {
			return nil, err
		}
		t.hostFile(f.dest, uint32(st.Mode().Perm()), f.src)
	}
	// busybox applets, never shadowing the real tools copied above.
	out, err := run(ctx, "", "busybox", "--list-full")
	if err != nil {
		return nil, fmt.Errorf("lab: %w", err)
	}
	real := map[string]bool{"busybox": true}
	for _, f := range files {
		real[path.Base(f.dest)] = true
	}
	for _, a := range strings.Fields(out) {
		dest := imagePath(a)
		if !t.has(dest) && !real[path.Base(dest)] {
			t.symlink(dest, "/usr/bin/busybox")
		}
	}
	for _, m := range order {
		t.hostFile(path.Join("usr/lib/modules", kver, m), 0o644, filepath.Join(moddir, m))
	}
	t.file(path.Join("usr/lib/modules", kver, "modules.dep"), 0o644, []byte(strings.Join(depLines, "\n")+"\n"))
	t.file("usr/lib/lvsd-lab/modules.list", 0o644, []byte(strings.Join(order, "\n")+"\n"))
	t.file("usr/lib/lvsd-lab/packages", 0o644, []byte(fmtPackages(pkgs)))

	stage := filepath.Join(tmp, "out")
	if err := os.MkdirAll(stage, 0o755); err != nil {
		return nil, err
	}
	f, err := os.Create(filepath.Join(stage, "base.cpio"))
	if err != nil {
		return nil, err
	}
	bw := bufio.NewWriterSize(f, 1<<20)
	if err := t.write(bw, os.ReadFile); err != nil {
		f.Close()
		return nil, err
	}
	if err := bw.Flush(); err != nil {
		f.Close()
		return nil, err
	}
	if err := f.Close(); err != nil {
		return nil, err
	}
	if err := copyFile(vmlinuz, filepath.Join(stage, "vmlinuz")); err != nil {
		return nil, err
	}
	var names []string
	for _, m := range order {
		names = append(names, modName(m))
	}
	man := manifest{Format: imageFormat, Key: key, KernelVersion: kver, KernelPackage: pkgs["kernel"], Packages: pkgs, Modules: names, Built: time.Now().UTC()}
	mb, _ := json.MarshalIndent(man, "", "  ")
	if err := os.WriteFile(filepath.Join(stage, "manifest.json"), mb, 0o644); err != nil {
		return nil, err
	}
	os.RemoveAll(dir)
	if err := os.Rename(stage, dir); err != nil {
		return nil, err
	}
	pruneBases(cache, dir)
	logf.printf("lab: base image built in %v (%d modules, %d host files)", time.Since(t0).Round(time.Millisecond), len(order), len(files))
	img, err := loadBase(dir)
	if err != nil {
		return nil, err
	}
	return img, nil
}

// pruneBases drops base images other than keep that were not used for an
// hour (a test process that is still running may use one).
func pruneBases(cache, keep string) {
	old, _ := filepath.Glob(filepath.Join(cache, "base-*"))
	for _, o := range old {
		if fi, err := os.Stat(o); err == nil && o != keep && time.Since(fi.ModTime()) > time.Hour {
			os.RemoveAll(o)
		}
	}
}

func fmtPackages(p map[string]string) string {
	var b strings.Builder
	var names []string
	for n := range p {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(&b, "%s %s\n", n, p[n])
	}
	return b.String()
}

func loadBase(dir string) (*Image, error) {
	b, err := os.ReadFile(filepath.Join(dir, "manifest.json"))
	if err != nil {
		return nil, err
	}
	var m manifest
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, err
	}
	if m.Format != imageFormat {
		return nil, fmt.Errorf("format %q", m.Format)
	}
	img := &Image{Dir: dir, Kernel: filepath.Join(dir, "vmlinuz"), Base: filepath.Join(dir, "base.cpio"), Key: m.Key,
		KernelVersion: m.KernelVersion, KernelPackage: m.KernelPackage, Packages: m.Packages, Modules: m.Modules}
	for _, p := range []string{img.Kernel, img.Base} {
		if _, err := os.Stat(p); err != nil {
			return nil, err
		}
	}
	return img, nil
}

func copyFile(src, dst string) error {
	b, err := os.ReadFile(src)
	if err != nil {
		return err
	}
	return os.WriteFile(dst, b, 0o644)
}

// modName turns "kernel/net/netfilter/ipvs/ip_vs_rr.ko" into "ip_vs_rr".
func modName(p string) string {
	b := path.Base(p)
	if i := strings.Index(b, ".ko"); i >= 0 {
		b = b[:i]
	}
	return strings.ReplaceAll(b, "-", "_")
}

// moduleClosure reads modules.dep and returns the wanted modules plus
// their dependencies in load order, and the modules.dep lines for them.
func moduleClosure(moddir string) (order []string, depLines []string, err error) {
	f, err := os.Open(filepath.Join(moddir, "modules.dep"))
	if err != nil {
		return nil, nil, fmt.Errorf("lab: %w", err)
	}
	defer f.Close()
	deps := map[string][]string{} // path -> dependency paths
	line := map[string]string{}
	byName := map[string]string{} // name -> path
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<16), 1<<20)
	for sc.Scan() {
		l := sc.Text()
		mod, rest, ok := strings.Cut(l, ":")
		if !ok {
			continue
		}
		deps[mod] = strings.Fields(rest)
		line[mod] = l
		byName[modName(mod)] = mod
	}
	if err := sc.Err(); err != nil {
		return nil, nil, err
	}
	want := append([]string{}, requiredModules...)
	for n, p := range byName {
		if strings.Contains(p, "/netfilter/ipvs/") {
			want = append(want, n)
		}
	}
	sort.Strings(want[len(requiredModules):])
	for _, n := range requiredModules {
		if _, ok := byName[n]; !ok {
			return nil, nil, fmt.Errorf("lab: kernel package lacks required module %s", n)
		}
	}
	for _, n := range optionalModules {
		if _, ok := byName[n]; ok {
			want = append(want, n)
		}
	}
	done := map[string]bool{}
	var visit func(p string, depth int) error
	visit = func(p string, depth int) error {
		if done[p] {
			return nil
		}
		if depth > 64 {
			return fmt.Errorf("lab: module dependency loop at %s", p)
		}
		if _, ok := deps[p]; !ok {
			return fmt.Errorf("lab: module %s missing from modules.dep", p)
		}
		for _, d := range deps[p] {
			if err := visit(d, depth+1); err != nil {
				return err
			}
		}
		done[p] = true
		order = append(order, p)
		depLines = append(depLines, line[p])
		return nil
	}
	for _, n := range want {
		if err := visit(byName[n], 0); err != nil {
			return nil, nil, err
		}
	}
	return order, depLines, nil
}
