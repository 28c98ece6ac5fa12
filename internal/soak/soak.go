// Package soak judges a long run of the daemon (scripts/bench-soak.sh):
// series of samples (RSS, Go heap, goroutines) and whether they stay flat
// after a settling time, by a rule stated in numbers.
package soak

import (
	"math"
	"time"
)

// Point is one sample of a series: when (since the start) and the value.
type Point struct {
	At time.Duration
	V  float64
}

// Rule says when a series is flat over a window (the samples from the
// settling time to the end): the least-squares line through them may grow
// by at most MaxGrowth across the window, and the samples may spread (max −
// min) by at most MaxSpread; each is a fraction of the window's mean, or
// the absolute floor when that is larger (small series, such as goroutine
// counts, move by whole units). Shrinking is no leak: only growth counts.
type Rule struct {
	MaxGrowth, GrowthFloor float64
	MaxSpread, SpreadFloor float64
}

// Verdict is a series judged by a Rule over its window.
type Verdict struct {
	N                int
	Window           time.Duration
	Mean, Min, Max   float64
	SlopePerHour     float64 // of the least-squares line
	Growth           float64 // SlopePerHour across the window
	GrowthLimit      float64 // the rule's bound for Growth
	Spread           float64 // Max − Min
	SpreadLimit      float64
	Flat             bool
	Grows, Spreads   bool // the rule's two bounds broken
	First, LastValue float64
}

// Fit returns the least-squares slope (per hour) and intercept of pts.
func Fit(pts []Point) (slopePerHour, intercept float64) {
	n := float64(len(pts))
	if n < 2 {
		return 0, 0
	}
	var sx, sy float64
	for _, p := range pts {
		sx += p.At.Hours()
		sy += p.V
	}
	mx, my := sx/n, sy/n
	var sxx, sxy float64
	for _, p := range pts {
		dx := p.At.Hours() - mx
		sxx += dx * dx
		sxy += dx * (p.V - my)
	}
	if sxx == 0 {
		return 0, my
	}
	b := sxy / sxx
	return b, my - b*mx
}

// Judge applies r to the points of pts at or after from.
func Judge(pts []Point, from time.Duration, r Rule) Verdict {
	var w []Point
	for _, p := range pts {
		if p.At >= from {
			w = append(w, p)
		}
	}
	v := Verdict{N: len(w)}
	if len(w) < 3 { // too few to judge: not flat
		return v
	}
	v.Window = w[len(w)-1].At - w[0].At
	v.Min, v.Max = math.Inf(1), math.Inf(-1)
	var sum float64
	for _, p := range w {
		sum += p.V
		v.Min, v.Max = min(v.Min, p.V), max(v.Max, p.V)
	}
	v.Mean = sum / float64(len(w))
	v.First, v.LastValue = w[0].V, w[len(w)-1].V
	v.SlopePerHour, _ = Fit(w)
	v.Growth = v.SlopePerHour * v.Window.Hours()
	v.Spread = v.Max - v.Min
	v.GrowthLimit = max(r.MaxGrowth*v.Mean, r.GrowthFloor)
	v.SpreadLimit = max(r.MaxSpread*v.Mean, r.SpreadFloor)
	v.Grows, v.Spreads = v.Growth > v.GrowthLimit, v.Spread > v.SpreadLimit
	v.Flat = !v.Grows && !v.Spreads
	return v
}

// At returns the value of the sample nearest to t (false when pts is
// empty).
func At(pts []Point, t time.Duration) (float64, bool) {
	best, ok, d := 0.0, false, time.Duration(math.MaxInt64)
	for _, p := range pts {
		if dd := (p.At - t).Abs(); dd < d {
			best, ok, d = p.V, true, dd
		}
	}
	return best, ok
}
