package plugintest

import (
	"strings"

	"github.com/pgimaged/pgimaged/sdk"
)

// Options builds a method's options from words, in order: "name=value" is an option with that
// value (split at the first '='), a bare "name" is a flag, as in a list-form `options`.
func Options(words ...string) sdk.Options {
	var out sdk.Options
	for _, w := range words {
		name, value, ok := strings.Cut(w, "=")
		out = append(out, sdk.Option{Name: name, Value: value, Flag: !ok})
	}
	return out
}
