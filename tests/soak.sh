#!/usr/bin/env bash
# Crash soak: kills `wharf run` with SIGKILL at random moments, runs it again, and checks that
# every file arrived exactly once, whole, under its intended name — "never twice, never lost".
#
# Not part of the CI test command (it takes minutes). Needs root: it starts a throw-away
# OpenSSH sshd and a vsftpd (plain FTP) on 127.0.0.1, on free ports, with throw-away keys and
# configs under the work folder, and a login `wharfsoak` for them. Never Docker; loopback only.
#
#   tests/soak.sh [--rounds N] [--kills N] [--seed S] [--scenarios LIST] [--dir DIR] [--keep]
#
#   --rounds N     rounds per scenario (default 1); each round starts from fresh files and state
#   --kills N      SIGKILLs per round (default 20)
#   --seed S       seed of every random choice (sizes, delays); default: from the clock, printed
#   --scenarios L  comma-separated subset of sftp-pull,sftp-pull-keep,sftp-push,ftp-pull,ftp-push
#                  (default all)
#   --dir DIR      work folder (default /tmp/wharf-soak; emptied first)
#   --keep         keep the work folder after a clean run (it is always kept after a violation)
# WHARF_SOAK_BIN=PATH soaks that wharf binary instead of building target/debug/wharf.
#
# Scenarios (each a flow written here, with a `check` step refusing files named `bad_*`,
# a local quarantine, `if_exists: rename` so that a second delivery shows as a second file):
#   sftp-pull  SFTP /out → local /inbox, after.success move_to /processed, failure move_to /failed
#   sftp-pull-keep  the same with after.success keep (the ledger alone keeps a file from
#              being delivered twice)
#   sftp-push  local /outbox → SFTP /in (temporary name, verify, rename), after.success delete
#   ftp-pull   as sftp-pull over FTP (vsftpd)
#   ftp-push   local /outbox → FTP /in, after.success move_to /sent
# The first pull gets ~300 files: 0 B, 4 KiB, up to 200 KiB, 1 MiB, one of 50 MiB, and 5 bad
# ones. Each round: `wharf run` in the background, SIGKILL after a random delay (5 ms up to
# the scenario's measured uninterrupted run time), a few more files dropped into the source,
# N times; then runs until one has nothing left to do; then the checks (see check_scenario).
# Prints one summary line per scenario and round; exits 1 on any violation, with evidence.
set -euo pipefail

rounds=1 kills=20 seed="" scenarios="sftp-pull,sftp-pull-keep,sftp-push,ftp-pull,ftp-push" SOAK=/tmp/wharf-soak keep=0
usage() { echo "usage: tests/soak.sh [--rounds N] [--kills N] [--seed S] [--scenarios LIST] [--dir DIR] [--keep]" >&2; exit 2; }
while [ $# -gt 0 ]; do
  case "$1" in
    --rounds) rounds=${2:?}; shift 2 ;;
    --kills) kills=${2:?}; shift 2 ;;
    --seed) seed=${2:?}; shift 2 ;;
    --scenarios) scenarios=${2:?}; shift 2 ;;
    --dir) SOAK=${2:?}; shift 2 ;;
    --keep) keep=1; shift ;;
    *) usage ;;
  esac
done
[[ "$rounds" =~ ^[0-9]+$ && "$kills" =~ ^[0-9]+$ ]] || usage
[ -n "$seed" ] || seed=$(( $(date +%s%N) % 1000000 ))
[[ "$seed" =~ ^[0-9]+$ ]] || usage
RANDOM=$seed
cd "$(dirname "$0")/.."
ROOT=$PWD
USER_NAME=wharfsoak
export WHARF_SOAK_PASSWORD=wharf-soak-pass

