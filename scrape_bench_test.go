package main

import (
	"io"
	"net/http"
	"runtime"
	"syscall"
	"testing"
	"time"
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

// BenchmarkScrape10000: one /metrics scrape of a director with 10,000 IPVS
// backends (the in-memory table of startManyBackends), over HTTP, as text
// and gzip-compressed (as Prometheus asks); it reports the process's CPU
// per scrape (the server's, and the client's reading) and the heap after
// the run.
func BenchmarkScrape10000(b *testing.B) {
	url, _ := startManyBackends(b, false)
	c := &http.Client{Timeout: time.Minute, Transport: &http.Transport{DisableCompression: true}}
	for _, gz := range []bool{false, true} {
		name := "text"
		if gz {
			name = "gzip"
		}
		b.Run(name, func(b *testing.B) {
			size := getAll(b, c, url, gz)
			b.ResetTimer()
			cpu0 := processCPU()
			for range b.N {
				getAll(b, c, url, gz)
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
