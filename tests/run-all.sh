#!/usr/bin/env bash
# Runs wharf's whole test suite on a fresh Debian machine with Rust installed.
#
# Installs what the tests need when it is missing (OpenSSH's sshd, vsftpd, openssl for test
# certificates, gnupg for the PGP test of `command` steps, pure-ftpd's libraries; the tests start their own throw-away servers on 127.0.0.1
# with generated keys, certificates and configs), then runs `cargo test`. pure-ftpd itself is
# not installed (its package conflicts with vsftpd's): the test harness unpacks it once from
# `apt-get download pure-ftpd`. Needs root for the package install and for the servers
# (privilege separation, a test user, binding ports).
#
# `--long` also runs the long checks after the suite: the ignored tests of
# tests/it/content_sftp.rs (a 1 GiB CSV through the content steps with bounded memory) in a
# release build. Other arguments go to `cargo test`.
set -euo pipefail
long=0
args=()
for a in "$@"; do
  if [ "$a" = --long ]; then long=1; else args+=("$a"); fi
done
cd "$(dirname "$0")/.."

need=()
[ -x /usr/sbin/sshd ] || need+=(openssh-server)
command -v ssh-keygen >/dev/null || need+=(openssh-client)
[ -x /usr/sbin/vsftpd ] || need+=(vsftpd)
command -v openssl >/dev/null || need+=(openssl)
# `command` content steps decrypt a partner's PGP file in tests/it/content_commands.rs.
command -v gpg >/dev/null || need+=(gnupg)
# pure-ftpd's libraries beyond the base system (it runs from an unpacked .deb).
ldconfig -p | grep 'libsodium\.so\.23' >/dev/null || need+=(libsodium23)
ldconfig -p | grep 'libcap\.so\.2' >/dev/null || need+=(libcap2)
if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" != 0 ]; then
    echo "run-all: missing ${need[*]}; run as root (or install them) so the SFTP and FTP tests can start servers" >&2
    exit 1
  fi
  echo "run-all: installing ${need[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >/dev/null
  apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

# Server-backed tests skip with a notice when they cannot start a server; here they must run.
export WHARF_REQUIRE_SERVERS=1
# A clean build without incremental compilation's bookkeeping is ~1/3 faster for wharf's own
# crate (measured: 184 s against 272 s); set CARGO_INCREMENTAL=1 to keep it.
export CARGO_INCREMENTAL=${CARGO_INCREMENTAL:-0}
cargo test --locked --all-targets ${args[@]+"${args[@]}"}
if [ "$long" = 1 ]; then
  cargo test --locked --release --test it content_sftp:: -- --ignored --nocapture
fi
