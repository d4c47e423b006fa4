package pg

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io/fs"
	"os"
	"path/filepath"
)

const (
	// controlHeaderLen covers system_identifier (uint64), pg_control_version and
	// catalog_version_no (uint32 each): the fields every PostgreSQL version starts pg_control with.
	controlHeaderLen = 16
	// controlMaxSafeSize is PG_CONTROL_MAX_SAFE_SIZE: ControlFileData, up to and including its
	// CRC, always fits in the first 512 bytes.
	controlMaxSafeSize = 512
	// controlVersionCRC32C is the first pg_control_version (PostgreSQL 9.5) whose CRC is CRC-32C.
	controlVersionCRC32C = 942
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// ControlData is what pgimaged reads from global/pg_control.
type ControlData struct {
	SystemIdentifier uint64
	ControlVersion   uint32 // pg_control_version, e.g. 1300 for PostgreSQL 13 to 16
	CatalogVersion   uint32 // catalog_version_no

	// The fields below are read for PostgreSQL 12 and later (pg_control_version >= 1201) and
	// are zero for older versions: HasPosition tells which.
	HasPosition bool
	// State is the cluster state pg_controldata prints as "Database cluster state".
	State DBState
	// Checkpoint is "Latest checkpoint location", Redo "Latest checkpoint's REDO location".
	Checkpoint LSN
	Redo       LSN
	// Timeline is "Latest checkpoint's TimeLineID".
	Timeline uint32
	// MinRecoveryPoint is "Minimum recovery ending location" (0 when the cluster last ran as a
	// primary and shut down cleanly).
	MinRecoveryPoint    LSN
	MinRecoveryPointTLI uint32
}

// LSN is a WAL position (XLogRecPtr).
type LSN uint64

// String prints the LSN as PostgreSQL does, e.g. 0/3000028.
func (l LSN) String() string { return fmt.Sprintf("%X/%X", uint64(l)>>32, uint32(l)) }

// DBState is pg_control's DBState.
type DBState uint32

// The values of DBState, as PostgreSQL numbers them.
const (
	DBStartup              DBState = 0
	DBShutdowned           DBState = 1
	DBShutdownedInRecovery DBState = 2
	DBShutdowning          DBState = 3
	DBInCrashRecovery      DBState = 4
	DBInArchiveRecovery    DBState = 5
	DBInProduction         DBState = 6
)

// String is the state as pg_controldata prints it.
func (s DBState) String() string {
	switch s {
	case DBStartup:
		return "starting up"
	case DBShutdowned:
		return "shut down"
	case DBShutdownedInRecovery:
		return "shut down in recovery"
	case DBShutdowning:
		return "shutting down"
	case DBInCrashRecovery:
		return "in crash recovery"
	case DBInArchiveRecovery:
		return "in archive recovery"
	case DBInProduction:
		return "in production"
	}
	return fmt.Sprintf("unrecognized status code %d", uint32(s))
}

// InRecovery reports whether the cluster last ran in archive recovery (as a standby) and has
// written no WAL of its own since: "shut down in recovery" or "in archive recovery".
func (s DBState) InRecovery() bool {
	return s == DBShutdownedInRecovery || s == DBInArchiveRecovery
}

// Offsets in ControlFileData from PostgreSQL 12 on (pg_control_version 1201 and 1300), on a
// 64-bit machine: state, the latest checkpoint's location, its copy's redo and timeline, and
// the minimum recovery point after the 88-byte CheckPoint copy and unloggedLSN.
const (
	controlPositionVersion = 1201
	offState               = 16
	offCheckpoint          = 32
	offRedo                = 40
	offTimeline            = 48
	offMinRecoveryPoint    = 136
	offMinRecoveryTLI      = 144
)

// ReadControlData reads the header of dir/global/pg_control, in this machine's byte order (the
// order PostgreSQL wrote it in). For PostgreSQL 9.5 and later it also checks the CRC-32C that
// ends the control data and returns [ErrControlFileCorrupt] when none matches. A missing
// PG_VERSION or pg_control is [ErrNotACluster].
func ReadControlData(dir string) (ControlData, error) {
	wrap := func(err error) error {
		return fmt.Errorf("while reading pg_control of data directory %q: %w", dir, err)
	}
	if _, err := os.Stat(filepath.Join(dir, "PG_VERSION")); err != nil {
		return ControlData{}, wrap(notACluster(err))
	}
	data, err := os.ReadFile(filepath.Join(dir, "global", "pg_control"))
	if err != nil {
		return ControlData{}, wrap(notACluster(err))
	}
	if len(data) < controlHeaderLen {
		return ControlData{}, wrap(fmt.Errorf("%w: %d bytes is too short", ErrControlFileCorrupt, len(data)))
	}
	cd := ControlData{
		SystemIdentifier: binary.NativeEndian.Uint64(data[0:8]),
		ControlVersion:   binary.NativeEndian.Uint32(data[8:12]),
		CatalogVersion:   binary.NativeEndian.Uint32(data[12:16]),
	}
	if cd.ControlVersion >= controlVersionCRC32C && !controlCRCMatches(data) {
		return ControlData{}, wrap(fmt.Errorf("%w: no CRC-32C in the first %d bytes matches the data before it",
			ErrControlFileCorrupt, controlMaxSafeSize))
	}
	if cd.ControlVersion >= controlPositionVersion && len(data) >= offMinRecoveryTLI+4 {
		u64 := func(off int) uint64 { return binary.NativeEndian.Uint64(data[off : off+8]) }
		u32 := func(off int) uint32 { return binary.NativeEndian.Uint32(data[off : off+4]) }
		cd.HasPosition = true
		cd.State = DBState(u32(offState))
		cd.Checkpoint = LSN(u64(offCheckpoint))
		cd.Redo = LSN(u64(offRedo))
		cd.Timeline = u32(offTimeline)
		cd.MinRecoveryPoint = LSN(u64(offMinRecoveryPoint))
		cd.MinRecoveryPointTLI = u32(offMinRecoveryTLI)
	}
	return cd, nil
}

// controlCRCMatches looks for the CRC that ends ControlFileData. Its offset differs between
// PostgreSQL versions, so every 4-byte-aligned offset within PG_CONTROL_MAX_SAFE_SIZE is tried:
// a CRC-32C of the bytes before it that equals the word at it is what PostgreSQL wrote (a chance
// match is about one in 2^25).
func controlCRCMatches(data []byte) bool {
	limit := min(len(data), controlMaxSafeSize)
	crc := crc32.New(castagnoli)
	_, _ = crc.Write(data[:controlHeaderLen])
	for off := controlHeaderLen; off+4 <= limit; off += 4 {
		if crc.Sum32() == binary.NativeEndian.Uint32(data[off:off+4]) {
			return true
		}
		_, _ = crc.Write(data[off : off+4])
	}
	return false
}

// SystemIdentifier returns the database system identifier of the cluster in dir, the number
// pg_controldata prints as "Database system identifier" and that every replica shares with its
// primary. See [ReadControlData] for the errors.
func SystemIdentifier(dir string) (uint64, error) {
	cd, err := ReadControlData(dir)
	if err != nil {
		return 0, err
	}
	return cd.SystemIdentifier, nil
}

func notACluster(err error) error {
	if errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("%w: %w", ErrNotACluster, err)
	}
	return err
}
