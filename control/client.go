package control

import (
	"bufio"
	"encoding/json"
	"fmt"
	"net"
	"time"
)

// Call sends req on the socket at path and returns the answer. timeout
// bounds the whole exchange (a reload waits for the daemon).
func Call(path string, req Request, timeout time.Duration) (Response, error) {
	req.Version = Version
	c, err := net.DialTimeout("unix", path, timeout)
	if err != nil {
		return Response{}, err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(timeout))
	b, err := json.Marshal(req)
	if err != nil {
		return Response{}, err
	}
	// A refused peer gets its answer before the daemon reads anything:
	// the write may fail (broken pipe) with the answer already waiting.
	_, werr := c.Write(append(b, '\n'))
	r := bufio.NewReaderSize(c, 64<<10)
	line, err := r.ReadBytes('\n')
	if err != nil && len(line) == 0 {
		if werr != nil {
			return Response{}, werr
		}
		return Response{}, fmt.Errorf("no answer from %s: %w", path, err)
	}
	var resp Response
	if err := json.Unmarshal(line, &resp); err != nil {
		return Response{}, fmt.Errorf("bad answer from %s: %w", path, err)
	}
	if resp.Version != Version {
		return resp, fmt.Errorf("%s speaks protocol version %d, this client %d", path, resp.Version, Version)
	}
	return resp, nil
}
