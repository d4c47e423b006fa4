package main

import (
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/pgimaged/pgimaged/sdk"
)

// errNoBackup: the repository holds no base backup. Another method must make the replica.
var errNoBackup = fmt.Errorf("the backup repository holds no base backup: %w", sdk.ErrMethodFailed)

// backupInfo is what the plugin needs to know about the LATEST base backup.
type backupInfo struct {
	Name string
	// Size is the backup's expanded (uncompressed) size in bytes; 0 when the tool does not say.
	Size int64
	// startLSN is the backup's start position (WAL-G gives it directly); when hasLSN is false it
	// is computed from StartSegment and StartOffset (WAL-E), which needs the WAL segment size.
	startLSN     uint64
	hasLSN       bool
	StartSegment string
	StartOffset  int64
}

// StartLSN is the WAL position the backup starts at. segmentSize is the cluster's
// wal_segment_size, needed to turn WAL-E's segment name and offset into a position.
func (b backupInfo) StartLSN(segmentSize int64) (uint64, error) {
	if b.hasLSN {
		return b.startLSN, nil
	}
	return segmentLSN(b.StartSegment, b.StartOffset, segmentSize)
}

// segmentLSN turns a WAL file name (TTTTTTTTXXXXXXXXYYYYYYYY: timeline, log, segment) and a byte
// offset in it into a WAL position.
func segmentLSN(segment string, offset, segmentSize int64) (uint64, error) {
	if len(segment) != 24 {
		return 0, fmt.Errorf("WAL file name %q is not 24 hexadecimal digits", segment)
	}
	if segmentSize <= 0 || segmentSize&(segmentSize-1) != 0 {
		return 0, fmt.Errorf("WAL segment size %d is not a power of two", segmentSize)
	}
	log, err1 := strconv.ParseUint(segment[8:16], 16, 32)
	seg, err2 := strconv.ParseUint(segment[16:24], 16, 32)
	if err := errors.Join(err1, err2); err != nil {
		return 0, fmt.Errorf("WAL file name %q: %w", segment, err)
	}
	if offset < 0 || offset >= segmentSize {
		return 0, fmt.Errorf("offset %d is outside a WAL segment of %d bytes", offset, segmentSize)
	}
	return log<<32 + seg*uint64(segmentSize) + uint64(offset), nil
}

// FormatLSN renders a WAL position as PostgreSQL does (0/2000028).
func FormatLSN(lsn uint64) string {
	return fmt.Sprintf("%X/%X", lsn>>32, uint32(lsn))
}

// ParseLSN reads a WAL position written as PostgreSQL does.
func ParseLSN(s string) (uint64, error) {
	hi, lo, ok := strings.Cut(strings.TrimSpace(s), "/")
	if !ok {
		return 0, fmt.Errorf("WAL position %q is not of the form X/Y", s)
	}
	h, err1 := strconv.ParseUint(hi, 16, 32)
	l, err2 := strconv.ParseUint(lo, 16, 32)
	if err := errors.Join(err1, err2); err != nil {
		return 0, fmt.Errorf("WAL position %q: %w", s, err)
	}
	return h<<32 | l, nil
}

// parseWALEList reads `wal-e backup-list --detail LATEST`: a tab-separated table with a header
// (name, last_modified, expanded_size_bytes, wal_segment_backup_start,
// wal_segment_offset_backup_start, wal_segment_backup_stop, wal_segment_offset_backup_stop).
// Like Patroni's wale_restore it wants exactly one row.
func parseWALEList(out string) (backupInfo, error) {
	r := csv.NewReader(strings.NewReader(out))
	r.Comma = '\t'
	r.FieldsPerRecord = -1
	r.LazyQuotes = true
	header, err := r.Read()
	if errors.Is(err, io.EOF) {
		return backupInfo{}, errNoBackup
	}
	if err != nil {
		return backupInfo{}, fmt.Errorf("while reading wal-e's backup list: %w", err)
	}
	col := map[string]int{}
	for i, h := range header {
		col[strings.TrimSpace(h)] = i
	}
	for _, need := range []string{"name", "expanded_size_bytes", "wal_segment_backup_start", "wal_segment_offset_backup_start"} {
		if _, ok := col[need]; !ok {
			return backupInfo{}, fmt.Errorf("wal-e's backup list has no column %q (header: %q)", need, strings.Join(header, " "))
		}
	}
	rows, err := r.ReadAll()
	if err != nil {
		return backupInfo{}, fmt.Errorf("while reading wal-e's backup list: %w", err)
	}
	var kept [][]string
	for _, row := range rows {
		if len(row) == 1 && strings.TrimSpace(row[0]) == "" {
			continue
		}
		kept = append(kept, row)
	}
	switch {
	case len(kept) == 0:
		return backupInfo{}, errNoBackup
	case len(kept) > 1:
		return backupInfo{}, fmt.Errorf("wal-e listed %d backups for LATEST, expected one: %w", len(kept), sdk.ErrMethodFailed)
	}
	row := kept[0]
	field := func(name string) string {
		if i := col[name]; i < len(row) {
			return strings.TrimSpace(row[i])
		}
		return ""
	}
	size, err := strconv.ParseInt(field("expanded_size_bytes"), 10, 64)
	if err != nil {
		return backupInfo{}, fmt.Errorf("backup %s: expanded_size_bytes %q: %w", field("name"), field("expanded_size_bytes"), err)
	}
	// WAL-E writes the offset as zero-padded decimal (00000040).
	offset, err := strconv.ParseInt(field("wal_segment_offset_backup_start"), 10, 64)
	if err != nil {
		return backupInfo{}, fmt.Errorf("backup %s: wal_segment_offset_backup_start %q: %w", field("name"), field("wal_segment_offset_backup_start"), err)
	}
	seg := field("wal_segment_backup_start")
	if len(seg) != 24 {
		return backupInfo{}, fmt.Errorf("backup %s: wal_segment_backup_start %q is not a WAL file name", field("name"), seg)
	}
	return backupInfo{Name: field("name"), Size: size, StartSegment: seg, StartOffset: offset}, nil
}

