// Command fakewal stands in for WAL-E and WAL-G in tests, where neither can be installed. It
// honours their command lines over a local directory of base backups made by pg_basebackup:
//
//	wal-e [--aws-instance-profile] backup-list [--detail] [LATEST|NAME]   tab-separated table
//	wal-g backup-list [--detail] --json                                   JSON array
//	{wal-e|wal-g} backup-fetch DIR LATEST|NAME
//	{wal-e|wal-g} wal-fetch WAL_FILE DEST
//	{wal-e|wal-g} wal-push PATH
//
// It acts as wal-e or wal-g after the name it is run under (or FAKEWAL_TOOL). Like the real tools
// it finds its storage in the environment: WALE_S3_PREFIX=file:///dir (wal-e; wal-g reads it too)
// or WALG_FILE_PREFIX=/dir (wal-g). The storage holds
//
//	basebackups_005/<any>/      a pg_basebackup in plain format, or base.tar [+ pg_wal.tar]
//	wal_005/<WAL file>          archived WAL (plain copies)
//
// A backup's name, start position and time come from its backup_label; its size is the sum of
// its files. Test hooks: FAKEWAL_LOG=file appends one line per call (tool, arguments, storage);
// FAKEWAL_FETCH_FAILURES=N with FAKEWAL_STATE=dir makes the first N backup-fetch calls leave a
// partial file and fail; FAKEWAL_SKIP_WAL=1 leaves pg_wal out of what backup-fetch restores;
// FAKEWAL_ECHO_ENV=NAME,... prints those variables on stderr, as a verbose tool might.
package main

import (
	"archive/tar"
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"
)

const segmentSize = 16 << 20

func main() {
	tool := filepath.Base(os.Args[0])
	if t := os.Getenv("FAKEWAL_TOOL"); t != "" {
		tool = t
	}
	if tool != "wal-e" && tool != "wal-g" {
		tool = "wal-e"
	}
	if err := run(tool, os.Args[1:]); err != nil {
		fmt.Fprintf(os.Stderr, "%s: ERROR: %v\n", tool, err)
		os.Exit(1)
	}
}

func run(tool string, args []string) error {
	var globals []string
	for len(args) > 0 && strings.HasPrefix(args[0], "-") {
		globals = append(globals, args[0])
		args = args[1:]
	}
	root, err := storage(tool)
	logCall(tool, globals, args, root)
	for _, name := range strings.Split(os.Getenv("FAKEWAL_ECHO_ENV"), ",") {
		if name != "" {
			fmt.Fprintf(os.Stderr, "%s: DEBUG: %s=%s\n", tool, name, os.Getenv(name))
		}
	}
	if len(args) == 0 {
		return errors.New("no command given")
	}
	if err != nil {
		return err
	}
	switch args[0] {
	case "backup-list":
		return backupList(tool, root, args[1:])
	case "backup-fetch":
		if len(args) != 3 {
			return errors.New("usage: backup-fetch DIR LATEST|NAME")
		}
		return backupFetch(root, args[1], args[2])
	case "wal-fetch":
		if len(args) != 3 {
			return errors.New("usage: wal-fetch WAL_FILE DEST")
		}
		return copyFile(filepath.Join(root, "wal_005", args[1]), args[2], 0o600)
	case "wal-push":
		if len(args) != 2 {
			return errors.New("usage: wal-push PATH")
		}
		if err := os.MkdirAll(filepath.Join(root, "wal_005"), 0o755); err != nil {
			return err
		}
		return copyFile(args[1], filepath.Join(root, "wal_005", filepath.Base(args[1])), 0o644)
	}
	return fmt.Errorf("unknown command %q", args[0])
}

func storage(tool string) (string, error) {
	if tool == "wal-g" {
		if p := os.Getenv("WALG_FILE_PREFIX"); p != "" {
			return p, nil
		}
	}
	p := os.Getenv("WALE_S3_PREFIX")
	if p == "" {
		if tool == "wal-g" {
			return "", errors.New("no storage configured: set WALG_FILE_PREFIX or WALE_S3_PREFIX")
		}
		return "", errors.New("no storage prefix defined: set WALE_S3_PREFIX")
	}
	dir, ok := strings.CutPrefix(p, "file://")
	if !ok {
		return "", fmt.Errorf("WALE_S3_PREFIX %q: this stand-in reads only file:// prefixes", p)
	}
	return dir, nil
}

func logCall(tool string, globals, args []string, root string) {
	path := os.Getenv("FAKEWAL_LOG")
	if path == "" {
		return
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		return
	}
	defer f.Close()
	fmt.Fprintf(f, "%s\t%s\t%s\t%s\n", tool, strings.Join(globals, " "), strings.Join(args, " "), root)
}

