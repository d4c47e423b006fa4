package pg

import (
	"bytes"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// StartedAsStandby tells, for the running server of dataDir, whether it was started in standby
// mode and has not left it, from the files alone (for when the server cannot be asked):
// standby.signal is there and older than the postmaster. PostgreSQL removes the file when
// recovery ends, and one written after the start (for the next start of a running primary)
// does not count. false when that cannot be told (no postmaster.pid, no /proc).
func StartedAsStandby(dataDir string) bool {
	info, err := os.Lstat(filepath.Join(dataDir, "standby.signal"))
	if err != nil {
		return false
	}
	p, ok := readPostmasterPID(dataDir)
	if !ok {
		return false
	}
	started, ok := processStart(p.PID)
	return ok && info.ModTime().Before(started)
}

// clockTicks is USER_HZ, the unit of /proc/<pid>/stat's start time: 100 on every Linux port.
const clockTicks = 100

// processStart is when process pid started, from /proc (its start time in clock ticks since
// boot, and the boot time).
func processStart(pid int) (time.Time, bool) {
	stat, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return time.Time{}, false
	}
	// pid (comm) state ...: comm may hold spaces and parentheses; the start time is the 22nd
	// field, the 20th after the last ')'.
	i := bytes.LastIndexByte(stat, ')')
	if i < 0 {
		return time.Time{}, false
	}
	fields := strings.Fields(string(stat[i+1:]))
	if len(fields) < 20 {
		return time.Time{}, false
	}
	ticks, err := strconv.ParseInt(fields[19], 10, 64)
	if err != nil {
		return time.Time{}, false
	}
	boot, ok := bootTime()
	if !ok {
		return time.Time{}, false
	}
	return boot.Add(time.Duration(ticks) * time.Second / clockTicks), true
}

// bootTime is /proc/stat's btime.
func bootTime() (time.Time, bool) {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return time.Time{}, false
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "btime "); ok {
			secs, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
			return time.Unix(secs, 0), err == nil
		}
	}
	return time.Time{}, false
}
