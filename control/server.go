package control

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/lvsd/lvsd/internal/filemode"
	"golang.org/x/sys/unix"
)

// Commands are the daemon's means behind the commands; a nil one answers
// that this process does not do it (e.g. ipvs with -P).
type Commands struct {
	// Status returns the daemon's status (JSON-encodable).
	Status func() any
	// IPVS prints the kernel table as ipvsadm does with args.
	IPVS func(args []string) (string, error)
	// Drain drains (on) or enables a real server of a virtual server.
	Drain func(vs, rs string, on bool) error
	// DrainDirector is drain and enable without a virtual and a real
	// server: the whole director (its BGP announcements).
	DrainDirector func(on bool) error
	// Failover makes a VRRP instance give up (on) for d (0: until
	// cleared), or clears it.
	Failover func(instance string, on bool, d time.Duration) error
	// Reload reloads the configuration and waits for the outcome.
	Reload func() ReloadResult
}

// Options configure a Server.
type Options struct {
	// Group may use the socket besides root (a group id; -1: root only).
	Group int
	// Logger receives refusals and failures.
	Logger *slog.Logger
	// IOTimeout bounds reading a request and writing its answer
	// (default 10 s); the command itself may take longer (a reload).
	IOTimeout time.Duration
}

// Server answers the requests of one listening socket.
type Server struct {
	cmds Commands
	opts Options
	log  *slog.Logger

	// Refused counts connections refused for their credentials;
	// Requests the requests answered, Errors those answered with an error.
	Refused, Requests, Errors atomic.Uint64

	wg sync.WaitGroup
}

// NewServer returns a server for cmds.
func NewServer(cmds Commands, opts Options) *Server {
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.IOTimeout <= 0 {
		opts.IOTimeout = 10 * time.Second
	}
	return &Server{cmds: cmds, opts: opts, log: opts.Logger}
}

// Listen creates the socket at path (its directory too, 0755, when
// missing), replacing a stale one, and sets it to mode 0660 with group gid
// (-1: the daemon's own group; root only may then use it, see Authorized).
func Listen(path string, gid int) (*net.UnixListener, error) {
	if err := filemode.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, err
	}
	if fi, err := os.Lstat(path); err == nil {
		if fi.Mode()&os.ModeSocket == 0 {
			return nil, fmt.Errorf("%s exists and is not a socket", path)
		}
		// A live daemon answers: do not steal its socket.
		if c, err := net.DialTimeout("unix", path, time.Second); err == nil {
			c.Close()
			return nil, fmt.Errorf("%s: another process answers on it", path)
		}
		os.Remove(path)
	}
	old := unix.Umask(0o177) // no window with a wider mode
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	unix.Umask(old)
	if err != nil {
		return nil, err
	}
	// The socket has the daemon's group unless another is asked for (then
	// the daemon needs CAP_CHOWN, unless it is a member of that group).
	if gid >= 0 && gid != os.Getegid() {
		if err := os.Chown(path, -1, gid); err != nil {
			ln.Close()
			return nil, fmt.Errorf("%s: group %d: %w", path, gid, err)
		}
	}
	if err := os.Chmod(path, 0o660); err != nil {
		ln.Close()
		return nil, err
	}
	return ln, nil
}

// LookupGroup resolves a group name or number for Options.Group ("" is
// -1: root only).
func LookupGroup(name string) (int, error) {
	if name == "" {
		return -1, nil
	}
	if n, err := strconv.Atoi(name); err == nil && n >= 0 {
		return n, nil
	}
	b, err := os.ReadFile("/etc/group")
	if err != nil {
		return -1, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Split(line, ":")
		if len(f) >= 3 && f[0] == name {
			if n, err := strconv.Atoi(f[2]); err == nil {
				return n, nil
			}
		}
	}
	return -1, fmt.Errorf("no group %q in /etc/group", name)
}

// Serve answers connections on ln until ctx is done; it closes ln and
// waits for the connections in progress.
func (s *Server) Serve(ctx context.Context, ln *net.UnixListener) {
	go func() {
		<-ctx.Done()
		ln.Close()
	}()
	for {
		c, err := ln.AcceptUnix()
		if err != nil {
			if ctx.Err() == nil && !errors.Is(err, net.ErrClosed) {
				s.log.Error("control socket: accept", "err", err)
				time.Sleep(100 * time.Millisecond) // e.g. EMFILE: do not spin
				continue
			}
			break
		}
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			s.serveConn(c)
		}()
	}
	s.wg.Wait()
}

// Peer is the credentials of a connected client.
type Peer struct {
	PID, UID, GID int
	Groups        []int // supplementary groups (from /proc/PID/status)
}

// PeerOf reads the peer credentials of a unix connection.
func PeerOf(c *net.UnixConn) (Peer, error) {
	raw, err := c.SyscallConn()
	if err != nil {
		return Peer{}, err
	}
	var cred *unix.Ucred
	var cerr error
	if err := raw.Control(func(fd uintptr) {
		cred, cerr = unix.GetsockoptUcred(int(fd), unix.SOL_SOCKET, unix.SO_PEERCRED)
	}); err != nil {
		return Peer{}, err
	}
	if cerr != nil {
		return Peer{}, cerr
	}
	p := Peer{PID: int(cred.Pid), UID: int(cred.Uid), GID: int(cred.Gid)}
	p.Groups = procGroups(p.PID)
	return p, nil
}

