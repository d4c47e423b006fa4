package config

import (
	"fmt"
	"io"

	"github.com/hashicorp/hcl/v2"
)

// WriteDiagnostics prints diags for a person: each one starts with file:line:col, then the
// severity and summary, the offending source line(s) and the detail. files are the parsed
// sources ([Config.Files]); color adds terminal colours.
func WriteDiagnostics(w io.Writer, files map[string]*hcl.File, diags hcl.Diagnostics, color bool) error {
	tw := hcl.NewDiagnosticTextWriter(w, files, 0, color)
	for _, diag := range diags {
		if diag == nil {
			continue
		}
		if s := diag.Subject; s != nil {
			if _, err := fmt.Fprintf(w, "%s:%d:%d: ", s.Filename, s.Start.Line, s.Start.Column); err != nil {
				return fmt.Errorf("while writing diagnostics: %w", err)
			}
		}
		if err := tw.WriteDiagnostic(diag); err != nil {
			return fmt.Errorf("while writing diagnostics: %w", err)
		}
	}
	return nil
}
