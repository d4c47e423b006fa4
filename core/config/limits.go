package config

import (
	"fmt"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"
)

// Limits on configuration input, so that a hostile or broken file costs bounded time and
// memory and always ends in diagnostics.
const (
	// MaxConfigSize is the largest configuration file read, in bytes (1 MiB).
	MaxConfigSize = 1 << 20
	// MaxNesting is the deepest nesting of blocks, brackets, strings and template
	// interpolations allowed, counting also chains of operators in one expression (each of
	// which the HCL parser and evaluator handle by recursion).
	MaxNesting = 64
	// MaxDiagnosticsShown is how many diagnostics [WriteDiagnostics] prints before it only
	// counts the rest.
	MaxDiagnosticsShown = 100
)

// CheckInput reports what makes src unsafe to hand to a parser: more than MaxConfigSize bytes, or
// nesting deeper than MaxNesting. Parse checks it first; so does anything else that parses a
// file a user names (as HCL or YAML), since parsers recurse on nesting.
func CheckInput(filename string, src []byte) hcl.Diagnostics {
	if len(src) > MaxConfigSize {
		return tooLarge(filename, int64(len(src)))
	}
	return checkNesting(src, filename)
}

func tooLarge(filename string, size int64) hcl.Diagnostics {
	return hcl.Diagnostics{{
		Severity: hcl.DiagError,
		Summary:  "Configuration file too large",
		Detail:   fmt.Sprintf("%s holds %d bytes; a configuration may hold at most 1 MiB (%d bytes).", filename, size, MaxConfigSize),
	}}
}

// checkNesting reads the tokens of src, which the lexer produces without recursion, and
// reports the first place where the parser would have to recurse deeper than MaxNesting.
// Brackets, braces, parentheses, quotes, heredocs and template sequences open a level; within
// a level, operators chained in one expression (unary and binary operators, conditionals,
// index steps) count too, until the next comma or newline.
func checkNesting(src []byte, filename string) hcl.Diagnostics {
	tokens, _ := hclsyntax.LexConfig(src, filename, hcl.Pos{Line: 1, Column: 1})
	chains := make([]int, 1, 16) // operators chained so far, per open level
	total := 0                   // sum of chains
	prev := hclsyntax.TokenNil
	for _, tok := range tokens {
		switch tok.Type {
		case hclsyntax.TokenOBrace, hclsyntax.TokenOBrack, hclsyntax.TokenOParen, hclsyntax.TokenOQuote,
			hclsyntax.TokenOHeredoc, hclsyntax.TokenTemplateInterp, hclsyntax.TokenTemplateControl:
			if tok.Type == hclsyntax.TokenOBrack && isValueEnd(prev) {
				chains[len(chains)-1]++ // an index step: x[0][1]
				total++
			}
			chains = append(chains, 0)
		case hclsyntax.TokenCBrace, hclsyntax.TokenCBrack, hclsyntax.TokenCParen, hclsyntax.TokenCQuote,
			hclsyntax.TokenCHeredoc, hclsyntax.TokenTemplateSeqEnd:
			if len(chains) > 1 {
				total -= chains[len(chains)-1]
				chains = chains[:len(chains)-1]
			}
		case hclsyntax.TokenNewline, hclsyntax.TokenComma:
			total -= chains[len(chains)-1]
			chains[len(chains)-1] = 0
		case hclsyntax.TokenBang, hclsyntax.TokenMinus, hclsyntax.TokenPlus, hclsyntax.TokenStar,
			hclsyntax.TokenSlash, hclsyntax.TokenPercent, hclsyntax.TokenEqualOp, hclsyntax.TokenNotEqual,
			hclsyntax.TokenLessThan, hclsyntax.TokenLessThanEq, hclsyntax.TokenGreaterThan,
			hclsyntax.TokenGreaterThanEq, hclsyntax.TokenAnd, hclsyntax.TokenOr, hclsyntax.TokenQuestion:
			chains[len(chains)-1]++
			total++
		}
		if tok.Type != hclsyntax.TokenComment {
			prev = tok.Type
		}
		if len(chains)-1+total > MaxNesting {
			return hcl.Diagnostics{{
				Severity: hcl.DiagError,
				Summary:  "Nesting too deep",
				Detail: fmt.Sprintf("The configuration nests blocks, values or operators more than %d levels deep here; "+
					"pgimaged reads no deeper.", MaxNesting),
				Subject: tok.Range.Ptr(),
			}}
		}
	}
	return nil
}

// isValueEnd reports whether a token of type t can end a value, so that a '[' after it is an
// index step rather than a new list.
func isValueEnd(t hclsyntax.TokenType) bool {
	switch t {
	case hclsyntax.TokenCBrack, hclsyntax.TokenCBrace, hclsyntax.TokenCParen, hclsyntax.TokenCQuote,
		hclsyntax.TokenIdent, hclsyntax.TokenNumberLit:
		return true
	}
	return false
}
