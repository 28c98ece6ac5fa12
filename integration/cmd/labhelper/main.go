// Command labhelper is the lvsd lab's helper inside the VM: a tiny HTTP
// server answering with its own name, an HTTP client that counts answers by
// name, a request loop that measures the longest client-visible outage, and
// a wait-for-TCP-port helper. It is built static (CGO_ENABLED=0).
//
//	labhelper serve -name rs1 -listen :80
//	labhelper get   -url http://192.0.2.100/ -n 20 -timeout 1s
//	labhelper loop  -url http://192.0.2.100/ -timeout 200ms -interval 20ms -max 60s -stop FILE
//	labhelper wait  -addr 127.0.0.1:80 -timeout 5s
//	labhelper echo  -name rs1 -listen :9000
//	labhelper hold  -addr 203.0.113.10:9000 -n 200 -interval 200ms -stop FILE -ready FILE
package main

import (
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
	"syscall"
	"time"

	"github.com/lvsd/lvsd/integration/lab"
)

func main() {
	if len(os.Args) < 2 {
		usage()
	}
	var err error
	switch os.Args[1] {
	case "serve":
		err = serve(os.Args[2:])
	case "get":
		err = get(os.Args[2:])
	case "loop":
		err = loop(os.Args[2:])
	case "wait":
		err = wait(os.Args[2:])
	case "echo":
		err = echo(os.Args[2:])
	case "hold":
		err = hold(os.Args[2:])
	default:
		usage()
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "labhelper:", err)
		os.Exit(1)
	}
}

func usage() {
	fmt.Fprintln(os.Stderr, "usage: labhelper serve|get|loop|wait|echo|hold [flags]")
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
	resp, err := c.Get(url)
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
		name, err := once(c, *url)
		now := time.Now()
		if err != nil {
			if rep.FirstFailMS < 0 {
				rep.FirstFailMS = now.Sub(start).Milliseconds()
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
