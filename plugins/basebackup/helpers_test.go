package main

import (
	"encoding/binary"
	"fmt"
	"os"
	"strconv"
)

func itoa(i int) string { return strconv.Itoa(i) }

// pgControlSystemID reads the database system identifier, the first 8 bytes of pg_control in
// the machine's byte order (little-endian on the platforms the tests run on).
func pgControlSystemID(path string) (uint64, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, err
	}
	if len(b) < 8 {
		return 0, fmt.Errorf("%s: too short for pg_control", path)
	}
	return binary.LittleEndian.Uint64(b[:8]), nil
}
