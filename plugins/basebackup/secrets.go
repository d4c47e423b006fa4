package main

import (
	"bufio"
	"net/url"
	"os"
	"strings"

	"github.com/pgimaged/pgimaged/sdk"
)

// secrets are the passwords to mask in anything shown: the ones in the pgpass file the request
// names and any in the connection string (pgimaged never puts one there, a caller might).
func secrets(req sdk.CloneRequest) []string {
	var out []string
	if pw := connStringPassword(req.ConnString); pw != "" {
		out = append(out, pw)
	}
	if pf := req.Env["PGPASSFILE"]; pf != "" {
		out = append(out, pgpassPasswords(pf)...)
	}
	return out
}

// pgpassPasswords returns the password field of every line of a pgpass file
// (hostname:port:database:username:password, with \: and \\ escapes).
func pgpassPasswords(path string) []string {
	f, err := os.Open(path)
	if err != nil {
		return nil
	}
	defer f.Close()
	var out []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimRight(sc.Text(), "\r")
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		var fields []string
		var cur strings.Builder
		for i := 0; i < len(line); i++ {
			switch {
			case line[i] == '\\' && i+1 < len(line):
				i++
				cur.WriteByte(line[i])
			case line[i] == ':' && len(fields) < 4:
				fields = append(fields, cur.String())
				cur.Reset()
			default:
				cur.WriteByte(line[i])
			}
		}
		if len(fields) == 4 && cur.Len() > 0 {
			out = append(out, cur.String())
		}
	}
	return out
}

// connStringPassword finds a password in a libpq connection string, URL or key=value form.
func connStringPassword(conn string) string {
	if strings.HasPrefix(conn, "postgres://") || strings.HasPrefix(conn, "postgresql://") {
		u, err := url.Parse(conn)
		if err != nil {
			return ""
		}
		if pw, ok := u.User.Password(); ok && pw != "" {
			return pw
		}
		return u.Query().Get("password")
	}
	// key = value pairs; values may be single-quoted with \' and \\ escapes.
	s := conn
	for {
		s = strings.TrimLeft(s, " \t\n\r")
		if s == "" {
			return ""
		}
		eq := strings.IndexByte(s, '=')
		if eq < 0 {
			return ""
		}
		key := strings.TrimSpace(s[:eq])
		s = strings.TrimLeft(s[eq+1:], " \t\n\r")
		var val strings.Builder
		if strings.HasPrefix(s, "'") {
			i := 1
			for ; i < len(s) && s[i] != '\''; i++ {
				if s[i] == '\\' && i+1 < len(s) {
					i++
				}
				val.WriteByte(s[i])
			}
			s = s[min(i+1, len(s)):]
		} else {
			i := 0
			for ; i < len(s) && !strings.ContainsRune(" \t\n\r", rune(s[i])); i++ {
				if s[i] == '\\' && i+1 < len(s) {
					i++
				}
				val.WriteByte(s[i])
			}
			s = s[i:]
		}
		if key == "password" && val.Len() > 0 {
			return val.String()
		}
	}
}
