package metrics

import (
	"bytes"
	"compress/gzip"
	"fmt"
	"io"
	"math"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/common/expfmt"
)

// The Handler writes the Collector's own families in Prometheus's text
// format itself, straight from the status (issue 17): through
// client_golang's registry a scrape of 10,000 IPVS backends (about 130,000
// samples, 20 MB of text) cost a second of CPU, nearly all of it making,
// checking, sorting and encoding one object per sample. The registry still
// serves the few families it owns (the Go runtime's, the process's, the
// health-check histogram and counters). Collect stays the reference: a test
// compares the two.

// family is one of the Collector's metric families, as the text format
// writes it. Samples are appended to buf during a scrape (a family's
// samples must be together); the label order is the text format's
// (sorted by name, as client_golang writes them).
type family struct {
	name, help string
	labels     []string
	order      []int // indexes of labels, sorted by name
	idx        int   // in Collector.descs (and textSink.bufs)
}

func (c *Collector) family(d *prometheus.Desc, name, help string, labels []string) {
	if c.fams == nil {
		c.fams = map[*prometheus.Desc]*family{}
	}
	f := &family{name: name, help: help, labels: labels, idx: len(c.fams)}
	for i := range labels {
		f.order = append(f.order, i)
	}
	slices.SortFunc(f.order, func(a, b int) int { return strings.Compare(labels[a], labels[b]) })
	c.fams[d] = f
}

// textSink collects one scrape's samples by family. The Handler keeps
// MaxScrapesInFlight of them and reuses them from scrape to scrape, so that
// their buffers stop growing: they hold about the size of a scrape (2 KB
// per IPVS backend) instead of making as much garbage at every scrape.
type textSink struct {
	bufs  []*famBuf // by family.idx
	used  []*famBuf // in the order of their first sample
	head  bytes.Buffer
	gz    *gzip.Writer
	scrap []byte
}

type famBuf struct {
	f   *family
	typ prometheus.ValueType
	b   []byte
}

func (s *textSink) add(f *family, t prometheus.ValueType, v float64, lv []string) {
	for len(s.bufs) <= f.idx {
		s.bufs = append(s.bufs, nil)
	}
	fb := s.bufs[f.idx]
	if fb == nil {
		fb = &famBuf{f: f}
		s.bufs[f.idx] = fb
	}
	if len(fb.b) == 0 {
		fb.typ = t
		s.used = append(s.used, fb)
	}
	b := append(fb.b, f.name...)
	if len(lv) > 0 {
		b = append(b, '{')
		for n, i := range f.order {
			if n > 0 {
				b = append(b, ',')
			}
			b = append(b, f.labels[i]...)
			b = append(b, '=', '"')
			if i < len(lv) {
				b = appendEscaped(b, lv[i], true)
			}
			b = append(b, '"')
		}
		b = append(b, '}')
	}
	b = append(b, ' ')
	b = appendFloat(b, v)
	fb.b = append(b, '\n')
}

// appendEscaped escapes a label value (\, " and newline) or, without
// quote, a HELP text (\ and newline), as the text format wants.
func appendEscaped(b []byte, s string, quote bool) []byte {
	i := 0
	for i < len(s) && s[i] != '\\' && s[i] != '"' && s[i] != '\n' {
		i++
	}
	b = append(b, s[:i]...)
	for ; i < len(s); i++ {
		switch c := s[i]; {
		case c == '\\':
			b = append(b, '\\', '\\')
		case c == '\n':
			b = append(b, '\\', 'n')
		case c == '"' && quote:
			b = append(b, '\\', '"')
		default:
			b = append(b, c)
		}
	}
	return b
}

// appendFloat writes a value as client_golang's text encoder does.
func appendFloat(b []byte, f float64) []byte {
	switch {
	case f == 1:
		return append(b, '1')
	case f == 0:
		return append(b, '0')
	case f == -1:
		return append(b, '-', '1')
	case math.IsNaN(f):
		return append(b, "NaN"...)
	case math.IsInf(f, +1):
		return append(b, "+Inf"...)
	case math.IsInf(f, -1):
		return append(b, "-Inf"...)
	}
	return strconv.AppendFloat(b, f, 'g', -1, 64)
}

