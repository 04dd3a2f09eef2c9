package server

import "errors"

var (
	// ErrInvalidConfig is returned (wrapped) by LoadConfig and Config.Validate
	// when a setting has a bad value.
	ErrInvalidConfig = errors.New("invalid configuration")
	// ErrDataDirLocked is returned by New when another process holds the data
	// directory.
	ErrDataDirLocked = errors.New("data directory is locked")
	// ErrTLSMaterial is returned (wrapped) when certificates or keys on disk
	// are missing, unreadable or do not belong together.
	ErrTLSMaterial = errors.New("bad TLS material")
)
