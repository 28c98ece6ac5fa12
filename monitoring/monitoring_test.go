// Package monitoring holds lvsd's Prometheus rules (rules.yml, with
// promtool unit tests in rules_test.yml) and Grafana dashboard
// (dashboard.json). Its tests check them against real components:
// promtool, and a Prometheus scraping two lvsd directors in network
// namespaces.
package monitoring

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/lvsd/lvsd/internal/netnstest"
	"github.com/lvsd/lvsd/metrics"
	"github.com/lvsd/lvsd/status"
)

// dashboard is the part of Grafana's dashboard model the tests read.
type dashboard struct {
	Panels []struct {
		Title   string `json:"title"`
		Type    string `json:"type"`
		Targets []struct {
			Expr string `json:"expr"`
		} `json:"targets"`
	} `json:"panels"`
	Templating struct {
		List []struct {
			Name       string `json:"name"`
			Type       string `json:"type"`
			Definition string `json:"definition"`
		} `json:"list"`
	} `json:"templating"`
	Annotations struct {
		List []struct {
			Name string `json:"name"`
			Expr string `json:"expr"`
		} `json:"list"`
	} `json:"annotations"`
}

func readDashboard(t *testing.T) *dashboard {
	t.Helper()
	b, err := os.ReadFile("dashboard.json")
	if err != nil {
		t.Fatal(err)
	}
	var d dashboard
	if err := json.Unmarshal(b, &d); err != nil {
		t.Fatalf("dashboard.json: %v", err)
	}
	return &d
}

// query is a panel's query with Grafana's variables given values that
// select the test's directors.
type query struct{ panel, expr string }

func (d *dashboard) queries() []query {
	r := strings.NewReplacer(`$job`, `lvsd`, `$instance`, `.+`, `$__rate_interval`, `20s`)
	var qs []query
	for _, p := range d.Panels {
		for _, tg := range p.Targets {
			qs = append(qs, query{p.Title, r.Replace(tg.Expr)})
		}
	}
	for _, a := range d.Annotations.List {
		qs = append(qs, query{"annotation " + a.Name, r.Replace(a.Expr)})
	}
	return qs
}

var (
	metricName = regexp.MustCompile(`\b(?:keepalived|lvsd|node_ipvs)_[a-z0-9_]+\b`)
	recordName = regexp.MustCompile(`\blvsd:[a-z0-9_:]+\b`)
	fqName     = regexp.MustCompile(`fqName: "([^"]+)"`)
)

// exported are the metric names lvsd's collector describes (histograms
// with their _bucket, _sum and _count series).
func exported(t *testing.T) map[string]bool {
	t.Helper()
	c := metrics.New(status.Sources{}, nil)
	ch := make(chan *prometheus.Desc, 256)
	go func() { c.Describe(ch); close(ch) }()
	names := map[string]bool{}
	for d := range ch {
		m := fqName.FindStringSubmatch(d.String())
		if m == nil {
			t.Fatalf("cannot read the name of %s", d)
		}
		names[m[1]] = true
		for _, s := range []string{"_bucket", "_sum", "_count"} {
			names[m[1]+s] = true
		}
	}
	if len(names) < 50 {
		t.Fatalf("only %d metric names described", len(names))
	}
	return names
}

// TestMetricNames: every metric the rules and the dashboard name is one
// lvsd exports, and every recording rule the dashboard uses is defined.
func TestMetricNames(t *testing.T) {
	names := exported(t)
	rules, err := os.ReadFile("rules.yml")
	if err != nil {
		t.Fatal(err)
	}
	records := map[string]bool{}
	for _, m := range regexp.MustCompile(`(?m)^\s*- record: (\S+)$`).FindAllStringSubmatch(string(rules), -1) {
		records[m[1]] = true
	}
	texts := map[string]string{"rules.yml": regexp.MustCompile(`(?m)^\s*(#|summary:|description:).*$`).ReplaceAllString(string(rules), "")}
	for _, q := range readDashboard(t).queries() {
		texts["dashboard.json panel "+q.panel] += q.expr + "\n"
	}
	for where, text := range texts {
		for _, n := range metricName.FindAllString(text, -1) {
			if !names[n] {
				t.Errorf("%s: %s is not a metric lvsd exports", where, n)
			}
		}
		for _, n := range recordName.FindAllString(text, -1) {
			if !records[n] {
				t.Errorf("%s: recording rule %s is not in rules.yml", where, n)
			}
		}
	}
}

