package status

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"html/template"
	"net/http"
	"strings"
	"time"
)

// RefreshInterval is how often the status page reloads its content.
const RefreshInterval = 3 * time.Second

// Handler serves the status page at /, the JSON document at /status and,
// when metrics is not nil, the Prometheus metrics at /metrics. Every
// request reads the sources afresh; nothing is cached or changed.
func Handler(src Sources, metrics http.Handler) http.Handler {
	mux := http.NewServeMux()
	if metrics != nil {
		mux.Handle("GET /metrics", metrics)
	}
	mux.HandleFunc("GET /status", func(w http.ResponseWriter, r *http.Request) {
		st := Build(src)
		w.Header().Set("Content-Type", "application/json; charset=utf-8")
		commonHeaders(w)
		enc := json.NewEncoder(w)
		if r.URL.Query().Has("pretty") {
			enc.SetIndent("", "  ")
		}
		_ = enc.Encode(st)
	})
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		st := Build(src)
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Header().Set("Content-Security-Policy", pageCSP)
		commonHeaders(w)
		_ = pageTemplate.Execute(w, newPage(st))
	})
	return mux
}

func commonHeaders(w http.ResponseWriter) {
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.Header().Set("Referrer-Policy", "no-referrer")
}

// The page's only script refetches the page every RefreshInterval and swaps
// in its #live part; it is allowed by its hash, nothing else is.
var (
	refreshScript = strings.ReplaceAll(`(function(){
var n=0,s=document.getElementById("refresh-state");
function tick(){
 fetch(location.pathname+location.search,{cache:"no-store"}).then(function(r){
  if(!r.ok)throw new Error("HTTP "+r.status);return r.text();
 }).then(function(t){
  var d=new DOMParser().parseFromString(t,"text/html"),l=d.getElementById("live");
  if(!l)throw new Error("no content");
  document.getElementById("live").replaceWith(l);
  n++;document.body.setAttribute("data-refreshes",String(n));
  s.textContent="updated "+new Date().toLocaleTimeString();s.className="";
 }).catch(function(e){s.textContent="refresh failed: "+e.message;s.className="bad";});
}
setInterval(tick,INTERVAL);
})();`, "INTERVAL", itoa(int(RefreshInterval/time.Millisecond)))
	pageCSP = "default-src 'none'; script-src 'sha256-" + scriptHash(refreshScript) + "'; style-src 'unsafe-inline'; connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)

// humanDuration writes d as "3d 4h 5m", "4h 5m 6s" or "5m 6s".
func humanDuration(d time.Duration) string {
	d = d.Round(time.Second)
	days, h, m, s := int(d/(24*time.Hour)), int(d/time.Hour)%24, int(d/time.Minute)%60, int(d/time.Second)%60
	switch {
	case days > 0:
		return fmt.Sprintf("%dd %dh %dm", days, h, m)
	case h > 0:
		return fmt.Sprintf("%dh %dm %ds", h, m, s)
	}
	return fmt.Sprintf("%dm %ds", m, s)
}

func itoa(n int) string {
	b, _ := json.Marshal(n)
	return string(b)
}

func scriptHash(s string) string {
	h := sha256.Sum256([]byte(s))
	return base64.StdEncoding.EncodeToString(h[:])
}

// page is the view model of the status page.
type page struct {
	*Status
	Script    template.JS
	Uptime    string
	VS        []pageVS
	HasIPVS   bool
	RefreshMS int
}

type pageVS struct {
	VirtualServer
	Rows []pageRow
}

type pageRow struct {
	Service  string
	Dest     string
	Health   string // up, down, unknown
	Checkers string
	Weight   string // configured
	Desired  string
	Kernel   string
	Active   uint32
	Inactive uint32
	Sync     string // yes, no, "" when IPVS does not run
	Sorry    bool
}

func newPage(st *Status) page {
	p := page{Status: st, Script: template.JS(refreshScript), HasIPVS: st.IPVS.Running, RefreshMS: int(RefreshInterval / time.Millisecond)}
	if !st.Started.IsZero() {
		p.Uptime = humanDuration(st.Time.Sub(st.Started))
	}
	for _, vs := range st.VirtualServers {
		pv := pageVS{VirtualServer: vs}
		rs := map[string]RealServer{}
		for _, r := range vs.RealServers {
			rs[r.Addr] = r
		}
		health := func(addr string, fallback bool) (string, string, string) {
			r, ok := rs[addr]
			if !ok {
				return onOff(fallback, "up", "down"), "", ""
			}
			var cs []string
			for _, c := range r.Checkers {
				s := c.Type + " " + onOff(c.LastOK, "ok", "failed")
				if !c.LastOK && c.LastReason != "" {
					s += ": " + c.LastReason
				}
				cs = append(cs, s)
			}
			for _, t := range r.Ignored {
				cs = append(cs, t+" not run")
			}
			h := onOff(r.Up, "up", "down")
			if !r.HealthKnown && len(r.Checkers) == 0 {
				cs = append(cs, "not checked")
			}
			return h, strings.Join(cs, "; "), itoa(r.Weight)
		}
		if len(vs.Services) > 0 {
			seen := map[string]bool{}
			for _, s := range vs.Services {
				for _, d := range s.Dests {
					h, c, w := health(d.RS, d.Healthy)
					if d.Sorry {
						h, c, w = onOff(d.Healthy, "in use", "standby"), "sorry server", ""
					}
					seen[d.RS] = true
					pv.Rows = append(pv.Rows, pageRow{Service: s.Name, Dest: hostPort(d), Health: h, Checkers: c, Weight: w,
						Desired: weight(d.DesiredWeight), Kernel: weight(d.KernelWeight), Active: d.ActiveConns, Inactive: d.InactiveConns,
						Sync: onOff(d.InSync, "yes", "no"), Sorry: d.Sorry})
				}
			}
			// Real servers that are in no service (down, not inhibited).
			for _, r := range vs.RealServers {
				if !seen[r.Addr] {
					h, c, w := health(r.Addr, r.Up)
					pv.Rows = append(pv.Rows, pageRow{Service: "", Dest: r.Addr, Health: h, Checkers: c, Weight: w, Desired: "-", Kernel: "-", Sync: onOff(r.Up, "no", "yes")})
				}
			}
		} else {
			for _, r := range vs.RealServers {
				h, c, w := health(r.Addr, r.Up)
				pv.Rows = append(pv.Rows, pageRow{Dest: r.Addr, Health: h, Checkers: c, Weight: w, Desired: "-", Kernel: "-"})
			}
		}
		p.VS = append(p.VS, pv)
	}
	return p
}

var pageTemplate = template.Must(template.New("page").Funcs(template.FuncMap{
	"stamp": func(t time.Time) string {
		if t.IsZero() {
			return "never"
		}
		return t.Format("2006-01-02 15:04:05 MST")
	},
	"lower": strings.ToLower,
	"deref": func(b *bool) bool { return b != nil && *b },
}).Parse(`<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>lvsd on {{.Host}}</title>
<style>
body{font:14px/1.4 system-ui,-apple-system,"Segoe UI",Helvetica,Arial,sans-serif;margin:0;color:#1d2327;background:#f4f5f7}
header{background:#23303d;color:#fff;padding:10px 18px;display:flex;flex-wrap:wrap;align-items:baseline;gap:6px 24px}
header h1{font-size:20px;margin:0}
header .meta{color:#c8d0d8;font-size:13px}
main{padding:6px 18px 24px}
h2{font-size:16px;margin:18px 0 6px;border-bottom:2px solid #23303d;padding-bottom:2px}
h3{font-size:14px;margin:14px 0 4px}
table{border-collapse:collapse;background:#fff;min-width:60%;margin-bottom:6px}
th,td{border:1px solid #d0d5da;padding:3px 8px;text-align:left;white-space:nowrap}
th{background:#e6e9ed;font-weight:600}
td.num{text-align:right;font-variant-numeric:tabular-nums}
.st{display:inline-block;min-width:64px;text-align:center;border-radius:3px;padding:0 6px;font-weight:700;color:#fff}
.st.master,.st.up,.st.yes,.st.in.use{background:#2e7d32}
.st.backup,.st.standby{background:#1565c0}
.st.fault,.st.down,.st.no,.st.stop{background:#c62828}
.st.init,.st.unknown{background:#757575}
.note{color:#555;font-size:13px}
footer{padding:0 18px 18px}
.bad{color:#ffb4b4}
.err{color:#c62828;font-weight:600}
td.chk{white-space:normal;max-width:420px;font-size:13px}
</style>
</head>
<body data-refreshes="0">
<header>
<h1>lvsd · {{.Host}}</h1>
<span class="meta">version {{.Version}} · up {{.Uptime}} · {{.Config}}</span>
<span class="meta">reloads: {{.Reloads.Success}} ok, {{.Reloads.Failure}} failed{{if not .Reloads.LastOK}} · <span class="bad">last reload failed: {{.Reloads.LastError}}</span>{{end}}</span>
<span class="meta">auto-refresh every {{.RefreshMS}} ms · <span id="refresh-state">loaded {{stamp .Time}}</span></span>
</header>
<main id="live" data-generated="{{.Time.UnixMilli}}">
<h2>VRRP instances</h2>
{{if .Instances}}<table id="vrrp">
<thead><tr><th>Instance</th><th>Interface</th><th>VRID</th><th>State</th><th>Priority</th><th>Master</th><th>Virtual addresses</th><th>Adverts in</th><th>Adverts out</th><th>Became master</th></tr></thead>
<tbody>
{{range .Instances}}<tr data-instance="{{.Name}}" data-state="{{.State}}">
<td>{{.Name}}{{if .SyncGroup}} <span class="note">({{.SyncGroup}})</span>{{end}}</td><td>{{.Interface}}</td><td class="num">{{.VRID}}</td>
<td><span class="st {{lower .State}}">{{.State}}</span></td>
<td class="num">{{.Priority}}{{if ne .Priority .BasePriority}} <span class="note">(base {{.BasePriority}})</span>{{end}}</td>
<td>{{if .MasterAddr}}{{.MasterAddr}}{{else}}-{{end}}</td>
<td>{{range $i, $v := .VIPs}}{{if $i}}, {{end}}{{$v.Addr}}{{end}}</td>
<td class="num adv-in">{{.Stats.AdvertRcvd}}</td><td class="num">{{.Stats.AdvertSent}}</td><td class="num">{{.Stats.BecomeMaster}}</td>
</tr>
{{end}}</tbody></table>
{{else}}<p class="note">No VRRP instance runs.</p>{{end}}
{{if .Scripts}}<h3>VRRP scripts</h3><table id="scripts"><thead><tr><th>Script</th><th>Status</th><th>Runs</th><th>Failed</th><th>Last run</th><th>Command</th></tr></thead><tbody>
{{range .Scripts}}<tr data-script="{{.Name}}"><td>{{.Name}}</td><td><span class="st {{if .Good}}up{{else}}down{{end}}">{{if .Good}}GOOD{{else}}BAD{{end}}</span></td><td class="num">{{.Runs}}</td><td class="num">{{.Failures}}</td><td>{{if .LastRun.IsZero}}not yet{{else}}{{if .LastOK}}ok{{else}}failed{{if .LastResult}}: {{.LastResult}}{{end}}{{end}}{{end}}</td><td>{{.Command}}</td></tr>
{{end}}</tbody></table>{{end}}
<h2>IPVS</h2>
{{if .IPVS.Error}}<p class="err">{{.IPVS.Error}}</p>{{end}}
{{if .IPVS.Counters}}<p class="note">reconciles {{.IPVS.Counters.Reconciles}} · kernel errors {{.IPVS.Counters.Errors}} · drift repairs {{.IPVS.Counters.DriftRepairs}}{{if not .IPVS.Fresh}} · kernel not read for this page{{end}}</p>{{end}}
{{range .VS}}<h3 data-vs="{{.Key}}">{{.Name}} <span class="note">{{.Protocol}} · {{.Scheduler}} · {{.Method}}{{if .QuorumUp}} · quorum {{if deref .QuorumUp}}up{{else}}<span class="err">down</span>{{end}} (weight {{.WeightSum}}, quorum {{.Quorum}}){{end}}{{if .SorryActive}} · <span class="err">sorry server in use</span>{{end}}</span></h3>
<table class="ipvs">
<thead><tr><th>Service</th><th>Real server</th><th>Health</th><th>Checks</th><th>Weight (conf)</th><th>Desired</th><th>Kernel</th><th>Active</th><th>Inactive</th><th>In sync</th></tr></thead>
<tbody>
{{range .Rows}}<tr data-rs="{{.Dest}}" data-health="{{.Health}}">
<td>{{.Service}}</td><td>{{.Dest}}</td><td><span class="st {{.Health}}">{{.Health}}</span></td><td class="chk">{{.Checkers}}</td>
<td class="num">{{.Weight}}</td><td class="num">{{.Desired}}</td><td class="num">{{.Kernel}}</td>
<td class="num">{{.Active}}</td><td class="num">{{.Inactive}}</td><td>{{if .Sync}}<span class="st {{.Sync}}">{{.Sync}}</span>{{end}}</td>
</tr>
{{end}}</tbody></table>
{{else}}<p class="note">No virtual server is configured.</p>{{end}}
{{if .OtherServices}}<h3>Other kernel services</h3><table><thead><tr><th>Service</th><th>Owner</th><th>Destinations</th></tr></thead><tbody>
{{range .OtherServices}}<tr><td>{{.Name}}</td><td>{{if .Owned}}lvsd (to be removed){{else}}not lvsd{{end}}</td><td class="num">{{len .Dests}}</td></tr>
{{end}}</tbody></table>{{end}}
</main>
<footer class="note">Read-only. The same data: <a href="/status">/status</a> (JSON) · <a href="/metrics">/metrics</a> (Prometheus) · SIGUSR1/SIGUSR2 dumps.</footer>
<script>{{.Script}}</script>
</body>
</html>
`))
