package main_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pgimaged/pgimaged/internal/pgtest"
	"github.com/pgimaged/pgimaged/internal/termtest"
)

// A reinit carried out by the member's agent shows the progress a one-shot clone shows: a bar
// with the rate and the time left on the terminal of `pgimaged reinit`, and done, total, rate
// and time left in `status` (its text and -json) and in the agent's GET /patroni.
func TestReinitShowsProgress(t *testing.T) {
	c := fileCluster(t)
	api := pgtest.FreePort(t)
	n1 := c.member(t, "node1", "")
	// A paced copy, for the reinit only: long enough for several publications of its progress.
	n2 := c.member(t, "node2", fmt.Sprintf(`api {
  listen = "127.0.0.1:%d"
}
method "slow" {
  plugin     = "basebackup"
  checkpoint = "fast"
  max-rate   = "4096"
}`, api))
	agents := startInTurn(t, n1, n2)
	waitStreaming(t, n1, "node2")
	conn := connectTCP(t, n1.port, "postgres", n1.superPass, "postgres")
	if _, err := conn.Exec(t.Context(), "CREATE TABLE filler AS SELECT g, repeat('x', 200) AS pad FROM generate_series(1, 100000) g"); err != nil {
		t.Fatal(err)
	}
	_ = conn.Close(t.Context())

	// What status and the API show while the reinit runs, watched from beside it.
	var (
		mu                           sync.Mutex
		statusJSON, statusText, body string
	)
	ctx, stop := context.WithCancel(context.Background())
	watched := make(chan struct{})
	go func() {
		defer close(watched)
		for ctx.Err() == nil {
			out := func(args ...string) string {
				cmd := exec.CommandContext(ctx, pgimagedBin(t), args...)
				cmd.Env = append(os.Environ(), n1.env...)
				b, _ := cmd.Output()
				return string(b)
			}
			var st struct {
				Members []struct {
					Name     string `json:"name"`
					PGImaged *struct {
						Clone *struct {
							Done  int64   `json:"done"`
							Total int64   `json:"total"`
							Rate  float64 `json:"rate"`
							ETA   float64 `json:"eta_seconds"`
						} `json:"clone"`
					} `json:"pgimaged"`
				} `json:"members"`
			}
			js := out("status", "-json", "-config", n1.config)
			if json.Unmarshal([]byte(js), &st) == nil {
				for _, m := range st.Members {
					if p := m.PGImaged; m.Name == "node2" && p != nil && p.Clone != nil && p.Clone.Rate > 0 && p.Clone.ETA > 0 && p.Clone.Total > 0 {
						mu.Lock()
						statusJSON = js
						mu.Unlock()
					}
				}
			}
			if txt := out("status", "-config", n1.config); strings.Contains(txt, "/s") && strings.Contains(txt, " left") {
				mu.Lock()
				statusText = txt
				mu.Unlock()
			}
			if resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/patroni", api)); err == nil {
				b, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				var pb struct {
					Progress *struct {
						Method string  `json:"method"`
						Done   int64   `json:"done"`
						Total  int64   `json:"total"`
						Rate   float64 `json:"rate"`
						ETA    float64 `json:"eta_seconds"`
					} `json:"progress"`
				}
				if json.Unmarshal(b, &pb) == nil && pb.Progress != nil && pb.Progress.Method == "slow" && pb.Progress.Rate > 0 && pb.Progress.ETA > 0 && pb.Progress.Done > 0 {
					mu.Lock()
					body = string(b)
					mu.Unlock()
				}
			}
			time.Sleep(200 * time.Millisecond)
		}
	}()
	line := fmt.Sprintf("env %s %s reinit --force --method slow -config %s", strings.Join(n2.env, " "), pgimagedBin(t), n2.config)
	screen := inTmux(t, n2.dir, line)
	stop()
	<-watched

	if !strings.Contains(screen, "re-cloned by its agent") {
		t.Fatalf("the reinit through the agent did not end well:\n%s", screen)
	}
	bars := 0
	for _, l := range strings.Split(screen, "\n") {
		if barLine.MatchString(l) && strings.Contains(l, "%") {
			bars++
			if err := termtest.BarAgrees(l); err != nil {
				t.Error(err)
			}
		}
	}
	if bars == 0 || !strings.Contains(screen, "/s") {
		t.Errorf("the terminal of pgimaged reinit shows no progress bar with a rate:\n%s", screen)
	}
	mu.Lock()
	defer mu.Unlock()
	if statusJSON == "" {
		t.Errorf("status -json never showed node2's reinit with done, total, rate and time left")
	}
	if statusText == "" {
		t.Errorf("status never showed node2's reinit with its rate and time left")
	}
	if body == "" {
		t.Errorf("GET /patroni never showed a progress object with done, total, rate and time left")
	}
	waitCluster(t, n1, agents, "node1", "node2")
	waitStreaming(t, n1, "node2")
}
