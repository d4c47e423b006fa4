// Package backoff is the one rule pgimaged's retry and polling loops wait by: a first wait,
// doubled after each try, never more than a maximum.
package backoff

import "time"

// Backoff yields the waits of one loop: First, then twice the last, at most Max. The zero
// value waits nothing; make one with [New].
type Backoff struct {
	first, max, next time.Duration
}

// New is a backoff that starts at first and grows to max.
func New(first, max time.Duration) *Backoff {
	return &Backoff{first: first, max: max, next: first}
}

// Next is the wait before the next try; each call doubles the one after, up to the maximum.
func (b *Backoff) Next() time.Duration {
	d := b.next
	b.next = min(2*b.next, b.max)
	return d
}

// Reset starts the waits again from the first, after a try that went well.
func (b *Backoff) Reset() { b.next = b.first }

// Nth is the wait after the n-th failure in a row (n from 0): first doubled n times, at most
// max. It is what n calls of Next leave as the next wait, for loops that only count failures.
func Nth(first, max time.Duration, n int) time.Duration {
	d := first
	for range n {
		if d >= max {
			break
		}
		d *= 2
	}
	return min(d, max)
}
