package sdk

import (
	"github.com/pgimaged/pgimaged/sdk/pluginpb"
)

func optionsFromPB(os []*pluginpb.Option) Options {
	out := make(Options, 0, len(os))
	for _, o := range os {
		opt := Option{Name: o.GetName(), Value: o.GetValue(), Flag: o.GetFlag(), List: o.GetList(), Map: o.GetMap()}
		switch { // an empty list or map has no elements on the wire
		case o.GetKind() == pluginpb.OptionKind_OPTION_KIND_LIST && opt.List == nil:
			opt.List = []string{}
		case o.GetKind() == pluginpb.OptionKind_OPTION_KIND_MAP && opt.Map == nil:
			opt.Map = map[string]string{}
		}
		out = append(out, opt)
	}
	return out
}

func clusterFromPB(c *pluginpb.Cluster) Cluster {
	return Cluster{Scope: c.GetScope(), Name: c.GetName(), DataDir: c.GetDataDir(), BinDir: c.GetBinDir(), ServerVersion: int(c.GetServerVersion())}
}

func bootstrapFromPB(r *pluginpb.BootstrapRequest) BootstrapRequest {
	return BootstrapRequest{
		Method: r.GetMethod(), Command: r.GetCommand(), NoParams: r.GetNoParams(), Options: optionsFromPB(r.GetOptions()),
		Cluster:   clusterFromPB(r.GetCluster()),
		Superuser: Credentials{Username: r.GetSuperuser().GetUsername(), Password: r.GetSuperuser().GetPassword()},
		Env:       r.GetEnv(),
	}
}

func cloneFromPB(r *pluginpb.CloneRequest) CloneRequest {
	return CloneRequest{
		Method: r.GetMethod(), Command: r.GetCommand(), NoParams: r.GetNoParams(), Options: optionsFromPB(r.GetOptions()),
		Cluster: clusterFromPB(r.GetCluster()), ConnString: r.GetConnstring(), Env: r.GetEnv(),
	}
}

func resultToPB(r Result) *pluginpb.Result {
	return &pluginpb.Result{RecoverySettings: validMap(r.RecoverySettings), Standby: r.Standby, KeepExistingRecovery: r.KeepExistingRecovery, Summary: validUTF8(r.Summary)}
}

func planToPB(p Plan) *pluginpb.PlanResponse {
	out := &pluginpb.PlanResponse{Notes: validList(p.Notes)}
	for _, c := range p.Commands {
		out.Commands = append(out.Commands, &pluginpb.Command{Argv: validList(c.Argv), Env: validMap(c.Env)})
	}
	return out
}

func schemaToPB(s Schema) *pluginpb.Schema {
	out := &pluginpb.Schema{Open: s.Open}
	for _, o := range s.Options {
		out.Options = append(out.Options, &pluginpb.OptionSpec{
			Name: validUTF8(o.Name), Type: pluginpb.OptionType(o.Type), EnumValues: validList(o.EnumValues), Required: o.Required,
			Default: validUTF8(o.Default), Sensitive: o.Sensitive, Description: validUTF8(o.Description),
			Aliases: validList(o.Aliases), Refused: validUTF8(o.Refused), Min: o.Min, Max: o.Max,
			SizeUnit: o.SizeUnit, DurationUnitMs: o.DurationUnit.Milliseconds(), Flag: o.Flag,
		})
	}
	return out
}
