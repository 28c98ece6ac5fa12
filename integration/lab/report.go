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
}
