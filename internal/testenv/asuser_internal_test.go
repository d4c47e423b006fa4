package testenv

import (
	"reflect"
	"testing"
)

func TestStageArgs(t *testing.T) {
	tests := []struct {
		name      string
		in        []string
		wantArgs  []string
		wantBacks []copyBack
	}{
		{
			name:     "plain flags pass through",
			in:       []string{"-test.paniconexit0", "-test.timeout=10m0s", "-test.v=true", "-test.run=TestX"},
			wantArgs: []string{"-test.paniconexit0", "-test.timeout=10m0s", "-test.v=true", "-test.run=TestX"},
		},
		{
			name:      "test log file is staged",
			in:        []string{"-test.testlogfile=/tmp/go-build1/b001/testlog.txt", "-test.v=true"},
			wantArgs:  []string{"-test.testlogfile=/stage/out/testlogfile", "-test.v=true"},
			wantBacks: []copyBack{{staged: "/stage/out/testlogfile", target: "/tmp/go-build1/b001/testlog.txt"}},
		},
		{
			name: "profiles relative to the output directory",
			in:   []string{"-test.outputdir=/src/pkg", "-test.coverprofile=/b/_cover_.out", "-test.cpuprofile=cpu.out"},
			wantArgs: []string{"-test.outputdir=/stage/out", "-test.coverprofile=/stage/out/coverprofile",
				"-test.cpuprofile=/stage/out/cpuprofile"},
			wantBacks: []copyBack{
				{staged: "/stage/out/coverprofile", target: "/b/_cover_.out"},
				{staged: "/stage/out/cpuprofile", target: "/src/pkg/cpu.out"},
			},
		},
		{
			name:      "separate value",
			in:        []string{"-test.trace", "trace.out"},
			wantArgs:  []string{"-test.trace=/stage/out/trace"},
			wantBacks: []copyBack{{staged: "/stage/out/trace", target: "/cwd/trace.out"}},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			args, backs, err := stageArgs(tc.in, "/cwd", "/stage/out")
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(args, tc.wantArgs) {
				t.Errorf("args = %q, want %q", args, tc.wantArgs)
			}
			if !reflect.DeepEqual(backs, tc.wantBacks) {
				t.Errorf("copies = %+v, want %+v", backs, tc.wantBacks)
			}
		})
	}
}