// backup is one base backup in the storage.
type backup struct {
	dir        string
	tarball    bool
	name       string
	startFile  string
	startLSN   uint64
	stopFile   string
	stopLSN    uint64
	startTime  time.Time
	finishTime time.Time
	size       int64
	pgVersion  int
}

func listBackups(root string) ([]backup, error) {
	base := filepath.Join(root, "basebackups_005")
	entries, err := os.ReadDir(base)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var out []backup
	for _, e := range entries {
		if !e.IsDir() {
			continue
		}
		b, err := readBackup(filepath.Join(base, e.Name()))
		if err != nil {
			return nil, fmt.Errorf("backup %s: %w", e.Name(), err)
		}
		out = append(out, b)
	}
	sort.SliceStable(out, func(i, j int) bool {
		if !out[i].startTime.Equal(out[j].startTime) {
			return out[i].startTime.Before(out[j].startTime)
		}
		return out[i].startLSN < out[j].startLSN
	})
	return out, nil
}

func readBackup(dir string) (backup, error) {
	b := backup{dir: dir}
	files := map[string][]byte{}
	want := map[string]bool{"backup_label": true, "PG_VERSION": true, "backup_manifest": true}
	if _, err := os.Stat(filepath.Join(dir, "base.tar")); err == nil {
		b.tarball = true
		for _, name := range []string{"base.tar", "pg_wal.tar"} {
			err := walkTar(filepath.Join(dir, name), func(h *tar.Header, r io.Reader) error {
				if h.Typeflag == tar.TypeReg {
					b.size += h.Size
					if name == "base.tar" && want[h.Name] {
						data, err := io.ReadAll(r)
						if err != nil {
							return err
						}
						files[h.Name] = data
					}
				}
				return nil
			})
			if err != nil && !(name == "pg_wal.tar" && errors.Is(err, fs.ErrNotExist)) {
				return b, err
			}
		}
		if m, err := os.ReadFile(filepath.Join(dir, "backup_manifest")); err == nil {
			files["backup_manifest"] = m
		}
	} else {
		err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if d.Type().IsRegular() {
				fi, err := d.Info()
				if err != nil {
					return err
				}
				b.size += fi.Size()
				if rel, _ := filepath.Rel(dir, path); want[rel] {
					data, err := os.ReadFile(path)
					if err != nil {
						return err
					}
					files[rel] = data
				}
			}
			return nil
		})
		if err != nil {
			return b, err
		}
	}
	label, ok := files["backup_label"]
	if !ok {
		return b, errors.New("no backup_label")
	}
	if err := b.parseLabel(string(label)); err != nil {
		return b, err
	}
	b.stopFile, b.stopLSN, b.finishTime = b.startFile, b.startLSN, b.startTime
	if m, ok := files["backup_manifest"]; ok {
		var manifest struct {
			WALRanges []struct {
				Timeline int    `json:"Timeline"`
				EndLSN   string `json:"End-LSN"`
			} `json:"WAL-Ranges"`
		}
		if json.Unmarshal(m, &manifest) == nil && len(manifest.WALRanges) > 0 {
			r := manifest.WALRanges[len(manifest.WALRanges)-1]
			if lsn, err := parseLSN(r.EndLSN); err == nil {
				b.stopLSN = lsn
				b.stopFile = walFileName(uint32(r.Timeline), lsn)
			}
		}
		if fi, err := os.Stat(filepath.Join(dir, "backup_manifest")); err == nil {
			b.finishTime = fi.ModTime().UTC()
		}
	}
	if v, err := strconv.Atoi(strings.TrimSpace(string(files["PG_VERSION"]))); err == nil {
		b.pgVersion = v * 10000
	}
	b.name = fmt.Sprintf("base_%s_%08d", b.startFile, b.startLSN%segmentSize)
	return b, nil
}

// parseLabel reads "START WAL LOCATION: 0/2000028 (file 000000010000000000000002)" and
// "START TIME: 2026-11-22 01:48:05 UTC".
func (b *backup) parseLabel(label string) error {
	sc := bufio.NewScanner(strings.NewReader(label))
	for sc.Scan() {
		key, val, ok := strings.Cut(sc.Text(), ": ")
		if !ok {
			continue
		}
		switch key {
		case "START WAL LOCATION":
			var lsn, file string
			if _, err := fmt.Sscanf(val, "%s (file %24s)", &lsn, &file); err != nil {
				return fmt.Errorf("backup_label: START WAL LOCATION %q: %w", val, err)
			}
			v, err := parseLSN(lsn)
			if err != nil {
				return err
			}
			b.startLSN, b.startFile = v, file
		case "START TIME":
			t, err := time.Parse("2006-01-02 15:04:05 MST", val)
			if err != nil {
				return fmt.Errorf("backup_label: START TIME %q: %w", val, err)
			}
			b.startTime = t.UTC()
		}
	}
	if b.startFile == "" {
		return errors.New("backup_label has no START WAL LOCATION")
	}
	return nil
}

