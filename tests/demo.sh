#!/usr/bin/env bash
# Runs the demo flow (flows/demo-pull.yaml) end to end on this machine, no partner needed:
# starts a throw-away OpenSSH sshd on 127.0.0.1:2299 serving /tmp/wharf-demo/partner,
# records its host key with `wharf trust`, validates the flow, runs it twice (the second run
# delivers nothing: exactly once), and shows the ledger. Needs root (sshd, a demo login).
#
# `--keep-server` leaves that sshd running at the end, so the other flows written for it
# (flows/order-ack-sftp.yaml, flows/roster-import.yaml) can be tried against it; the script
# says how to stop it.
set -euo pipefail
keep=0
for a in "$@"; do
  case "$a" in
    --keep-server) keep=1 ;;
    *) echo "demo: unknown argument $a (usage: tests/demo.sh [--keep-server])" >&2; exit 2 ;;
  esac
done
cd "$(dirname "$0")/.."
DEMO=/tmp/wharf-demo PORT=2299 USER_NAME=wharfdemo
export WHARF_DEMO_PASSWORD=wharf-demo-pass

[ "$(id -u)" = 0 ] || { echo "demo: run as root (it starts sshd and creates the '$USER_NAME' login)" >&2; exit 1; }
if [ ! -x /usr/sbin/sshd ]; then
  echo "demo: installing openssh-server" >&2
  DEBIAN_FRONTEND=noninteractive apt-get update -qq >/dev/null
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends openssh-server >/dev/null
fi
if ss -Hltn "( sport = :$PORT )" 2>/dev/null | grep -q .; then
  echo "demo: port $PORT is in use; stop what listens there first" >&2; exit 1
fi

echo "== building wharf"
cargo build --locked --quiet
WHARF="$PWD/target/debug/wharf --state-dir $DEMO/state"

echo "== starting a throw-away sshd on 127.0.0.1:$PORT"
rm -rf "$DEMO"; mkdir -p "$DEMO/etc" "$DEMO/partner/outgoing" "$DEMO/erp-inbox" /run/sshd
id "$USER_NAME" >/dev/null 2>&1 || useradd -M -d "$DEMO/partner" -s /usr/sbin/nologin "$USER_NAME"
echo "$USER_NAME:$WHARF_DEMO_PASSWORD" | chpasswd
ssh-keygen -q -t ed25519 -N '' -f "$DEMO/etc/host_key"
cat >"$DEMO/etc/sshd_config" <<CFG
Port $PORT
ListenAddress 127.0.0.1
HostKey $DEMO/etc/host_key
PidFile $DEMO/etc/sshd.pid
PasswordAuthentication yes
KbdInteractiveAuthentication no
UsePAM no
StrictModes no
AllowUsers $USER_NAME
Subsystem sftp internal-sftp
CFG
/usr/sbin/sshd -D -f "$DEMO/etc/sshd_config" -E "$DEMO/etc/sshd.log" </dev/null >/dev/null 2>&1 &
SSHD_PID=$!
trap 'kill $SSHD_PID 2>/dev/null || true' EXIT
for _ in $(seq 50); do ss -Hltn "( sport = :$PORT )" | grep -q . && break; sleep 0.1; done

echo "== the partner drops two order files (and one still being written)"
cp flows/demo-data/*.csv "$DEMO/partner/outgoing/"
echo "partial" >"$DEMO/partner/outgoing/orders_0003.csv.tmp"
touch -d '1 minute ago' "$DEMO/partner/outgoing/"*.csv
chown -R "$USER_NAME" "$DEMO/partner"

echo "== wharf trust 127.0.0.1:$PORT"
$WHARF trust "127.0.0.1:$PORT" --known-hosts "$DEMO/known_hosts" --yes
echo "== wharf validate flows/demo-pull.yaml"
$WHARF validate flows/demo-pull.yaml
echo "== wharf run (first run: delivers)"
$WHARF run flows/demo-pull.yaml
echo "== wharf run (second run: nothing new, nothing delivered twice)"
$WHARF run flows/demo-pull.yaml
echo "== wharf files demo-pull"
$WHARF files demo-pull
echo "== wharf runs"
$WHARF runs
echo "== what arrived"
find "$DEMO/erp-inbox" -type f | sort
echo "== what is left on the partner's server"
find "$DEMO/partner" -type f | sort
if [ "$keep" = 1 ]; then
  trap - EXIT
  echo "== sshd left running on 127.0.0.1:$PORT (pid $SSHD_PID); stop it with: kill $SSHD_PID"
  # What the other flows take: the partner's rosters, and our orders to push.
  mkdir -p "$DEMO/partner/incoming" demo-work/orders-outbox
  cp flows/fixtures/roster/ROSTER_*.csv "$DEMO/partner/incoming/"
  chown -R "$USER_NAME" "$DEMO/partner"
  cp flows/demo-data/orders_*.csv demo-work/orders-outbox/
  echo "   the partner's rosters are in $DEMO/partner/incoming, our orders in demo-work/orders-outbox;"
  echo "   try the other flows written for it, with the same state folder and password:"
  echo "   export WHARF_DEMO_PASSWORD=$WHARF_DEMO_PASSWORD"
  echo "   target/debug/wharf --state-dir $DEMO/state run flows/order-ack-sftp.yaml"
  echo "   target/debug/wharf --state-dir $DEMO/state run flows/roster-import.yaml"
fi
