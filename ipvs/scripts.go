package ipvs

import (
	"fmt"
	"log/slog"
	"os/exec"
	"os/user"
	"strconv"
	"syscall"

	"github.com/lvsd/lvsd/conf"
)

// execScript starts a quorum_up/quorum_down command without a shell and
// without waiting for it: a goroutine reaps it and logs a failure. The
// command runs as its configured user (else global_defs script_user).
func execScript(log *slog.Logger, g *conf.Global, s *conf.Script) {
	if s == nil || len(s.Args) == 0 {
		return
	}
	cmd := exec.Command(s.Args[0], s.Args[1:]...)
	usr, grp := s.User, s.Group
	if usr == "" && g != nil {
		usr, grp = g.ScriptUser, g.ScriptGroup
	}
	if usr != "" {
		cred, err := credential(usr, grp)
		if err != nil {
			log.Warn("ipvs: script not run", "script", s.Args[0], "pos", s.Pos.String(), "err", err)
			return
		}
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
	}
	if err := cmd.Start(); err != nil {
		log.Warn("ipvs: script failed to start", "script", s.Args[0], "pos", s.Pos.String(), "err", err)
		return
	}
	go func() {
		if err := cmd.Wait(); err != nil {
			log.Info("ipvs: script exited", "script", s.Args[0], "pos", s.Pos.String(), "err", err)
		}
	}()
}

func credential(name, group string) (*syscall.Credential, error) {
	u, err := user.Lookup(name)
	if err != nil {
		return nil, err
	}
	uid, err := strconv.ParseUint(u.Uid, 10, 32)
	if err != nil {
		return nil, fmt.Errorf("user %s: uid %q", name, u.Uid)
	}
	gidStr := u.Gid
	if group != "" {
		g, err := user.LookupGroup(group)
		if err != nil {
			return nil, err
		}
		gidStr = g.Gid
	}
	gid, err := strconv.ParseUint(gidStr, 10, 32)
	if err != nil {
		return nil, fmt.Errorf("group %s: gid %q", group, gidStr)
	}
	return &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}, nil
}