func parseLSN(s string) (uint64, error) {
	hi, lo, ok := strings.Cut(s, "/")
	if !ok {
		return 0, fmt.Errorf("WAL position %q", s)
	}
	h, err := strconv.ParseUint(hi, 16, 32)
	if err != nil {
		return 0, err
	}
	l, err := strconv.ParseUint(lo, 16, 32)
	if err != nil {
		return 0, err
	}
	return h<<32 | l, nil
}

func walFileName(tli uint32, lsn uint64) string {
	seg := lsn / segmentSize
	perLog := uint64(1<<32) / segmentSize
	return fmt.Sprintf("%08X%08X%08X", tli, seg/perLog, seg%perLog)
}

func pick(backups []backup, which string) (backup, error) {
	if len(backups) == 0 {
		return backup{}, errors.New("no backups found")
	}
	if which == "LATEST" {
		return backups[len(backups)-1], nil
	}
	for _, b := range backups {
		if b.name == which {
			return b, nil
		}
	}
	return backup{}, fmt.Errorf("backup %q not found", which)
}

func backupList(tool, root string, args []string) error {
	var detail, asJSON bool
	var query string
	for _, a := range args {
		switch a {
		case "--detail":
			detail = true
		case "--json":
			asJSON = true
		default:
			if strings.HasPrefix(a, "-") {
				return fmt.Errorf("backup-list: unknown option %s", a)
			}
			query = a
		}
	}
	backups, err := listBackups(root)
	if err != nil {
		return err
	}
	if query != "" {
		if len(backups) == 0 {
			backups = nil
		} else {
			b, err := pick(backups, query)
			if err != nil {
				return err
			}
			backups = []backup{b}
		}
	}
	if tool == "wal-g" {
		if len(backups) == 0 {
			fmt.Fprintln(os.Stderr, "INFO: No backups found")
			return nil
		}
		if !asJSON {
			fmt.Println("name modified wal_segment_backup_start")
			for _, b := range backups {
				fmt.Printf("%s %s %s\n", b.name, b.finishTime.Format(time.RFC3339), b.startFile)
			}
			return nil
		}
		type item struct {
			BackupName       string    `json:"backup_name"`
			Time             time.Time `json:"time"`
			WalFileName      string    `json:"wal_file_name"`
			StartTime        time.Time `json:"start_time,omitzero"`
			FinishTime       time.Time `json:"finish_time,omitzero"`
			DateFmt          string    `json:"date_fmt,omitempty"`
			Hostname         string    `json:"hostname,omitempty"`
			DataDir          string    `json:"data_dir,omitempty"`
			PgVersion        int       `json:"pg_version,omitempty"`
			StartLSN         uint64    `json:"start_lsn,omitempty"`
			FinishLSN        uint64    `json:"finish_lsn,omitempty"`
			IsPermanent      bool      `json:"is_permanent"`
			UncompressedSize int64     `json:"uncompressed_size,omitempty"`
			CompressedSize   int64     `json:"compressed_size,omitempty"`
		}
		items := make([]item, 0, len(backups))
		for _, b := range backups {
			it := item{BackupName: b.name, Time: b.finishTime, WalFileName: b.startFile}
			if detail {
				host, _ := os.Hostname()
				it.StartTime, it.FinishTime, it.DateFmt = b.startTime, b.finishTime, "%Y-%m-%dT%H:%M:%S.%fZ"
				it.Hostname, it.DataDir, it.PgVersion = host, b.dir, b.pgVersion
				it.StartLSN, it.FinishLSN = b.startLSN, b.stopLSN
				it.UncompressedSize, it.CompressedSize = b.size, b.size
			}
			items = append(items, it)
		}
		return json.NewEncoder(os.Stdout).Encode(items)
	}
	fmt.Println("name\tlast_modified\texpanded_size_bytes\twal_segment_backup_start\twal_segment_offset_backup_start\twal_segment_backup_stop\twal_segment_offset_backup_stop")
	for _, b := range backups {
		size := ""
		if detail {
			size = strconv.FormatInt(b.size, 10)
		}
		fmt.Printf("%s\t%s\t%s\t%s\t%08d\t%s\t%08d\n", b.name, b.finishTime.Format("2006-01-02T15:04:05.000Z"), size,
			b.startFile, b.startLSN%segmentSize, b.stopFile, b.stopLSN%segmentSize)
	}
	return nil
}

