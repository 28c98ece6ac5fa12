// Command labhelper is the lvsd lab's helper inside the VM: a tiny HTTP
// server answering with its own name, an HTTP client that counts answers by
// name, a request loop that measures the longest client-visible outage, a
// wait-for-TCP-port helper, and long-lived keep-alive connections counted
// by phase (hold, below). It is built static (CGO_ENABLED=0).
//
//	labhelper serve -name rs1 -listen :80
//	labhelper get   -url http://192.0.2.100/ -n 20 -timeout 1s
//	labhelper loop  -url http://192.0.2.100/ -timeout 200ms -interval 20ms -max 60s -stop FILE
//	labhelper wait  -addr 127.0.0.1:80 -timeout 5s
//	labhelper hold  -addr 192.0.2.100:80 -n 200 -interval 1s -stop FILE -ready FILE -progress FILE
//	labhelper echo  -name rs1 -listen :9000
//	labhelper echohold -addr 203.0.113.10:9000 -n 200 -interval 200ms -stop FILE -ready FILE
package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/lvsd/lvsd/integration/lab"
)

func main() {
	if len(os.Args) < 2 {
		usage()
	}
	commands := map[string]func([]string) error{
		"serve": serve, "get": get, "loop": loop, "wait": wait,
		"hold": hold, "echo": echo, "echohold": echoHold,
	}
	cmd, ok := commands[os.Args[1]]
	if !ok {
		usage()
	}
	err := cmd(os.Args[2:])
	if err != nil {
		fmt.Fprintln(os.Stderr, "labhelper:", err)
		os.Exit(1)
	}
}

func usage() {
	fmt.Fprintln(os.Stderr, "usage: labhelper serve|get|loop|wait|hold|echo|echohold [flags]")
	os.Exit(2)
}

func serve(args []string) error {
	fs := flag.NewFlagSet("serve", flag.ExitOnError)
	name := fs.String("name", "", "name to answer with")
	listen := fs.String("listen", ":80", "listen address")
	fs.Parse(args)
	if *name == "" {
		return errors.New("serve: -name is required")
	}
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		return err
	}
	srv := &http.Server{
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("X-Lab-Server", *name)
			io.WriteString(w, *name+"\n")
		}),
		ReadHeaderTimeout: 5 * time.Second,
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	go func() {
		<-ctx.Done()
		srv.Close()
	}()
	if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// client does one request per new TCP connection, so that every request
// is scheduled by IPVS on its own.
func client(timeout time.Duration) *http.Client {
	return &http.Client{
		Timeout: timeout,
		Transport: &http.Transport{
			DisableKeepAlives: true,
			Proxy:             nil,
			DialContext:       (&net.Dialer{Timeout: timeout}).DialContext,
		},
	}
}

func once(c *http.Client, url string) (string, error) {
	return answer(c.Get(url))
}

// answer is the server name in a response (its body), or the error.
func answer(resp *http.Response, err error) (string, error) {
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 4096))
	if err != nil {
		return "", err
	}
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("status %d", resp.StatusCode)
	}
	return strings.TrimSpace(string(b)), nil
}

func addErr(r *lab.ClientReport, err error) {
	r.Failed++
	if len(r.Errors) < 5 {
		r.Errors = append(r.Errors, err.Error())
	}
}

func get(args []string) error {
	fs := flag.NewFlagSet("get", flag.ExitOnError)
	url := fs.String("url", "", "URL")
	n := fs.Int("n", 10, "number of requests (at most 100000)")
	timeout := fs.Duration("timeout", time.Second, "per-request timeout")
	parallel := fs.Int("parallel", 1, "requests in flight at once (1-64)")
	fs.Parse(args)
	if *n < 0 || *n > 100000 || *parallel < 1 || *parallel > 64 {
		return errors.New("get: -n or -parallel out of range")
	}
	c := client(*timeout)
	rep := lab.ClientReport{Answers: map[string]int{}}
	var mu sync.Mutex
	var wg sync.WaitGroup
	next := make(chan struct{})
	for w := 0; w < *parallel; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range next {
				name, err := once(c, *url)
				mu.Lock()
				rep.Requests++
				if err != nil {
					addErr(&rep, err)
				} else {
					rep.Answers[name]++
				}
				mu.Unlock()
			}
		}()
	}
	for i := 0; i < *n; i++ {
		next <- struct{}{}
	}
	close(next)
	wg.Wait()
	return json.NewEncoder(os.Stdout).Encode(rep)
}

