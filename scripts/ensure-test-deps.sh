#!/usr/bin/env bash
# Makes sure the tests' system tools are installed: redis-server and redis-cli (the tests run real Redis servers,
# not a mock, so that TLS, ACLs, Cluster and Sentinel behave as in production), openssl (TLS certificates made
# at test time) and SoftHSM2 (softhsm2-util and its PKCS#11 library: the HSM adapter is tested on a real token).
# Run by `npm test` before the tests. With arguments, it ensures those tools instead, e.g.
# `ensure-test-deps.sh faketime` for the clock-ahead check (scripts/test-clock-ahead.sh).
#
# - All present: does nothing.
# - Missing and root on Debian/Ubuntu: apt-get installs what is missing (redis-server, redis-tools for
#   redis-cli, openssl, softhsm2) without leaving the distribution's redis service running on 6379: the tests start
#   their own servers on free ports; faketime comes from the package of that name (libfaketime).
# - Missing otherwise: says which package is missing and how to install it, and exits 1. Never skips silently.
set -euo pipefail

declare -A package_of=([redis-server]=redis-server [redis-cli]=redis-tools [openssl]=openssl [softhsm2-util]=softhsm2 [faketime]=faketime)
if (($# == 0)); then
  tools=(redis-server redis-cli openssl softhsm2-util)
else
  tools=("$@")
fi
for tool in "${tools[@]}"; do
  if [[ -z ${package_of[$tool]:-} ]]; then
    echo "ensure-test-deps: no Debian package known for $tool (known: ${!package_of[*]})" >&2
    exit 2
  fi
done

missing_tools() {
  local tool
  for tool in "${tools[@]}"; do
    command -v "$tool" >/dev/null 2>&1 || printf '%s\n' "$tool"
  done
}

mapfile -t missing < <(missing_tools)
if ((${#missing[@]} == 0)); then
  exit 0
fi

packages=()
for tool in "${missing[@]}"; do
  packages+=("${package_of[$tool]}")
done

fail() {
  {
    echo "ensure-test-deps: missing ${missing[*]} (Debian/Ubuntu package: ${packages[*]})."
    echo "ensure-test-deps: the tests start real Redis servers, make TLS certificates with openssl and create"
    echo "ensure-test-deps: SoftHSM2 tokens with softhsm2-util; the clock-ahead check runs under faketime."
    echo "ensure-test-deps: $1"
  } >&2
  exit 1
}

if [[ $(id -u) -ne 0 ]]; then
  fail "install it as root, e.g.: sudo apt-get install -y ${packages[*]}   (then run npm test again)"
fi
if ! command -v apt-get >/dev/null 2>&1; then
  fail "this script installs with apt-get only; install ${packages[*]} (Redis 7 built with TLS, SoftHSM 2, libfaketime) with your package manager."
fi

echo "ensure-test-deps: installing ${packages[*]} with apt-get" >&2
export DEBIAN_FRONTEND=noninteractive

port_6379_open() { (exec 3<>/dev/tcp/127.0.0.1/6379) 2>/dev/null; }
was_open=no
if port_6379_open; then was_open=yes; fi

# Keep the package's service from starting: a policy-rc.d that refuses every start, unless one is already there.
policy=/usr/sbin/policy-rc.d
own_policy=no
if [[ ! -e $policy ]]; then
  printf '#!/bin/sh\nexit 101\n' >"$policy"
  chmod 755 "$policy"
  own_policy=yes
fi
cleanup() {
  if [[ $own_policy == yes ]]; then rm -f "$policy"; fi
}
trap cleanup EXIT

apt-get update -q
apt-get install -y -q --no-install-recommends "${packages[@]}"

# Whatever the init system did anyway: the service stays off, and nothing we started is left on 6379.
if [[ " ${packages[*]} " == *' redis-server '* ]]; then
  if command -v systemctl >/dev/null 2>&1 && [[ -d /run/systemd/system ]]; then
    systemctl disable --now redis-server.service >/dev/null 2>&1 || true
  elif [[ -x /etc/init.d/redis-server ]]; then
    /etc/init.d/redis-server stop >/dev/null 2>&1 || true
  fi
  if [[ $was_open == no ]] && port_6379_open; then
    redis-cli -h 127.0.0.1 -p 6379 SHUTDOWN NOSAVE >/dev/null 2>&1 || true
    sleep 1
    if port_6379_open; then
      echo "ensure-test-deps: warning: something still listens on 127.0.0.1:6379 after the install" >&2
    fi
  fi
fi

mapfile -t still_missing < <(missing_tools)
if ((${#still_missing[@]} > 0)); then
  missing=("${still_missing[@]}")
  fail "apt-get install ${packages[*]} finished, but ${still_missing[*]} is still not on PATH ($PATH)."
fi
for tool in "${tools[@]}"; do
  case $tool in
  redis-server) echo "ensure-test-deps: $(redis-server --version | cut -d' ' -f1-3)" >&2 ;;
  openssl) echo "ensure-test-deps: $(openssl version)" >&2 ;;
  faketime) echo "ensure-test-deps: faketime $(dpkg-query -W -f='${Version}' faketime 2>/dev/null || echo '(version unknown)')" >&2 ;;
  esac
done