func backupFetch(root, dest, which string) error {
	if n, _ := strconv.Atoi(os.Getenv("FAKEWAL_FETCH_FAILURES")); n > 0 {
		state := os.Getenv("FAKEWAL_STATE")
		if state == "" {
			return errors.New("FAKEWAL_FETCH_FAILURES needs FAKEWAL_STATE")
		}
		counter := filepath.Join(state, "backup-fetch.count")
		b, _ := os.ReadFile(counter)
		calls, _ := strconv.Atoi(strings.TrimSpace(string(b)))
		calls++
		if err := os.WriteFile(counter, []byte(strconv.Itoa(calls)), 0o644); err != nil {
			return err
		}
		if calls <= n {
			_ = os.MkdirAll(dest, 0o700)
			_ = os.WriteFile(filepath.Join(dest, "partial-fetch"), []byte("interrupted\n"), 0o600)
			return fmt.Errorf("injected failure %d of %d: connection reset while downloading", calls, n)
		}
	}
	backups, err := listBackups(root)
	if err != nil {
		return err
	}
	b, err := pick(backups, which)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(dest, 0o700); err != nil {
		return err
	}
	skipWAL := os.Getenv("FAKEWAL_SKIP_WAL") == "1"
	if b.tarball {
		if err := extractTar(filepath.Join(b.dir, "base.tar"), dest, skipWAL); err != nil {
			return err
		}
		if !skipWAL {
			err := extractTar(filepath.Join(b.dir, "pg_wal.tar"), filepath.Join(dest, "pg_wal"), false)
			if err != nil && !errors.Is(err, fs.ErrNotExist) {
				return err
			}
		}
		return nil
	}
	return copyTree(b.dir, dest, skipWAL)
}

func isWAL(rel string) bool {
	first, _, _ := strings.Cut(filepath.ToSlash(rel), "/")
	return first == "pg_wal" || first == "pg_xlog"
}

func copyTree(src, dst string, skipWAL bool) error {
	return filepath.WalkDir(src, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(src, path)
		if err != nil || rel == "." {
			return err
		}
		if rel == "backup_manifest" {
			return nil
		}
		if skipWAL && isWAL(rel) {
			if d.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		target := filepath.Join(dst, rel)
		info, err := d.Info()
		if err != nil {
			return err
		}
		switch {
		case d.Type()&fs.ModeSymlink != 0:
			link, err := os.Readlink(path)
			if err != nil {
				return err
			}
			return os.Symlink(link, target)
		case d.IsDir():
			return os.Mkdir(target, info.Mode().Perm())
		default:
			return copyFile(path, target, info.Mode().Perm())
		}
	})
}

func walkTar(path string, fn func(*tar.Header, io.Reader) error) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	tr := tar.NewReader(bufio.NewReader(f))
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("%s: %w", path, err)
		}
		if err := fn(h, tr); err != nil {
			return err
		}
	}
}

func extractTar(path, dst string, skipWAL bool) error {
	if err := os.MkdirAll(dst, 0o700); err != nil {
		return err
	}
	return walkTar(path, func(h *tar.Header, r io.Reader) error {
		name := filepath.Clean(h.Name)
		if name == "." {
			return nil
		}
		if strings.HasPrefix(name, "..") || filepath.IsAbs(name) {
			return fmt.Errorf("%s: unsafe entry %q", path, h.Name)
		}
		if skipWAL && isWAL(name) {
			return nil
		}
		target := filepath.Join(dst, name)
		switch h.Typeflag {
		case tar.TypeDir:
			return os.MkdirAll(target, os.FileMode(h.Mode).Perm())
		case tar.TypeSymlink:
			return os.Symlink(h.Linkname, target)
		case tar.TypeReg:
			if err := os.MkdirAll(filepath.Dir(target), 0o700); err != nil {
				return err
			}
			out, err := os.OpenFile(target, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, os.FileMode(h.Mode).Perm())
			if err != nil {
				return err
			}
			if _, err := io.Copy(out, r); err != nil {
				out.Close()
				return err
			}
			return out.Close()
		}
		return nil
	})
}

func copyFile(src, dst string, perm fs.FileMode) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, perm)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}
