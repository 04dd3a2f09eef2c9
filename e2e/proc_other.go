//go:build !linux

package e2e

import "errors"

func readProcStat(int) (procStat, error) {
	return procStat{}, errors.New("e2e: process statistics need Linux /proc")
}