// walgBackup is one entry of `wal-g backup-list --detail --json`.
type walgBackup struct {
	BackupName       string          `json:"backup_name"`
	Time             string          `json:"time"`
	WalFileName      string          `json:"wal_file_name"`
	StartLSN         json.RawMessage `json:"start_lsn"`
	FinishLSN        json.RawMessage `json:"finish_lsn"`
	UncompressedSize int64           `json:"uncompressed_size"`
	CompressedSize   int64           `json:"compressed_size"`
}

// parseWALGList reads `wal-g backup-list --detail --json`, a JSON array of backups, and picks the
// latest (by time; the last listed when times tie or cannot be read), as WAL-G's LATEST does.
func parseWALGList(out string) (backupInfo, error) {
	out = strings.TrimSpace(out)
	if out == "" || out == "null" {
		return backupInfo{}, errNoBackup
	}
	var list []walgBackup
	if err := json.Unmarshal([]byte(out), &list); err != nil {
		return backupInfo{}, fmt.Errorf("while reading wal-g's backup list: %w", err)
	}
	if len(list) == 0 {
		return backupInfo{}, errNoBackup
	}
	latest := len(list) - 1
	var latestTime time.Time
	times := make([]time.Time, len(list))
	allTimes := true
	for i, b := range list {
		t, err := time.Parse(time.RFC3339Nano, b.Time)
		if err != nil {
			allTimes = false
			break
		}
		times[i] = t
	}
	if allTimes {
		for i, t := range times {
			if i == 0 || !t.Before(latestTime) {
				latest, latestTime = i, t
			}
		}
	}
	b := list[latest]
	lsn, err := jsonLSN(b.StartLSN)
	if err != nil {
		return backupInfo{}, fmt.Errorf("backup %s: start_lsn: %w", b.BackupName, err)
	}
	return backupInfo{Name: b.BackupName, Size: b.UncompressedSize, startLSN: lsn, hasLSN: true}, nil
}

// jsonLSN reads a WAL position WAL-G wrote as a number or as "X/Y".
func jsonLSN(raw json.RawMessage) (uint64, error) {
	if len(raw) == 0 || string(raw) == "null" {
		return 0, errors.New("missing")
	}
	var n uint64
	if err := json.Unmarshal(raw, &n); err == nil {
		return n, nil
	}
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		return 0, fmt.Errorf("%s is neither a number nor a string", raw)
	}
	if v, err := strconv.ParseUint(s, 10, 64); err == nil {
		return v, nil
	}
	return ParseLSN(s)
}

// ThresholdError says the WAL to replay from the backup's start to the source's position is too
// much: the backup is too old, another method (pg_basebackup) should make the replica.
type ThresholdError struct {
	// Distance is the WAL, in bytes, between the backup's start and the source's position.
	Distance int64
	// Option is the threshold exceeded; Limit its value in bytes.
	Option string
	Limit  float64
	// Setting is the option as configured (megabytes or a percentage) and BackupSize the backup's size.
	Setting    float64
	BackupSize int64
}

func (e *ThresholdError) Error() string {
	switch e.Option {
	case optThresholdPct:
		return fmt.Sprintf("WAL to replay %s exceeds threshold_backup_size_percentage %g%% of the backup's %s (%s): falling back to the next method",
			mb(float64(e.Distance)), e.Setting, mb(float64(e.BackupSize)), mb(e.Limit))
	default:
		return fmt.Sprintf("WAL to replay %s exceeds threshold_megabytes %g MB: falling back to the next method", mb(float64(e.Distance)), e.Setting)
	}
}

// Is makes a ThresholdError an [sdk.ErrMethodFailed], so that pgimaged tries the next method.
func (e *ThresholdError) Is(target error) bool { return target == sdk.ErrMethodFailed }

func mb(bytes float64) string {
	return strconv.FormatFloat(bytes/(1<<20), 'f', 1, 64) + " MB"
}

// checkThresholds applies Patroni's rule: use the backup only when the WAL to replay is below
// threshold_megabytes AND below threshold_backup_size_percentage of the backup's size. A
// backup of unknown size (0) is judged by the megabytes threshold alone.
func checkThresholds(distance, backupSize int64, thresholdMB, thresholdPct float64) error {
	limit := thresholdMB * (1 << 20)
	if !(float64(distance) < limit) {
		return &ThresholdError{Distance: distance, Option: optThresholdMB, Limit: limit, Setting: thresholdMB, BackupSize: backupSize}
	}
	if backupSize > 0 {
		limit := float64(backupSize) * thresholdPct / 100
		if !(float64(distance) < limit) {
			return &ThresholdError{Distance: distance, Option: optThresholdPct, Limit: limit, Setting: thresholdPct, BackupSize: backupSize}
		}
	}
	return nil
}
