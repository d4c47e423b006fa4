package pg

import (
	"fmt"
	"strings"
)

// PassEntry is one line of a pgpass file. An empty Host, Port, Database or User matches any
// ("*").
type PassEntry struct {
	Host, Port, Database, User, Password string
}

// String returns the entry as a pgpass line with the password masked.
func (e PassEntry) String() string {
	return strings.Join([]string{pgpassField(e.Host), pgpassField(e.Port), pgpassField(e.Database),
		pgpassField(e.User), "********"}, ":")
}

// WritePgpass writes a pgpass file at path, mode 0600 (libpq ignores one that others can read),
// replacing what was there. ':' and '\' in a field are escaped with a backslash.
func WritePgpass(path string, entries ...PassEntry) error {
	var b strings.Builder
	for _, e := range entries {
		for i, f := range []string{e.Host, e.Port, e.Database, e.User} {
			if strings.ContainsAny(f, "\n\r") {
				return fmt.Errorf("while writing pgpass file %q: line break in field %d of entry %s", path, i+1, e)
			}
			b.WriteString(pgpassField(f))
			b.WriteByte(':')
		}
		if strings.ContainsAny(e.Password, "\n\r") {
			return fmt.Errorf("while writing pgpass file %q: line break in the password for %s", path, e)
		}
		b.WriteString(pgpassEscape(e.Password))
		b.WriteByte('\n')
	}
	if err := writeFileAtomic(path, []byte(b.String()), 0o600); err != nil {
		return fmt.Errorf("while writing pgpass file %q: %w", path, err)
	}
	return nil
}

func pgpassField(s string) string {
	if s == "" {
		return "*"
	}
	return pgpassEscape(s)
}

func pgpassEscape(s string) string {
	return strings.NewReplacer(`\`, `\\`, `:`, `\:`).Replace(s)
}
