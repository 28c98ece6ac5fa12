// Package control is lvsd's control socket: a unix stream socket on which
// the operator's client (lvsd ctl) sends one request and reads one answer,
// each a line of JSON carrying the protocol version. Only root and the
// members of a configured group may connect (the socket is 0660) and every
// request is checked against the peer's credentials (SO_PEERCRED) before
// anything else is read.
//
// The package knows nothing of the subsystems: the daemon's wiring hands
// the Server a Commands value, small functions that do the work.
package control

import (
	"encoding/json"
	"time"
)

// Version is the protocol version; a request of another version is
// refused with an answer naming both.
const Version = 1

// Commands.
const (
	CmdStatus   = "status"
	CmdIPVS     = "ipvs"
	CmdDrain    = "drain"
	CmdEnable   = "enable"
	CmdFailover = "failover"
	CmdReload   = "reload"
)

// Request is one command.
type Request struct {
	Version int    `json:"version"`
	Command string `json:"command"`
	// Args: ipvsadm's options (ipvs).
	Args []string `json:"args,omitempty"`
	// VS and RS name a real server (drain, enable).
	VS string `json:"vs,omitempty"`
	RS string `json:"rs,omitempty"`
	// Instance, Clear and Timeout: failover.
	Instance string        `json:"instance,omitempty"`
	Clear    bool          `json:"clear,omitempty"`
	Timeout  time.Duration `json:"timeout,omitempty"`
}

// Response is the answer to a Request.
type Response struct {
	Version int    `json:"version"`
	OK      bool   `json:"ok"`
	Error   string `json:"error,omitempty"`
	// Output is text for the terminal (ipvs).
	Output string `json:"output,omitempty"`
	// Data is the command's result as JSON (status).
	Data json.RawMessage `json:"data,omitempty"`
	// Diagnostics are the configuration's messages, file:line first
	// (reload).
	Diagnostics []string `json:"diagnostics,omitempty"`
}

// ReloadResult is what a reload did.
type ReloadResult struct {
	// Err is why the new configuration was rejected (nil: applied).
	Err error
	// Diagnostics: every message of the new configuration, file:line first.
	Diagnostics []string
}

// MaxLine bounds a request line: a request is small.
const MaxLine = 64 << 10
