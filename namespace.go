package main

import (
	"log/slog"
	"os"
	"path/filepath"
	"strings"

	"github.com/lvsd/lvsd/conf"
	"github.com/lvsd/lvsd/internal/filemode"
	"github.com/lvsd/lvsd/internal/nsenter"
	"github.com/lvsd/lvsd/status"
)

// keepalivedPidDir is where keepalived 2.2 puts its pid files when the
// configuration names an instance or a net_namespace (its use_pid_dir).
const keepalivedPidDir = "/run/keepalived"

// pidFilePath is the pid file lvsd writes: -p; else, with instance or
// net_namespace, keepalived's: keepalived_INSTANCE.pid (keepalived.pid
// without instance) in /run/keepalived, in /run/keepalived/NS with
// net_namespace NS (keepalived mounts that directory over /run/keepalived
// in a mount namespace of its own: this is its path from outside); else
// none, as before. The second result is the directory lvsd made for it.
func pidFilePath(o *options, g *conf.Global) (path, madeDir string) {
	if o.pidFile != "" || (g.Instance == "" && g.NetNamespace == "") {
		return o.pidFile, ""
	}
	dir := keepalivedPidDir
	if g.NetNamespace != "" {
		dir = filepath.Join(dir, g.NetNamespace)
	}
	return filepath.Join(dir, nameWith("keepalived.pid", g.Instance)), dir
}

// dataDumpName is the SIGUSR1 dump's name: keepalived.data, or with
// data_use_instance keepalived_NS_INSTANCE.data (each part when given), as
// keepalived 2.2 names it. The other dumps keep their names, as keepalived's
// (its manual: "the .data files").
func dataDumpName(g *conf.Global) string {
	if !g.DataUseInstance {
		return status.DataFile
	}
	return nameWith(status.DataFile, g.NetNamespace, g.Instance)
}

// nameWith inserts "_PART" for each non-empty part before file's extension.
func nameWith(file string, parts ...string) string {
	ext := filepath.Ext(file)
	b := strings.TrimSuffix(file, ext)
	for _, p := range parts {
		if p != "" {
			b += "_" + p
		}
	}
	return b + ext
}

// writeOurPidFile writes the pid file of pidFilePath (making its
// directory) and returns what removes it at exit.
func writeOurPidFile(o *options, g *conf.Global) (remove func(), err error) {
	path, dir := pidFilePath(o, g)
	if path == "" {
		return func() {}, nil
	}
	if dir != "" {
		if err := filemode.MkdirAll(dir, 0o755); err != nil {
			return nil, err
		}
	}
	if err := writePidFile(path); err != nil {
		return nil, err
	}
	return func() {
		os.Remove(path)
		if dir != "" && g.NetNamespace != "" {
			os.Remove(dir) // /run/keepalived/NS, when empty
		}
	}, nil
}

// enterNetNamespace runs lvsd in cfg's net_namespace, as keepalived does
// right after its first reading of the configuration (and with -t too):
// lvsd is executed again inside it (same pid, same arguments), where it
// reads the configuration again, its interfaces checked there. Without
// net_namespace, or in it already, it returns at once.
// -s NAME overrides net_namespace, as keepalived's.
func enterNetNamespace(o *options, cfg *conf.Config) error {
	if cfg != nil && o.netNamespace != "" {
		cfg.Global.NetNamespace = o.netNamespace
	}
	if cfg == nil || cfg.Global.NetNamespace == "" {
		return nil
	}
	return nsenter.Enter(cfg.Global.NetNamespace, os.Args)
}

// keepStartNames keeps the running net_namespace and instance in a
// reloaded configuration: as keepalived's, they are not changed by a
// reload (the namespace lvsd runs in, its pid file); a reload naming
// others says so.
func keepStartNames(log *slog.Logger, o *options, running, next *conf.Global) {
	if o.netNamespace != "" {
		next.NetNamespace = o.netNamespace // -s, as at start
	}
	for _, f := range []struct {
		kw       string
		old, new *string
	}{{"net_namespace", &running.NetNamespace, &next.NetNamespace}, {"instance", &running.Instance, &next.Instance}} {
		if *f.new != *f.old {
			log.Warn(f.kw+" is not changed by a reload; restart lvsd to change it", "running", *f.old, "reloaded", *f.new)
			*f.new = *f.old
		}
	}
}
