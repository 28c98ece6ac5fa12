package healthcheck

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
)

// scriptDir holds the test scripts, all written before any test runs: writing
// an executable while another goroutine forks can make exec fail with
// ETXTBSY.
var scriptDir string

var scripts = map[string]string{
	"exit0": "exit 0",
	"exit1": "exit 1",
	"exit7": "exit 7",
	// A shell would expand $HOME and split "a b"; exec passes them as they are.
	"args": `[ "$#" = 2 ] && [ "$1" = 'a b' ] && [ "$2" = '$HOME' ]`,
	// hang PIDFILE: a child that outlives the script unless the group is killed.
	"hang": "sleep 30 &\necho $! > \"$1\"\nwait",
	// hangself PIDFILE
	"hangself": "echo $$ > \"$1\"\nexec sleep 30",
	"whoami":   `[ "$(id -u)" = 65534 ] && [ "$(id -g)" = 65534 ]`,
	// notifydown ARG LOG: takes a second.
	"notifydown": "echo down \"$1\" >> \"$2\"\nsleep 1\necho down-done >> \"$2\"",
	// notifyup LOG
	"notifyup": "echo up >> \"$1\"",
}

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "lvsd-healthcheck-test")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	os.Chmod(dir, 0o755) // for the script run as nobody
	for name, body := range scripts {
		if err := os.WriteFile(filepath.Join(dir, name), []byte("#!/bin/sh\n"+body+"\n"), 0o755); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
	}
	scriptDir = dir
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// script names a test script.
func scriptPath(name string) string {
	if _, ok := scripts[name]; !ok {
		panic("no test script " + name)
	}
	return filepath.Join(scriptDir, name)
}
