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
}

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
