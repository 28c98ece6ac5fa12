package vrrp

import (
	"fmt"

	"github.com/lvsd/lvsd/vrrp/advert"
)

// effectivePriority is the base priority plus the tracking weight, clamped
// to 1..254 as keepalived does; the address owner (255) never changes.
func effectivePriority(base uint8, weight int) uint8 {
	if base == advert.PriorityOwner {
		return advert.PriorityOwner
	}
	p := int(base) + weight
	switch {
	case p < 1:
		return 1
	case p > advert.PriorityOwner-1:
		return advert.PriorityOwner - 1
	}
	return uint8(p)
}

// track is one tracked object of an instance (track_interface,
// track_script, ...), keepalived style:
//
//   - Weight 0: the instance is in FAULT while the object is down.
//   - Weight > 0: Weight is added to the priority while the object is up.
//   - Weight < 0: Weight is added (it lowers the priority) while it is down.
//
// Reverse inverts the object's status before applying these rules (weight 0
// reverse: FAULT while up).
//
// A File track (track_file) carries a number instead: with weight 0 a
// non-zero value is a FAULT (reverse: a zero value); otherwise value ×
// weight (negated with reverse), limited to -254..254, is added to the
// priority, and -254 is a FAULT.
//
// With NegateReverse (track_process, as keepalived's), reverse with a
// weight does not invert the status: it negates the weight (a positive
// weight is subtracted while up, a negative one added while down).
type track struct {
	Name          string
	Weight        int // -254..254 (any value for a File track)
	Reverse       bool
	NegateReverse bool
	// InitUp is the status assumed until the first report.
	InitUp bool
	// File: the status is a value (SetValue), starting at InitValue.
	File      bool
	InitValue int
}

// tracker aggregates the status of an instance's tracked objects into a
// weight and a fault flag. It is not safe for concurrent use: it belongs to
// the goroutine that owns the instance.
type tracker struct {
	tracks []track
	up     []bool
	val    []int // File tracks
	// lastW is each File track's last contribution that was no fault: a
	// weighted file whose value means a fault leaves the priority as it
	// was (keepalived's), it only faults the instance.
	lastW []int
}

// newTracker returns a tracker for the given objects. Names must be unique.
func newTracker(tracks []track) (*tracker, error) {
	t := &tracker{tracks: append([]track(nil), tracks...), up: make([]bool, len(tracks)), val: make([]int, len(tracks)), lastW: make([]int, len(tracks))}
	seen := map[string]bool{}
	for i, tr := range tracks {
		if seen[tr.Name] {
			return nil, fmt.Errorf("vrrp: tracked object %q listed twice", tr.Name)
		}
		if !tr.File && (tr.Weight < -254 || tr.Weight > 254) {
			return nil, fmt.Errorf("vrrp: tracked object %q: weight %d out of -254..254", tr.Name, tr.Weight)
		}
		seen[tr.Name] = true
		t.up[i], t.val[i] = tr.InitUp, tr.InitValue
		if tr.File {
			t.lastW[i], _ = fileStatus(tr, tr.InitValue)
		}
	}
	return t, nil
}

// Set records the status of a tracked object and reports whether the
// aggregate (weight or fault) changed. Unknown names are ignored.
func (t *tracker) Set(name string, up bool) bool {
	w0, f0 := t.Status()
	for i := range t.tracks {
		if t.tracks[i].Name == name {
			t.up[i] = up
		}
	}
	w1, f1 := t.Status()
	return w0 != w1 || f0 != f1
}

// SetValue records the value of a File track and reports whether the
// aggregate changed. Unknown names are ignored.
func (t *tracker) SetValue(name string, v int) bool {
	w0, f0 := t.Status()
	for i := range t.tracks {
		if t.tracks[i].Name == name && t.tracks[i].File {
			t.val[i] = v
			if w, fault := fileStatus(t.tracks[i], v); !fault {
				t.lastW[i] = w
			}
		}
	}
	w1, f1 := t.Status()
	return w0 != w1 || f0 != f1
}

// Value returns the value of a File track, and false when it is not one.
func (t *tracker) Value(name string) (v int, ok bool) {
	for i := range t.tracks {
		if t.tracks[i].Name == name && t.tracks[i].File {
			return t.val[i], true
		}
	}
	return 0, false
}

// fileStatus is a File track's contribution: a weight, or a fault.
func fileStatus(tr track, v int) (weight int, fault bool) {
	if tr.Weight == 0 {
		return 0, (v != 0) != tr.Reverse
	}
	s := int64(v) * int64(tr.Weight)
	if tr.Reverse {
		s = -s
	}
	s = min(max(s, -254), 254)
	if s == -254 {
		return 0, true
	}
	return int(s), false
}

// Status returns the summed weight and whether any weight-0 object is down.
func (t *tracker) Status() (weight int, fault bool) {
	for i, tr := range t.tracks {
		if tr.File {
			w, f := fileStatus(tr, t.val[i])
			if f {
				w = t.lastW[i]
			}
			weight += w
			fault = fault || f
			continue
		}
		if tr.NegateReverse && tr.Weight != 0 {
			if t.up[i] == (tr.Weight > 0) {
				weight += tr.Weight * reverseSign(tr.Reverse)
			}
			continue
		}
		ok := t.up[i] != tr.Reverse
		switch {
		case tr.Weight == 0:
			if !ok {
				fault = true
			}
		case tr.Weight > 0:
			if ok {
				weight += tr.Weight
			}
		default:
			if !ok {
				weight += tr.Weight
			}
		}
	}
	return weight, fault
}

// reverseSign is keepalived's weight multiplier: -1 with reverse.
func reverseSign(reverse bool) int {
	if reverse {
		return -1
	}
	return 1
}

// Event returns the trackingChanged event for the current status.
func (t *tracker) Event() trackingChanged {
	w, f := t.Status()
	return trackingChanged{Weight: w, Fault: f}
}

// Up returns the status of a tracked object, and false when it is not
// tracked.
func (t *tracker) Up(name string) (up, ok bool) {
	for i := range t.tracks {
		if t.tracks[i].Name == name {
			return t.up[i], true
		}
	}
	return false, false
}
