package config

import (
	"fmt"
	"math/big"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/hashicorp/hcl/v2"
	"github.com/zclconf/go-cty/cty"

	"github.com/pgimaged/pgimaged/core/pg"
)

// StandbyCluster is the `standby_cluster` block, with Patroni's keys and meanings: the cluster
// is a standby cluster whose leader follows a remote primary (Host, Ports) or an archive
// (RestoreCommand), or both, and whose other members cascade from that leader.
type StandbyCluster struct {
	// Host is the remote's host, or several in libpq's form ("10.1.0.5,10.1.0.6"); "" for a
	// standby cluster that follows an archive alone.
	Host string
	// Ports are the remote's ports: none (libpq's default), one for every host, or one per host.
	Ports           []int
	PrimarySlotName string
	// CreateReplicaMethods make the standby leader's data directory from the remote; defaults
	// to ["basebackup"]. Without Host only the methods that work without a source are used.
	CreateReplicaMethods  []string
	RestoreCommand        string
	ArchiveCleanupCommand string
	// RecoveryMinApplyDelay is recovery_min_apply_delay; 0 when not set (or set to 0).
	RecoveryMinApplyDelay time.Duration
	DefRange              hcl.Range
}

type standbySchema struct {
	DefRange              hcl.Range `hcl:",def_range"`
	Host                  *string   `hcl:"host,optional"`
	Port                  cty.Value `hcl:"port,optional"`
	PrimarySlotName       *string   `hcl:"primary_slot_name,optional"`
	CreateReplicaMethods  []string  `hcl:"create_replica_methods,optional"`
	RestoreCommand        *string   `hcl:"restore_command,optional"`
	ArchiveCleanupCommand *string   `hcl:"archive_cleanup_command,optional"`
	RecoveryMinApplyDelay cty.Value `hcl:"recovery_min_apply_delay,optional"`
}

// Remote is the connection to the remote primary, without credentials: nil for a standby
// cluster without Host. With several hosts it asks libpq for the one that accepts writes
// (target_session_attrs=read-write, which PostgreSQL 14 and later answer from the settings the
// server reports, so WAL receivers and pg_basebackup honour it too): the standby leader streams
// from the remote's primary, wherever it moved, never from one of its standbys.
func (s *StandbyCluster) Remote() *pg.Conn {
	if s == nil || s.Host == "" {
		return nil
	}
	c := &pg.Conn{Host: s.Host, Database: "postgres"}
	if strings.Contains(s.Host, ",") {
		c.Params = map[string]string{"target_session_attrs": "read-write"}
	}
	switch len(s.Ports) {
	case 0:
	case 1:
		c.Port = s.Ports[0]
	default:
		c.Ports = s.Ports
	}
	return c
}

// RecoverySettings are the block's settings for the standby leader's recovery:
// primary_slot_name, restore_command, archive_cleanup_command and recovery_min_apply_delay
// (in milliseconds), those that are set. primary_conninfo is the caller's (see Remote).
func (s *StandbyCluster) RecoverySettings() map[string]string {
	out := map[string]string{}
	if s == nil {
		return out
	}
	for k, v := range map[string]string{"primary_slot_name": s.PrimarySlotName, "restore_command": s.RestoreCommand,
		"archive_cleanup_command": s.ArchiveCleanupCommand} {
		if v != "" {
			out[k] = v
		}
	}
	if s.RecoveryMinApplyDelay > 0 {
		out["recovery_min_apply_delay"] = strconv.FormatInt(s.RecoveryMinApplyDelay.Milliseconds(), 10) + "ms"
	}
	return out
}

// Describe is the block for people, but for the remote (see Remote): the slot, the archive
// commands, the delay and the methods.
func (s *StandbyCluster) Describe() string {
	if s == nil {
		return "none"
	}
	var parts []string
	if s.PrimarySlotName != "" {
		parts = append(parts, "slot "+s.PrimarySlotName)
	}
	if s.RestoreCommand != "" {
		parts = append(parts, "restore_command "+strconv.Quote(s.RestoreCommand))
	}
	if s.ArchiveCleanupCommand != "" {
		parts = append(parts, "archive_cleanup_command "+strconv.Quote(s.ArchiveCleanupCommand))
	}
	if s.RecoveryMinApplyDelay > 0 {
		parts = append(parts, "recovery_min_apply_delay "+s.RecoveryMinApplyDelay.String())
	}
	parts = append(parts, "methods "+strings.Join(s.CreateReplicaMethods, ", "))
	return strings.Join(parts, "; ")
}

// slotName is what PostgreSQL takes as a replication slot's name.
var slotName = regexp.MustCompile(`^[a-z0-9_]{1,63}$`)

