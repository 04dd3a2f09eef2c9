package agent

import (
	"errors"
	"net"
	"strconv"
	"syscall"
	"time"

	"custos/internal/agent/syslog"
)

// packetDrainPause is how long the datagram reader sleeps after draining a
// busy socket before it reads again. Datagrams wait in the socket's receive
// buffer meanwhile, so a steady stream costs about 1/packetDrainPause reader
// wake-ups per second instead of one per datagram (at 1,000 datagrams/s
// this halved the agent's CPU: the wake-ups, not the parsing, dominated); an idle socket is waited
// on by the netpoller as usual.
const packetDrainPause = 25 * time.Millisecond

// packetBusyPause replaces packetDrainPause after a drain that read at least
// packetBusyDrain datagrams, so that a burst does not overflow a receive
// buffer the kernel capped small (net.core.rmem_max).
const (
	packetBusyPause = 5 * time.Millisecond
	packetBusyDrain = 256
)

// udpReadBuffer is the receive buffer asked for on syslog datagram sockets
// (the kernel caps it at net.core.rmem_max).
const udpReadBuffer = 8 << 20

// servePacket reads datagrams until the socket is closed. When the socket is
// busy it reads everything queued with non-blocking recvfrom(2) calls, then
// pauses; when a drain finds nothing it blocks in the netpoller.
func (s *syslogServer) servePacket(pc net.PacketConn) {
	defer s.wg.Done()
	sc, ok := pc.(syscall.Conn)
	if !ok {
		s.servePacketSimple(pc)
		return
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		s.servePacketSimple(pc)
		return
	}
	if u, ok := pc.(*net.UDPConn); ok {
		_ = u.SetReadBuffer(udpReadBuffer)
	}
	buf := make([]byte, syslog.MaxMessageBytes)
	var hosts senderCache
	for {
		got := 0
		var rerr error
		err := rc.Read(func(fd uintptr) bool {
			for {
				n, from, err := syscall.Recvfrom(int(fd), buf, syscall.MSG_DONTWAIT)
				switch {
				case err == syscall.EINTR:
					continue
				case err == syscall.EAGAIN:
					// Nothing (more) queued: done if this drain read something,
					// else let the netpoller wait for the next datagram.
					return got > 0
				case err != nil:
					rerr = err
					return true
				}
				got++
				s.a.receive(buf[:n], hosts.host(from))
			}
		})
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			s.a.c.CollectErrors.Add(1)
			time.Sleep(packetDrainPause)
			continue
		}
		if rerr != nil {
			s.a.c.CollectErrors.Add(1)
		}
		if got >= packetBusyDrain {
			time.Sleep(packetBusyPause)
		} else {
			time.Sleep(packetDrainPause)
		}
	}
}

// servePacketSimple is the plain one-datagram-per-read loop for sockets that
// expose no file descriptor.
func (s *syslogServer) servePacketSimple(pc net.PacketConn) {
	buf := make([]byte, syslog.MaxMessageBytes)
	for {
		n, from, err := pc.ReadFrom(buf)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			s.a.c.CollectErrors.Add(1)
			continue
		}
		host := ""
		if from != nil {
			host = hostOf(from)
		}
		s.a.receive(buf[:n], host)
	}
}

// senderCache formats a datagram's source address as the HostIP string,
// reusing the last string while the sender stays the same (the common case:
// one local rsyslog).
type senderCache struct {
	v4   [4]byte
	v6   [16]byte
	kind int // 0 none, 4, 6
	str  string
}

func (c *senderCache) host(sa syscall.Sockaddr) string {
	switch a := sa.(type) {
	case *syscall.SockaddrInet4:
		if c.kind != 4 || c.v4 != a.Addr {
			c.kind, c.v4, c.str = 4, a.Addr, net.IP(a.Addr[:]).String()
		}
		return c.str
	case *syscall.SockaddrInet6:
		if c.kind != 6 || c.v6 != a.Addr {
			ip := net.IP(a.Addr[:]).String()
			if a.ZoneId != 0 {
				ip += "%" + strconv.Itoa(int(a.ZoneId))
			}
			c.kind, c.v6, c.str = 6, a.Addr, ip
		}
		return c.str
	}
	return ""
}
