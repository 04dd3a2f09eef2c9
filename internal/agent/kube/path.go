package kube

import (
	"fmt"
	"path/filepath"
	"strings"
)

// ContainerRef names the container a log file belongs to, from its path.
type ContainerRef struct {
	Namespace, Pod, PodUID, Container string
	ContainerID                       string // only from /var/log/containers names
	Restart                           string // restart count, only from /var/log/pods names
}

// ParseLogPath parses the path of a container log file in either layout:
//
//	/var/log/pods/<namespace>_<pod>_<uid>/<container>/<restart>.log
//	/var/log/containers/<pod>_<namespace>_<container>-<id>.log
//
// Pod and namespace names are DNS labels/subdomains and cannot contain '_',
// which is what makes the names unambiguous. Rotated files (<n>.log.<date>,
// .gz) are accepted for the pods layout.
func ParseLogPath(path string) (ContainerRef, error) {
	var r ContainerRef
	path = filepath.ToSlash(filepath.Clean(path))
	parts := strings.Split(path, "/")
	if i := indexPair(parts, "log", "pods"); i >= 0 && len(parts) == i+5 {
		dir, container, file := parts[i+2], parts[i+3], parts[i+4]
		f := strings.SplitN(dir, "_", 3)
		if len(f) != 3 || f[0] == "" || f[1] == "" || f[2] == "" || strings.Contains(f[2], "_") {
			return r, fmt.Errorf("log path %q: pod directory is not <namespace>_<pod>_<uid>", path)
		}
		restart, _, ok := strings.Cut(file, ".log")
		if !ok || restart == "" || !digits(restart) || container == "" {
			return r, fmt.Errorf("log path %q: file is not <container>/<restart>.log", path)
		}
		r.Namespace, r.Pod, r.PodUID, r.Container, r.Restart = f[0], f[1], f[2], container, restart
		return r, nil
	}
	if i := indexPair(parts, "log", "containers"); i >= 0 && len(parts) == i+3 {
		name, ok := strings.CutSuffix(parts[i+2], ".log")
		if !ok {
			return r, fmt.Errorf("log path %q: not a .log file", path)
		}
		f := strings.SplitN(name, "_", 3)
		if len(f) != 3 || f[0] == "" || f[1] == "" {
			return r, fmt.Errorf("log path %q: name is not <pod>_<namespace>_<container>-<id>.log", path)
		}
		dash := strings.LastIndexByte(f[2], '-')
		if dash <= 0 || dash == len(f[2])-1 || !hex(f[2][dash+1:]) {
			return r, fmt.Errorf("log path %q: name is not <pod>_<namespace>_<container>-<id>.log", path)
		}
		r.Pod, r.Namespace, r.Container, r.ContainerID = f[0], f[1], f[2][:dash], f[2][dash+1:]
		return r, nil
	}
	return r, fmt.Errorf("log path %q: not under /var/log/pods or /var/log/containers", path)
}

func indexPair(parts []string, a, b string) int {
	for i := 0; i+1 < len(parts); i++ {
		if parts[i] == a && parts[i+1] == b {
			return i
		}
	}
	return -1
}

func digits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return s != ""
}

func hex(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return false
		}
	}
	return s != ""
}
