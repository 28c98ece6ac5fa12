package healthcheck

import (
	"container/heap"
	"math/rand/v2"
	"testing"
)

type refItem struct {
	at  int64
	seq uint64
	idx int // in ref
	my  int // in timeHeap
}

// refHeap is container/heap's view of the same ordering.
type refHeap []*refItem

func (h refHeap) Len() int { return len(h) }
func (h refHeap) Less(i, j int) bool {
	if h[i].at != h[j].at {
		return h[i].at < h[j].at
	}
	return h[i].seq < h[j].seq
}
func (h refHeap) Swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].idx, h[j].idx = i, j
}
func (h *refHeap) Push(x any) { x.(*refItem).idx = len(*h); *h = append(*h, x.(*refItem)) }
func (h *refHeap) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	x.idx = -1
	return x
}

// timeHeap hands out its items in container/heap's order, ties included
// (few distinct keys, seq 0 or not), through pushes, pops and removals.
func TestTimeHeapOrderIsContainerHeaps(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for _, withSeq := range []bool{false, true} {
		var ref refHeap
		var th timeHeap[*refItem]
		var live []*refItem
		var seq uint64
		for step := 0; step < 20000; step++ {
			switch op := r.IntN(10); {
			case op < 5 || len(live) == 0:
				it := &refItem{at: r.Int64N(8)}
				if withSeq {
					seq++
					it.seq = seq
				}
				heap.Push(&ref, it)
				th.push(it, &it.my, it.at, it.seq)
				live = append(live, it)
			case op < 8:
				a, b := heap.Pop(&ref).(*refItem), th.pop()
				if a != b {
					t.Fatalf("step %d: pop got %+v, container/heap %+v", step, b, a)
				}
				live = remove(live, a)
			default:
				it := live[r.IntN(len(live))]
				if ref[it.idx] != it || th[it.my].item != it {
					t.Fatalf("step %d: index lost", step)
				}
				heap.Remove(&ref, it.idx)
				if got := th.remove(it.my); got != it || it.my != -1 {
					t.Fatalf("step %d: remove got %+v, want %+v", step, got, it)
				}
				live = remove(live, it)
			}
			for i := range th {
				if th[i].item != ref[i] {
					t.Fatalf("step %d: heaps differ at %d", step, i)
				}
			}
		}
	}
}

func remove(s []*refItem, x *refItem) []*refItem {
	for i, y := range s {
		if y == x {
			return append(s[:i], s[i+1:]...)
		}
	}
	panic("not live")
}
