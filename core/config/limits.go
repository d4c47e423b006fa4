package config

import (
	"fmt"
	"slices"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"
)

// Limits on configuration input: a hostile or broken file costs bounded time and memory.
const (
	// MaxConfigSize is the largest configuration file read, in bytes (1 MiB).
	MaxConfigSize = 1 << 20
	// MaxNesting is the deepest nesting of blocks, brackets, strings and templates allowed,
	// counting chains of operators too (the HCL parser and evaluator recurse on each).
	MaxNesting = 64
	// MaxDiagnosticsShown is how many diagnostics [WriteDiagnostics] prints; it counts the rest.
	MaxDiagnosticsShown = 100
)

// CheckInput reports what makes src unsafe to hand to a parser (HCL or YAML): more than
// MaxConfigSize bytes, or nesting deeper than MaxNesting. Parse checks it first.
func CheckInput(filename string, src []byte) hcl.Diagnostics {
	if len(src) > MaxConfigSize {
		return tooLarge(filename, int64(len(src)))
	}
	return checkNesting(src, filename)
}

func tooLarge(filename string, size int64) hcl.Diagnostics {
	return hcl.Diagnostics{{Severity: hcl.DiagError, Summary: "Configuration file too large",
		Detail: fmt.Sprintf("%s holds %d bytes; a configuration may hold at most 1 MiB (%d bytes).", filename, size, MaxConfigSize)}}
}

// checkNesting reads the tokens of src (the lexer does not recurse) and reports the first place
// where the parser would recurse deeper than MaxNesting: brackets, braces, parentheses, quotes,
// heredocs and templates open a level; operators chained in one expression (unary, binary,
// conditional, index steps) count too, until the next comma or newline.
func checkNesting(src []byte, filename string) hcl.Diagnostics {
	tokens, _ := hclsyntax.LexConfig(src, filename, hcl.InitialPos)
	chains := make([]int, 1, 16) // operators chained so far, per open level
	total := 0                   // sum of chains
	prev := hclsyntax.TokenNil
	for _, tok := range tokens {
		switch tok.Type {
		case hclsyntax.TokenOBrace, hclsyntax.TokenOBrack, hclsyntax.TokenOParen, hclsyntax.TokenOQuote,
			hclsyntax.TokenOHeredoc, hclsyntax.TokenTemplateInterp, hclsyntax.TokenTemplateControl:
			if tok.Type == hclsyntax.TokenOBrack && slices.Contains(valueEnds, prev) {
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
			return hcl.Diagnostics{{Severity: hcl.DiagError, Summary: "Nesting too deep", Subject: tok.Range.Ptr(),
				Detail: fmt.Sprintf("The configuration nests blocks, values or operators more than %d levels deep here; "+
					"pgimaged reads no deeper.", MaxNesting)}}
		}
	}
	return nil
}

// valueEnds are the tokens that can end a value: a '[' after one is an index step.
var valueEnds = []hclsyntax.TokenType{hclsyntax.TokenCBrack, hclsyntax.TokenCBrace, hclsyntax.TokenCParen,
	hclsyntax.TokenCQuote, hclsyntax.TokenIdent, hclsyntax.TokenNumberLit}
