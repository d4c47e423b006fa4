package engine

import (
	"net"
	"strconv"

	"github.com/pgimaged/pgimaged/core/dcs"
	"github.com/pgimaged/pgimaged/core/pg"
)

// matchUpstream is the member other than self whose conn_url names host and port, else
// host:port.
func matchUpstream(self, host string, port int, members []dcs.Member) string {
	for _, m := range members {
		if m.Name == self || m.ConnURL == "" {
			continue
		}
		conn, _, err := pg.ParseConnURL(m.ConnURL)
		if err != nil {
			continue
		}
		p := conn.Port
		if p == 0 {
			p = 5432
		}
		if p == port && sameHost(conn.Host, host) {
			return m.Name
		}
	}
	return net.JoinHostPort(host, strconv.Itoa(port))
}

// sameHost compares two host names or addresses, resolving loopback spellings alike.
func sameHost(a, b string) bool {
	if a == b {
		return true
	}
	ia, ib := net.ParseIP(a), net.ParseIP(b)
	if ia != nil && ib != nil {
		return ia.Equal(ib) || ia.IsLoopback() && ib.IsLoopback()
	}
	return (a == "localhost" && ib != nil && ib.IsLoopback()) || (b == "localhost" && ia != nil && ia.IsLoopback())
}
