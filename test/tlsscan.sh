#!/usr/bin/env bash
# tlsscan.sh: scan Custos's TLS with sslscan (Debian package) and fail on any
# weakness. Without arguments it builds custos, starts `custos serve` on a
# temporary data directory with its public listener and one extra private
# listener (both on 127.0.0.1, free ports), and scans both. With host:port
# arguments it scans those servers instead. --self-test scans a deliberately
# weak `openssl s_server` and fails unless the weaknesses are reported.
#
# Weaknesses: SSLv2/SSLv3/TLS 1.0/TLS 1.1 accepted; any cipher that is not
# AEAD (GCM or ChaCha20-Poly1305) or is NULL/EXPORT/RC4/DES/3DES/MD5/anonymous,
# or rated weak by sslscan; TLS 1.2 key exchange without forward secrecy;
# DHE under 2048 bits; key-exchange groups under 128-bit strength; insecure
# renegotiation; TLS compression; Heartbleed; an expired certificate, an RSA
# or DSA key under 2048 bits, an EC key under 128-bit strength, or an MD5 or
# SHA-1 signature.
#
# Exit status: 0 when every scanned endpoint passes, 1 on any weakness, 2 when
# the scan itself could not run.
set -euo pipefail
cd "$(dirname "$0")/.."

say() { printf 'tlsscan: %s\n' "$*"; }

if ! command -v sslscan >/dev/null 2>&1; then
	if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
		say "installing sslscan"
		apt-get update -qq >/dev/null
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq sslscan >/dev/null
	else
		say "sslscan is not installed (apt-get install -y sslscan)" >&2
		exit 2
	fi
fi

tmp="$(mktemp -d)"
server_pid=""
cleanup() {
	if [ -n "$server_pid" ] && kill -0 "$server_pid" 2>/dev/null; then
		kill "$server_pid" 2>/dev/null || true
		wait "$server_pid" 2>/dev/null || true
	fi
	rm -rf "$tmp"
}
trap cleanup EXIT

# attr NAME LINE: the value of XML attribute NAME in LINE.
attr() { sed -n "s/.* $1=\"\\([^\"]*\\)\".*/\\1/p" <<<"$2"; }

# analyze XML: prints one line per weakness; returns the number found (capped).
analyze() {
	local xml="$1" n=0 line v t bits name strength kx
	report() { printf '  WEAK: %s\n' "$*"; n=$((n + 1)); }
	if ! grep -q '<ssltest ' "$xml"; then
		report "sslscan produced no result (connection failed?)"
		return 1
	fi
	while IFS= read -r line; do
		case "$line" in
		*"<protocol "*)
			t="$(attr type "$line")" v="$(attr version "$line")"
			if [ "$(attr enabled "$line")" = 1 ]; then
				case "$t$v" in
				tls1.2 | tls1.3) ;;
				*) report "protocol ${t^^} $v is accepted" ;;
				esac
			fi
			;;
		*"<cipher "*)
			name="$(attr cipher "$line")" v="$(attr sslversion "$line")" strength="$(attr strength "$line")"
			case "$name" in
			*NULL* | *EXP* | *RC4* | *DES* | *MD5* | *anon* | ADH-* | AECDH-* | *PSK* | *SRP*)
				report "cipher $name ($v) is broken or unauthenticated" ;;
			*GCM* | *CHACHA20*POLY1305*) ;;
			*) report "cipher $name ($v) is not AEAD (CBC or stream)" ;;
			esac
			case "$strength" in
			weak | null | anonymous | medium) report "cipher $name ($v) rated $strength by sslscan" ;;
			esac
			if [ "$v" != TLSv1.3 ]; then
				case "$name" in
				ECDHE-* | DHE-*) ;;
				*) report "cipher $name ($v) has no forward secrecy" ;;
				esac
			fi
			bits="$(attr dhebits "$line")"
			if [ -n "$bits" ] && [ "$bits" -lt 2048 ]; then
				report "cipher $name uses a ${bits}-bit DHE group"
			fi
			;;
		*"<group "*)
			bits="$(attr bits "$line")" name="$(attr name "$line")"
			if [ -n "$bits" ] && [ "$bits" -lt 128 ]; then
				report "key exchange group $name ($(attr sslversion "$line")) has ${bits}-bit strength"
			fi
			;;
		*"<renegotiation "*)
			if [ "$(attr supported "$line")" = 1 ] && [ "$(attr secure "$line")" != 1 ]; then
				report "insecure session renegotiation"
			fi
			;;
		*"<compression "*)
			[ "$(attr supported "$line")" = 1 ] && report "TLS compression is enabled (CRIME)"
			;;
		*"<heartbleed "*)
			[ "$(attr vulnerable "$line")" = 1 ] && report "vulnerable to Heartbleed ($(attr sslversion "$line"))"
			;;
		*"<pk "*)
			t="$(attr type "$line")" bits="$(attr bits "$line")"
			case "$t" in
			RSA | DSA) [ -n "$bits" ] && [ "$bits" -lt 2048 ] && report "certificate $t key of $bits bits" ;;
			EC) [ -n "$bits" ] && [ "$bits" -lt 128 ] && report "certificate EC key of $bits-bit strength" ;;
			esac
			[ "$(attr error "$line")" = true ] && report "certificate public key could not be read"
			;;
		*"<signature-algorithm>"*)
			case "${line,,}" in
			*md5* | *sha1*) report "certificate signed with $(sed 's/<[^>]*>//g; s/^ *//' <<<"$line")" ;;
			esac
			;;
		*"<expired>true</expired>"*)
			report "certificate has expired"
			;;
		esac
	done <"$xml"
	return $((n > 100 ? 100 : n))
}

