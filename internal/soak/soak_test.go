package soak

import (
	"math"
	"testing"
	"time"
)

func series(n int, step time.Duration, f func(i int) float64) []Point {
	var pts []Point
	for i := range n {
		pts = append(pts, Point{At: time.Duration(i) * step, V: f(i)})
	}
	return pts
}

func TestFitSlope(t *testing.T) {
	// 3 MiB per hour, sampled every 5 s for an hour.
	pts := series(721, 5*time.Second, func(i int) float64 { return 50e6 + 3e6*float64(i)/720 })
	s, c := Fit(pts)
	if math.Abs(s-3e6) > 1 || math.Abs(c-50e6) > 1 {
		t.Fatalf("slope %v intercept %v, want 3e6 and 50e6", s, c)
	}
}

var memRule = Rule{MaxGrowth: 0.05, GrowthFloor: 2 << 20, MaxSpread: 0.5, SpreadFloor: 8 << 20}

func TestJudgeFlatNoisy(t *testing.T) {
	// A saw-tooth (a GC cycle every 12 samples) around 50 MB: flat.
	pts := series(721, 5*time.Second, func(i int) float64 { return 50e6 + float64(i%12)*1e6 })
	v := Judge(pts, 10*time.Minute, memRule)
	if !v.Flat || v.N != 601 || v.Window != 50*time.Minute {
		t.Fatalf("%+v", v)
	}
}

func TestJudgeLeak(t *testing.T) {
	// 2 KB per 5 s sample after a noisy start: 12 MB over the window, a leak.
	pts := series(721, 5*time.Second, func(i int) float64 { return 50e6 + float64(i)*2e4 + float64(i%12)*1e5 })
	v := Judge(pts, 10*time.Minute, memRule)
	if v.Flat || !v.Grows || math.Abs(v.Growth-12e6) > 0.2e6 {
		t.Fatalf("%+v", v)
	}
}

func TestJudgeShrinkIsNoLeak(t *testing.T) {
	pts := series(100, 5*time.Second, func(i int) float64 { return 60e6 - float64(i)*1e4 })
	if v := Judge(pts, 0, memRule); !v.Flat {
		t.Fatalf("%+v", v)
	}
}

func TestJudgeSpread(t *testing.T) {
	// Goroutines: one spike of 40 over a steady 30 is out of bounds.
	pts := series(100, 5*time.Second, func(i int) float64 {
		if i == 50 {
			return 70
		}
		return 30
	})
	v := Judge(pts, 0, Rule{MaxGrowth: 0.02, GrowthFloor: 2, MaxSpread: 0.1, SpreadFloor: 10})
	if v.Flat || !v.Spreads || v.Grows || v.Spread != 40 {
		t.Fatalf("%+v", v)
	}
}

func TestJudgeTooFew(t *testing.T) {
	if v := Judge(series(10, time.Minute, func(int) float64 { return 1 }), 9*time.Minute, memRule); v.Flat {
		t.Fatalf("%+v", v)
	}
}

func TestAt(t *testing.T) {
	pts := series(13, 5*time.Second, func(i int) float64 { return float64(i) })
	if v, ok := At(pts, 31*time.Second); !ok || v != 6 {
		t.Fatalf("%v %v", v, ok)
	}
}
