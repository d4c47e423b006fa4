package pg

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
)

// QuoteConfValue quotes v as a value in postgresql.conf, recovery.conf or postgresql.auto.conf:
// single quotes around it, a single quote doubled, a backslash doubled and line breaks and tabs
// written as escapes, since the configuration file lexer reads backslash escapes inside quotes.
func QuoteConfValue(v string) string {
	var b strings.Builder
	b.Grow(len(v) + 2)
	b.WriteByte('\'')
	for _, r := range v {
		switch r {
		case '\'':
			b.WriteString("''")
		case '\\':
			b.WriteString(`\\`)
		case '\n':
			b.WriteString(`\n`)
		case '\r':
			b.WriteString(`\r`)
		case '\t':
			b.WriteString(`\t`)
		case '\b':
			b.WriteString(`\b`)
		case '\f':
			b.WriteString(`\f`)
		default:
			b.WriteRune(r)
		}
	}
	b.WriteByte('\'')
	return b.String()
}

// validParamName reports whether name is a configuration parameter name PostgreSQL's
// configuration file lexer accepts (letters, digits, underscores, dots for custom parameters).
func validParamName(name string) bool {
	if name == "" {
		return false
	}
	for i, r := range name {
		switch {
		case r == '_' || (r >= 'a' && r <= 'z') || (r >= 'A' && r <= 'Z'):
		case i > 0 && (r == '.' || (r >= '0' && r <= '9')):
		default:
			return false
		}
	}
	return true
}

// parseConfLine reads one line of a PostgreSQL configuration file: "name = value" or
// "name value", the value bare or single-quoted, followed by an optional # comment. ok is false
// for blank lines, comments and lines it does not understand.
func parseConfLine(line string) (name, value string, ok bool) {
	s := strings.TrimLeft(line, " \t")
	i := 0
	for i < len(s) && (s[i] == '_' || s[i] == '.' || isAlnum(s[i])) {
		i++
	}
	if i == 0 {
		return "", "", false
	}
	name, s = s[:i], strings.TrimLeft(s[i:], " \t")
	if strings.HasPrefix(s, "=") {
		s = strings.TrimLeft(s[1:], " \t")
	}
	if strings.HasPrefix(s, "'") {
		v, rest, err := unquoteConfValue(s)
		if err != nil {
			return "", "", false
		}
		value, s = v, rest
	} else {
		j := strings.IndexAny(s, " \t#\r")
		if j < 0 {
			j = len(s)
		}
		value, s = s[:j], s[j:]
	}
	s = strings.TrimLeft(s, " \t\r")
	if s != "" && !strings.HasPrefix(s, "#") {
		return "", "", false
	}
	return strings.ToLower(name), value, true
}

func isAlnum(c byte) bool {
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')
}

// unquoteConfValue reads a single-quoted value at the start of s the way the configuration file
// lexer does (a doubled quote, backslash escapes) and returns it with the rest of s.
func unquoteConfValue(s string) (value, rest string, err error) {
	var b strings.Builder
	for i := 1; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '\'' && i+1 < len(s) && s[i+1] == '\'':
			b.WriteByte('\'')
			i++
		case c == '\'':
			return b.String(), s[i+1:], nil
		case c == '\\' && i+1 < len(s):
			i++
			switch e := s[i]; e {
			case 'b':
				b.WriteByte('\b')
			case 'f':
				b.WriteByte('\f')
			case 'n':
				b.WriteByte('\n')
			case 'r':
				b.WriteByte('\r')
			case 't':
				b.WriteByte('\t')
			case '0', '1', '2', '3', '4', '5', '6', '7':
				n, k := 0, 0
				for ; k < 3 && i+k < len(s) && s[i+k] >= '0' && s[i+k] <= '7'; k++ {
					n = n*8 + int(s[i+k]-'0')
				}
				b.WriteByte(byte(n))
				i += k - 1
			default:
				b.WriteByte(e)
			}
		default:
			b.WriteByte(c)
		}
	}
	return "", "", errors.New("unterminated quoted value")
}