func needTool(t *testing.T, tool string) {
	t.Helper()
	if _, err := exec.LookPath(tool); err != nil {
		if os.Getenv("LVSD_INTEGRATION") != "" {
			t.Fatalf("LVSD_INTEGRATION is set but %s is not installed (scripts/deps.sh: prometheus)", tool)
		}
		t.Skipf("%s is not installed (Debian's prometheus package)", tool)
	}
}

// TestPromtool: promtool checks the rules and runs their unit tests, and
// every alert of rules.yml is tested firing (an exp_alerts with labels).
func TestPromtool(t *testing.T) {
	needTool(t, "promtool")
	out, err := exec.Command("promtool", "check", "rules", "rules.yml").CombinedOutput()
	if err != nil || !strings.Contains(string(out), "SUCCESS") {
		t.Fatalf("promtool check rules: %v\n%s", err, out)
	}
	out, err = exec.Command("promtool", "test", "rules", "rules_test.yml").CombinedOutput()
	if err != nil || !strings.Contains(string(out), "SUCCESS") {
		t.Fatalf("promtool test rules: %v\n%s", err, out)
	}
	rules, _ := os.ReadFile("rules.yml")
	tests, _ := os.ReadFile("rules_test.yml")
	fired := map[string]bool{}
	for _, chunk := range strings.Split(string(tests), "- alertname: ")[1:] {
		name, rest, _ := strings.Cut(chunk, "\n")
		if strings.Contains(rest[:strings.Index(rest+"- alertname:", "- alertname:")], "exp_labels") {
			fired[strings.TrimSpace(name)] = true
		}
	}
	alerts := regexp.MustCompile(`(?m)^\s*- alert: (\S+)$`).FindAllStringSubmatch(string(rules), -1)
	if len(alerts) < 8 {
		t.Fatalf("only %d alerts in rules.yml", len(alerts))
	}
	for _, m := range alerts {
		if !fired[m[1]] {
			t.Errorf("alert %s has no promtool test where it fires", m[1])
		}
	}
}

// --- the real Prometheus, scraping two directors ---

func run(t *testing.T, name string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}

func nsGet(ns, u string) ([]byte, error) {
	c := netnstest.HTTPClient(ns, 5*time.Second)
	resp, err := c.Get(u)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err == nil && resp.StatusCode != http.StatusOK {
		err = fmt.Errorf("%s: %s: %s", u, resp.Status, b)
	}
	return b, err
}

type lockedBuffer struct {
	mu sync.Mutex
	b  []byte
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.b = append(l.b, p...)
	return len(p), nil
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return string(l.b)
}

// start runs a command in a namespace until the test ends.
func start(t *testing.T, ns, name string, env []string, args ...string) *exec.Cmd {
	t.Helper()
	out := &lockedBuffer{}
	cmd := exec.Command("ip", append([]string{"netns", "exec", ns}, args...)...)
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
		if t.Failed() {
			t.Logf("%s output:\n%s", name, out.String())
		}
	})
	return cmd
}

const directorConf = `global_defs {
  router_id %[1]s
}
vrrp_script chk_ok {
  script /bin/true
  interval 1
}
vrrp_instance VI_1 {
  state BACKUP
  interface eth0
  virtual_router_id 51
  priority %[2]d
  advert_int 1
  authentication {
    auth_type PASS
    auth_pass %[3]s
  }
  virtual_ipaddress {
    192.0.2.100/24
  }
  track_script {
    chk_ok
  }
}
virtual_server 192.0.2.100 80 {
  delay_loop 2
  protocol TCP
  lb_algo rr
  lb_kind NAT
  quorum 1
  real_server 127.0.0.1 9165 {
    TCP_CHECK {
      connect_timeout 1
    }
  }
}
`

