// Command packaging builds pgimaged's Debian package with nfpm:
//
//	go run . -version 1.2.3 -bin ../bin/deb -out ../bin/pgimaged_1.2.3_amd64.deb
//
// -bin holds pgimaged and plugins/pgimaged-plugin-<name> as `make package` builds them; the
// unit files, the default configuration and the maintainer scripts are in deb/.
package main

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/goreleaser/nfpm/v2"
	"github.com/goreleaser/nfpm/v2/deb"
	"github.com/goreleaser/nfpm/v2/files"
)

// Plugins are the plugins the package ships, in /usr/lib/pgimaged/plugins.
var Plugins = []string{"basebackup", "initdb", "pgbackrest", "rewind", "script", "wale"}

const pluginDir = "/usr/lib/pgimaged/plugins"

func main() {
	version := flag.String("version", "", "package version (a leading v is dropped; one not starting with a digit gets 0~ before it)")
	bin := flag.String("bin", "", "directory with pgimaged and plugins/")
	src := flag.String("src", "deb", "directory with the unit files, the default configuration and the maintainer scripts")
	out := flag.String("out", "", "the .deb to write")
	flag.Parse()
	if *version == "" || *bin == "" || *out == "" || flag.NArg() > 0 {
		flag.Usage()
		os.Exit(2)
	}
	if err := build(debVersion(*version), *bin, *src, *out); err != nil {
		fmt.Fprintf(os.Stderr, "packaging: %v\n", err)
		os.Exit(1)
	}
}

// debVersion turns a version from git describe into one dpkg accepts: v1.2.3-4-gabc → 1.2.3+4+gabc,
// abc1234-dirty → 0~abc1234+dirty.
func debVersion(v string) string {
	v = strings.TrimPrefix(v, "v")
	v = strings.ReplaceAll(v, "-", "+")
	if v == "" || v[0] < '0' || v[0] > '9' {
		v = "0~" + v
	}
	return v
}

func build(version, bin, src, out string) error {
	mode := func(m os.FileMode) *files.ContentFileInfo {
		return &files.ContentFileInfo{Owner: "root", Group: "root", Mode: m}
	}
	contents := files.Contents{
		{Source: filepath.Join(bin, "pgimaged"), Destination: "/usr/bin/pgimaged", FileInfo: mode(0o755)},
		{Destination: "/usr/lib/pgimaged", Type: files.TypeDir, FileInfo: mode(0o755)},
		{Destination: pluginDir, Type: files.TypeDir, FileInfo: mode(0o755)},
		{Destination: "/etc/pgimaged", Type: files.TypeDir, FileInfo: mode(0o755)},
		{Source: filepath.Join(src, "pgimaged.hcl"), Destination: "/etc/pgimaged/pgimaged.hcl", Type: files.TypeConfig,
			FileInfo: &files.ContentFileInfo{Owner: "root", Group: "postgres", Mode: 0o640}},
		{Source: filepath.Join(src, "pgimaged.service"), Destination: "/lib/systemd/system/pgimaged.service", FileInfo: mode(0o644)},
		{Source: filepath.Join(src, "pgimaged@.service"), Destination: "/lib/systemd/system/pgimaged@.service", FileInfo: mode(0o644)},
	}
	for _, p := range Plugins {
		contents = append(contents, &files.Content{Source: filepath.Join(bin, "plugins", "pgimaged-plugin-"+p),
			Destination: pluginDir + "/pgimaged-plugin-" + p, FileInfo: mode(0o755)})
	}
	for _, c := range contents {
		if c.Source == "" {
			continue
		}
		if _, err := os.Stat(c.Source); err != nil {
			return fmt.Errorf("while collecting %s: %w", c.Destination, err)
		}
	}
	info := nfpm.WithDefaults(&nfpm.Info{
		Name:          "pgimaged",
		Arch:          "amd64",
		Platform:      "linux",
		Version:       version,
		VersionSchema: "none",
		Section:       "database",
		Priority:      "optional",
		Maintainer:    "pgimaged developers <pgimaged@users.noreply.github.com>",
		Homepage:      "https://github.com/pgimaged/pgimaged",
		License:       "Apache-2.0",
		Description: "PostgreSQL data directories for a high-availability cluster\n" +
			"pgimaged bootstraps the first member of a cluster and clones the others with an\n" +
			"ordered list of methods (pg_basebackup, pgBackRest, WAL-E/WAL-G, scripts), each an\n" +
			"out-of-process plugin, coordinated through etcd.",
		Overridables: nfpm.Overridables{
			// postgresql-common creates the postgres account the units and the configuration use.
			Depends:    []string{"postgresql-common", "postgresql | postgresql-15 | postgresql-16 | postgresql-17"},
			Recommends: []string{"pgbackrest"},
			Suggests:   []string{"etcd-server"},
			Contents:   contents,
			Scripts: nfpm.Scripts{
				PostInstall: filepath.Join(src, "postinst"),
				PostRemove:  filepath.Join(src, "postrm"),
			},
		},
	})
	if err := nfpm.PrepareForPackager(info, "deb"); err != nil {
		return fmt.Errorf("while preparing the package's contents: %w", err)
	}
	if err := os.MkdirAll(filepath.Dir(out), 0o755); err != nil {
		return fmt.Errorf("while creating %s: %w", filepath.Dir(out), err)
	}
	f, err := os.Create(out)
	if err != nil {
		return fmt.Errorf("while creating %s: %w", out, err)
	}
	if err := deb.Default.Package(info, f); err != nil {
		f.Close()
		os.Remove(out)
		return fmt.Errorf("while writing %s: %w", out, err)
	}
	if err := f.Close(); err != nil {
		os.Remove(out)
		return fmt.Errorf("while writing %s: %w", out, err)
	}
	fmt.Printf("wrote %s (pgimaged %s)\n", out, version)
	return nil
}
