// Package filemode makes directories with the mode asked for whatever the
// process umask (lvsd runs with keepalived's 0177, under which a directory
// made 0755 would be 0600 and unusable).
package filemode

import (
	"os"
	"path/filepath"
)

// MkdirAll is os.MkdirAll, the directories it makes set to perm exactly.
func MkdirAll(dir string, perm os.FileMode) error {
	var made []string
	for d := filepath.Clean(dir); ; d = filepath.Dir(d) {
		if _, err := os.Lstat(d); err == nil {
			break
		}
		made = append(made, d)
		if p := filepath.Dir(d); p == d {
			break
		}
	}
	if err := os.MkdirAll(dir, perm); err != nil {
		return err
	}
	for _, d := range made {
		if err := os.Chmod(d, perm); err != nil {
			return err
		}
	}
	return nil
}