# scan ADDR LABEL: scans one endpoint; returns its number of weaknesses.
scan() {
	local addr="$1" label="$2" xml
	xml="$tmp/scan-$(tr -c 'a-zA-Z0-9' _ <<<"$addr").xml"
	say "scanning $label $addr"
	sslscan --no-colour --xml="$xml" "$addr" >"$xml.txt" 2>&1 || true
	sed -n '/SSL\/TLS Protocols/,/SSL Certificate/p' "$xml.txt" | sed 's/^/  | /'
	local rc=0
	analyze "$xml" || rc=$?
	return "$rc"
}

# start_custos: builds and starts custos; sets targets to its listeners.
targets=()
labels=()
start_custos() {
	say "building custos"
	go build -o "$tmp/custos" ./cmd/custos
	"$tmp/custos" serve --data-dir "$tmp/data" --listen 127.0.0.1:0 --log-format json \
		--listeners '127.0.0.1:0;private' >"$tmp/server.log" 2>&1 &
	server_pid=$!
	local i
	for i in $(seq 1 120); do
		if grep -q '"msg":"serving".*"endpoint"' "$tmp/server.log"; then
			break
		fi
		if ! kill -0 "$server_pid" 2>/dev/null; then
			say "custos serve exited:" >&2
			cat "$tmp/server.log" >&2
			exit 2
		fi
		sleep 0.5
	done
	local line
	while IFS= read -r line; do
		targets+=("$(sed -n 's/.*"address":"\([^"]*\)".*/\1/p' <<<"$line")")
		case "$line" in
		*'"private":true'*) labels+=("custos private listener") ;;
		*'"private":false'*) labels+=("custos extra listener") ;;
		*) labels+=("custos public listener") ;;
		esac
	done < <(grep '"msg":"serving"' "$tmp/server.log")
	if [ "${#targets[@]}" -lt 2 ]; then
		say "custos did not report its listeners:" >&2
		cat "$tmp/server.log" >&2
		exit 2
	fi
}

# start_weak: a deliberately weak openssl s_server for --self-test.
start_weak() {
	openssl req -x509 -newkey rsa:1024 -sha1 -nodes -days 1 -subj /CN=weak \
		-keyout "$tmp/weak.key" -out "$tmp/weak.crt" >/dev/null 2>&1
	local port
	port="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])' 2>/dev/null || echo 48443)"
	openssl s_server -accept "127.0.0.1:$port" -cert "$tmp/weak.crt" -key "$tmp/weak.key" -www -quiet \
		-cipher 'ALL:@SECLEVEL=0' -tls1_1 >/dev/null 2>&1 </dev/null &
	server_pid=$!
	sleep 1
	targets=("127.0.0.1:$port")
	labels=("weak openssl s_server (self-test)")
}

mode=scan
if [ "${1:-}" = --self-test ]; then
	mode=selftest
	start_weak
elif [ "$#" -gt 0 ]; then
	for a in "$@"; do
		targets+=("$a")
		labels+=("server")
	done
else
	start_custos
fi

total=0
for i in "${!targets[@]}"; do
	rc=0
	scan "${targets[$i]}" "${labels[$i]}" || rc=$?
	total=$((total + rc))
done

if [ "$mode" = selftest ]; then
	if [ "$total" -gt 0 ]; then
		say "SELF-TEST PASS: $total weaknesses of the weak server were reported"
		exit 0
	fi
	say "SELF-TEST FAIL: the weak server was reported clean" >&2
	exit 1
fi
if [ "$total" -gt 0 ]; then
	say "VERDICT: FAIL — $total weakness(es) in ${#targets[@]} endpoint(s)"
	exit 1
fi
say "VERDICT: PASS — ${#targets[@]} endpoint(s): TLS 1.2+ only, AEAD ciphers with forward secrecy, strong groups and certificate"
