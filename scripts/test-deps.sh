#!/usr/bin/env bash
# What the test suite needs beyond npm, installed from Debian's packages when missing: `npm test` runs this
# first (pretest), and .ci/run calls it too, so a fresh machine needs nothing done by hand.
#   python3-slixmpp  a client nobody here wrote (interop tests)
#   python3-aioxmpp  another one, for the stream management interop tests
#   iproute2         ss (no socket lingers) and ip netns (the chaos test cuts a link for real)
#   systemd          systemd-analyze verify on our unit
#   prometheus       promtool checks the alert rules and their unit tests
#   postgresql       the storage contract tests start throwaway clusters
#   chromium         a real browser runs Converse.js over WebSocket (test/interop/browser.test.ts)
#   nginx-light      the WebSocket tests run deploy/nginx/vigil.conf in front of Vigil
#   prosody          a federation peer for the S2S interop tests (test/interop/peers/)
#   lua-unbound      Prosody's resolver that can read /etc/hosts (its built-in one cannot)
#   ejabberd         another one
set -euo pipefail

need=()
/usr/bin/python3 -c 'import slixmpp' 2>/dev/null || need+=(python3 python3-slixmpp)
(cd / && /usr/bin/python3 -c 'import aioxmpp') 2>/dev/null || need+=(python3 python3-aioxmpp)
command -v ss >/dev/null && command -v ip >/dev/null || need+=(iproute2)
command -v systemd-analyze >/dev/null || need+=(systemd)
command -v promtool >/dev/null || need+=(prometheus)
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || need+=(postgresql)
[ -x /usr/bin/chromium ] || need+=(chromium)
[ -x /usr/sbin/nginx ] || need+=(nginx-light)
command -v prosodyctl >/dev/null || need+=(prosody)
[ -n "$(ls /usr/lib/*/lua/5.4/lunbound.so 2>/dev/null)" ] || need+=(lua-unbound)
command -v ejabberdctl >/dev/null || need+=(ejabberd)
[ ${#need[@]} -eq 0 ] && exit 0

if [ "$(id -u)" -ne 0 ]; then
  echo "the tests need Debian packages that are missing; as root: apt-get install ${need[*]}" >&2
  exit 1
fi
export DEBIAN_FRONTEND=noninteractive
# We want the tools (promtool, systemd-analyze, initdb), not their services started on this machine.
own_policy=
if [ ! -e /usr/sbin/policy-rc.d ]; then
  printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d && own_policy=1
fi
trap '[ -z "$own_policy" ] || rm -f /usr/sbin/policy-rc.d' EXIT
# The PostgreSQL tests start clusters of their own; the package's default one is not needed.
mkdir -p /etc/postgresql-common/createcluster.d
echo 'create_main_cluster = false' > /etc/postgresql-common/createcluster.d/vigil-tests.conf
echo "installing what the tests need: ${need[*]}" >&2
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${need[@]}" >&2