// apiResult is Prometheus's answer to /api/v1/query.
type apiResult struct {
	Status string `json:"status"`
	Error  string `json:"error"`
	Data   struct {
		Result []struct {
			Metric map[string]string `json:"metric"`
			Value  []any             `json:"value"`
		} `json:"result"`
	} `json:"data"`
}

// ipvsMetric marks the queries that need the kernel's IPVS: without it
// lvsd neither programs the virtual servers nor checks their real servers.
var ipvsMetric = regexp.MustCompile(`lvsd_real_server_|lvsd_virtual_server_|lvsd_ipvs_(service|backend|operations|errors|drift|reconciles|health|quorum)|node_ipvs_|lvsd_healthcheck_|lvsd:real_servers_up|lvsd:ipvs_connections`)

// TestPrometheusScrapesDirectors runs two lvsd directors on a bridge (a
// and b, whose VRRP passwords differ: each drops the other's adverts, so
// both become MASTER — a real split brain) and a Prometheus (Debian's) in
// a third namespace, scraping them every second with rules.yml loaded.
// Director a is then sent a reload with a broken configuration. The
// alerts for the split brain, the advert drops and the failed reload must
// be raised by Prometheus, and every dashboard query must return series.
func TestPrometheusScrapesDirectors(t *testing.T) {
	if os.Getenv("LVSD_INTEGRATION") == "" {
		t.Skip("set LVSD_INTEGRATION=1 to run (root, network namespaces, prometheus)")
	}
	if os.Geteuid() != 0 {
		t.Fatal("LVSD_INTEGRATION is set but this test needs root")
	}
	needTool(t, "prometheus")
	needTool(t, "ip")
	began := time.Now()
	dir := t.TempDir()
	bin := os.Getenv("LVSD_BIN") // the lab VM ships its lvsd (and has no Go)
	if bin == "" {
		bin = filepath.Join(dir, "lvsd")
		build := exec.Command("go", "build", "-o", bin, "..")
		build.Env = append(os.Environ(), "CGO_ENABLED=0", "PATH="+os.Getenv("PATH")+":/usr/local/go/bin")
		if out, err := build.CombinedOutput(); err != nil {
			t.Fatalf("go build: %v\n%s", err, out)
		}
	}
	// In the lab VM (integration.TestIPVSLab) the kernel has IPVS: then
	// every panel must have data, the IPVS and health-check ones included.
	inVM := os.Getenv("LVSD_IPVS_INVM") != ""

	p := fmt.Sprintf("lvsdm%d", os.Getpid()%100000)
	nss := map[string]string{p + "a": "192.0.2.1/24", p + "b": "192.0.2.2/24", p + "p": "192.0.2.3/24"}
	br := p + "br"
	for _, ns := range []string{br, p + "a", p + "b", p + "p"} {
		run(t, "ip", "netns", "add", ns)
		t.Cleanup(func() { _ = exec.Command("ip", "netns", "del", ns).Run() })
	}
	run(t, "ip", "-n", br, "link", "add", "br0", "type", "bridge")
	run(t, "ip", "-n", br, "link", "set", "br0", "up")
	i := 0
	for _, ns := range []string{p + "a", p + "b", p + "p"} {
		port := fmt.Sprintf("v%d", i)
		i++
		run(t, "ip", "-n", br, "link", "add", port, "type", "veth", "peer", "name", "eth0", "netns", ns)
		run(t, "ip", "-n", br, "link", "set", port, "master", "br0", "up")
		run(t, "ip", "-n", ns, "addr", "add", nss[ns], "dev", "eth0")
		run(t, "ip", "-n", ns, "link", "set", "eth0", "up")
		run(t, "ip", "-n", ns, "link", "set", "lo", "up")
	}
	confs := map[string]string{}
	cmds := map[string]*exec.Cmd{}
	for _, d := range []struct {
		name string
		prio int
		pass string
	}{{"a", 150, "secret-a"}, {"b", 100, "secret-b"}} {
		confs[d.name] = filepath.Join(dir, d.name+".conf")
		if err := os.WriteFile(confs[d.name], []byte(fmt.Sprintf(directorConf, "lb-"+d.name, d.prio, d.pass)), 0o644); err != nil {
			t.Fatal(err)
		}
		cmds[d.name] = start(t, p+d.name, "lvsd "+d.name, []string{"LVSD_DUMP_DIR=" + dir}, bin, "--dont-fork", "--log-console", "-f", confs[d.name])
	}

	rules, err := filepath.Abs("rules.yml")
	if err != nil {
		t.Fatal(err)
	}
	promConf := filepath.Join(dir, "prometheus.yml")
	if err := os.WriteFile(promConf, []byte(fmt.Sprintf(`global:
  scrape_interval: 1s
  evaluation_interval: 1s
rule_files:
  - %s
scrape_configs:
  - job_name: lvsd
    static_configs:
      - targets: ["192.0.2.1:9165", "192.0.2.2:9165"]
`, rules)), 0o644); err != nil {
		t.Fatal(err)
	}
	start(t, p+"p", "prometheus", nil, "prometheus", "--config.file="+promConf, "--storage.tsdb.path="+filepath.Join(dir, "tsdb"),
		"--web.listen-address=127.0.0.1:9090", "--log.level=warn")
	api := func(path string, params url.Values) (apiResult, error) {
		var r apiResult
		b, err := nsGet(p+"p", "http://127.0.0.1:9090"+path+"?"+params.Encode())
		if err != nil {
			return r, err
		}
		if err := json.Unmarshal(b, &r); err != nil {
			return r, fmt.Errorf("%s: %v: %s", path, err, b)
		}
		if r.Status != "success" {
			return r, fmt.Errorf("%s %v: %s", path, params, r.Error)
		}
		return r, nil
	}
	promQuery := func(expr string) (apiResult, error) { return api("/api/v1/query", url.Values{"query": {expr}}) }
	waitFor := func(d time.Duration, what, expr string, n int) {
		t.Helper()
		deadline := time.Now().Add(d)
		for {
			r, err := promQuery(expr)
			if err == nil && len(r.Data.Result) >= n {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("timed out after %v waiting for %s (%s: %d series, %v)", d, what, expr, len(r.Data.Result), err)
			}
			time.Sleep(250 * time.Millisecond)
		}
	}
	upWait := 30 * time.Second
	if inVM {
		upWait = 90 * time.Second // Prometheus starts slowly under emulation
	}
	waitFor(upWait, "both directors scraped", `up{job="lvsd"} == 1`, 2)
	waitFor(20*time.Second, "two MASTERs for VRID 51 (the split brain)", `lvsd:vrrp_masters:count{vrid="51"} == 2`, 1)
	waitFor(10*time.Second, "LvsdVRRPSplitBrain raised", `ALERTS{alertname="LvsdVRRPSplitBrain", vrid="51"}`, 1)
	waitFor(20*time.Second, "LvsdVRRPAdvertErrors firing for both directors", `ALERTS{alertname="LvsdVRRPAdvertErrors", alertstate="firing", iname="VI_1"}`, 2)
	// Both count the other's adverts as auth_failure (polled: under the
	// lab VM's emulation a director's counter can lag a scrape or two).
	for deadline := time.Now().Add(15 * time.Second); ; time.Sleep(250 * time.Millisecond) {
		r, err := promQuery(`sum by (instance) (lvsd_vrrp_drops_total{reason="auth_failure"}) > 0`)
		if err == nil && len(r.Data.Result) == 2 {
			break
		}
		if time.Now().After(deadline) {
			all, _ := promQuery(`lvsd_vrrp_drops_total > 0`)
			t.Errorf("auth_failure drops on both directors: %+v %v (all drops: %+v)", r.Data.Result, err, all.Data.Result)
			break
		}
	}

	// A broken configuration, reloaded as systemctl reload would.
	if err := os.WriteFile(confs["a"], []byte("vrrp_instance VI_1 {\n  state BACKUP\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := cmds["a"].Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	waitFor(15*time.Second, "LvsdReloadFailed firing for director a", `ALERTS{alertname="LvsdReloadFailed", alertstate="firing", instance="192.0.2.1:9165"}`, 1)
	if r, err := promQuery(`ALERTS{alertname="LvsdReloadFailed", instance="192.0.2.2:9165"}`); err != nil || len(r.Data.Result) != 0 {
		t.Errorf("LvsdReloadFailed for director b, which was not reloaded: %+v %v", r.Data.Result, err)
	}
	// Rates need two samples in their window.
	time.Sleep(3 * time.Second)

	// Every dashboard query returns series (the IPVS ones only where the
	// kernel has IPVS).
	ipvs := false
	if r, err := promQuery(`lvsd_ipvs_up == 1`); err == nil && len(r.Data.Result) == 2 {
		ipvs = true
	}
	if inVM {
		if !ipvs {
			t.Fatal("in the lab VM, lvsd_ipvs_up is not 1 on both directors")
		}
		// The health checks ran and lvsd programmed the virtual server.
		waitFor(20*time.Second, "real servers up on both directors", `lvsd_real_server_up == 1`, 2)
		waitFor(20*time.Second, "the checks' durations observed", `sum by (instance) (lvsd_healthcheck_duration_seconds_count) > 1`, 2)
	}
	d := readDashboard(t)
	var noIPVS []string
	withIPVS := 0
	for _, q := range d.queries() {
		r, err := promQuery(q.expr)
		// A scrape that timed out (the lab VM's emulation is slow) marks
		// its director's series stale until the next one: retry a while.
		for deadline := time.Now().Add(10 * time.Second); err == nil && len(r.Data.Result) == 0 && (inVM || ipvs) && time.Now().Before(deadline); {
			time.Sleep(500 * time.Millisecond)
			r, err = promQuery(q.expr)
		}
		if err != nil {
			t.Errorf("panel %q: %v", q.panel, err)
			continue
		}
		if len(r.Data.Result) > 0 && ipvsMetric.MatchString(q.expr) {
			withIPVS++
		}
		if len(r.Data.Result) == 0 {
			if !ipvs && ipvsMetric.MatchString(q.expr) {
				noIPVS = append(noIPVS, q.panel)
				continue
			}
			t.Errorf("panel %q: no series for %s", q.panel, q.expr)
		}
	}
	t.Logf("IPVS and health-check queries with data: %d", withIPVS)
	if len(noIPVS) > 0 && inVM {
		t.Errorf("in the lab VM, with IPVS, panels without data: %s", strings.Join(noIPVS, "; "))
	} else if len(noIPVS) > 0 {
		sort.Strings(noIPVS)
		t.Logf("no IPVS in this kernel (lvsd_ipvs_up 0): these panels' queries are valid but have no data here: %s", strings.Join(noIPVS, "; "))
	}
	for _, v := range d.Templating.List {
		if v.Type != "query" {
			continue
		}
		m := regexp.MustCompile(`^label_values\((.+), (\w+)\)$`).FindStringSubmatch(v.Definition)
		if m == nil {
			t.Errorf("variable %s: cannot read %q", v.Name, v.Definition)
			continue
		}
		b, err := nsGet(p+"p", "http://127.0.0.1:9090/api/v1/label/"+m[2]+"/values?"+url.Values{"match[]": {strings.ReplaceAll(m[1], "$job", "lvsd")}}.Encode())
		var lv struct{ Data []string }
		if err == nil {
			err = json.Unmarshal(b, &lv)
		}
		if err != nil || len(lv.Data) == 0 {
			t.Errorf("variable %s (%s): %v %s", v.Name, v.Definition, err, b)
		}
	}
	t.Logf("two directors, Prometheus, alerts and %d dashboard queries in %v", len(d.queries()), time.Since(began).Round(time.Millisecond))
}
