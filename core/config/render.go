package config

import (
	"errors"
	"math/big"
	"strconv"

	"github.com/zclconf/go-cty/cty"
)

// Errors of [RenderValue]: a value that is not a string, number or bool, and a number beyond
// about 1e±300 or infinite.
var (
	ErrNotScalar   = errors.New("value must be a string, number or bool")
	ErrNumberRange = errors.New("number is out of range")
)

// maxBinaryExponent bounds the numbers RenderValue accepts: a little beyond float8.
const maxBinaryExponent = 1100

// RenderValue renders an option or parameter value as the string handed to a plugin or written
// into postgresql.conf: a string as is; a number in its shortest decimal form, without an
// exponent for 64-bit integers (1 → "1", 1.5 → "1.5"); a bool as "true" or "false"; anything
// else (null, unknown, lists, objects) is [ErrNotScalar].
func RenderValue(v cty.Value) (string, error) {
	v, _ = v.Unmark()
	if v.IsNull() || !v.IsKnown() {
		return "", ErrNotScalar
	}
	switch v.Type() {
	case cty.String:
		return v.AsString(), nil
	case cty.Bool:
		return strconv.FormatBool(v.True()), nil
	case cty.Number:
		return renderNumber(v.AsBigFloat())
	}
	return "", ErrNotScalar
}

func renderNumber(f *big.Float) (string, error) {
	if f.IsInf() {
		return "", ErrNumberRange
	}
	if f.Sign() == 0 {
		return "0", nil
	}
	if exp := f.MantExp(nil); exp > maxBinaryExponent || exp < -maxBinaryExponent {
		return "", ErrNumberRange
	}
	if f.IsInt() {
		if i, acc := f.Int64(); acc == big.Exact {
			return strconv.FormatInt(i, 10), nil
		}
	}
	abs := new(big.Float).Abs(f)
	if abs.Cmp(big.NewFloat(1e-6)) >= 0 && abs.Cmp(big.NewFloat(1e21)) < 0 {
		return f.Text('f', -1), nil
	}
	return f.Text('g', -1), nil
}
