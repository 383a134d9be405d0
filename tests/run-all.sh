#!/usr/bin/env bash
# Runs wharf's whole test suite on a fresh Debian machine with Rust installed.
#
# Installs what the tests need when it is missing (OpenSSH's sshd; the tests start their own
# throw-away servers on 127.0.0.1 with generated keys and configs), then runs `cargo test`.
# Needs root for the package install and for sshd (privilege separation, a test user).
set -euo pipefail
cd "$(dirname "$0")/.."

need=()
[ -x /usr/sbin/sshd ] || need+=(openssh-server)
command -v ssh-keygen >/dev/null || need+=(openssh-client)
if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" != 0 ]; then
    echo "run-all: missing ${need[*]}; run as root (or install them) so the SFTP tests can start sshd" >&2
    exit 1
  fi
  echo "run-all: installing ${need[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >/dev/null
  apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

# Server-backed tests skip with a notice when they cannot start a server; here they must run.
export WHARF_REQUIRE_SERVERS=1
cargo test --locked --all-targets "$@"