func loop(args []string) error {
	fs := flag.NewFlagSet("loop", flag.ExitOnError)
	url := fs.String("url", "", "URL")
	timeout := fs.Duration("timeout", 200*time.Millisecond, "per-request timeout")
	interval := fs.Duration("interval", 20*time.Millisecond, "pause between requests")
	max := fs.Duration("max", 60*time.Second, "stop after this long")
	stopFile := fs.String("stop", "", "stop when this file exists")
	fs.Parse(args)
	if *max > 10*time.Minute {
		return errors.New("loop: -max above 10m")
	}
	c := client(*timeout)
	// Each request's TCP handshake is timed: one taking a second or more
	// had its SYN retransmitted (the kernel's first retransmission is at
	// 1 s), a connection that needed a retry.
	var dialTook time.Duration
	d := &net.Dialer{Timeout: *timeout}
	c.Transport.(*http.Transport).DialContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
		t0 := time.Now()
		conn, err := d.DialContext(ctx, network, addr)
		dialTook = time.Since(t0)
		return conn, err
	}
	rep := lab.ClientReport{Answers: map[string]int{}, FirstFailMS: -1}
	start := time.Now()
	last := start
	var longest time.Duration
	for i := 0; i < 1000000 && time.Since(start) < *max; i++ {
		if *stopFile != "" {
			if _, err := os.Stat(*stopFile); err == nil {
				break
			}
		}
		rep.Requests++
		dialTook = 0
		name, err := once(c, *url)
		now := time.Now()
		if ms := dialTook.Milliseconds(); err == nil && ms >= 900 {
			rep.Retried++
		}
		if ms := dialTook.Milliseconds(); ms > rep.MaxConnectMS {
			rep.MaxConnectMS = ms
		}
		if err != nil {
			if rep.FirstFailMS < 0 {
				rep.FirstFailMS = now.Sub(start).Milliseconds()
			}
			if len(rep.FailAtMS) < 20 {
				rep.FailAtMS = append(rep.FailAtMS, now.Sub(start).Milliseconds())
			}
			addErr(&rep, err)
		} else {
			rep.Answers[name]++
			if g := now.Sub(last); g > longest {
				longest = g
			}
			last = now
		}
		time.Sleep(*interval)
	}
	if g := time.Since(last); g > longest {
		longest = g
	}
	rep.LongestGapMS = longest.Milliseconds()
	rep.DurationMS = time.Since(start).Milliseconds()
	return json.NewEncoder(os.Stdout).Encode(rep)
}

