package config

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"sort"

	"github.com/hashicorp/hcl/v2"
)

// WriteDiagnostics prints diags for a person: each one starts with file:line:col, then the
// severity and summary, the offending source line(s) and the detail. files are the parsed
// sources ([Config.Files]); color adds terminal colours. At most [MaxDiagnosticsShown] are
// printed, then a line that counts the rest. The cost is linear in the size of the sources and
// the number of diagnostics shown.
func WriteDiagnostics(w io.Writer, files map[string]*hcl.File, diags hcl.Diagnostics, color bool) error {
	bw := bufio.NewWriter(w)
	lines := map[string]*lineIndex{}
	shown, rest := 0, 0
	for _, diag := range diags {
		if diag == nil {
			continue
		}
		if shown == MaxDiagnosticsShown {
			rest++
			continue
		}
		shown++
		writeDiagnostic(bw, files, lines, diag, color)
	}
	if rest > 0 {
		fmt.Fprintf(bw, "…and %d more not shown.\n", rest)
	}
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("while writing diagnostics: %w", err)
	}
	return nil
}

// writeDiagnostic writes one diagnostic in the layout of hcl's text writer, finding source lines
// through an index built once per file rather than by scanning the file each time.
func writeDiagnostic(w *bufio.Writer, files map[string]*hcl.File, lines map[string]*lineIndex, diag *hcl.Diagnostic, color bool) {
	var colour, highlight, reset string
	if color {
		colour, highlight, reset = "\x1b[31m", "\x1b[1;4m", "\x1b[0m"
		if diag.Severity == hcl.DiagWarning {
			colour = "\x1b[33m"
		}
	}
	severity := "Error"
	if diag.Severity == hcl.DiagWarning {
		severity = "Warning"
	}
	s := diag.Subject
	if s != nil {
		fmt.Fprintf(w, "%s:%d:%d: ", s.Filename, s.Start.Line, s.Start.Column)
	}
	fmt.Fprintf(w, "%s%s%s: %s\n\n", colour, severity, reset, diag.Summary)
	if s != nil {
		f := files[s.Filename]
		if f == nil || f.Bytes == nil {
			fmt.Fprintf(w, "  on %s line %d:\n  (source code not available)\n\n", s.Filename, s.Start.Line)
		} else {
			idx := lines[s.Filename]
			if idx == nil {
				idx = newLineIndex(f.Bytes)
				lines[s.Filename] = idx
			}
			context := ""
			if nav, ok := f.Nav.(interface{ ContextString(offset int) string }); ok {
				if c := nav.ContextString(s.Start.Byte); c != "" {
					context = ", in " + c
				}
			}
			fmt.Fprintf(w, "  on %s line %d%s:\n", s.Filename, s.Start.Line, context)
			snip := *s
			if diag.Context != nil {
				snip = hcl.RangeOver(snip, *diag.Context)
			}
			idx.write(w, snip, *s, highlight, reset)
			w.WriteByte('\n')
		}
	}
	if diag.Detail != "" {
		fmt.Fprintf(w, "%s\n\n", diag.Detail)
	}
}

// lineIndex holds where each line of a source starts.
type lineIndex struct {
	src    []byte
	starts []int // byte offset of each line's first byte; starts[0] is line 1
}

func newLineIndex(src []byte) *lineIndex {
	starts := []int{0}
	for i, b := range src {
		if b == '\n' {
			starts = append(starts, i+1)
		}
	}
	return &lineIndex{src: src, starts: starts}
}

// line returns the text of line n (from 1) without its line break, and its first byte offset.
func (x *lineIndex) line(n int) ([]byte, int) {
	start := x.starts[n-1]
	end := len(x.src)
	if n < len(x.starts) {
		end = x.starts[n] - 1
	}
	return bytes.TrimSuffix(x.src[start:end], []byte("\r")), start
}

// maxLineShown is how much of one source line a diagnostic shows: a window around the mark.
const maxLineShown = 160

// clip cuts a long line down to a window around text[lo:hi], marking the cuts with "…", and
// returns lo and hi within what it kept.
func clip(text []byte, lo, hi int) ([]byte, int, int) {
	if len(text) <= maxLineShown {
		return text, lo, hi
	}
	hi = min(hi, lo+maxLineShown/2)
	from := max(0, lo-maxLineShown/4)
	to := min(len(text), from+maxLineShown)
	out := make([]byte, 0, to-from+8)
	if from > 0 {
		out = append(out, "…"...)
	}
	shift := len(out) - from
	out = append(out, text[from:to]...)
	if to < len(text) {
		out = append(out, "…"...)
	}
	return out, lo + shift, hi + shift
}

// write prints the lines snip covers, with the bytes of mark highlighted.
func (x *lineIndex) write(w *bufio.Writer, snip, mark hcl.Range, highlight, reset string) {
	startByte := min(max(snip.Start.Byte, 0), len(x.src))
	endByte := min(max(snip.End.Byte, startByte+1), len(x.src))
	first := sort.SearchInts(x.starts, startByte+1)        // line holding startByte
	last := max(sort.SearchInts(x.starts, endByte), first) // line holding endByte-1
	for n := first; n <= last && n <= len(x.starts); n++ {
		text, off := x.line(n)
		lo := min(max(mark.Start.Byte-off, 0), len(text))
		hi := min(max(mark.End.Byte-off, lo), len(text))
		if mark.Start.Byte == mark.End.Byte && lo == mark.Start.Byte-off && lo < len(text) {
			hi = lo + 1
		}
		text, lo, hi = clip(text, lo, hi)
		if lo == hi {
			fmt.Fprintf(w, "%4d: %s\n", n, text)
			continue
		}
		fmt.Fprintf(w, "%4d: %s%s%s%s%s\n", n, text[:lo], highlight, text[lo:hi], reset, text[hi:])
	}
}
