package healthcheck

import (
	"bufio"
	"crypto/md5"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

func webHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/ok", func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "hello world") })
	mux.HandleFunc("/500", func(w http.ResponseWriter, r *http.Request) { http.Error(w, "boom", 500) })
	mux.HandleFunc("/404", func(w http.ResponseWriter, r *http.Request) { http.NotFound(w, r) })
	mux.HandleFunc("/slow", func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-time.After(500 * time.Millisecond):
		case <-r.Context().Done():
			return
		}
		io.WriteString(w, "late")
	})
	mux.HandleFunc("/chunked", func(w http.ResponseWriter, r *http.Request) {
		for _, part := range []string{"hello ", "wor", "ld"} {
			io.WriteString(w, part)
			w.(http.Flusher).Flush()
		}
	})
	return mux
}

func serverPort(t *testing.T, rawURL string) int {
	t.Helper()
	u, err := url.Parse(rawURL)
	if err != nil {
		t.Fatal(err)
	}
	p, _ := strconv.Atoi(u.Port())
	return p
}

// httpConf has retry 2, delay_before_retry 0.1, connect_timeout 0.2.
func httpConf(typ string, port int, alpha bool, body string) string {
	a := ""
	if alpha {
		a = "alpha"
	}
	return fmt.Sprintf(`
virtual_server 192.0.2.1 80 {
    protocol TCP
  delay_loop 1
  %s
  real_server 127.0.0.1 %d {
    %s {
      connect_timeout 0.2
      retry 2
      delay_before_retry 0.1
      warmup 0
      %s
    }
  }
}`, a, port, typ, body)
}

func md5hex(s string) string { return fmt.Sprintf("%x", md5.Sum([]byte(s))) }

func TestHTTP(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(webHandler())
	t.Cleanup(srv.Close)
	web := serverPort(t, srv.URL)
	garbage := listen(t, func(c net.Conn) {
		io.WriteString(c, "garbage, not HTTP\r\n\r\n")
		c.Close()
	})
	silent := listen(t, hold)
	const fails = 200 * time.Millisecond                             // retry × delay_before_retry, quick failures
	const timesOut = 3*200*time.Millisecond + 2*100*time.Millisecond // plus three timeouts

	for _, tc := range []struct {
		name   string
		port   int
		proto  string
		urls   string
		wantUp bool
		downAt time.Duration
		reason string
	}{
		{name: "200", urls: "url {\npath /ok\n}", wantUp: true},
		{name: "wrong status", urls: "url {\npath /500\n}", downAt: fails, reason: "HTTP status 500"},
		{name: "status list", urls: "url {\npath /404\nstatus_code 200 404\n}", wantUp: true},
		{name: "status range", urls: "url {\npath /500\nstatus_code 200-299 500-503\n}", wantUp: true},
		{name: "status not in list", urls: "url {\npath /404\nstatus_code 200-299 500\n}", downAt: fails, reason: "HTTP status 404"},
		{name: "digest", urls: "url {\npath /ok\ndigest " + md5hex("hello world") + "\n}", wantUp: true},
		{name: "wrong digest", urls: "url {\npath /ok\ndigest " + md5hex("hello") + "\n}", downAt: fails, reason: "MD5 digest"},
		{name: "chunked digest", proto: "1.1", urls: "url {\npath /chunked\ndigest " + md5hex("hello world") + "\n}", wantUp: true},
		{name: "all urls must pass", urls: "url {\npath /ok\n}\nurl {\npath /500\n}", downAt: fails, reason: "/500"},
		{name: "regex", urls: "url {\npath /ok\nregex \"^hello w.*d$\"\n}", wantUp: true},
		{name: "regex fails", urls: "url {\npath /ok\nregex \"^bye\"\n}", downAt: fails, reason: "does not match"},
		{name: "regex_no_match", urls: "url {\npath /ok\nregex \"error\"\nregex_no_match\n}", wantUp: true},
		{name: "slow", urls: "url {\npath /slow\n}", downAt: timesOut, reason: "timeout"},
		{name: "refused", port: closedPort(t), urls: "url {\npath /ok\n}", downAt: fails, reason: "connection refused"},
		{name: "never answers", port: silent, urls: "url {\npath /ok\n}", downAt: timesOut, reason: "timeout"},
		{name: "garbage", port: garbage, urls: "url {\npath /ok\n}", downAt: fails, reason: "malformed"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			port := tc.port
			if port == 0 {
				port = web
			}
			body := tc.urls
			if tc.proto != "" {
				body += "\nhttp_protocol " + tc.proto
			}
			if tc.wantUp {
				// alpha: starts down, up at the first check.
				r := startRun(t, httpConf("HTTP_GET", port, true, body), Options{})
				r.expect(t, false, 0)
				r.expect(t, true, 0)
				return
			}
			r := startRun(t, httpConf("HTTP_GET", port, false, body), Options{})
			r.expect(t, true, 0)
			ev := r.expect(t, false, tc.downAt)
			if !strings.Contains(ev.Reason, tc.reason) {
				t.Errorf("reason %q, want it to mention %q", ev.Reason, tc.reason)
			}
		})
	}
}

// requestRecorder answers every request with 200 and keeps the request bytes.
type requestRecorder struct {
	mu   sync.Mutex
	reqs []string
}

