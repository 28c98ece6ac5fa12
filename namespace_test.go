package main

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"

	"github.com/lvsd/lvsd/conf"
)

// instance, net_namespace and data_use_instance (in global_defs or at the
// top level, as keepalived allows) name the pid file (without -p) and the
// SIGUSR1 dump as keepalived 2.2 does: keepalived_INSTANCE.pid in
// /run/keepalived[/NS], keepalived_NS_INSTANCE.data.
func TestInstanceFileNames(t *testing.T) {
	for _, c := range []struct {
		conf, pidFlag, pid, data string
	}{
		{conf: "", pid: "", data: "keepalived.data"},
		{conf: "global_defs {\n  instance a\n}\n", pid: "/run/keepalived/keepalived_a.pid", data: "keepalived.data"},
		{conf: "instance a\n", pidFlag: "/x/k.pid", pid: "/x/k.pid", data: "keepalived.data"},
		{conf: "net_namespace n\n", pid: "/run/keepalived/n/keepalived.pid", data: "keepalived.data"},
		{conf: "global_defs {\n  net_namespace n\n  instance a\n  data_use_instance\n}\n", pid: "/run/keepalived/n/keepalived_a.pid", data: "keepalived_n_a.data"},
		{conf: "instance a\nglobal_defs {\n  data_use_instance\n}\n", pid: "/run/keepalived/keepalived_a.pid", data: "keepalived_a.data"},
		{conf: "global_defs {\n  data_use_instance\n}\n", pid: "", data: "keepalived.data"},
	} {
		cfg, diags := conf.Parse("k.conf", c.conf, conf.Options{ConfigID: "x"})
		if conf.MaxLevel(diags) >= conf.Warning {
			t.Errorf("%q: %v", c.conf, diags)
		}
		pid, _ := pidFilePath(&options{pidFile: c.pidFlag}, &cfg.Global)
		if pid != c.pid {
			t.Errorf("%q -p %q: pid file %q, want %q", c.conf, c.pidFlag, pid, c.pid)
		}
		if got := dataDumpName(&cfg.Global); got != c.data {
			t.Errorf("%q: SIGUSR1 dump %q, want %q", c.conf, got, c.data)
		}
	}
	_, diags := conf.Parse("k.conf", "global_defs {\n  net_namespace ../x\n}\n", conf.Options{ConfigID: "x"})
	if len(diags) == 0 || !strings.Contains(diags[0].String(), "k.conf:2") || !strings.Contains(diags[0].Msg, "invalid name") {
		t.Errorf("net_namespace ../x: %v", diags)
	}
}

// A reload does not change net_namespace or instance: the running ones
// stay, with a warning naming the keyword.
func TestReloadKeepsNamespaceAndInstance(t *testing.T) {
	var buf bytes.Buffer
	log := slog.New(slog.NewTextHandler(&buf, nil))
	running := conf.Global{NetNamespace: "n", Instance: "a"}
	next := conf.Global{NetNamespace: "m"}
	keepStartNames(log, &options{}, &running, &next)
	if next.NetNamespace != "n" || next.Instance != "a" {
		t.Errorf("reloaded: net_namespace %q instance %q, want n a", next.NetNamespace, next.Instance)
	}
	if out := buf.String(); !strings.Contains(out, "net_namespace is not changed by a reload") || !strings.Contains(out, "instance is not changed") {
		t.Errorf("log:\n%s", out)
	}
	// -s: the reloaded configuration has it too, without a warning.
	buf.Reset()
	running, next = conf.Global{NetNamespace: "s"}, conf.Global{NetNamespace: "n"}
	keepStartNames(log, &options{netNamespace: "s"}, &running, &next)
	if next.NetNamespace != "s" || buf.Len() != 0 {
		t.Errorf("with -s s: reloaded net_namespace %q, log %q", next.NetNamespace, buf.String())
	}
}

// -s NAME overrides net_namespace (keepalived's --namespace): lvsd tries
// NAME, not the configuration's.
func TestNamespaceFlagOverridesConfig(t *testing.T) {
	cfg, _ := conf.Parse("k.conf", "net_namespace lvsd-from-conf\n", conf.Options{ConfigID: "x"})
	err := enterNetNamespace(&options{netNamespace: "lvsd-no-such-ns"}, cfg)
	if err == nil || !strings.Contains(err.Error(), "net_namespace lvsd-no-such-ns") {
		t.Errorf("enter with -s lvsd-no-such-ns: %v", err)
	}
	if cfg.Global.NetNamespace != "lvsd-no-such-ns" {
		t.Errorf("net_namespace %q, want the -s one", cfg.Global.NetNamespace)
	}
}
