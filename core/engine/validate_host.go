package engine

import (
	"errors"
	"fmt"
	"net"
	"os"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"

	"github.com/hashicorp/hcl/v2"

	"github.com/pgimaged/pgimaged/core/pg"
)

// ValidateHost checks what this machine must offer the configuration before anything runs: the
// listen port is free (or held by this data directory's own running server), and the data
// directory belongs to the account PostgreSQL runs as, or can be created by it (warnings when
// run as root, which can only assume that account is postgres). Diagnostics point at
// postgresql.listen and data_dir.
func (n *Node) ValidateHost() hcl.Diagnostics {
	return append(n.validateListen(), n.validateOwner()...)
}

// validateListen reports a listen address whose port another program holds: PostgreSQL would
// fail to start with "could not bind". A server of this data directory itself is no conflict.
func (n *Node) validateListen() hcl.Diagnostics {
	srv, err := n.server()
	if err != nil {
		return nil // decoding reported the listen address already
	}
	if _, running := srv.Running(); running {
		return nil
	}
	hosts, _, _ := pg.SplitListen(n.Config.PostgreSQL.Listen)
	for host := range strings.SplitSeq(hosts, ",") {
		if host == "*" {
			host = "0.0.0.0"
		}
		addr := net.JoinHostPort(host, strconv.Itoa(srv.Port))
		ln, err := net.Listen("tcp", addr)
		if err == nil {
			_ = ln.Close()
			continue
		}
		if !errors.Is(err, syscall.EADDRINUSE) {
			continue // an address of another host, or no permission: PostgreSQL's own start says
		}
		r := n.Config.RangeOf("postgresql.listen")
		return hcl.Diagnostics{{
			Severity: hcl.DiagError, Summary: "Port in use",
			Detail:  fmt.Sprintf("Another program listens on %s, and it is not this data directory's PostgreSQL: the server could not start (\"could not bind\"). Stop that program or choose another port.", addr),
			Subject: &r,
		}}
	}
	return nil
}

// validateOwner reports a data directory PostgreSQL could not use: one that belongs to another
// account, a cluster whose mode PostgreSQL refuses, or a missing one that the account cannot
// create.
func (n *Node) validateOwner() hcl.Diagnostics {
	dir := n.Config.DataDir
	acct, err := pg.Account(dir)
	if dir == "" || err != nil {
		return nil
	}
	uid, _ := strconv.Atoi(acct.Uid)
	// Run as root, pgimaged can only assume the account (the packaged units' postgres): what it
	// finds is a warning then, an error when it runs as the account itself.
	severity := hcl.DiagError
	if os.Geteuid() == 0 {
		severity = hcl.DiagWarning
	}
	at := func(summary, detail string) hcl.Diagnostics {
		r := n.Config.RangeOf("data_dir")
		return hcl.Diagnostics{{Severity: severity, Summary: summary, Detail: detail, Subject: &r}}
	}
	fi, err := os.Stat(dir)
	switch {
	case err == nil:
		st, _ := fi.Sys().(*syscall.Stat_t)
		if st != nil && int(st.Uid) != uid {
			return at("Data directory of another account",
				fmt.Sprintf("data_dir %s belongs to %s, but PostgreSQL runs as %s and refuses a data directory it does not own. Give it to that account (chown -R %s %s) or choose another directory.",
					dir, accountName(st.Uid), acct.Username, acct.Username, dir))
		}
		if mode := fi.Mode().Perm(); pg.HasCluster(dir) && mode&0o027 != 0 {
			return at("Data directory mode refused by PostgreSQL",
				fmt.Sprintf("data_dir %s has mode %04o: PostgreSQL starts a cluster only from a directory with mode 0700 or 0750 (chmod 0700 %s).", dir, mode, dir))
		}
		return nil
	case !errors.Is(err, os.ErrNotExist):
		return nil // ValidateDataDir reports a directory that cannot be inspected
	}
	parent := filepath.Dir(dir)
	for {
		pfi, err := os.Stat(parent)
		if err == nil {
			if !pfi.IsDir() || writable(pfi, acct) {
				return nil // a file in the way is reported when the directory is made
			}
			return at("Data directory cannot be created",
				fmt.Sprintf("data_dir %s does not exist, and %s (its nearest existing parent) is not writable by %s, the account PostgreSQL runs as: pgimaged could not create it. Create it for that account (install -d -o %s -m 0700 %s).",
					dir, parent, acct.Username, acct.Username, dir))
		}
		if up := filepath.Dir(parent); up != parent {
			parent = up
			continue
		}
		return nil
	}
}

// writable reports whether the directory fi may be written by acct, as its mode bits say.
func writable(fi os.FileInfo, acct *user.User) bool {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return true
	}
	mode := fi.Mode().Perm()
	if strconv.FormatUint(uint64(st.Uid), 10) == acct.Uid {
		return mode&0o200 != 0
	}
	groups, _ := acct.GroupIds()
	if slices.Contains(groups, strconv.FormatUint(uint64(st.Gid), 10)) || acct.Gid == strconv.FormatUint(uint64(st.Gid), 10) {
		return mode&0o020 != 0
	}
	return mode&0o002 != 0
}

// accountName is uid's name, or the number when it has none.
func accountName(uid uint32) string {
	if u, err := user.LookupId(strconv.FormatUint(uint64(uid), 10)); err == nil {
		return u.Username
	}
	return "uid " + strconv.FormatUint(uint64(uid), 10)
}
