//go:build linux

package offheap

import "syscall"

const mapPopulate = syscall.MAP_POPULATE
