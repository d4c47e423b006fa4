package engine_test

import (
	"testing"

	"github.com/pgimaged/pgimaged/core/config"
	"github.com/pgimaged/pgimaged/core/engine"
)

func TestAPIURL(t *testing.T) {
	for _, tc := range []struct {
		api  config.API
		want string
	}{
		{config.API{}, ""},
		{config.API{Listen: "127.0.0.1:8008"}, "http://127.0.0.1:8008/patroni"},
		{config.API{Listen: "0.0.0.0:8008"}, "http://127.0.0.1:8008/patroni"},
		{config.API{Listen: "0.0.0.0:8008", ConnectAddress: "db1.example.com:8009"}, "http://db1.example.com:8009/patroni"},
		{config.API{Listen: "[::1]:8008", CertFile: "/c", KeyFile: "/k"}, "https://[::1]:8008/patroni"},
		{config.API{Listen: "[::]:8008"}, "http://[::1]:8008/patroni"},
		{config.API{Listen: ":8008"}, "http://127.0.0.1:8008/patroni"},
	} {
		n := &engine.Node{Config: &config.Config{API: tc.api}}
		if got := n.APIURL(); got != tc.want {
			t.Errorf("APIURL with %v = %q, want %q", tc.api, got, tc.want)
		}
	}
}
