#!/usr/bin/env bash
# install-rsyslog.sh: install Debian's rsyslog, which the custos-agent syslog
# forwarding test (cmd/custos-agent, TestRsyslogForwarding) starts as an
# unprivileged child process with a generated configuration. Uses apt-get
# (the distribution's package manager) only when rsyslogd is missing.
set -euo pipefail
if command -v rsyslogd >/dev/null 2>&1 || [ -x /usr/sbin/rsyslogd ]; then
	echo "rsyslogd already installed"
	exit 0
fi
if ! command -v apt-get >/dev/null 2>&1; then
	echo "install-rsyslog.sh: rsyslogd is missing and apt-get is not available; install rsyslog with your package manager" >&2
	exit 1
fi
sudo=""
if [ "$(id -u)" -ne 0 ]; then sudo="sudo"; fi
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends rsyslog bsdutils >/dev/null
echo "installed rsyslog"
