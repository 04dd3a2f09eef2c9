// Package syslog parses syslog messages as rsyslog, syslog-ng and logger
// send them to custos-agent: RFC 5424 and RFC 3164 (BSD), with or without the
// RFC 6587 octet-counting frame on TCP. It also names facilities and
// severities as Azure's Syslog table and data collection rules do.
//
// Every input is untrusted: the parsers bound every field, never panic and
// return an error only when nothing usable can be recovered (a 3164 message
// without a valid header is still a message, as RFC 3164 §4.3.3 asks).
// The package imports only the standard library.
package syslog