// writeText collects the Collector's own families into s and writes them
// to w, each family's samples together, the families sorted by name.
func (c *Collector) writeText(s *textSink, w io.Writer) error {
	c.collect(func(d *prometheus.Desc, t prometheus.ValueType, v float64, lv ...string) {
		if f := c.fams[d]; f != nil {
			s.add(f, t, v, lv)
		}
	})
	slices.SortFunc(s.used, func(a, b *famBuf) int { return strings.Compare(a.f.name, b.f.name) })
	var err error
	for _, fb := range s.used {
		if err == nil {
			b := append(s.scrap[:0], "# HELP "...)
			b = append(b, fb.f.name...)
			b = append(b, ' ')
			b = appendEscaped(b, fb.f.help, false)
			b = append(b, "\n# TYPE "...)
			b = append(b, fb.f.name...)
			if fb.typ == prometheus.CounterValue {
				b = append(b, " counter\n"...)
			} else {
				b = append(b, " gauge\n"...)
			}
			s.scrap = b
			if _, err = w.Write(b); err == nil {
				_, err = w.Write(fb.b)
			}
		}
		fb.b = fb.b[:0]
	}
	s.used = s.used[:0]
	return err
}

// Handler serves the Collector with Go runtime and process metrics in
// Prometheus's text format (gzip-compressed when asked for), at most
// MaxScrapesInFlight at once: one more gets 503 at once.
func Handler(c *Collector) http.Handler {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		c.checks.duration, c.checks.results)
	h := &handler{c: c, reg: reg}
	for range MaxScrapesInFlight {
		h.free = append(h.free, &textSink{})
	}
	return oneAtATime(h, MaxScrapesInFlight)
}

type handler struct {
	c   *Collector
	reg *prometheus.Registry
	// free are the sinks not in use, one per scrape allowed in flight; the
	// last one put back is the next one taken, so that one scraper at a
	// time grows one sink only (a FIFO took turns: both grew to a whole
	// scrape, 20 MB more at 10,000 backends; the soak benchmark).
	mu   sync.Mutex
	free []*textSink
}

// sink takes a free sink (nil when none).
func (h *handler) sink() *textSink {
	h.mu.Lock()
	defer h.mu.Unlock()
	if len(h.free) == 0 {
		return nil
	}
	s := h.free[len(h.free)-1]
	h.free = h.free[:len(h.free)-1]
	return s
}

func (h *handler) put(s *textSink) {
	h.mu.Lock()
	h.free = append(h.free, s)
	h.mu.Unlock()
}

func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s := h.sink()
	if s == nil {
		http.Error(w, fmt.Sprintf("Limit of concurrent requests reached (%d), try again later.", MaxScrapesInFlight), http.StatusServiceUnavailable)
		return
	}
	defer h.put(s)
	s.head.Reset()
	// A family that fails to gather is left out (promhttp's
	// ContinueOnError); the rest is served.
	mfs, _ := h.reg.Gather()
	for _, mf := range mfs {
		if _, err := expfmt.MetricFamilyToText(&s.head, mf); err != nil {
			http.Error(w, "encoding: "+err.Error(), http.StatusInternalServerError)
			return
		}
	}
	w.Header().Set("Content-Type", string(expfmt.NewFormat(expfmt.TypeTextPlain)))
	var out io.Writer = w
	if acceptsGzip(r) {
		w.Header().Set("Content-Encoding", "gzip")
		if s.gz == nil {
			s.gz, _ = gzip.NewWriterLevel(w, gzip.BestSpeed)
		} else {
			s.gz.Reset(w)
		}
		out = s.gz
		defer s.gz.Close()
	}
	if _, err := out.Write(s.head.Bytes()); err != nil {
		return // the scraper went away
	}
	_ = h.c.writeText(s, out)
}

func acceptsGzip(r *http.Request) bool {
	for _, part := range strings.Split(r.Header.Get("Accept-Encoding"), ",") {
		if enc, _, _ := strings.Cut(strings.TrimSpace(part), ";"); enc == "gzip" {
			return true
		}
	}
	return false
}