[ "$(id -u)" = 0 ] || { echo "soak: run as root (it starts sshd and vsftpd and creates the '$USER_NAME' login)" >&2; exit 1; }
need=()
[ -x /usr/sbin/sshd ] || need+=(openssh-server)
[ -x /usr/sbin/vsftpd ] || need+=(vsftpd)
command -v jq >/dev/null || need+=(jq)
if [ ${#need[@]} -gt 0 ]; then
  echo "soak: installing ${need[*]}" >&2
  DEBIAN_FRONTEND=noninteractive apt-get update -qq >/dev/null
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

echo "== soak: seed $seed, $rounds round(s) of $kills kill(s) per scenario ($scenarios), work folder $SOAK"
if [ -n "${WHARF_SOAK_BIN:-}" ]; then
  BIN=$WHARF_SOAK_BIN
else
  echo "== building wharf"
  cargo build --locked --quiet
  BIN="$ROOT/target/debug/wharf"
fi

free_port() {
  local p
  while :; do
    p=$(( 20000 + RANDOM % 20000 ))
    ss -Hltn "( sport = :$p )" 2>/dev/null | grep -q . || { echo "$p"; return; }
  done
}
wait_port() { for _ in $(seq 100); do ss -Hltn "( sport = :$1 )" | grep -q . && return 0; sleep 0.1; done; return 1; }

rm -rf "$SOAK"
mkdir -p "$SOAK/etc/empty" "$SOAK/home" "$SOAK/partner" /run/sshd
chmod 755 "$SOAK" "$SOAK/etc" "$SOAK/etc/empty"
id "$USER_NAME" >/dev/null 2>&1 || useradd -M -d "$SOAK/home" -s /bin/bash "$USER_NAME"
usermod -d "$SOAK/home" "$USER_NAME" >/dev/null 2>&1 || true
echo "$USER_NAME:$WHARF_SOAK_PASSWORD" | chpasswd
chown "$USER_NAME" "$SOAK/home" "$SOAK/partner"

PIDS=()
cleanup() { local p; for p in ${PIDS[@]+"${PIDS[@]}"}; do kill "$p" 2>/dev/null || true; done; }
trap cleanup EXIT

SSH_PORT=$(free_port)
ssh-keygen -q -t ed25519 -N '' -f "$SOAK/etc/host_key"
cat >"$SOAK/etc/sshd_config" <<CFG
Port $SSH_PORT
ListenAddress 127.0.0.1
HostKey $SOAK/etc/host_key
PidFile $SOAK/etc/sshd.pid
PasswordAuthentication yes
KbdInteractiveAuthentication no
UsePAM no
StrictModes no
AllowUsers $USER_NAME
MaxStartups 100:30:200
MaxSessions 100
Subsystem sftp internal-sftp
CFG
/usr/sbin/sshd -D -f "$SOAK/etc/sshd_config" -E "$SOAK/etc/sshd.log" </dev/null >/dev/null 2>&1 &
PIDS+=($!)
wait_port "$SSH_PORT" || { echo "soak: sshd did not start: $(cat "$SOAK/etc/sshd.log")" >&2; exit 1; }

FTP_PORT=$(free_port)
# A wide passive range: a session of a killed run that sent STOR but never connected its data
# connection holds its port until vsftpd's accept_timeout (60 s), and a session that finds no
# free port dies, resetting the client's connection.
PASV_LO=$(( 40000 + RANDOM % 40 * 500 ))
cat >"$SOAK/etc/vsftpd.conf" <<CFG
listen=YES
listen_ipv6=NO
listen_address=127.0.0.1
listen_port=$FTP_PORT
background=NO
anonymous_enable=NO
local_enable=YES
write_enable=YES
local_umask=022
chroot_local_user=NO
pasv_enable=YES
pasv_address=127.0.0.1
pasv_min_port=$PASV_LO
pasv_max_port=$(( PASV_LO + 499 ))
port_enable=NO
seccomp_sandbox=NO
isolate_network=NO
secure_chroot_dir=$SOAK/etc/empty
pam_service_name=vsftpd
userlist_enable=NO
use_localtime=NO
max_clients=200
max_per_ip=200
ssl_enable=NO
xferlog_enable=YES
vsftpd_log_file=$SOAK/etc/vsftpd.log
CFG
/usr/sbin/vsftpd "$SOAK/etc/vsftpd.conf" </dev/null >"$SOAK/etc/vsftpd.out" 2>&1 &
PIDS+=($!)
wait_port "$FTP_PORT" || { echo "soak: vsftpd did not start on port $FTP_PORT: $(cat "$SOAK/etc/vsftpd.out" "$SOAK/etc/vsftpd.log" 2>/dev/null)" >&2; exit 1; }
"$BIN" --state-dir "$SOAK/trust-state" trust "127.0.0.1:$SSH_PORT" --known-hosts "$SOAK/known_hosts" --yes >/dev/null
echo "== sshd on 127.0.0.1:$SSH_PORT, vsftpd on 127.0.0.1:$FTP_PORT"

# ---------------------------------------------------------------------------------------------
# Files. `make_file PATH SIZE` writes SIZE random bytes; the 50 MiB file is copied from one made
# once, with a unique tail, so it costs a copy and not /dev/urandom each time.
make_file() {
  local path=$1 size=$2
  if [ "$size" -ge 52428800 ]; then
    [ -f "$SOAK/big.seed" ] || head -c 52428800 /dev/urandom >"$SOAK/big.seed"
    { cat "$SOAK/big.seed"; echo "$path $RANDOM"; } >"$path"
  else
    head -c "$size" /dev/urandom >"$path"
  fi
}
# Size of the Nth file of a batch: every 10th empty, every 25th 1 MiB, else mostly 4 KiB.
size_of() {
  local i=$1
  if [ $(( i % 10 )) = 0 ]; then echo 0
  elif [ $(( i % 25 )) = 1 ]; then echo 1048576
  elif [ $(( i % 3 )) = 0 ]; then echo $(( RANDOM * 6 % 200000 + 1 ))
  else echo 4096
  fi
}
# `fill DIR PREFIX COUNT BAD BIG` drops COUNT good files (`f_PREFIX_N.dat`), BAD bad ones
# (`bad_PREFIX_N.dat`) and, when BIG is 1, one of 50 MiB, into DIR.
fill() {
  local dir=$1 prefix=$2 count=$3 bad=$4 big=$5 i
  for i in $(seq "$count"); do make_file "$dir/f_${prefix}_$i.dat" "$(size_of "$i")"; done
  for i in $(seq "$bad"); do make_file "$dir/bad_${prefix}_$i.dat" 2048; done
  [ "$big" = 1 ] && make_file "$dir/f_${prefix}_big.dat" 52428800
  # Old enough for any readiness rule, and the same time for all (mtime is in the identity).
  touch -d '1 minute ago' "$dir"/* 2>/dev/null || true
}

# ---------------------------------------------------------------------------------------------
# Flows. A scenario's folders: W=$SOAK/NAME (state, local endpoint `here`), and P, its folder on
# the partner's server (the server endpoint's root).
endpoint_yaml() {
  local proto=$1 root=$2
  if [ "$proto" = sftp ]; then cat <<Y
  partner:
    type: sftp
    host: 127.0.0.1
    port: $SSH_PORT
    user: $USER_NAME
    auth: { password: "\${env:WHARF_SOAK_PASSWORD}" }
    host_key: { known_hosts: $SOAK/known_hosts }
    root: $root
Y
  else cat <<Y
  partner:
    type: ftp
    host: 127.0.0.1
    port: $FTP_PORT
    tls: none
    user: $USER_NAME
    password: "\${env:WHARF_SOAK_PASSWORD}"
    root: $root
Y
  fi
}
write_flow() {
  local name=$1 proto=$2 dir=$3 W=$SOAK/$1 P=$SOAK/partner/$1
  {
    echo "name: soak-$name"
    echo "endpoints:"
    endpoint_yaml "$proto" "$P"
    echo "  here: { type: local, root: $W/local }"
    # Pull: the partner's /out into our /inbox. Push: our /outbox into the partner's /in.
    local from="partner, path: /out" to="here, path: /inbox" success='{ move_to: /processed }'
    if [ "$dir" = push ]; then
      from="here, path: /outbox"; to="partner, path: /in"; success=delete
      [ "$proto" = ftp ] && success='{ move_to: /sent }'
    fi
    [ "$name" = sftp-pull-keep ] && success=keep
    cat <<Y
source: { endpoint: $from }
sinks:
  - { endpoint: $to, if_exists: rename }
after:
  success: $success
  failure: { move_to: /failed }
Y
    cat <<Y
steps:
  - check: { name: '^f_' }
quarantine: { endpoint: here, path: /quarantine }
retry: { attempts: 2, backoff: 100ms }
Y
  } >"$W/flow.yaml"
}
# The folder files are dropped into, and the one they are delivered to.
src_dir() { case $1 in *-pull*) echo "$SOAK/partner/$1/out" ;; *) echo "$SOAK/$1/local/outbox" ;; esac; }
sink_dir() { case $1 in *-pull*) echo "$SOAK/$1/local/inbox" ;; *) echo "$SOAK/partner/$1/in" ;; esac; }
# Where a delivered source ends: a folder, or empty for `delete`.
done_dir() {
  case $1 in
    *-pull-keep) echo "" ;;
    *-pull) echo "$SOAK/partner/$1/processed" ;;
    ftp-push) echo "$SOAK/$1/local/sent" ;;
    *) echo "" ;;
  esac
}
failed_dir() { case $1 in *-pull*) echo "$SOAK/partner/$1/failed" ;; *) echo "$SOAK/$1/local/failed" ;; esac; }

# `setup NAME`: fresh folders, state and flow for a scenario.
setup() {
  local name=$1 proto=${1%%-*} dir=push W=$SOAK/$1 P=$SOAK/partner/$1
  case $name in *-pull*) dir=pull ;; esac
  rm -rf "$W" "$P"
  mkdir -p "$W/local" "$P" "$(src_dir "$name")" "$W/expect"
  chown -R "$USER_NAME" "$P"
  write_flow "$name" "$proto" "$dir"
}
# `drop NAME PREFIX COUNT BAD BIG`: new files into the scenario's source, their sums recorded.
drop() {
  local name=$1 tmp=$SOAK/$1/drop
  rm -rf "$tmp"; mkdir -p "$tmp"
  fill "$tmp" "$2" "$3" "$4" "$5"
  (cd "$tmp" && sha256sum -- * >>"$SOAK/$name/expect/sums")
  local f
  for f in "$tmp"/*; do
    case ${f##*/} in bad_*) echo "${f##*/}" >>"$SOAK/$name/expect/bad" ;; *) echo "${f##*/}" >>"$SOAK/$name/expect/good" ;; esac
  done
  touch "$SOAK/$name/expect/bad" "$SOAK/$name/expect/good"
  case $name in *-pull*) chown -R "$USER_NAME" "$SOAK/partner/$name" "$tmp" ;; esac
  # A rename into the source folder: a file appears whole (as a careful partner writes it).
  mv "$tmp"/* "$(src_dir "$name")/" 2>/dev/null || true
  rmdir "$tmp"
}
wharf() { "$BIN" --state-dir "$SOAK/$CUR/state" "$@"; }

now_ms() { echo $(( $(date +%s%N) / 1000000 )); }

# ---------------------------------------------------------------------------------------------
# Checks. Prints each violation on stderr and counts it.
violations=0
# The evidence is cut at 40 lines (the work folder keeps the rest).
violation() {
  { echo "VIOLATION [$CUR round $ROUND]: $*" | head -n 40 | cut -c1-400 >&2; } || true
  violations=$((violations + 1)); round_bad=$((round_bad + 1))
}

check_scenario() {
  local name=$1 W=$SOAK/$1 sink src done failed f
  sink=$(sink_dir "$name"); src=$(src_dir "$name"); done=$(done_dir "$name"); failed=$(failed_dir "$name")
  # 1. The sink holds exactly the good files, each once, byte-identical, under its own name;
  #    nothing under a temporary name.
  local listing
  listing=$(cd "$sink" 2>/dev/null && find . -mindepth 1 -printf '%P\n' | sort || true)
  local extra
  extra=$(comm -13 <(sort "$W/expect/good") <(echo "$listing" | sed '/^$/d'))
  [ -z "$extra" ] || violation "unexpected files in the sink $sink (a second delivery, a temporary name, a bad file delivered):"$'\n'"$extra"
  local missing
  missing=$(comm -23 <(sort "$W/expect/good") <(echo "$listing" | sed '/^$/d'))
  [ -z "$missing" ] || violation "good files never delivered to $sink:"$'\n'"$missing"
  local wrong
  wrong=$(cd "$sink" 2>/dev/null && grep -v '  bad_' "$W/expect/sums" | sha256sum --quiet -c 2>&1 | grep -v 'No such file\|could not be read' || true)
  [ -z "$wrong" ] || violation "delivered files that differ from their source (sha256):"$'\n'"$wrong"
  # 2. The source folder is empty: every file moved (or deleted) once; no temporary names.
  #    With `keep`, it holds the good files, as they were.
  local left kept=""
  left=$(cd "$src" && find . -mindepth 1 -printf '%P\n' | sort || true)
  [ "$name" = sftp-pull-keep ] && kept=$(sort "$W/expect/good")
  [ "$left" = "$kept" ] || violation "the source folder $src does not hold what it should (< missing, > extra):"$'\n'"$(comm -3 <(echo "$kept") <(echo "$left") | sed 's/^\t/> /; t; s/^/< /')"
  if [ -n "$done" ]; then
    listing=$(cd "$done" 2>/dev/null && find . -mindepth 1 -printf '%P\n' | sort || true)
    extra=$(comm -3 <(sort "$W/expect/good") <(echo "$listing" | sed '/^$/d'))
    [ -z "$extra" ] || violation "$done does not hold exactly the good sources, once each (< missing, > extra):"$'\n'"$(comm -3 <(sort "$W/expect/good") <(echo "$listing" | sed '/^$/d') | sed 's/^\t/> /; t; s/^/< /')"
  fi
  listing=$(cd "$failed" 2>/dev/null && find . -mindepth 1 -printf '%P\n' | sort || true)
  extra=$(comm -3 <(sort "$W/expect/bad") <(echo "$listing" | sed '/^$/d'))
  [ -z "$extra" ] || violation "$failed does not hold exactly the bad sources, once each (< missing, > extra):"$'\n'"$(comm -3 <(sort "$W/expect/bad") <(echo "$listing" | sed '/^$/d') | sed 's/^\t/> /; t; s/^/< /')"
  # 3. Each bad file in quarantine once, whole, with its reports; nothing else there.
  local q=$W/local/quarantine want
  want=$(while read -r f; do printf '%s\n%s.report.json\n%s.report.txt\n' "$f" "$f" "$f"; done <"$W/expect/bad" | sort)
  listing=$(cd "$q" 2>/dev/null && find . -mindepth 1 -printf '%P\n' | sort || true)
  [ "$want" = "$listing" ] || violation "quarantine $q does not hold exactly one copy and two reports per bad file (< missing, > extra):"$'\n'"$(comm -3 <(echo "$want") <(echo "$listing") | sed 's/^\t/> /; t; s/^/< /')"
  wrong=$(cd "$q" 2>/dev/null && grep '  bad_' "$W/expect/sums" | sha256sum --quiet -c 2>&1 | grep -v 'No such file\|could not be read' || true)
  [ -z "$wrong" ] || violation "quarantined copies that differ from their source:"$'\n'"$wrong"
  for f in $(cat "$W/expect/bad"); do
    [ -f "$q/$f.report.json" ] && ! jq -e '.reason | length > 0' "$q/$f.report.json" >/dev/null 2>&1 \
      && violation "quarantine report $q/$f.report.json gives no reason: $(head -c 400 "$q/$f.report.json")"
  done
  # 4. The ledger agrees: every file done or quarantined, none in flight, one record per name.
  local files
  files=$(CUR=$name wharf files "soak-$name" --json --limit 100000)
  local stuck
  stuck=$(echo "$files" | jq -r '.[] | select(.state != "done" and .state != "quarantined") | "\(.path) \(.state)"')
  [ -z "$stuck" ] || violation "ledger records neither done nor quarantined:"$'\n'"$stuck"
  local recorded
  recorded=$(echo "$files" | jq -r '.[] | "\(.path | sub(".*/"; "")) \(.state)"' | sort)
  want=$( { sed 's/$/ done/' "$W/expect/good"; sed 's/$/ quarantined/' "$W/expect/bad"; } | sort)
  [ "$want" = "$recorded" ] || violation "ledger files differ from what was dropped (< expected, > recorded):"$'\n'"$(comm -3 <(echo "$want") <(echo "$recorded") | sed 's/^\t/> /; t; s/^/< /')"
  # 5. Nothing left in the staging folder (a file finished leaves no staged copy behind).
  left=$(find "$W/state/staging" -type f 2>/dev/null | sed "s|^$W/state/staging/||" | sort || true)
  [ -z "$left" ] || violation "left in the staging folder $W/state/staging:"$'\n'"$left"
  # 6. `wharf plan` has nothing to do.
  CUR=$name wharf plan "$W/flow.yaml" --json >"$W/plan.json" 2>/dev/null || true
  local planned
  planned=$(jq -r 'if (.files | type) == "array" then .files[] | select(.action != "already_done") | tostring else "no plan: \(.)" end' \
    "$W/plan.json" 2>&1 || true)
  [ -z "$planned" ] || violation "wharf plan still has something to do:"$'\n'"$planned"
  # 7. Events: one `quarantined` per bad file, none for a good one, no `failed` event.
  local events
  events=$(CUR=$name wharf events "soak-$name" --json --limit 100000)
  local q_events
  q_events=$(echo "$events" | jq -r '.[] | select(.kind == "quarantined") | .subject | sub(".*/"; "")' | sort)
  [ "$q_events" = "$(sort "$W/expect/bad")" ] || violation "quarantined events are not one per bad file (< expected, > recorded):"$'\n'"$(comm -3 <(sort "$W/expect/bad") <(echo "$q_events") | sed 's/^\t/> /; t; s/^/< /')"
  local failed_events
  failed_events=$(echo "$events" | jq -c '.[] | select(.kind != "quarantined" and .kind != "recovered")')
  [ -z "$failed_events" ] || violation "unexpected events:"$'\n'"$failed_events"
}

