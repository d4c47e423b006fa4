package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// apiStats is one load run against one endpoint at one rate.
type apiStats struct {
	sent, failed int
	p50, p99     time.Duration
}

// runAPI measures the HTTP API's latency for /primary and /replica under a steady open-loop
// load, on a three-member pgimaged cluster (file DCS) and on Patroni's REST API (etcd) where
// Patroni is installed. The load is open: each request goes out on its own goroutine when the
// schedule says, whether earlier ones were answered or not, so a server that falls behind
// shows in the latency and the failures instead of slowing the load down.
func runAPI(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var c common
	fs := flag.NewFlagSet("api", flag.ContinueOnError)
	fs.SetOutput(stderr)
	c.register(fs, 5)
	ratesFlag := fs.String("rates", "500,3000", "requests per second, comma-separated")
	dur := fs.Duration("duration", 10*time.Second, "how long each rate is held")
	patroniFlag := fs.String("patroni", "", "the patroni program (default: patroni in PATH; without one, Patroni is not measured)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	var rates []int
	for _, r := range strings.Split(*ratesFlag, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(r))
		if err != nil || n <= 0 {
			return fmt.Errorf("-rates: %q is not a positive number of requests per second", r)
		}
		rates = append(rates, n)
	}
	if *dur <= 0 || *dur > 10*time.Minute {
		return fmt.Errorf("-duration %s: give a duration between 0 and 10m", *dur)
	}
	m, err := c.setup()
	if err != nil {
		return err
	}
	var clean cleanups
	defer clean.run()

	paths := []string{"/primary", "/replica"}
	measure := func(who string, out map[string]apiStats) func(ports []int) error {
		return func(ports []int) error {
			primary, replica, err := findRoles(ctx, ports)
			if err != nil {
				return fmt.Errorf("%s: %w", who, err)
			}
			for _, p := range paths {
				port := primary
				if p == "/replica" {
					port = replica
				}
				for _, r := range rates {
					s := loadAPI(ctx, fmt.Sprintf("http://127.0.0.1:%d%s", port, p), r, *dur)
					out[fmt.Sprintf("%s@%d", p, r)] = s
					fmt.Fprintf(stdout, "api: %-8s %-8s %5d/s  p50 %s  p99 %s  failed %d of %d\n", who, p, r, ms(s.p50), ms(s.p99), s.failed, s.sent)
				}
			}
			return ctx.Err()
		}
	}
	pgimaged := map[string]apiStats{}
	if _, _, err := pgimagedCluster(ctx, m, clusterOptions{members: 3, backend: "file", run: 1, loopWait: time.Second, whileUp: measure("pgimaged", pgimaged)}); err != nil {
		return fmt.Errorf("pgimaged: %w", err)
	}
	patroni := *patroniFlag
	if patroni == "" {
		patroni, _ = exec.LookPath("patroni")
	}
	var patroniStats map[string]apiStats
	if patroni != "" {
		if _, err := exec.LookPath("etcd"); err != nil {
			fmt.Fprintln(stdout, "api: etcd is not installed: Patroni is not measured")
		} else {
			endpoint, err := startEtcd(ctx, m, &clean)
			if err != nil {
				return err
			}
			patroniStats = map[string]apiStats{}
			if _, err := patroniCluster(ctx, m, patroni, clusterOptions{members: 3, etcd: endpoint, run: 1, loopWait: time.Second, whileUp: measure("patroni", patroniStats)}); err != nil {
				return fmt.Errorf("patroni: %w", err)
			}
		}
	}

	fmt.Fprintf(stdout, "\napi: latency of GET /primary (on the primary) and /replica (on a replica) at a steady rate for %s,\nopen loop on loopback, from each request's sending to its answer (ms)\n", *dur)
	rows := [][]string{{"endpoint", "rate/s", "pgimaged p50", "pgimaged p99", "pgimaged failed", "patroni p50", "patroni p99", "patroni failed"}}
	for _, p := range paths {
		for _, r := range rates {
			k := fmt.Sprintf("%s@%d", p, r)
			g := pgimaged[k]
			row := []string{p, strconv.Itoa(r), ms(g.p50), ms(g.p99), fmt.Sprintf("%d/%d", g.failed, g.sent), "-", "-", "-"}
			if q, ok := patroniStats[k]; ok {
				row[5], row[6], row[7] = ms(q.p50), ms(q.p99), fmt.Sprintf("%d/%d", q.failed, q.sent)
			}
			rows = append(rows, row)
		}
	}
	table(stdout, rows)
	if patroni == "" {
		fmt.Fprintln(stdout, "(patroni is not installed: no side-by-side numbers)")
	}
	return nil
}

func ms(d time.Duration) string { return fmt.Sprintf("%.3f", float64(d)/float64(time.Millisecond)) }

// findRoles waits until one API answers /primary with 200 and another /replica with 200.
func findRoles(ctx context.Context, ports []int) (primary, replica int, err error) {
	client := http.Client{Timeout: 2 * time.Second}
	ok := func(port int, path string) bool {
		resp, err := client.Get(fmt.Sprintf("http://127.0.0.1:%d%s", port, path))
		if err != nil {
			return false
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	}
	end := time.Now().Add(2 * time.Minute)
	for time.Now().Before(end) {
		primary, replica = 0, 0
		for _, p := range ports {
			switch {
			case primary == 0 && ok(p, "/primary"):
				primary = p
			case replica == 0 && ok(p, "/replica"):
				replica = p
			}
		}
		if primary != 0 && replica != 0 {
			return primary, replica, nil
		}
		select {
		case <-ctx.Done():
			return 0, 0, ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
	return 0, 0, errors.New("no API answered /primary and another /replica with 200 within 2 minutes")
}

// loadAPI sends GET url at rate requests per second for d, each request on its own goroutine at
// its scheduled time; a request that fails or is not answered 200 within 5 s counts as failed.
func loadAPI(ctx context.Context, url string, rate int, d time.Duration) apiStats {
	client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 1024, MaxIdleConns: 1024, IdleConnTimeout: time.Minute}}
	defer client.CloseIdleConnections()
	n := int(float64(rate) * d.Seconds())
	interval := time.Second / time.Duration(rate)
	lat := make([]time.Duration, n)
	failed := make([]bool, n)
	var wg sync.WaitGroup
	start := time.Now()
	sent := 0
	for i := range n {
		due := start.Add(time.Duration(i) * interval)
		if w := time.Until(due); w > 0 {
			time.Sleep(w)
		}
		if ctx.Err() != nil {
			break
		}
		sent++
		wg.Add(1)
		go func() {
			defer wg.Done()
			sentAt := time.Now()
			resp, err := client.Get(url)
			if err == nil {
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
			}
			lat[i] = time.Since(sentAt)
			failed[i] = err != nil || resp.StatusCode != http.StatusOK
		}()
	}
	wg.Wait()
	s := apiStats{sent: sent}
	all := slices.Clone(lat[:sent])
	for _, f := range failed[:sent] {
		if f {
			s.failed++
		}
	}
	slices.Sort(all)
	if len(all) > 0 {
		s.p50 = all[len(all)*50/100]
		s.p99 = all[min(len(all)*99/100, len(all)-1)]
	}
	return s
}