// writeFileAtomic replaces path with data: a temporary file in the same directory, synced, given
// perm (and, when running as root, the owner of the directory), then renamed over path.
func writeFileAtomic(path string, data []byte, perm fs.FileMode) error {
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	defer func() {
		if tmp != "" {
			_ = os.Remove(tmp)
		}
	}()
	if _, err := f.Write(data); err != nil {
		_ = f.Close()
		return err
	}
	if err := f.Chmod(perm); err != nil {
		_ = f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		_ = f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := chownLikeDir(tmp, dir); err != nil {
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		return err
	}
	tmp = ""
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync()
		_ = d.Close()
	}
	return nil
}

// mkdirLikeDir creates dir (and missing parents below owner) with perm; when running as root
// the directories it creates take the owner of ownerDir.
func mkdirLikeDir(dir, ownerDir string, perm fs.FileMode) error {
	if fi, err := os.Stat(dir); err == nil {
		if !fi.IsDir() {
			return fmt.Errorf("%s exists and is not a directory", dir)
		}
		return nil
	}
	if parent := filepath.Dir(dir); parent != dir {
		if err := mkdirLikeDir(parent, ownerDir, perm); err != nil {
			return err
		}
	}
	if err := os.Mkdir(dir, perm); err != nil && !errors.Is(err, fs.ErrExist) {
		return err
	}
	return chownLikeDir(dir, ownerDir)
}

// chownLikeDir gives path the owner and group of dir when this process runs as root, so that a
// file written into a data directory stays the PostgreSQL OS user's. A no-op otherwise.
func chownLikeDir(path, dir string) error {
	if os.Geteuid() != 0 {
		return nil
	}
	fi, err := os.Stat(dir)
	if err != nil {
		return err
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return nil
	}
	return os.Lchown(path, int(st.Uid), int(st.Gid))
}

// readLines returns the lines of path without their line breaks; a missing file has none.
func readLines(path string) ([]string, bool, error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, err
	}
	s := strings.TrimSuffix(string(data), "\n")
	if s == "" {
		return nil, true, nil
	}
	return strings.Split(s, "\n"), true, nil
}

// fileMode returns the permission bits of path, or def when it does not exist.
func fileMode(path string, def fs.FileMode) fs.FileMode {
	if fi, err := os.Stat(path); err == nil {
		return fi.Mode().Perm()
	}
	return def
}

// ensureInclude makes sure postgresql.conf in dir ends with include_if_exists for file (a path
// relative to dir), adding the line once. A missing postgresql.conf is created.
func ensureInclude(dir, file string) error {
	conf := filepath.Join(dir, "postgresql.conf")
	lines, _, err := readLines(conf)
	if err != nil {
		return err
	}
	for _, l := range lines {
		if name, value, ok := parseConfLine(l); ok && (name == "include_if_exists" || name == "include") && value == file {
			return nil
		}
	}
	lines = append(lines, "include_if_exists = "+QuoteConfValue(file)+"\t# added by pgimaged")
	return writeFileAtomic(conf, []byte(strings.Join(lines, "\n")+"\n"), fileMode(conf, 0o600))
}

// removeSettings rewrites the configuration file path without the lines that set a parameter
// drop reports true for. Every other line stays as it was. A missing file is left missing.
func removeSettings(path string, drop func(name string) bool) error {
	lines, exists, err := readLines(path)
	if err != nil || !exists {
		return err
	}
	kept := lines[:0:0]
	for _, l := range lines {
		if name, _, ok := parseConfLine(l); ok && drop(name) {
			continue
		}
		kept = append(kept, l)
	}
	if len(kept) == len(lines) {
		return nil
	}
	data := ""
	if len(kept) > 0 {
		data = strings.Join(kept, "\n") + "\n"
	}
	return writeFileAtomic(path, []byte(data), fileMode(path, 0o600))
}
