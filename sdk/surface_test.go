package sdk_test

import (
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// The vendor surface: every package of this module a vendor may import, and every name each
// exports (top-level names, and methods as Type.Method). What is here is promised; a name or
// package that is not fails TestVendorSurface until it is judged and added, with the reason a
// vendor needs it. Package pluginpb's generated files are the .proto's, and not listed.
var vendorSurface = map[string][]string{
	// The contract: Serve, the interfaces, the request/response types, the schema and its values,
	// errors, Run and its process spec, and the helpers plugins call on them.
	".": {
		"Bootstrapper", "BootstrapPlanner", "BootstrapRequest", "Capability", "CapBootstrap", "CapClone",
		"Cloner", "ClonePlanner", "CloneRequest", "Cluster", "Cluster.Program", "Command", "Credentials",
		"Credentials.GoString", "Credentials.String", "DescribeRequest", "DescribeResponse", "Diagnostic",
		"Info", "Info.Can", "Plan", "Plugin", "Reporter", "Result", "ValidateRequest", "ValidateResponse",
		"Validator", "Path", "PathBootstrap", "PathClone", "PathUnspecified", "Path.String",
		"Severity", "SeverityError", "SeverityWarning", "Errorf",
		"Serve", "NewServer", "ProtocolVersion",
		"Level", "LevelTrace", "LevelDebug", "LevelInfo", "LevelWarn", "LevelError", "Level.String",
		"Progress", "Unit", "UnitBytes", "UnitFiles", "UnitPercent", "Unit.String",
		"Schema", "Schema.Canonical", "Schema.Check", "Schema.Decode", "Schema.Lookup",
		// How pgimaged checks a method block against the schema, each problem at its option: one rule
		// for pgimaged and Serve.
		"Schema.Problems", "Problem", "ProblemKind", "ProblemKind.String", "ProblemUnknown", "ProblemAlias",
		"ProblemRefused", "ProblemInvalid", "ProblemMissing",
		"OptionSpec", "OptionSpec.Check", "OptionSpec.FormatBound", "Bound",
		"Type", "Type.String", "TypeString", "TypeBool", "TypeInt", "TypeSize", "TypeDuration", "TypeList",
		"TypeMap", "TypeEnum",
		// A path option: pgimaged resolves a relative one against the configuration file before any
		// call, so a plugin declares it and always receives an absolute path.
		"TypePath",
		"Values", "Values.Bool", "Values.Duration", "Values.Extra", "Values.Has", "Values.Int", "Values.Into",
		"Values.List", "Values.Map", "Values.Size", "Values.String",
		"Option", "Option.Args", "Option.String", "Options", "Options.Args", "Options.Get", "Options.Has",
		"Options.Without", "CheckName", "ParseBool", "SplitCommand", "DefaultBootstrapParams", "DefaultCloneParams",
		"ErrNoSource", "ErrInvalidOptions", "ErrNotSupported", "ErrMethodFailed", "ErrPluginShutdown",
		"ExitError", "ExitError.Error", "ExitError.Is", "OptionsError", "OptionsError.Error", "OptionsError.Is",
		"CheckDiagnostics", "Failed",
		"Run", "Process", "Masker", "Masker.Mask", "Masker.MaskArgv", "Mask",
	},
	// The conformance kit, and pgimaged's client of a plugin that it checks through.
	"plugintest": {
		"Conformance", "Suite", "InvalidCase", "ValidCase", "Connect", "NewClient", "Client", "DebugEnv",
		"Recorder", "Recorder.Log", "Recorder.Logs", "Recorder.Progress", "Recorder.ProgressEvents", "LogLine",
		"AssertClone", "AssertBootstrap", "AssertNoSecret", "CheckSchema", "Options",
	},
	// The protocol's handshake values and error codes, beside the generated code.
	"pluginpb": {
		"MagicCookieKey", "MagicCookieValue", "ServiceName", "TLSEnv",
		"CodeNoSource", "CodeInvalidOptions", "CodeNotSupported", "CodeMethodFailed",
	},
	// PostgreSQL's conventions that plugins and pgimaged read one way.
	"libpq": {"Parse", "Quote", "WithPassfile", "With", "ErrConnString", "BinVersion", "ParseServerVersion"},
	// The durability guard the README tells plugins to run a program's --no-sync copy inside.
	"syncfs": {"Open", "Guard", "Guard.Add", "Guard.Sync", "Guard.Close", "Supported", "ErrUnsupported"},
}

func TestVendorSurface(t *testing.T) {
	got := map[string][]string{}
	err := filepath.WalkDir(".", func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (d.Name() == "internal" || d.Name() == "testdata" || d.Name() == "proto") {
			return filepath.SkipDir
		}
		if d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		src, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		dir := filepath.Dir(path)
		if _, seen := got[dir]; !seen {
			got[dir] = nil
		}
		if strings.Contains(string(src), "\n// Code generated ") {
			return nil
		}
		f, err := parser.ParseFile(token.NewFileSet(), path, src, parser.SkipObjectResolution)
		if err != nil {
			return err
		}
		got[dir] = append(got[dir], exported(f)...)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for pkg, names := range got {
		allowed, ok := vendorSurface[pkg]
		if !ok {
			t.Errorf("package %s is not on the vendor surface; every package a vendor can import is promised: make it internal, or judge it and add it", pkg)
			continue
		}
		for _, n := range names {
			if !slices.Contains(allowed, n) {
				t.Errorf("%s exports %s, which is not on the vendor surface: unexport it, or judge it and add it", pkg, n)
			}
		}
		for _, n := range allowed {
			if !slices.Contains(names, n) {
				t.Errorf("%s no longer exports %s: a promised name is gone (take it off the list only on purpose)", pkg, n)
			}
		}
	}
	for pkg := range vendorSurface {
		if _, ok := got[pkg]; !ok {
			t.Errorf("package %s is on the vendor surface but not found", pkg)
		}
	}
}

// exported lists what f exports: top-level names, and methods as Type.Method.
func exported(f *ast.File) []string {
	var out []string
	for _, decl := range f.Decls {
		switch d := decl.(type) {
		case *ast.FuncDecl:
			if !d.Name.IsExported() {
				continue
			}
			if d.Recv == nil {
				out = append(out, d.Name.Name)
				continue
			}
			typ := d.Recv.List[0].Type
			if s, ok := typ.(*ast.StarExpr); ok {
				typ = s.X
			}
			if id, ok := typ.(*ast.Ident); ok && id.IsExported() {
				out = append(out, id.Name+"."+d.Name.Name)
			}
		case *ast.GenDecl:
			for _, spec := range d.Specs {
				switch s := spec.(type) {
				case *ast.TypeSpec:
					if s.Name.IsExported() {
						out = append(out, s.Name.Name)
					}
				case *ast.ValueSpec:
					for _, n := range s.Names {
						if n.IsExported() {
							out = append(out, n.Name)
						}
					}
				}
			}
		}
	}
	return out
}

// doc.go and the README name the module's requirements as go.mod has them, every one.
func TestDocsNameTheRequirements(t *testing.T) {
	mod, err := os.ReadFile("go.mod")
	if err != nil {
		t.Fatal(err)
	}
	var required, indirect []string
	for _, line := range strings.Split(string(mod), "\n") {
		f := strings.Fields(line)
		switch {
		case len(f) < 2 || !strings.Contains(f[0], "."):
		case strings.Contains(line, "// indirect"):
			indirect = append(indirect, f[0])
		default:
			required = append(required, f[0])
		}
	}
	if len(required) == 0 {
		t.Fatal("go.mod requires nothing directly")
	}
	for _, file := range []string{"doc.go", "README.md"} {
		b, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		text := strings.Join(strings.Fields(strings.ReplaceAll(string(b), "//", "")), " ")
		for _, m := range required {
			if !strings.Contains(text, m) {
				t.Errorf("%s does not name %s, which go.mod requires", file, m)
			}
		}
		for _, m := range indirect {
			if strings.Contains(text, m+" ") || strings.Contains(text, m+"`") || strings.Contains(text, m+",") {
				t.Errorf("%s names %s, which go.mod requires only indirectly", file, m)
			}
		}
	}
}
