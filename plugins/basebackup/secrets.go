package main

import (
	"github.com/pgimaged/pgimaged/plugins/internal/pgtool"
	"github.com/pgimaged/pgimaged/sdk"
)

// secrets are the passwords to mask in anything shown (see [pgtool.Secrets]).
func secrets(req sdk.CloneRequest) []string { return pgtool.Secrets(req.ConnString, req.Env) }
