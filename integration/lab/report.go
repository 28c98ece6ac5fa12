package lab

// ClientReport is what `labhelper get` and `labhelper loop` print as JSON.
type ClientReport struct {
	Requests int            `json:"requests"`
	Failed   int            `json:"failed"`
	Answers  map[string]int `json:"answers"` // answer body (server name) -> count
	Errors   []string       `json:"errors,omitempty"`
	// Loop only: the longest time between two successful answers (or
	// between the start and the first one), and the run time.
	LongestGapMS int64 `json:"longest_gap_ms,omitempty"`
	DurationMS   int64 `json:"duration_ms,omitempty"`
	FirstFailMS  int64 `json:"first_fail_ms,omitempty"` // loop: first failure since start, -1 none
	// Loop only: answered requests whose TCP handshake took 900 ms or
	// more (a SYN retransmitted: the connection needed a retry), and the
	// longest handshake.
	Retried      int   `json:"retried,omitempty"`
	MaxConnectMS int64 `json:"max_connect_ms,omitempty"`
	// Loop only: when the first 20 failures happened, in ms since the
	// start.
	FailAtMS []int64 `json:"fail_at_ms,omitempty"`
}

// HoldReport is what `labhelper hold` prints as JSON: long-lived TCP
// connections through a VIP, each doing HTTP/1.1 keep-alive requests, their
// answers counted by phase (the phase advances on SIGUSR1).
type HoldReport struct {
	Phases int        `json:"phases"` // phases reached (1 + SIGUSR1s)
	Conns  []HeldConn `json:"conns"`
}

// HeldConn is one held connection (redialed after an error in phase 0).
type HeldConn struct {
	Server   string `json:"server"`             // the server that gave the first answer
	Local    string `json:"local,omitempty"`    // the connection's source address:port
	Answers  []int  `json:"answers"`            // answers by phase
	Switched int    `json:"switched,omitempty"` // answers from another server than the first
	// Redials: new connections after an error in phase 0 (the set-up),
	// and the last such error.
	Redials       int    `json:"redials,omitempty"`
	LastRedialErr string `json:"last_redial_err,omitempty"`
	BytesOut      int64  `json:"bytes_out"`
	BytesIn       int64  `json:"bytes_in"`
	// The error that ended the connection ("" while it worked to the
	// end): its kind (reset, timeout, eof, other), its phase and text.
	ErrKind  string `json:"err_kind,omitempty"`
	ErrPhase int    `json:"err_phase,omitempty"`
	ErrAtMS  int64  `json:"err_at_ms,omitempty"` // since the start
	Err      string `json:"err,omitempty"`
}

// Kept counts the connections that worked to the end and had at least min
// answers in phase (a connection still exchanging then).
func (r HoldReport) Kept(phase, min int) int {
	n := 0
	for _, c := range r.Conns {
		if c.Err == "" && phase < len(c.Answers) && c.Answers[phase] >= min {
			n++
		}
	}
	return n
}

// Errors counts the connections ended by an error, by kind.
func (r HoldReport) Errors() map[string]int {
	m := map[string]int{}
	for _, c := range r.Conns {
		if c.Err != "" {
			m[c.ErrKind]++
		}
	}
	return m
}

// Bytes is the total of bytes sent and received on every connection.
func (r HoldReport) Bytes() (out, in int64) {
	for _, c := range r.Conns {
		out += c.BytesOut
		in += c.BytesIn
	}
	return out, in
}
