package main

import (
	"io"
	"net/http"
	"net/http/httptest"
	"runtime"
	"syscall"
	"testing"
	"time"

	"github.com/lvsd/lvsd/metrics"
)

// processCPU is the user and system time of this process so far.
func processCPU() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// getAll fetches url and discards the body, returning its length; with gz
// it asks for gzip and discards the compressed body as it comes (what the
// server spends, without the client's decompression).
func getAll(tb testing.TB, c *http.Client, url string, gz bool) int64 {
	req, _ := http.NewRequest("GET", url, nil)
	if gz {
		req.Header.Set("Accept-Encoding", "gzip")
	}
	resp, err := c.Do(req)
	if err != nil {
		tb.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		tb.Fatalf("%s: %s", url, resp.Status)
	}
	n, err := io.Copy(io.Discard, resp.Body)
	if err != nil {
		tb.Fatal(err)
	}
	return n
}

// countingWriter is an http.ResponseWriter that counts and drops the body.
type countingWriter struct {
	h http.Header
	n int64
}

func (w *countingWriter) Header() http.Header         { return w.h }
func (w *countingWriter) Write(b []byte) (int, error) { w.n += int64(len(b)); return len(b), nil }
func (w *countingWriter) WriteHeader(int)             {}

// BenchmarkScrape10000: one /metrics scrape of a director with 10,000 IPVS
// backends (the in-memory table of startManyBackends): the handler alone
// (the server's work without the socket), then over HTTP as text and
// gzip-compressed (as Prometheus asks; the client discards the compressed
// body). It reports the process's CPU per scrape (over HTTP the client's
// reading too) and the heap after the run.
func BenchmarkScrape10000(b *testing.B) {
	url, _, op := startManyBackends(b, false)
	c := &http.Client{Timeout: time.Minute, Transport: &http.Transport{DisableCompression: true}}
	h := metrics.Handler(metrics.New(op.src, op.checks))
	for _, mode := range []string{"handler", "text", "gzip"} {
		b.Run(mode, func(b *testing.B) {
			scrape := func() int64 {
				if mode == "handler" { // the server's work alone, no socket
					w := &countingWriter{h: http.Header{}}
					h.ServeHTTP(w, httptest.NewRequest("GET", "/metrics", nil))
					return w.n
				}
				return getAll(b, c, url, mode == "gzip")
			}
			size := scrape()
			b.ResetTimer()
			cpu0 := processCPU()
			for range b.N {
				scrape()
			}
			cpu := processCPU() - cpu0
			b.StopTimer()
			var ms runtime.MemStats
			runtime.GC()
			runtime.ReadMemStats(&ms)
			b.ReportMetric(float64(cpu.Microseconds())/1000/float64(b.N), "cpu-ms/op")
			b.ReportMetric(float64(size), "bytes/scrape")
			b.ReportMetric(float64(ms.HeapAlloc)/(1<<20), "heap-MiB")
		})
	}
}
