package engine

import (
	"context"
	"net"
	"strconv"
	"time"

	"github.com/pgimaged/pgimaged/core/dcs"
	"github.com/pgimaged/pgimaged/core/pg"
)

// upstream names the member this replica streams WAL from: pg_stat_wal_receiver's sender
// matched against the other members' conn_url; the sender as host:port when no member matches,
// "" when no WAL receiver runs.
func (a *Agent) upstream(ctx context.Context) string {
	qctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	conn, err := a.srv.Connect(qctx)
	if err != nil {
		return ""
	}
	defer conn.Close(context.Background())
	var host string
	var port int
	err = conn.QueryRow(qctx, `SELECT COALESCE(sender_host, ''), COALESCE(sender_port, 0)
		FROM pg_stat_wal_receiver WHERE status = 'streaming'`).Scan(&host, &port)
	if err != nil || host == "" {
		return ""
	}
	a.mu.Lock()
	peers := a.peers
	a.mu.Unlock()
	return matchUpstream(a.Node.Config.Name, host, port, peers)
}

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
