// Package termtest checks what pgimaged draws on a terminal, for the tests of the progress
// display and of a clone run in a real terminal.
package termtest

import (
	"fmt"
	"math"
	"regexp"
	"strconv"
)

var barNumbers = regexp.MustCompile(`([0-9.]+) (B|KiB|MiB|GiB|TiB) of ([0-9.]+) (B|KiB|MiB|GiB|TiB).*?([0-9]+)%`)

// BarAgrees checks that a progress bar's "X of Y" text and its percentage tell the same, to
// within the rounding of the sizes shown.
func BarAgrees(bar string) error {
	m := barNumbers.FindStringSubmatch(bar)
	if m == nil {
		return fmt.Errorf("bar %q shows no \"X of Y\" and percentage", bar)
	}
	unit := map[string]float64{"B": 1, "KiB": 1 << 10, "MiB": 1 << 20, "GiB": 1 << 30, "TiB": 1 << 40}
	x, _ := strconv.ParseFloat(m[1], 64)
	y, _ := strconv.ParseFloat(m[3], 64)
	pct, _ := strconv.ParseFloat(m[5], 64)
	text := x * unit[m[2]] / (y * unit[m[4]]) * 100
	if math.Abs(text-pct) > 1.5 {
		return fmt.Errorf("bar %q: its text says %.1f%%, its percentage %v%%", bar, text, pct)
	}
	return nil
}