func wait(args []string) error {
	fs := flag.NewFlagSet("wait", flag.ExitOnError)
	addr := fs.String("addr", "", "host:port")
	timeout := fs.Duration("timeout", 5*time.Second, "give up after")
	fs.Parse(args)
	end := time.Now().Add(*timeout)
	for i := 0; i < 100000; i++ {
		conn, err := net.DialTimeout("tcp", *addr, 200*time.Millisecond)
		if err == nil {
			conn.Close()
			return nil
		}
		if time.Now().After(end) {
			return fmt.Errorf("wait: %s not reachable after %v: %v", *addr, *timeout, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	return fmt.Errorf("wait: %s not reachable", *addr)
}

// labhelper hold: long-lived connections through a VIP. Each of -n TCP
// connections does an HTTP/1.1 keep-alive request every -interval on the
// same connection and counts the answers (the server names) by phase; the
// phase advances on SIGUSR1, so that a scenario can mark "before the
// failover", "after the takeover". The report (lab.HoldReport) is printed
// when the -stop file appears or -max passes.
//
//	labhelper hold -addr 192.0.2.100:80 -n 200 -interval 1s -timeout 20s \
//	    -max 3m -stop FILE -ready FILE -progress FILE -need 2 [-local ADDR]
//
// A connection that fails in phase 0 is redialed (at most 3 times, counted).
// -ready is written once every connection has had its first answer (or
// failed): the first answer's server name, a line per connection.
// -progress is rewritten every 200 ms: "phase P n N dead D done K", K the
// connections alive with at least -need answers in the current phase.

const holdMaxPhases = 8

// countConn counts the bytes through a connection.
type countConn struct {
	net.Conn
	out, in *atomic.Int64
}

func (c countConn) Read(b []byte) (int, error) {
	n, err := c.Conn.Read(b)
	c.in.Add(int64(n))
	return n, err
}

func (c countConn) Write(b []byte) (int, error) {
	n, err := c.Conn.Write(b)
	c.out.Add(int64(n))
	return n, err
}

// held is one connection's state, shared with the progress writer.
type held struct {
	mu       sync.Mutex
	c        lab.HeldConn
	first    bool // the first answer (or the end) came
	out, in  atomic.Int64
	conn     net.Conn
	stopping atomic.Bool
}

func (h *held) fail(phase int, since time.Time, err error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.stopping.Load() || h.c.Err != "" {
		return
	}
	h.c.Err, h.c.ErrPhase, h.c.ErrKind = err.Error(), phase, errKind(err)
	h.c.ErrAtMS = time.Since(since).Milliseconds()
	h.first = true
}

func errKind(err error) string {
	switch {
	case errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.EPIPE):
		return "reset"
	case errors.Is(err, os.ErrDeadlineExceeded):
		return "timeout"
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return "eof"
	case errors.Is(err, syscall.ECONNREFUSED):
		return "refused"
	}
	return "other"
}

func hold(args []string) error {
	fs := flag.NewFlagSet("hold", flag.ExitOnError)
	addr := fs.String("addr", "", "host:port")
	n := fs.Int("n", 1, "connections (at most 2000)")
	interval := fs.Duration("interval", time.Second, "pause between two requests on a connection")
	timeout := fs.Duration("timeout", 60*time.Second, "per-request (and dial) timeout")
	max := fs.Duration("max", time.Minute, "stop after this long (at most 10m)")
	stopFile := fs.String("stop", "", "stop when this file exists")
	readyFile := fs.String("ready", "", "written when every connection had its first answer")
	progressFile := fs.String("progress", "", "progress, rewritten every 200 ms")
	need := fs.Int("need", 2, "answers in a phase for a connection to count as done in -progress")
	local := fs.String("local", "", "source address of the connections")
	fs.Parse(args)
	dialer := &net.Dialer{Timeout: *timeout}
	if *local != "" {
		ip := net.ParseIP(*local)
		if ip == nil {
			return fmt.Errorf("hold: -local %q is not an address", *local)
		}
		dialer.LocalAddr = &net.TCPAddr{IP: ip}
	}
	if *addr == "" || *n < 1 || *n > 2000 || *max > 10*time.Minute || *interval <= 0 {
		return errors.New("hold: -addr, -n 1..2000, -interval > 0 and -max <= 10m")
	}
	var phase atomic.Int32
	start := time.Now()
	usr1 := make(chan os.Signal, 4)
	signal.Notify(usr1, syscall.SIGUSR1)
	stop := make(chan struct{})
	conns := make([]*held, *n)
	var wg sync.WaitGroup
	for i := range conns {
		h := &held{c: lab.HeldConn{Answers: make([]int, holdMaxPhases)}}
		conns[i] = h
		wg.Add(1)
		// Spread the connections' requests over the interval.
		go func(delay time.Duration) {
			defer wg.Done()
			holdOne(h, dialer, *addr, *timeout, *interval, delay, &phase, start, stop)
		}(time.Duration(i) * *interval / time.Duration(*n))
	}
	readyDone := *readyFile == ""
	tick := time.NewTicker(200 * time.Millisecond)
	defer tick.Stop()
	for running := true; running; {
		select {
		case <-usr1:
			if p := phase.Load(); p < holdMaxPhases-1 {
				phase.Store(p + 1)
			}
		case <-tick.C:
		}
		if _, err := os.Stat(*stopFile); (*stopFile != "" && err == nil) || time.Since(start) > *max {
			running = false
		}
		p := int(phase.Load())
		dead, done, firsts := 0, 0, 0
		var names []string
		for _, h := range conns {
			h.mu.Lock()
			switch {
			case h.c.Err != "":
				dead++
			case h.c.Answers[p] >= *need:
				done++
			}
			if h.first {
				firsts++
			}
			names = append(names, h.c.Server)
			h.mu.Unlock()
		}
		if !readyDone && firsts == len(conns) {
			readyDone = true
			writeAtomic(*readyFile, strings.Join(names, "\n")+"\n")
		}
		if *progressFile != "" {
			writeAtomic(*progressFile, fmt.Sprintf("phase %d n %d dead %d done %d\n", p, len(conns), dead, done))
		}
	}
	close(stop)
	// Requests in flight would wait for their answer or timeout: close
	// the connections now (not counted as failures).
	for _, h := range conns {
		h.mu.Lock()
		h.stopping.Store(true)
		if h.conn != nil {
			h.conn.Close()
		}
		h.mu.Unlock()
	}
	wg.Wait()
	rep := lab.HoldReport{Phases: int(phase.Load()) + 1}
	for _, h := range conns {
		h.mu.Lock()
		c := h.c
		c.BytesOut, c.BytesIn = h.out.Load(), h.in.Load()
		c.Answers = c.Answers[:rep.Phases]
		h.mu.Unlock()
		rep.Conns = append(rep.Conns, c)
	}
	return json.NewEncoder(os.Stdout).Encode(rep)
}

func writeAtomic(path, text string) {
	tmp := path + ".tmp"
	if os.WriteFile(tmp, []byte(text), 0o644) == nil {
		os.Rename(tmp, path)
	}
}

// holdRedials bounds the redials of one connection in phase 0.
const holdRedials = 3

// holdOne runs one connection until stop or its first error. An error in
// phase 0 (before any mark: the set-up of the connections, not what a
// scenario measures) is followed by a new connection, at most holdRedials
// times; the redials are counted.
func holdOne(h *held, dialer *net.Dialer, addr string, timeout, interval, delay time.Duration, phase *atomic.Int32, start time.Time, stop <-chan struct{}) {
	select {
	case <-time.After(delay):
	case <-stop:
		return
	}
	for {
		p, err := holdConn(h, dialer, addr, timeout, interval, phase, stop)
		if err == nil {
			return
		}
		h.mu.Lock()
		redial := p == 0 && h.c.Redials < holdRedials && !h.stopping.Load()
		if redial {
			h.c.Redials++
			h.c.LastRedialErr = err.Error()
			h.first, h.c.Server, h.c.Switched = false, "", 0
		}
		h.mu.Unlock()
		if !redial {
			h.fail(p, start, err)
			return
		}
		select {
		case <-time.After(interval):
		case <-stop:
			return
		}
	}
}

// holdConn is one TCP connection of holdOne: nil at stop, else the error
// and the phase it came in.
func holdConn(h *held, dialer *net.Dialer, addr string, timeout, interval time.Duration, phase *atomic.Int32, stop <-chan struct{}) (int, error) {
	raw, err := dialer.Dial("tcp", addr)
	if err != nil {
		return int(phase.Load()), err
	}
	h.mu.Lock()
	h.conn = raw
	h.c.Local = raw.LocalAddr().String()
	stopping := h.stopping.Load()
	h.mu.Unlock()
	defer raw.Close()
	if stopping {
		return 0, nil
	}
	conn := countConn{Conn: raw, out: &h.out, in: &h.in}
	br := bufio.NewReader(conn)
	req := "GET / HTTP/1.1\r\nHost: " + addr + "\r\nUser-Agent: labhelper-hold\r\n\r\n"
	for i := 0; i < 1000000; i++ {
		select {
		case <-stop:
			return 0, nil
		default:
		}
		raw.SetDeadline(time.Now().Add(timeout))
		name, err := holdRequest(conn, br, req)
		p := int(phase.Load())
		if err != nil {
			if h.stopping.Load() {
				return p, nil
			}
			return p, err
		}
		h.mu.Lock()
		if !h.first {
			h.first, h.c.Server = true, name
		} else if name != h.c.Server {
			h.c.Switched++
		}
		h.c.Answers[p]++
		h.mu.Unlock()
		select {
		case <-time.After(interval):
		case <-stop:
			return 0, nil
		}
	}
	return 0, nil
}

func holdRequest(conn io.Writer, br *bufio.Reader, req string) (string, error) {
	if _, err := io.WriteString(conn, req); err != nil {
		return "", err
	}
	resp, err := http.ReadResponse(br, nil)
	if err == nil && resp.Close {
		resp.Body.Close()
		return "", errors.New("the server closed the connection")
	}
	return answer(resp, err)
}