func (rr *requestRecorder) serve(c net.Conn) {
	defer c.Close()
	c.SetDeadline(time.Now().Add(2 * time.Second))
	br := bufio.NewReader(c)
	var b strings.Builder
	for i := 0; i < 20; i++ {
		line, err := br.ReadString('\n')
		if err != nil {
			return
		}
		b.WriteString(line)
		if line == "\r\n" {
			break
		}
	}
	rr.mu.Lock()
	rr.reqs = append(rr.reqs, b.String())
	rr.mu.Unlock()
	io.WriteString(c, "HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok")
}

func (rr *requestRecorder) first(t *testing.T) string {
	t.Helper()
	rr.mu.Lock()
	defer rr.mu.Unlock()
	if len(rr.reqs) == 0 {
		t.Fatal("no request received")
	}
	return rr.reqs[0]
}

// The request is keepalived's, byte for byte.
func TestHTTPRequest(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, vsExtra, checker, want string
	}{
		{"1.0 by address", "", "url {\npath /health\n}",
			"GET /health HTTP/1.0\r\nUser-Agent: KeepAliveClient\r\nHost: 127.0.0.1:%d\r\n\r\n"},
		{"1.0C url virtualhost", "virtualhost vs.example", "http_protocol 1.0C\nvirtualhost chk.example\nurl {\npath /a?b=c\nvirtualhost url.example\n}",
			"GET /a?b=c HTTP/1.0\r\nUser-Agent: KeepAliveClient\r\nConnection: close\r\nHost: url.example\r\n\r\n"},
		{"1.1 checker virtualhost", "virtualhost vs.example", "http_protocol 1.1\nvirtualhost chk.example\nurl {\npath /\n}",
			"GET / HTTP/1.1\r\nUser-Agent: KeepAliveClient\r\nConnection: close\r\nHost: chk.example\r\n\r\n"},
		{"virtual server's virtualhost", "virtualhost vs.example", "url {\npath /\n}",
			"GET / HTTP/1.0\r\nUser-Agent: KeepAliveClient\r\nHost: vs.example\r\n\r\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			rr := &requestRecorder{}
			port := listen(t, rr.serve)
			text := httpConf("HTTP_GET", port, true, tc.checker)
			text = strings.Replace(text, "delay_loop 1", "delay_loop 1\n  "+tc.vsExtra, 1)
			r := startRun(t, text, Options{})
			r.expect(t, false, 0)
			r.expect(t, true, 0)
			want := tc.want
			if strings.Contains(want, "%d") {
				want = fmt.Sprintf(want, port)
			}
			if got := rr.first(t); got != want {
				t.Fatalf("request\n%q\nwant\n%q", got, want)
			}
		})
	}
}

func TestSSL(t *testing.T) {
	t.Parallel()
	srv := httptest.NewTLSServer(webHandler()) // self-signed certificate
	t.Cleanup(srv.Close)
	port := serverPort(t, srv.URL)
	t.Run("self-signed", func(t *testing.T) {
		t.Parallel()
		r := startRun(t, httpConf("SSL_GET", port, true, "url {\npath /ok\ndigest "+md5hex("hello world")+"\n}"), Options{})
		r.expect(t, false, 0)
		r.expect(t, true, 0)
	})
	t.Run("wrong status", func(t *testing.T) {
		t.Parallel()
		r := startRun(t, httpConf("SSL_GET", port, false, "url {\npath /500\n}"), Options{})
		r.expect(t, true, 0)
		r.expect(t, false, 200*time.Millisecond)
	})
	t.Run("plain HTTP server", func(t *testing.T) {
		t.Parallel()
		plain := httptest.NewServer(webHandler())
		t.Cleanup(plain.Close)
		r := startRun(t, httpConf("SSL_GET", serverPort(t, plain.URL), false, "url {\npath /ok\n}"), Options{})
		r.expect(t, true, 0)
		ev := r.expect(t, false, 200*time.Millisecond)
		if !strings.Contains(ev.Reason, "TLS handshake") {
			t.Errorf("reason %q", ev.Reason)
		}
	})
}

// enable_sni sends the virtual host as SNI; without it, none.
func TestSSLSNI(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, body, want string
	}{
		{"enable_sni", "enable_sni\nvirtualhost sni.example.org\nurl {\npath /ok\n}", "sni.example.org"},
		{"url virtualhost", "enable_sni\nvirtualhost chk.example.org\nurl {\npath /ok\nvirtualhost url.example.org\n}", "url.example.org"},
		{"no enable_sni", "virtualhost sni.example.org\nurl {\npath /ok\n}", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var mu sync.Mutex
			seen := []string{}
			srv := httptest.NewUnstartedServer(webHandler())
			srv.TLS = &tls.Config{GetConfigForClient: func(hi *tls.ClientHelloInfo) (*tls.Config, error) {
				mu.Lock()
				seen = append(seen, hi.ServerName)
				mu.Unlock()
				return nil, nil
			}}
			srv.StartTLS()
			t.Cleanup(srv.Close)
			r := startRun(t, httpConf("SSL_GET", serverPort(t, srv.URL), true, tc.body), Options{})
			r.expect(t, false, 0)
			r.expect(t, true, 0)
			mu.Lock()
			defer mu.Unlock()
			if len(seen) == 0 || seen[0] != tc.want {
				t.Fatalf("server saw SNI %q, want %q", seen, tc.want)
			}
		})
	}
}
