package orchestrator

// wakeQueue is a min-heap of wakes ordered by (time, sequence): restart
// delays, an update's next batch and final monitor. The orchestrator arms
// one env timer, for the earliest; a wake per READY task costs a heap
// entry, not a timer.
type wakeQueue struct {
	h   []wake
	seq uint64
}

func (q *wakeQueue) push(w wake) {
	q.seq++
	w.seq = q.seq
	q.h = append(q.h, w)
	i := len(q.h) - 1
	for i > 0 {
		parent := (i - 1) / 2
		if !q.h[i].before(q.h[parent]) {
			break
		}
		q.h[i], q.h[parent] = q.h[parent], q.h[i]
		i = parent
	}
}

func (q *wakeQueue) pop() wake {
	top := q.h[0]
	last := len(q.h) - 1
	q.h[0] = q.h[last]
	q.h[last] = wake{}
	q.h = q.h[:last]
	for i := 0; ; {
		l, r, m := 2*i+1, 2*i+2, i
		if l < len(q.h) && q.h[l].before(q.h[m]) {
			m = l
		}
		if r < len(q.h) && q.h[r].before(q.h[m]) {
			m = r
		}
		if m == i {
			break
		}
		q.h[i], q.h[m] = q.h[m], q.h[i]
		i = m
	}
	return top
}

func (w wake) before(b wake) bool { return w.at < b.at || w.at == b.at && w.seq < b.seq }
