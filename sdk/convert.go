package sdk

import (
	"time"

	"github.com/pgimaged/pgimaged/sdk/internal/pluginpb"
)

func optionsToPB(os Options) []*pluginpb.Option {
	out := make([]*pluginpb.Option, 0, len(os))
	for _, o := range os {
		out = append(out, &pluginpb.Option{Name: o.Name, Value: o.Value, Flag: o.Flag, List: o.List, Map: o.Map})
	}
	return out
}

func optionsFromPB(os []*pluginpb.Option) Options {
	out := make(Options, 0, len(os))
	for _, o := range os {
		out = append(out, Option{Name: o.GetName(), Value: o.GetValue(), Flag: o.GetFlag(), List: o.GetList(), Map: o.GetMap()})
	}
	return out
}

func clusterToPB(c Cluster) *pluginpb.Cluster {
	return &pluginpb.Cluster{Scope: c.Scope, Name: c.Name, DataDir: c.DataDir, BinDir: c.BinDir, ServerVersion: int32(c.ServerVersion)}
}

func clusterFromPB(c *pluginpb.Cluster) Cluster {
	return Cluster{Scope: c.GetScope(), Name: c.GetName(), DataDir: c.GetDataDir(), BinDir: c.GetBinDir(), ServerVersion: int(c.GetServerVersion())}
}

func bootstrapToPB(r BootstrapRequest) *pluginpb.BootstrapRequest {
	return &pluginpb.BootstrapRequest{
		Method: r.Method, Command: r.Command, NoParams: r.NoParams, Options: optionsToPB(r.Options),
		Cluster:   clusterToPB(r.Cluster),
		Superuser: &pluginpb.Credentials{Username: r.Superuser.Username, Password: r.Superuser.Password},
		Env:       r.Env,
	}
}

func bootstrapFromPB(r *pluginpb.BootstrapRequest) BootstrapRequest {
	return BootstrapRequest{
		Method: r.GetMethod(), Command: r.GetCommand(), NoParams: r.GetNoParams(), Options: optionsFromPB(r.GetOptions()),
		Cluster:   clusterFromPB(r.GetCluster()),
		Superuser: Credentials{Username: r.GetSuperuser().GetUsername(), Password: r.GetSuperuser().GetPassword()},
		Env:       r.GetEnv(),
	}
}

func cloneToPB(r CloneRequest) *pluginpb.CloneRequest {
	return &pluginpb.CloneRequest{
		Method: r.Method, Command: r.Command, NoParams: r.NoParams, Options: optionsToPB(r.Options),
		Cluster: clusterToPB(r.Cluster), Connstring: r.ConnString, Env: r.Env,
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

func resultFromPB(r *pluginpb.Result) Result {
	return Result{RecoverySettings: r.GetRecoverySettings(), Standby: r.GetStandby(), KeepExistingRecovery: r.GetKeepExistingRecovery(), Summary: r.GetSummary()}
}

func planToPB(p Plan) *pluginpb.PlanResponse {
	out := &pluginpb.PlanResponse{Notes: validList(p.Notes)}
	for _, c := range p.Commands {
		out.Commands = append(out.Commands, &pluginpb.Command{Argv: validList(c.Argv), Env: validMap(c.Env)})
	}
	return out
}

func planFromPB(p *pluginpb.PlanResponse) Plan {
	out := Plan{Notes: p.GetNotes()}
	for _, c := range p.GetCommands() {
		out.Commands = append(out.Commands, Command{Argv: c.GetArgv(), Env: c.GetEnv()})
	}
	return out
}

func pathToPB(p Path) pluginpb.Path {
	switch p {
	case PathBootstrap:
		return pluginpb.Path_PATH_BOOTSTRAP
	case PathClone:
		return pluginpb.Path_PATH_CLONE
	}
	return pluginpb.Path_PATH_UNSPECIFIED
}

func pathFromPB(p pluginpb.Path) Path {
	switch p {
	case pluginpb.Path_PATH_BOOTSTRAP:
		return PathBootstrap
	case pluginpb.Path_PATH_CLONE:
		return PathClone
	}
	return PathUnspecified
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

func schemaFromPB(s *pluginpb.Schema) Schema {
	out := Schema{Open: s.GetOpen()}
	for _, o := range s.GetOptions() {
		out.Options = append(out.Options, OptionSpec{
			Name: o.GetName(), Type: Type(o.GetType()), EnumValues: o.GetEnumValues(), Required: o.GetRequired(),
			Default: o.GetDefault(), Sensitive: o.GetSensitive(), Description: o.GetDescription(),
			Aliases: o.GetAliases(), Refused: o.GetRefused(), Min: o.Min, Max: o.Max,
			SizeUnit: o.GetSizeUnit(), DurationUnit: time.Duration(o.GetDurationUnitMs()) * time.Millisecond, Flag: o.GetFlag(),
		})
	}
	return out
}

func levelToPB(l Level) pluginpb.Level {
	switch l {
	case LevelTrace:
		return pluginpb.Level_LEVEL_TRACE
	case LevelDebug:
		return pluginpb.Level_LEVEL_DEBUG
	case LevelWarn:
		return pluginpb.Level_LEVEL_WARN
	case LevelError:
		return pluginpb.Level_LEVEL_ERROR
	}
	return pluginpb.Level_LEVEL_INFO
}

func levelFromPB(l pluginpb.Level) Level {
	switch l {
	case pluginpb.Level_LEVEL_TRACE:
		return LevelTrace
	case pluginpb.Level_LEVEL_DEBUG:
		return LevelDebug
	case pluginpb.Level_LEVEL_WARN:
		return LevelWarn
	case pluginpb.Level_LEVEL_ERROR:
		return LevelError
	}
	return LevelInfo
}
