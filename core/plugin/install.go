package plugin

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/hashicorp/go-hclog"
)

// ErrNameMismatch means a plugin's file name says one name and the plugin describes itself as another.
var ErrNameMismatch = errors.New("plugin file name does not match the name it describes")

// FileName is the name a plugin's file says, or "" when it is not named pgimaged-plugin-<name>.
func FileName(path string) string {
	name, _ := strings.CutPrefix(filepath.Base(path), Prefix)
	if name == filepath.Base(path) {
		return ""
	}
	return name
}

// NameMatches checks a plugin's file name (as [FileName] reads it; "" for a file not named
// pgimaged-plugin-<x>) against the name and version the plugin describes: it is the name, or
// the name with a version suffix, -<version> or -v<version>, that is the version described (a
// release named pgimaged-plugin-tarball-0.1.1 is plugin tarball 0.1.1).
func NameMatches(fileName, name, version string) error {
	if fileName == "" || fileName == name {
		return nil
	}
	if suffix, ok := strings.CutPrefix(fileName, name+"-"); ok {
		if version != "" && strings.TrimPrefix(suffix, "v") == strings.TrimPrefix(version, "v") {
			return nil
		}
		return fmt.Errorf("is named %q: plugin %s with the suffix %q, but the plugin describes itself as version %q; a version suffix must be the plugin's own version: rename the file to %s%s (or %s%s-%s) and install that",
			fileName, name, suffix, version, Prefix, name, Prefix, name, version)
	}
	return fmt.Errorf("is named %q but describes itself as %q; the name pgimaged lists and the configuration uses must be the plugin's own: rename the file to %s%s and install that",
		fileName, name, Prefix, name)
}

// LaunchFile starts the executable at path as a plugin, without the checks of a catalog (where
// it lives, pins, the lock file), and asks it to describe itself within timeout (0: 30s). The
// caller must Kill the instance.
func LaunchFile(ctx context.Context, path string, timeout time.Duration, logger hclog.Logger) (*Instance, error) {
	name := FileName(path)
	if name == "" {
		name = filepath.Base(path)
	}
	if timeout <= 0 {
		timeout = 30 * time.Second
	}
	fi, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("while checking plugin %q: %w", path, err)
	}
	if !fi.Mode().IsRegular() || fi.Mode().Perm()&0o111 == 0 {
		return nil, fmt.Errorf("plugin %q is not an executable file (mode %s)", path, fi.Mode())
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	c := &Catalog{StartTimeout: timeout, Logger: logger}
	return c.start(ctx, name, path, nil)
}

// InstallOptions say where Install puts a plugin.
type InstallOptions struct {
	Dir      string        // the plugin directory; made (0755) when missing
	LockFile string        // the lock file to record the plugin in; made when missing
	Timeout  time.Duration // bounds the plugin's start and Describe; 0: 30s
	Logger   hclog.Logger
}

// Installed is what Install did.
type Installed struct {
	LockEntry
	Path        string
	Description string
	Replaced    bool // a plugin of that name was there before
}

// Install checks that the file at src is a plugin (it starts, completes the handshake and
// describes itself), copies it 0755 into the plugin directory as pgimaged-plugin-<its name>,
// atomically, and records its name, version and sha256 in the lock file. A file named
// pgimaged-plugin-<x> that describes itself as another name is refused ([ErrNameMismatch]).
func Install(ctx context.Context, src string, opts InstallOptions) (Installed, error) {
	if fi, err := os.Stat(filepath.Dir(opts.LockFile)); err != nil || !fi.IsDir() {
		return Installed{}, fmt.Errorf("cannot record plugins in lock file %s: its directory is not there (give -config or -lock)", opts.LockFile)
	}
	if err := os.MkdirAll(opts.Dir, 0o755); err != nil {
		return Installed{}, fmt.Errorf("while creating plugin directory: %w", err)
	}
	if err := CheckDir(opts.Dir); err != nil {
		return Installed{}, err
	}
	// The copy is what gets checked, hashed and renamed into place: the source may change meanwhile.
	tmp, sum, err := copyExecutable(src, opts.Dir)
	if err != nil {
		return Installed{}, err
	}
	defer os.Remove(tmp)
	inst, err := LaunchFile(ctx, tmp, opts.Timeout, opts.Logger)
	if err != nil {
		return Installed{}, fmt.Errorf("%s is not a pgimaged plugin that works: %w", src, err)
	}
	info := inst.Info
	if err := inst.End(); err != nil {
		return Installed{}, fmt.Errorf("while stopping plugin %s after checking it: %w", src, err)
	}
	if info.Name == "" {
		return Installed{}, fmt.Errorf("%s describes itself with an empty name; it cannot be installed", src)
	}
	if FileName(info.Name) != "" || strings.ContainsAny(info.Name, `/\ `) || info.Name == "." || info.Name == ".." {
		return Installed{}, fmt.Errorf("%s describes itself as %q, which is not usable as a plugin name", src, info.Name)
	}
	if err := NameMatches(FileName(src), info.Name, info.Version); err != nil {
		return Installed{}, fmt.Errorf("%w: %s %v", ErrNameMismatch, src, err)
	}
	lock, err := ReadLock(opts.LockFile)
	if err != nil {
		return Installed{}, err
	}
	if lock == nil {
		lock = &Lock{Path: opts.LockFile, Entries: map[string]LockEntry{}}
	}
	dst := filepath.Join(opts.Dir, Prefix+info.Name)
	_, statErr := os.Stat(dst)
	if err := os.Chmod(tmp, 0o755); err != nil {
		return Installed{}, fmt.Errorf("while installing plugin %s: %w", info.Name, err)
	}
	if err := os.Rename(tmp, dst); err != nil {
		return Installed{}, fmt.Errorf("while installing plugin %s as %s: %w", info.Name, dst, err)
	}
	entry := LockEntry{Name: info.Name, Version: info.Version, SHA256: sum}
	lock.Entries[info.Name] = entry
	if err := lock.Write(); err != nil {
		return Installed{}, fmt.Errorf("plugin %s is installed as %s but not recorded: %w", info.Name, dst, err)
	}
	return Installed{LockEntry: entry, Path: dst, Description: info.Description, Replaced: statErr == nil}, nil
}

// copyExecutable copies src into a new private file in dir and returns its path and sha256.
func copyExecutable(src, dir string) (string, string, error) {
	in, err := os.Open(src)
	if err != nil {
		return "", "", fmt.Errorf("while reading plugin %s: %w", src, err)
	}
	defer in.Close()
	fi, err := in.Stat()
	if err != nil {
		return "", "", fmt.Errorf("while reading plugin %s: %w", src, err)
	}
	if !fi.Mode().IsRegular() {
		return "", "", fmt.Errorf("plugin %s is not a regular file", src)
	}
	out, err := os.CreateTemp(dir, ".install-*")
	if err != nil {
		return "", "", fmt.Errorf("while copying plugin %s into %s: %w", src, dir, err)
	}
	ok := false
	defer func() {
		if !ok {
			out.Close()
			os.Remove(out.Name())
		}
	}()
	if _, err := io.Copy(out, in); err != nil {
		return "", "", fmt.Errorf("while copying plugin %s into %s: %w", src, dir, err)
	}
	if err := out.Chmod(0o700); err != nil {
		return "", "", err
	}
	if err := out.Sync(); err != nil {
		return "", "", err
	}
	if err := out.Close(); err != nil {
		return "", "", err
	}
	ok = true
	sum, err := fileSHA256(out.Name())
	if err != nil {
		os.Remove(out.Name())
		return "", "", err
	}
	return out.Name(), sum, nil
}
