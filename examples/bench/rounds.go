package main

import (
	"context"
	"fmt"
	"io"
	"slices"
	"time"
)

// contender is one of the things a benchmark compares; measure makes one measured run.
type contender struct {
	name    string
	measure func(run int) (time.Duration, error)
}

// interleave runs every contender once per round, runs rounds, the order turned by one each
// round (A B C, B C A, C A B, ...), so that no contender always runs first or right after the
// same other one. It prints each run as it ends, prefixed with label, and returns the times by
// contender name in run order.
func interleave(ctx context.Context, stdout io.Writer, label string, runs int, cs []contender) (map[string][]time.Duration, error) {
	times := map[string][]time.Duration{}
	width := 0
	for _, c := range cs {
		width = max(width, len(c.name))
	}
	for round := range runs {
		for k := range cs {
			c := cs[(round+k)%len(cs)]
			if err := ctx.Err(); err != nil {
				return nil, err
			}
			d, err := c.measure(round + 1)
			if err != nil {
				return nil, fmt.Errorf("%s, run %d of %s: %w", label, round+1, c.name, err)
			}
			times[c.name] = append(times[c.name], d)
			fmt.Fprintf(stdout, "%s: run %d/%d %-*s %s\n", label, round+1, runs, width, c.name, seconds(d))
		}
	}
	return times, nil
}

// spread is "min–max" of ds in seconds.
func spread(ds []time.Duration) string {
	if len(ds) == 0 {
		return "-"
	}
	return fmt.Sprintf("%.2f–%.2f", slices.Min(ds).Seconds(), slices.Max(ds).Seconds())
}

// ratio is a/b with three decimals, "-" when either is missing.
func ratio(a, b time.Duration) string {
	if a == 0 || b == 0 {
		return "-"
	}
	return fmt.Sprintf("%.3f", a.Seconds()/b.Seconds())
}

// verdict says whether ratio a/b holds a target (at most goal).
func verdict(a, b time.Duration, goal float64) string {
	if a == 0 || b == 0 {
		return "-"
	}
	if a.Seconds()/b.Seconds() <= goal {
		return fmt.Sprintf("within %.2f", goal)
	}
	return fmt.Sprintf("ABOVE %.2f", goal)
}

// millis prints a duration in seconds with three decimals, for phases shorter than a second.
func millis(d time.Duration) string { return fmt.Sprintf("%.3fs", d.Seconds()) }