# ---------------------------------------------------------------------------------------------
# `run_once NAME` runs the flow to its end; prints its JSON report in $W/last.json.
run_once() { wharf run "$SOAK/$1/flow.yaml" --json >"$SOAK/$1/last.json" 2>>"$SOAK/$1/runs.log"; }

# The uninterrupted run time of a scenario's first run (ms), measured once on files of the
# same shape in a separate state.
declare -A typical
calibrate() {
  local name=$1
  CUR=$name
  setup "$name"
  drop "$name" c 300 5 1
  local t0 t1
  t0=$(now_ms)
  run_once "$name" || true
  t1=$(now_ms)
  typical[$name]=$(( t1 - t0 ))
}

soak_round() {
  local name=$1 W=$SOAK/$1
  CUR=$name
  round_bad=0
  setup "$name"
  drop "$name" r0 300 5 1
  local k landed=0 early=0 t=${typical[$name]} delay u pid status t0 took
  for k in $(seq "$kills"); do
    # 5 ms up to the run time expected (u² of a uniform u: more of them early). A run that
    # ended before its kill says how long runs take now: the next delays are drawn up to that.
    u=$(( RANDOM % 1000 ))
    delay=$(( 5 + (t - 5) * u * u / 1000000 ))
    t0=$(now_ms)
    # The binary itself, not the `wharf` function: $! must be wharf's own pid.
    "$BIN" --state-dir "$W/state" run "$W/flow.yaml" >>"$W/runs.log" 2>&1 &
    pid=$!
    sleep "$(printf '%d.%03d' $((delay / 1000)) $((delay % 1000)))"
    kill -KILL "$pid" 2>/dev/null || true
    status=0; wait "$pid" 2>/dev/null || status=$?
    took=$(( $(now_ms) - t0 ))
    if [ "$status" = 137 ]; then
      landed=$((landed + 1))
    else
      early=$((early + 1)); t=$(( took > 50 ? took : 50 ))
    fi
    echo "kill $k: after ${delay} ms, exit $status" >>"$W/kills.log"
    # The partner (or our export) goes on dropping files: every run has work to be killed in,
    # every 4th time a 50 MiB one, every 7th a bad one.
    drop "$name" "k$k" 15 $(( k % 7 == 0 ? 1 : 0 )) $(( k % 4 == 0 ? 1 : 0 ))
  done
  # To completion: until a run has nothing to deliver, quarantine or finish.
  local n=0 report
  while :; do
    n=$((n + 1))
    status=0; run_once "$name" || status=$?
    report=$(cat "$W/last.json")
    cp "$W/last.json" "$W/final-$n.json"
    local busy
    busy=$(echo "$report" | jq '[(.files // [])[] | select(.outcome != "skipped" and .outcome != "not_ready")] | length' 2>/dev/null || echo "?")
    if [ "$status" != 0 ]; then
      violation "run $n to completion exited $status: $(echo "$report" | jq -r '.status, .error // empty, ((.files // [])[] | select(.outcome == "failed") | "\(.path): \(.detail)")' 2>/dev/null || echo "$report" | head -c 2000)"
    fi
    [ "$busy" = 0 ] && break
    if [ "$n" -ge 6 ]; then violation "still busy after $n runs to completion: $(echo "$report" | jq -c '[(.files // [])[] | select(.outcome != "skipped")][:10]')"; break; fi
  done
  check_scenario "$name"
  local good bad
  good=$(wc -l <"$W/expect/good"); bad=$(wc -l <"$W/expect/bad")
  printf '%-10s round %d: %3d files (%d bad), %2d kills landed, %2d runs ended first, %d run(s) to finish: %s\n' \
    "$name" "$ROUND" $((good + bad)) "$bad" "$landed" "$early" "$n" "$([ "$round_bad" = 0 ] && echo ok || echo "$round_bad VIOLATION(S)")"
}

start=$(now_ms)
IFS=, read -ra todo <<<"$scenarios"
for name in "${todo[@]}"; do
  case $name in sftp-pull|sftp-pull-keep|sftp-push|ftp-pull|ftp-push) ;; *) echo "soak: unknown scenario $name" >&2; exit 2 ;; esac
  calibrate "$name"
  echo "== $name: an uninterrupted first run takes ${typical[$name]} ms"
  for ROUND in $(seq "$rounds"); do soak_round "$name"; done
done
echo "== soak: seed $seed, $(( ($(now_ms) - start) / 1000 )) s, $violations violation(s)"
if [ "$violations" -gt 0 ]; then
  echo "== work folder kept: $SOAK (per scenario: kills.log, runs.log, final-N.json, state/)" >&2
  exit 1
fi
[ "$keep" = 1 ] || rm -rf "$SOAK"
