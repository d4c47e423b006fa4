package patroni

import (
	"slices"
	"strings"

	"github.com/hashicorp/hcl/v2/hclwrite"
	"github.com/zclconf/go-cty/cty"
)

// tlsKeys are the libpq TLS settings of Patroni's authentication sections that pgimaged takes,
// with whether each is a file (made absolute against the base directory). sslpassword is a
// secret, converted like a password.
var tlsKeys = []struct {
	key  string
	file bool
}{{"sslmode", false}, {"sslrootcert", true}, {"sslcert", true}, {"sslkey", true}, {"sslcrl", true}}

// credentialsTLS writes the TLS settings of the authentication section sec (at path) for role.
func (c *conv) credentialsTLS(rb *hclwrite.Body, sec map[string]any, path, role string) {
	for _, k := range tlsKeys {
		v := c.str(sec, k.key, path)
		if v == "" {
			continue
		}
		if k.file && v != "system" {
			v = c.abs(v)
		}
		rb.SetAttributeValue(k.key, cty.StringVal(v))
	}
	c.password(rb, "sslpassword", c.str(sec, "sslpassword", path), path+".sslpassword",
		"PGIMAGED_"+strings.ToUpper(role)+"_SSLPASSWORD")
}

// standbyKeys are the keys of Patroni's standby_cluster that pgimaged's block takes as they are.
var standbyKeys = []string{"host", "port", "primary_slot_name", "create_replica_methods", "restore_command",
	"archive_cleanup_command", "recovery_min_apply_delay"}

// standbyCluster writes the standby_cluster block from bootstrap.dcs.standby_cluster (where
// Patroni reads it) or a top-level standby_cluster, the top-level one winning as local settings
// do. It writes a method block for each method it names that has a postgresql section and no
// block yet (written holds those already written); it returns them all.
func (c *conv) standbyCluster(root, dyn, pgsec map[string]any, written []string) []string {
	sec, path := c.section(root, "standby_cluster", ""), "standby_cluster"
	if dynSec, ok := take(dyn, "standby_cluster"); ok {
		if sec == nil {
			sec, path = c.mapping(dynSec, "bootstrap.dcs.standby_cluster"), "bootstrap.dcs.standby_cluster"
		} else {
			c.note("bootstrap.dcs.standby_cluster", dynSec, "standby_cluster is set at the top level, which is converted")
		}
	}
	if sec == nil {
		return written
	}
	blk := hclwrite.NewBlock("standby_cluster", nil)
	for _, k := range standbyKeys {
		v, ok := take(sec, k)
		if !ok || v == nil {
			continue
		}
		if k == "create_replica_methods" {
			names := c.methodNames(v, path+"."+k)
			blk.Body().SetAttributeValue(k, listVal(names))
			for _, n := range names {
				if slices.Contains(written, n) {
					continue
				}
				if msec, ok := take(pgsec, n); ok && c.method(n, msec, "postgresql."+n) {
					written = append(written, n)
				}
			}
			continue
		}
		c.setAny(blk.Body(), k, v, path+"."+k)
	}
	c.leftovers(path, sec)
	c.body.AppendNewline()
	c.body.AppendBlock(blk)
	return written
}

// mapping is v as a mapping; nil, noted, when it is not one.
func (c *conv) mapping(v any, path string) map[string]any {
	m, ok := v.(map[string]any)
	if !ok && v != nil {
		c.note(path, v, "not a mapping")
	}
	return m
}
