package metrics

import (
	"compress/gzip"
	"io"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// scrapeText gets the Handler's text, gzip-compressed when gz, and parses it.
func scrapeText(t *testing.T, h http.Handler, gz bool) (string, map[string]*dto.MetricFamily) {
	t.Helper()
	srv := httptest.NewServer(h)
	defer srv.Close()
	req, _ := http.NewRequest("GET", srv.URL, nil)
	if gz {
		req.Header.Set("Accept-Encoding", "gzip")
	}
	resp, err := (&http.Transport{DisableCompression: true}).RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/plain; version=0.0.4") {
		t.Errorf("Content-Type %q", ct)
	}
	var r io.Reader = resp.Body
	if enc := resp.Header.Get("Content-Encoding"); gz != (enc == "gzip") {
		t.Fatalf("asked for gzip %v, Content-Encoding %q", gz, enc)
	}
	if gz {
		zr, err := gzip.NewReader(resp.Body)
		if err != nil {
			t.Fatal(err)
		}
		r = zr
	}
	body, err := io.ReadAll(r)
	if err != nil {
		t.Fatal(err)
	}
	p := expfmt.NewTextParser(model.LegacyValidation)
	mfs, err := p.TextToMetricFamilies(strings.NewReader(string(body)))
	if err != nil {
		t.Fatalf("the scrape does not parse: %v", err)
	}
	return string(body), mfs
}

// TestHandlerTextIsCollect: the Handler's own text writer serves exactly
// the samples (names, labels, values, types, help) Collect gives through a
// pedantic registry, plus the registry's Go and process metrics, with and
// without gzip.
func TestHandlerTextIsCollect(t *testing.T) {
	src, _ := fakeSources(t)
	c := New(src, nil)
	want := gather(t, c)
	for _, gz := range []bool{false, true} {
		body, mfs := scrapeText(t, Handler(c), gz)
		var own []*dto.MetricFamily
		for name, mf := range mfs {
			if strings.HasPrefix(name, "go_") || strings.HasPrefix(name, "process_") {
				continue
			}
			own = append(own, mf)
		}
		got := flatten(t, own)
		for k, v := range want {
			if g, ok := got[k]; !ok || g != v {
				t.Errorf("gzip %v: %s = %v (present %v), Collect says %v", gz, k, g, ok, v)
			}
		}
		for k := range got {
			if _, ok := want[k]; !ok {
				t.Errorf("gzip %v: %s served, not collected", gz, k)
			}
		}
		if len(want) < 50 {
			t.Errorf("only %d samples collected", len(want))
		}
		if _, ok := mfs["go_goroutines"]; !ok {
			t.Errorf("gzip %v: no go_goroutines", gz)
		}
		for _, mf := range own {
			if mf.GetHelp() == "" {
				t.Errorf("%s: no HELP", mf.GetName())
			}
		}
		if !strings.Contains(body, "# TYPE keepalived_advertisements_received_total counter\n") ||
			!strings.Contains(body, "# TYPE keepalived_vrrp_state gauge\n") {
			t.Errorf("gzip %v: types missing or wrong", gz)
		}
	}
}

// TestAppendEscaped: label values and HELP texts escaped as the text format wants.
func TestAppendEscaped(t *testing.T) {
	if g := string(appendEscaped(nil, "a\\b\"c\nd", true)); g != `a\\b\"c\nd` {
		t.Errorf("label value: %s", g)
	}
	if g := string(appendEscaped(nil, "a\\b\"c\nd", false)); g != `a\\b"c\nd` {
		t.Errorf("help: %s", g)
	}
	for f, want := range map[float64]string{0: "0", 1: "1", -1: "-1", 2.5: "2.5", 1e21: "1e+21", 12345678: "1.2345678e+07"} {
		if g := string(appendFloat(nil, f)); g != want {
			t.Errorf("%v: %s, want %s", f, g, want)
		}
	}
}

// discardWriter is an http.ResponseWriter that keeps nothing.
type discardWriter struct{ h http.Header }

func (d *discardWriter) Header() http.Header         { return d.h }
func (d *discardWriter) Write(b []byte) (int, error) { return len(b), nil }
func (d *discardWriter) WriteHeader(int)             {}

// TestScrapesDoNotGrow: 1,000 scrapes, with and without gzip: the
// allocations per scrape of the last hundred are those of the first
// hundred, and the heap after them is where it was.
func TestScrapesDoNotGrow(t *testing.T) {
	src, _ := fakeSources(t)
	h := Handler(New(src, nil))
	w := &discardWriter{h: http.Header{}}
	plain := httptest.NewRequest("GET", "/metrics", nil)
	gz := httptest.NewRequest("GET", "/metrics", nil)
	gz.Header.Set("Accept-Encoding", "gzip")
	scrape := func() {
		h.ServeHTTP(w, plain)
		h.ServeHTTP(w, gz)
	}
	heap := func() uint64 {
		var ms runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&ms)
		return ms.HeapAlloc
	}
	scrape() // the buffers' first growth
	h0 := heap()
	first := testing.AllocsPerRun(50, scrape)
	for range 400 {
		scrape()
	}
	last := testing.AllocsPerRun(50, scrape)
	h1 := heap()
	t.Logf("allocations per scrape (text + gzip): first %.0f, last %.0f; heap %d → %d bytes", first, last, h0, h1)
	if last > first*1.02+2 {
		t.Errorf("allocations per scrape grew from %.0f to %.0f", first, last)
	}
	if h1 > h0+256<<10 {
		t.Errorf("the heap grew by %d bytes over 1,000 scrapes", h1-h0)
	}
}

// TestOneScraperOneSink: scrapes one after the other reuse the same sink
// (the one put back last), so the other keeps no scrape-sized buffers.
func TestOneScraperOneSink(t *testing.T) {
	src, _ := fakeSources(t)
	h := &handler{c: New(src, nil), reg: prometheus.NewRegistry(), free: []*textSink{{}, {}}}
	w := &discardWriter{h: http.Header{}}
	for range 5 {
		h.ServeHTTP(w, httptest.NewRequest("GET", "/metrics", nil))
	}
	grown := 0
	for _, s := range h.free {
		if len(s.bufs) > 0 {
			grown++
		}
	}
	if len(h.free) != 2 || grown != 1 {
		t.Fatalf("%d sinks free, %d of them grown; want 2 and 1", len(h.free), grown)
	}
}
