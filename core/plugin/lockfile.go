package plugin

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"

	goplugin "github.com/hashicorp/go-plugin"
	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/hashicorp/hcl/v2/hclwrite"
	"github.com/zclconf/go-cty/cty"
)

// The plugin lock file, in the spirit of Terraform's dependency lock file, records which
// plugins are installed and what their executables hold:
//
//	# This file is maintained by "pgimaged plugins install".
//	# Manual edits may be lost when it next installs a plugin.
//
//	plugin "basebackup" {
//	  version = "0.1.0"
//	  sha256  = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"
//	}
//
// It lives beside the configuration file ([LockPath]). When it exists, every launch checks the
// plugin against it: a plugin absent from it, or whose executable's sha256 differs, is refused.

// LockFileName is the lock file's name, beside the configuration file.
const LockFileName = "plugins.lock.hcl"

// DefaultLockFile is where the lock file is when there is no configuration file to put it beside:
// the packaged configuration directory.
const DefaultLockFile = "/etc/pgimaged/" + LockFileName

var (
	// ErrNotLocked: a lock file exists and the plugin is not in it; it was not started.
	ErrNotLocked = errors.New("plugin not in the lock file")
	// ErrNoLockFile: there is no lock file to check against.
	ErrNoLockFile = errors.New("no plugin lock file")
)

// LockPath is the lock file beside the configuration file configFile.
func LockPath(configFile string) string {
	return filepath.Join(filepath.Dir(configFile), LockFileName)
}

// LockEntry is one plugin of the lock file.
type LockEntry struct {
	Name    string
	Version string
	SHA256  string // lower-case hex
	// Range is where the entry's sha256 is written in the lock file (zero for a new entry).
	Range hcl.Range
}

// Lock is the content of a lock file.
type Lock struct {
	Path    string
	Entries map[string]LockEntry
}

const lockHeader = `# This file is maintained by "pgimaged plugins install": it records each installed
# plugin's version and the sha256 of its executable, and pgimaged refuses to start a plugin
# that does not match it. Manual edits may be lost when it next installs a plugin.
`

var sha256Hex = regexp.MustCompile(`^[0-9a-f]{64}$`)

// ReadLock reads the lock file at path. A file that does not exist is (nil, nil): no lock.
func ReadLock(path string) (*Lock, error) {
	src, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("while reading the plugin lock file: %w", err)
	}
	lock := &Lock{Path: path, Entries: map[string]LockEntry{}}
	f, diags := hclsyntax.ParseConfig(src, path, hcl.InitialPos)
	if diags.HasErrors() {
		return nil, fmt.Errorf("while reading the plugin lock file: %w", diags)
	}
	content, diags := f.Body.Content(&hcl.BodySchema{Blocks: []hcl.BlockHeaderSchema{{Type: "plugin", LabelNames: []string{"name"}}}})
	if diags.HasErrors() {
		return nil, fmt.Errorf("while reading the plugin lock file: %w", diags)
	}
	for _, b := range content.Blocks {
		name := b.Labels[0]
		if _, dup := lock.Entries[name]; dup {
			return nil, fmt.Errorf("while reading the plugin lock file: %s: plugin %q is listed twice", b.DefRange, name)
		}
		attrs, diags := b.Body.JustAttributes()
		if diags.HasErrors() {
			return nil, fmt.Errorf("while reading the plugin lock file: %w", diags)
		}
		e := LockEntry{Name: name}
		for key, a := range attrs {
			v, diags := a.Expr.Value(nil)
			if diags.HasErrors() || v.Type() != cty.String || v.IsNull() {
				return nil, fmt.Errorf("while reading the plugin lock file: %s: %s must be a string", a.Range, key)
			}
			switch key {
			case "version":
				e.Version = v.AsString()
			case "sha256":
				e.SHA256 = strings.ToLower(v.AsString())
				e.Range = a.Expr.Range()
			default:
				return nil, fmt.Errorf("while reading the plugin lock file: %s: unknown attribute %q", a.Range, key)
			}
		}
		if !sha256Hex.MatchString(e.SHA256) {
			return nil, fmt.Errorf("while reading the plugin lock file: %s: plugin %q has no valid sha256 (64 hexadecimal digits)", b.DefRange, name)
		}
		lock.Entries[name] = e
	}
	return lock, nil
}

// Write replaces the lock file atomically with l's entries, sorted by name.
func (l *Lock) Write() error {
	f := hclwrite.NewEmptyFile()
	body := f.Body()
	names := slices.Sorted(maps.Keys(l.Entries))
	for _, n := range names {
		e := l.Entries[n]
		body.AppendNewline()
		b := body.AppendNewBlock("plugin", []string{n}).Body()
		b.SetAttributeValue("version", cty.StringVal(e.Version))
		b.SetAttributeValue("sha256", cty.StringVal(e.SHA256))
	}
	out := append([]byte(lockHeader), f.Bytes()...)
	if err := writeAtomic(l.Path, out, 0o644); err != nil {
		return fmt.Errorf("while writing the plugin lock file: %w", err)
	}
	return nil
}