// procGroups reads the supplementary groups of a process.
func procGroups(pid int) []int {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return nil
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "Groups:"); ok {
			var out []int
			for _, f := range strings.Fields(rest) {
				if n, err := strconv.Atoi(f); err == nil {
					out = append(out, n)
				}
			}
			return out
		}
	}
	return nil
}

// Authorized reports whether a peer may use the socket: root, or a member
// (primary or supplementary) of group (>= 0).
func Authorized(p Peer, group int) bool {
	if p.UID == 0 {
		return true
	}
	if group < 0 {
		return false
	}
	if p.GID == group {
		return true
	}
	for _, g := range p.Groups {
		if g == group {
			return true
		}
	}
	return false
}

func (s *Server) serveConn(c *net.UnixConn) {
	defer c.Close()
	p, err := PeerOf(c)
	if err != nil || !Authorized(p, s.opts.Group) {
		s.Refused.Add(1)
		s.log.Warn("control socket: request refused", "pid", p.PID, "uid", p.UID, "gid", p.GID, "err", err)
		s.answer(c, Response{Error: fmt.Sprintf("permission denied: uid %d is neither root nor in the control group", p.UID)})
		return
	}
	c.SetReadDeadline(time.Now().Add(s.opts.IOTimeout))
	r := bufio.NewReader(&limitedReader{r: c, n: MaxLine})
	line, err := r.ReadBytes('\n')
	if err != nil && len(line) == 0 {
		s.Errors.Add(1)
		s.answer(c, Response{Error: "no request: " + err.Error()})
		return
	}
	var req Request
	if err := json.Unmarshal(line, &req); err != nil {
		s.Errors.Add(1)
		s.answer(c, Response{Error: "bad request: " + err.Error()})
		return
	}
	resp := s.handle(req)
	s.Requests.Add(1)
	if !resp.OK {
		s.Errors.Add(1)
	}
	s.log.Info("control socket: request", "command", req.Command, "uid", p.UID, "pid", p.PID, "ok", resp.OK, "err", resp.Error)
	s.answer(c, resp)
}

func (s *Server) answer(c *net.UnixConn, resp Response) {
	resp.Version = Version
	b, err := json.Marshal(resp)
	if err != nil {
		b, _ = json.Marshal(Response{Version: Version, Error: "cannot encode the answer: " + err.Error()})
	}
	c.SetWriteDeadline(time.Now().Add(s.opts.IOTimeout))
	c.Write(append(b, '\n'))
}

// errNotHere answers a command this process does not run.
func errNotHere(what string) Response {
	return Response{Error: what + " does not run in this process"}
}

func (s *Server) handle(req Request) (resp Response) {
	defer func() {
		// A failing command must not take the daemon down.
		if r := recover(); r != nil {
			s.log.Error("control socket: command panicked", "command", req.Command, "panic", r)
			resp = Response{Error: fmt.Sprintf("internal error: %v", r)}
		}
	}()
	if req.Version != Version {
		return Response{Error: fmt.Sprintf("protocol version %d, the daemon speaks %d", req.Version, Version)}
	}
	switch req.Command {
	case CmdStatus:
		if s.cmds.Status == nil {
			return errNotHere("status")
		}
		b, err := json.Marshal(s.cmds.Status())
		if err != nil {
			return Response{Error: err.Error()}
		}
		return Response{OK: true, Data: b}
	case CmdIPVS:
		if s.cmds.IPVS == nil {
			return errNotHere("IPVS")
		}
		out, err := s.cmds.IPVS(req.Args)
		if err != nil {
			return Response{Output: out, Error: err.Error()}
		}
		return Response{OK: true, Output: out}
	case CmdDrain, CmdEnable:
		if req.VS == "" && req.RS == "" && s.cmds.DrainDirector != nil {
			if err := s.cmds.DrainDirector(req.Command == CmdDrain); err != nil {
				return Response{Error: err.Error()}
			}
			return Response{OK: true}
		}
		if s.cmds.Drain == nil {
			return errNotHere("IPVS")
		}
		if req.VS == "" || req.RS == "" {
			return Response{Error: req.Command + " needs a virtual server and a real server"}
		}
		if err := s.cmds.Drain(req.VS, req.RS, req.Command == CmdDrain); err != nil {
			return Response{Error: err.Error()}
		}
		return Response{OK: true}
	case CmdFailover:
		if s.cmds.Failover == nil {
			return errNotHere("VRRP")
		}
		if req.Instance == "" {
			return Response{Error: "failover needs an instance"}
		}
		if req.Timeout < 0 {
			return Response{Error: "failover: negative timeout"}
		}
		if err := s.cmds.Failover(req.Instance, !req.Clear, req.Timeout); err != nil {
			return Response{Error: err.Error()}
		}
		return Response{OK: true}
	case CmdReload:
		if s.cmds.Reload == nil {
			return errNotHere("reload")
		}
		res := s.cmds.Reload()
		resp := Response{OK: res.Err == nil, Diagnostics: res.Diagnostics}
		if res.Err != nil {
			resp.Error = res.Err.Error()
		}
		return resp
	}
	return Response{Error: fmt.Sprintf("unknown command %q", req.Command)}
}

// limitedReader fails a request line longer than n.
type limitedReader struct {
	r interface{ Read([]byte) (int, error) }
	n int
}

func (l *limitedReader) Read(p []byte) (int, error) {
	if l.n <= 0 {
		return 0, errors.New("request too long")
	}
	if len(p) > l.n {
		p = p[:l.n]
	}
	n, err := l.r.Read(p)
	l.n -= n
	return n, err
}
