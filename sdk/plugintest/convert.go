package plugintest

import (
	"time"

	"github.com/pgimaged/pgimaged/sdk"
	"github.com/pgimaged/pgimaged/sdk/pluginpb"
)

func optionsToPB(os sdk.Options) []*pluginpb.Option {
	out := make([]*pluginpb.Option, 0, len(os))
	for _, o := range os {
		kind := pluginpb.OptionKind_OPTION_KIND_SCALAR
		switch {
		case o.List != nil:
			kind = pluginpb.OptionKind_OPTION_KIND_LIST
		case o.Map != nil:
			kind = pluginpb.OptionKind_OPTION_KIND_MAP
		}
		out = append(out, &pluginpb.Option{Name: o.Name, Value: o.Value, Flag: o.Flag, List: o.List, Map: o.Map, Kind: kind})
	}
	return out
}

func clusterToPB(c sdk.Cluster) *pluginpb.Cluster {
	return &pluginpb.Cluster{Scope: c.Scope, Name: c.Name, DataDir: c.DataDir, BinDir: c.BinDir, ServerVersion: int32(c.ServerVersion)}
}

func bootstrapToPB(r sdk.BootstrapRequest) *pluginpb.BootstrapRequest {
	return &pluginpb.BootstrapRequest{
		Method: r.Method, Command: r.Command, NoParams: r.NoParams, Options: optionsToPB(r.Options),
		Cluster:   clusterToPB(r.Cluster),
		Superuser: &pluginpb.Credentials{Username: r.Superuser.Username, Password: r.Superuser.Password},
		Env:       r.Env,
	}
}

func cloneToPB(r sdk.CloneRequest) *pluginpb.CloneRequest {
	return &pluginpb.CloneRequest{
		Method: r.Method, Command: r.Command, NoParams: r.NoParams, Options: optionsToPB(r.Options),
		Cluster: clusterToPB(r.Cluster), Connstring: r.ConnString, Env: r.Env,
	}
}

func resultFromPB(r *pluginpb.Result) sdk.Result {
	return sdk.Result{RecoverySettings: r.GetRecoverySettings(), Standby: r.GetStandby(), KeepExistingRecovery: r.GetKeepExistingRecovery(), Summary: r.GetSummary()}
}

func planFromPB(p *pluginpb.PlanResponse) sdk.Plan {
	out := sdk.Plan{Notes: p.GetNotes()}
	for _, c := range p.GetCommands() {
		out.Commands = append(out.Commands, sdk.Command{Argv: c.GetArgv(), Env: c.GetEnv()})
	}
	return out
}

func schemaFromPB(s *pluginpb.Schema) sdk.Schema {
	out := sdk.Schema{Open: s.GetOpen()}
	for _, o := range s.GetOptions() {
		out.Options = append(out.Options, sdk.OptionSpec{
			Name: o.GetName(), Type: sdk.Type(o.GetType()), EnumValues: o.GetEnumValues(), Required: o.GetRequired(),
			Default: o.GetDefault(), Sensitive: o.GetSensitive(), Description: o.GetDescription(),
			Aliases: o.GetAliases(), Refused: o.GetRefused(), Min: o.Min, Max: o.Max,
			SizeUnit: o.GetSizeUnit(), DurationUnit: time.Duration(o.GetDurationUnitMs()) * time.Millisecond, Flag: o.GetFlag(),
		})
	}
	return out
}