func (d *decoder) standby(s *standbySchema) {
	const at = "standby_cluster."
	b := &StandbyCluster{DefRange: s.DefRange, CreateReplicaMethods: s.CreateReplicaMethods}
	d.cfg.StandbyCluster = b
	if h := d.nonEmpty(s.Host, at+"host"); h != "" {
		for _, one := range strings.Split(h, ",") {
			if strings.TrimSpace(one) == "" || strings.ContainsAny(one, " \t'\\=") {
				d.fail(at+"host", "Invalid host", "host %s must be a host name, an address or a socket directory, or several separated by commas, as libpq takes them.", d.quote(d.at(at+"host"), h))
				h = ""
				break
			}
		}
		b.Host = h
	}
	b.Ports = d.ports(s.Port, at+"port")
	if n, hosts := len(b.Ports), strings.Count(b.Host, ",")+1; b.Host != "" && n > 1 && n != hosts {
		d.fail(at+"port", "Ports do not match hosts", "port names %d ports for %d hosts: give one port, or one per host, as libpq takes them.", n, hosts)
	}
	if d.written(at+"port") && !d.written(at+"host") {
		d.fail(at+"port", "Port without host", "port is set without host: name the remote primary's host too.")
	}
	if v, ok := d.str(s.PrimarySlotName, at+"primary_slot_name"); ok && slotName.MatchString(v) {
		b.PrimarySlotName = v
	} else if ok {
		d.fail(at+"primary_slot_name", "Invalid slot name", "primary_slot_name %s is not a replication slot name: lower-case letters, digits and '_', at most 63.", d.quote(d.at(at+"primary_slot_name"), v))
	}
	if b.PrimarySlotName != "" && !d.written(at+"host") {
		d.fail(at+"primary_slot_name", "Slot without host", "primary_slot_name is a slot on the remote primary, but host is not set: name the remote, or remove the slot.")
	}
	b.RestoreCommand = d.nonEmpty(s.RestoreCommand, at+"restore_command")
	b.ArchiveCleanupCommand = d.nonEmpty(s.ArchiveCleanupCommand, at+"archive_cleanup_command")
	b.RecoveryMinApplyDelay = d.applyDelay(s.RecoveryMinApplyDelay, at+"recovery_min_apply_delay")
	if !d.written(at+"host") && !d.written(at+"restore_command") {
		d.errorAt(s.DefRange, "Standby cluster without a primary", "standby_cluster needs host (and port) of the remote primary, or restore_command to follow an archive, or both.")
	}
	if len(b.CreateReplicaMethods) == 0 {
		b.CreateReplicaMethods = []string{DefaultReplicaMethod}
	}
}

// ports decodes a port setting: a number, or a string of one or more, separated by commas.
func (d *decoder) ports(v cty.Value, key string) []int {
	if v.IsNull() || !d.ok(key) {
		return nil
	}
	var text string
	switch v.Type() {
	case cty.Number:
		f := v.AsBigFloat()
		if !f.IsInt() {
			d.fail(key, "Invalid port", "port must be a whole number from 1 to 65535.")
			return nil
		}
		n, _ := f.Int(new(big.Int))
		text = n.String()
	case cty.String:
		text = v.AsString()
	default:
		d.wrongType(key, "number or string")
		return nil
	}
	var out []int
	for _, p := range strings.Split(text, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(p))
		if err != nil || n < 1 || n > 65535 {
			d.fail(key, "Invalid port", "port %s must be a port from 1 to 65535, or several separated by commas (\"5432,5433\").", d.quote(d.at(key), text))
			return nil
		}
		out = append(out, n)
	}
	return out
}

// applyDelay decodes recovery_min_apply_delay as PostgreSQL reads it: a number of
// milliseconds, or a number with a unit ("5min", "30s", also Go's "1h30m"); 0 turns it off.
func (d *decoder) applyDelay(v cty.Value, key string) time.Duration {
	if v.IsNull() || !d.ok(key) {
		return 0
	}
	s, _ := RenderValue(v)
	if v.Type() != cty.String && v.Type() != cty.Number {
		d.wrongType(key, "string")
		return 0
	}
	dur, err := parseDuration(s, time.Millisecond)
	if err != nil {
		d.fail(key, "Invalid duration", "recovery_min_apply_delay: %s is not a duration; write a number with a unit, such as \"5min\", or milliseconds.", d.quote(d.at(key), s))
	}
	return dur
}

// checkStandby checks standby_cluster's methods as create_replica_methods' are checked.
func (d *decoder) checkStandby() {
	if b := d.cfg.StandbyCluster; b != nil && d.written("standby_cluster.create_replica_methods") {
		d.checkMethodList("standby_cluster.create_replica_methods", "standby_cluster.create_replica_methods", b.CreateReplicaMethods)
	}
}

// checkMethodList checks a list of replica methods written at key (setting names it in
// diagnostics): each named once, each a method block or a builtin.
func (d *decoder) checkMethodList(key, setting string, names []string) {
	seen := map[string]int{}
	for i, name := range names {
		at := fmt.Sprintf("%s[%d]", key, i)
		if j, dup := seen[name]; dup {
			d.fail(at, "Duplicate replica method", "create_replica_methods names %s twice (also at position %d).", d.quote(d.at(at), name), j+1)
			continue
		}
		seen[name] = i
		d.checkDefined(at, setting, name, ReplicaBuiltins)
	}
}