// writeAtomic writes data to a temporary file beside path and renames it over path.
func writeAtomic(path string, data []byte, mode os.FileMode) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Chmod(mode); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}

// ChecksumError reports that a plugin's executable does not hold what the configuration's pin (Lock empty)
// or the lock file says. It matches [ErrChecksumMismatch].
type ChecksumError struct {
	Name, Path string
	Got, Want  string
	// Lock is the lock file that records Want, empty when the configuration pins it.
	Lock string
	// Range is where the lock file records Want (zero for a configuration pin).
	Range hcl.Range
}

func (e *ChecksumError) Error() string {
	if e.Lock == "" {
		return fmt.Sprintf("%v: %s at %s has sha256 %s, configuration pins %s; refusing to start it", ErrChecksumMismatch, e.Name, e.Path, e.Got, e.Want)
	}
	return fmt.Sprintf("%v: %s at %s has sha256 %s, lock file %s records %s; refusing to start it (run `pgimaged plugins install` to install it again)", ErrChecksumMismatch, e.Name, e.Path, e.Got, e.Lock, e.Want)
}

func (e *ChecksumError) Is(target error) bool { return target == ErrChecksumMismatch }

// checkLock checks the plugin at path, called name, against the catalog's lock file and returns
// the checksum go-plugin checks again when it starts it (nil when there is no lock).
func (c *Catalog) checkLock(name, path string) (*goplugin.SecureConfig, error) {
	if c.LockFile == "" {
		return nil, nil
	}
	lock, err := ReadLock(c.LockFile)
	if err != nil || lock == nil {
		return nil, err
	}
	e, ok := lock.Entries[name]
	if !ok {
		pin, pinned := c.Pins[name]
		if pinned && pin.Path != "" && (c.Dir == "" || filepath.Dir(path) != filepath.Clean(c.Dir)) {
			return nil, nil // a plugin outside the directory, which the configuration names by path
		}
		return nil, fmt.Errorf("%w: plugin %s (%s) is not recorded in %s; run `pgimaged plugins install %s` to install and record it", ErrNotLocked, name, path, lock.Path, path)
	}
	sum, err := fileSHA256(path)
	if err != nil {
		return nil, err
	}
	if sum != e.SHA256 {
		return nil, &ChecksumError{Name: name, Path: path, Got: sum, Want: e.SHA256, Lock: lock.Path, Range: e.Range}
	}
	want, _ := hex.DecodeString(e.SHA256)
	return &goplugin.SecureConfig{Checksum: want, Hash: sha256.New()}, nil
}

// Difference is one way the plugin directory differs from the lock file.
type Difference struct {
	Name string `json:"name"`
	// Kind is "missing" (locked, not in the directory), "extra" (in the directory, not locked)
	// or "mismatch" (its sha256 differs from the lock's).
	Kind   string `json:"kind"`
	Path   string `json:"path"`
	Detail string `json:"detail"`
}

// Verify checks the plugin directory dir against the lock file lockFile without starting any
// plugin, and returns the differences, sorted by name. No lock file is an error wrapping
// [ErrNoLockFile].
func Verify(dir, lockFile string) ([]Difference, error) {
	lock, err := ReadLock(lockFile)
	if err != nil {
		return nil, err
	}
	if lock == nil {
		return nil, fmt.Errorf("%w at %s: run `pgimaged plugins install FILE` to install plugins and record them", ErrNoLockFile, lockFile)
	}
	if err := CheckDir(dir); err != nil {
		return nil, err
	}
	des, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("while reading plugin directory %q: %w", dir, err)
	}
	var diffs []Difference
	present := map[string]bool{}
	for _, de := range des {
		name, ok := strings.CutPrefix(de.Name(), Prefix)
		if !ok || name == "" || de.IsDir() {
			continue
		}
		present[name] = true
		path := filepath.Join(dir, de.Name())
		e, locked := lock.Entries[name]
		if !locked {
			diffs = append(diffs, Difference{Name: name, Kind: "extra", Path: path, Detail: "not recorded in " + lockFile})
			continue
		}
		sum, err := fileSHA256(path)
		if err != nil {
			return nil, err
		}
		if sum != e.SHA256 {
			diffs = append(diffs, Difference{Name: name, Kind: "mismatch", Path: path,
				Detail: fmt.Sprintf("sha256 %s, lock file records %s", sum, e.SHA256)})
		}
	}
	for name, e := range lock.Entries {
		if !present[name] {
			diffs = append(diffs, Difference{Name: name, Kind: "missing", Path: filepath.Join(dir, Prefix+name),
				Detail: fmt.Sprintf("recorded in %s (version %s) but not in the directory", lockFile, e.Version)})
		}
	}
	sort.Slice(diffs, func(a, b int) bool { return diffs[a].Name < diffs[b].Name })
	return diffs, nil
}
