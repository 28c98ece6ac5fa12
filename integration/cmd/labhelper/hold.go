package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"net"
	"os"
	"sync"
	"time"

	"github.com/lvsd/lvsd/integration/lab"
)

// echo serves line echo on -listen: each line comes back prefixed with the
// server's name ("rs1 LINE").
func echo(args []string) error {
	fs := flag.NewFlagSet("echo", flag.ExitOnError)
	name := fs.String("name", "", "name to prefix the lines with")
	listen := fs.String("listen", ":9000", "listen address")
	fs.Parse(args)
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		return err
	}
	for {
		c, err := ln.Accept()
		if err != nil {
			return err
		}
		go func() {
			defer c.Close()
			sc := bufio.NewScanner(c)
			for sc.Scan() {
				if _, err := fmt.Fprintf(c, "%s %s\n", *name, sc.Text()); err != nil {
					return
				}
			}
		}()
	}
}

// echoHold opens -n connections to -addr and, on each, sends a line every
// -interval and waits for its echo (within -timeout), until -stop exists
// or -max passes. A connection that errs (reset, timeout, EOF) is failed.
func echoHold(args []string) error {
	fs := flag.NewFlagSet("echohold", flag.ExitOnError)
	addr := fs.String("addr", "", "ADDR:PORT")
	n := fs.Int("n", 200, "connections (at most 2000)")
	interval := fs.Duration("interval", 200*time.Millisecond, "between two lines on a connection")
	timeout := fs.Duration("timeout", 3*time.Second, "for an echo")
	max := fs.Duration("max", 2*time.Minute, "longest run")
	stop := fs.String("stop", "", "stop when this file exists")
	ready := fs.String("ready", "", "file created once every connection exchanged once")
	fs.Parse(args)
	if *n < 1 || *n > 2000 {
		return errors.New("echohold: -n out of range")
	}
	rep := lab.EchoHoldReport{Conns: *n, Servers: map[string]int{}}
	var mu sync.Mutex
	var wg, first sync.WaitGroup
	end := time.Now().Add(*max)
	done := func() bool {
		if time.Now().After(end) {
			return true
		}
		_, err := os.Stat(*stop)
		return *stop != "" && err == nil
	}
	fail := func(err error) {
		mu.Lock()
		rep.Failed++
		if len(rep.Errors) < 10 {
			rep.Errors = append(rep.Errors, err.Error())
		}
		mu.Unlock()
	}
	first.Add(*n)
	for i := 0; i < *n; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			firstDone := false
			markFirst := func() {
				if !firstDone {
					firstDone = true
					first.Done()
				}
			}
			defer markFirst()
			c, err := net.DialTimeout("tcp", *addr, *timeout)
			if err != nil {
				fail(err)
				return
			}
			defer c.Close()
			rd := bufio.NewReader(c)
			var server string
			moved := false
			for seq := 0; ; seq++ {
				c.SetDeadline(time.Now().Add(*timeout))
				if _, err := fmt.Fprintf(c, "%d %d\n", i, seq); err != nil {
					fail(err)
					return
				}
				line, err := rd.ReadString('\n')
				if err != nil {
					fail(err)
					return
				}
				var name string
				fmt.Sscan(line, &name)
				mu.Lock()
				rep.Exchanges++
				if server == "" {
					server = name
					rep.Servers[name]++
				} else if name != server && !moved {
					moved = true
					rep.Moved++
				}
				mu.Unlock()
				markFirst()
				if done() {
					mu.Lock()
					rep.Survived++
					mu.Unlock()
					return
				}
				time.Sleep(*interval)
			}
		}(i)
	}
	if *ready != "" {
		go func() {
			first.Wait()
			os.WriteFile(*ready, nil, 0o644)
		}()
	}
	wg.Wait()
	return json.NewEncoder(os.Stdout).Encode(rep)
}
