package healthcheck

// timeHeap holds items by time: a binary min-heap on (at, seq), at being a
// time in nanoseconds from an origin of the caller's and seq the tie-break
// (0 when ties do not matter). Each item's index in the heap is kept in the
// int it was pushed with (-1 once out of the heap), for remove. It holds the
// checkers by due time and the pending connections by deadline.
//
// It does what container/heap does, in the same order (equal elements come
// out as they would there), but compares and swaps its entries itself: no
// interface or method call per step, no allocation but the slice's growth.
type timeHeap[T any] []timeEntry[T]

type timeEntry[T any] struct {
	at   int64
	seq  uint64
	idx  *int
	item T
}

func (h *timeHeap[T]) push(item T, idx *int, at int64, seq uint64) {
	*idx = len(*h)
	*h = append(*h, timeEntry[T]{at: at, seq: seq, idx: idx, item: item})
	h.up(len(*h) - 1)
}

// pop removes and returns the first item; the heap must not be empty.
func (h *timeHeap[T]) pop() T {
	n := len(*h) - 1
	h.swap(0, n)
	h.down(0, n)
	return h.dropLast()
}

// remove removes and returns the item at index i.
func (h *timeHeap[T]) remove(i int) T {
	n := len(*h) - 1
	if n != i {
		h.swap(i, n)
		if !h.down(i, n) {
			h.up(i)
		}
	}
	return h.dropLast()
}

func (h *timeHeap[T]) dropLast() T {
	old := *h
	n := len(old) - 1
	e := old[n]
	old[n] = timeEntry[T]{} // no reference kept by the array
	*e.idx = -1
	*h = old[:n]
	return e.item
}

func (h timeHeap[T]) less(i, j int) bool {
	if h[i].at != h[j].at {
		return h[i].at < h[j].at
	}
	return h[i].seq < h[j].seq
}

func (h timeHeap[T]) swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	*h[i].idx = i
	*h[j].idx = j
}

func (h timeHeap[T]) up(j int) {
	for {
		i := (j - 1) / 2 // parent
		if i == j || !h.less(j, i) {
			break
		}
		h.swap(i, j)
		j = i
	}
}

// down sifts the entry at i0 down within h[:n]; it reports whether it moved.
func (h timeHeap[T]) down(i0, n int) bool {
	i := i0
	for {
		j1 := 2*i + 1
		if j1 >= n || j1 < 0 { // j1 < 0 after int overflow
			break
		}
		j := j1 // left child
		if j2 := j1 + 1; j2 < n && h.less(j2, j1) {
			j = j2 // right child
		}
		if !h.less(j, i) {
			break
		}
		h.swap(i, j)
		i = j
	}
	return i > i0
}
