//go:build !linux

package syncfs

import "os"

// Supported is false: only Linux has syncfs(2).
func Supported() bool { return false }

func syncfs(*os.File) error { return ErrUnsupported }

func device(*os.File) (uint64, error) { return 0, ErrUnsupported }
