package config

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"slices"

	"github.com/hashicorp/hcl/v2"
)

// WriteDiagnostics prints diags in the layout of hcl's text writer with file:line:col in front:
// severity and summary, the source lines (a long one clipped around the mark) and the detail.
// files are the parsed sources ([Config.Files]); color adds terminal colours. It prints at most
// [MaxDiagnosticsShown], then counts the rest; each costs the length of the lines it shows.
func WriteDiagnostics(w io.Writer, files map[string]*hcl.File, diags hcl.Diagnostics, color bool) error {
	bw := bufio.NewWriter(w)
	diags = slices.DeleteFunc(slices.Clone(diags), func(d *hcl.Diagnostic) bool { return d == nil })
	for i, diag := range diags {
		if i == MaxDiagnosticsShown {
			fmt.Fprintf(bw, "…and %d more not shown.\n", len(diags)-i)
			break
		}
		writeDiagnostic(bw, files, diag, color)
	}
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("while writing diagnostics: %w", err)
	}
	return nil
}

func writeDiagnostic(w *bufio.Writer, files map[string]*hcl.File, diag *hcl.Diagnostic, color bool) {
	severity, colour, highlight, reset := "Error", "\x1b[31m", "\x1b[1;4m", "\x1b[0m"
	if diag.Severity == hcl.DiagWarning {
		severity, colour = "Warning", "\x1b[33m"
	}
	if !color {
		colour, highlight, reset = "", "", ""
	}
	if s := diag.Subject; s != nil {
		fmt.Fprintf(w, "%s:%d:%d: %s%s%s: %s\n\n", s.Filename, s.Start.Line, s.Start.Column, colour, severity, reset, diag.Summary)
		writeSource(w, files[s.Filename], diag, highlight, reset)
	} else {
		fmt.Fprintf(w, "%s%s%s: %s\n\n", colour, severity, reset, diag.Summary)
	}
	if diag.Detail != "" {
		fmt.Fprintf(w, "%s\n\n", diag.Detail)
	}
}

// writeSource prints the lines the diagnostic's subject and context cover, the subject
// highlighted, found from the subject's offset rather than by scanning f.
func writeSource(w *bufio.Writer, f *hcl.File, diag *hcl.Diagnostic, highlight, reset string) {
	mark := *diag.Subject
	if f == nil || f.Bytes == nil {
		fmt.Fprintf(w, "  on %s line %d:\n  (source code not available)\n\n", mark.Filename, mark.Start.Line)
		return
	}
	context := ""
	if nav, ok := f.Nav.(interface{ ContextString(offset int) string }); ok && nav.ContextString(mark.Start.Byte) != "" {
		context = ", in " + nav.ContextString(mark.Start.Byte)
	}
	fmt.Fprintf(w, "  on %s line %d%s:\n", mark.Filename, mark.Start.Line, context)
	snip, src := mark, f.Bytes
	if diag.Context != nil {
		snip = hcl.RangeOver(snip, *diag.Context)
	}
	from := min(max(snip.Start.Byte, 0), len(src))
	to := min(max(snip.End.Byte, from+1), len(src))
	start := bytes.LastIndexByte(src[:from], '\n') + 1
	for n := snip.Start.Line; ; n++ {
		end := len(src)
		if i := bytes.IndexByte(src[start:], '\n'); i >= 0 {
			end = start + i
		}
		text := bytes.TrimSuffix(src[start:end], []byte("\r"))
		lo := min(max(mark.Start.Byte-start, 0), len(text))
		hi := min(max(mark.End.Byte-start, lo), len(text))
		if mark.Start.Byte == mark.End.Byte && lo == mark.Start.Byte-start && lo < len(text) {
			hi = lo + 1 // an empty range marks one character
		}
		text, lo, hi = clip(text, lo, hi)
		on, off := highlight, reset
		if lo == hi {
			on, off = "", ""
		}
		fmt.Fprintf(w, "%4d: %s%s%s%s%s\n", n, text[:lo], on, text[lo:hi], off, text[hi:])
		if to <= end+1 {
			break
		}
		start = end + 1
	}
	w.WriteByte('\n')
}

// maxLineShown is how much of one source line a diagnostic shows: a window around the mark.
const maxLineShown = 160

// clip cuts a long line to a window around text[lo:hi], marking cuts with "…"; lo and hi move.
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
