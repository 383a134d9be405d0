#!/usr/bin/env bash
# Transfer benchmark: wharf against its peers on 127.0.0.1, in one run.
#   SFTP (OpenSSH sshd): OpenSSH sftp (default, and tuned: -B 261120 -R 64 -c aes128-gcm), rclone, lftp
#   FTP (vsftpd, plain): curl (the big file only: one curl process fetching many files waits
#   ~0.2 s after each upload and reached 5-80 files/s here), rclone, lftp
#   FTPS (vsftpd, explicit TLS on control and data connections, require_ssl_reuse: wharf's
#   default FTP mode): curl (the big file), rclone (with --ftp-disable-tls13, see RCLONE_FTPS), lftp;
#   wharf also as "wharf-tls12" (tls_max_version: 1.2, the protocol rclone runs here; not a peer).
# Prints MiB/s (the big file) or files/s (many files), CPU seconds and peak RSS per tool, and
# wharf's ratio to the best peer (also "on disk": counting a `sync` after each run, since wharf
# fsyncs what it delivers to a local folder and the peers do not); then the large-directory figure (listing 50,000 files and
# deciding readiness and identity for all of them). Every copy is checked byte for byte.
#
#   sudo bench/run.sh                     # full data sets: 1 x 1 GiB, 200 x 1 MiB, 5000 x 4 KiB
#   sudo BENCH_SCALE=small bench/run.sh   # 1 x 64 MiB, 50 x 1 MiB, 500 x 4 KiB (a quick check)
#
#   BENCH_ONLY="sftp:dl:big ftp:"  only the cases whose proto:dir:set starts with one of these
#                                  ("ftp" alone also selects "ftps")
#   BENCH_TOOLS="wharf lftp"       only these tools
#   BENCH_LIST_N=50000             files in the large directory (0: skip that part)
#   BENCH_REPEAT=2                 run each measurement N times, keep the fastest
#   WHARF=path                     the wharf binary (default: cargo build --release)
#   BENCH_FLOW_EXTRA="concurrency: 16"   a line added to every wharf flow
#
# Needs root (sshd, vsftpd, a bench login). Installs openssh-server, vsftpd, rclone, lftp, curl
# and time when missing. Results: $B/results (raw; every repeat in $B/results.all), and the table on stdout.
set -euo pipefail
cd "$(dirname "$0")/.."
B=/tmp/wharf-bench PORT=${BENCH_PORT:-2298} FTP_PORT=${BENCH_FTP_PORT:-2198} FTPS_PORT=${BENCH_FTPS_PORT:-2199}
U=wharfbench PASS=wharfbench-pw
# vsftpd's passive ports, below the ephemeral range (32768-60999): inside it, the client ports
# of earlier connections still in TIME_WAIT (5,000 per small-file case) take the server's
# ports, and vsftpd answers EPSV with "500 OOPS: priv_sock_get_int".
PASV_MIN=${BENCH_PASV_MIN:-20400} PASV_MAX=${BENCH_PASV_MAX:-20599}
FTPS_PASV_MIN=$((PASV_MAX + 1)) FTPS_PASV_MAX=$((PASV_MAX + 200))
case ${BENCH_SCALE:-full} in
  full) BIG_MIB=1024 MID_N=200 SMALL_N=5000 ;;
  small) BIG_MIB=64 MID_N=50 SMALL_N=500 ;;
  *) echo "BENCH_SCALE must be full or small" >&2; exit 2 ;;
esac
LIST_N=${BENCH_LIST_N:-50000}
REPEAT=${BENCH_REPEAT:-1}

[ "$(id -u)" = 0 ] || { echo "bench: run as root" >&2; exit 1; }
need=()
[ -x /usr/sbin/sshd ] || need+=(openssh-server)
[ -x /usr/sbin/vsftpd ] || need+=(vsftpd)
command -v rclone >/dev/null || need+=(rclone)
command -v lftp >/dev/null || need+=(lftp)
command -v curl >/dev/null || need+=(curl)
command -v openssl >/dev/null || need+=(openssl)
[ -x /usr/bin/time ] || need+=(time)
if [ ${#need[@]} -gt 0 ]; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >/dev/null && apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

if [ -z "${WHARF:-}" ]; then
  echo "building wharf (release)" >&2
  cargo build --release --locked --quiet
  WHARF=$PWD/target/release/wharf
fi

rm -rf "$B"; mkdir -p "$B/etc" "$B/srv" "$B/out" "$B/empty" /run/sshd
id "$U" >/dev/null 2>&1 || useradd -M -d "$B" -s /bin/sh "$U"
echo "$U:$PASS" | chpasswd  # FTP logs in with it; sshd below takes keys only
ssh-keygen -q -t ed25519 -N '' -f "$B/etc/host_key"
ssh-keygen -q -t ed25519 -N '' -f "$B/etc/client_key"
cp "$B/etc/client_key.pub" "$B/etc/authorized_keys"
cat >"$B/etc/sshd_config" <<CFG
Port $PORT
ListenAddress 127.0.0.1
HostKey $B/etc/host_key
PidFile $B/etc/sshd.pid
AuthorizedKeysFile $B/etc/authorized_keys
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
StrictModes no
AllowUsers $U
MaxStartups 64:30:128
MaxSessions 64
Subsystem sftp /usr/lib/openssh/sftp-server
CFG
# Plain FTP (no TLS), logged in to $B; passive ports of our own.
cat >"$B/etc/vsftpd.conf" <<CFG
listen=YES
listen_ipv6=NO
listen_address=127.0.0.1
listen_port=$FTP_PORT
background=NO
anonymous_enable=NO
local_enable=YES
write_enable=YES
local_umask=022
local_root=$B
chroot_local_user=NO
pasv_enable=YES
pasv_address=127.0.0.1
pasv_min_port=$PASV_MIN
pasv_max_port=$PASV_MAX
port_enable=YES
connect_from_port_20=NO
seccomp_sandbox=NO
isolate_network=NO
secure_chroot_dir=$B/empty
pam_service_name=vsftpd
userlist_enable=NO
use_localtime=NO
max_clients=200
max_per_ip=200
xferlog_enable=NO
ssl_enable=NO
CFG
# FTPS: the same server with explicit TLS required for logins and data (a self-signed
# certificate, pinned by its fingerprint in wharf's flows), data connections resuming the
# control connection's TLS session (vsftpd's default).
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 -subj /CN=127.0.0.1 \
  -keyout "$B/etc/ftps.key" -out "$B/etc/ftps.pem" 2>/dev/null
FTPS_FP=SHA256:$(openssl x509 -in "$B/etc/ftps.pem" -noout -fingerprint -sha256 | cut -d= -f2)
sed -e "s/^listen_port=.*/listen_port=$FTPS_PORT/; s/^pasv_min_port=.*/pasv_min_port=$FTPS_PASV_MIN/" \
  -e "s/^pasv_max_port=.*/pasv_max_port=$FTPS_PASV_MAX/; /^ssl_enable=/d" "$B/etc/vsftpd.conf" >"$B/etc/vsftpd-tls.conf"
cat >>"$B/etc/vsftpd-tls.conf" <<CFG
ssl_enable=YES
rsa_cert_file=$B/etc/ftps.pem
rsa_private_key_file=$B/etc/ftps.key
allow_anon_ssl=NO
force_local_logins_ssl=YES
force_local_data_ssl=YES
require_ssl_reuse=YES
ssl_ciphers=HIGH
CFG
/usr/sbin/sshd -D -f "$B/etc/sshd_config" -E "$B/etc/sshd.log" &
SSHD=$!
/usr/sbin/vsftpd "$B/etc/vsftpd.conf" &
FTPD=$!
/usr/sbin/vsftpd "$B/etc/vsftpd-tls.conf" &
FTPSD=$!
trap 'kill $SSHD $FTPD $FTPSD 2>/dev/null || true' EXIT
for p in "$PORT" "$FTP_PORT" "$FTPS_PORT"; do
  for _ in $(seq 50); do ss -Hltn "( sport = :$p )" | grep -q . && break; sleep 0.1; done
done
printf '[127.0.0.1]:%s %s\n' "$PORT" "$(cut -d' ' -f1,2 "$B/etc/host_key.pub")" >"$B/etc/known_hosts"
SSHOPT=(-o UserKnownHostsFile="$B/etc/known_hosts" -o StrictHostKeyChecking=yes -i "$B/etc/client_key" -P "$PORT")
RCLONE_SFTP=(--sftp-host 127.0.0.1 --sftp-port "$PORT" --sftp-user "$U" --sftp-key-file "$B/etc/client_key" --sftp-known-hosts-file "$B/etc/known_hosts")
RCLONE_FTP=(--ftp-host 127.0.0.1 --ftp-port "$FTP_PORT" --ftp-user "$U" --ftp-pass "$(rclone obscure "$PASS")")
# rclone 1.60 resumes the control connection's TLS session on data connections (vsftpd's
# require_ssl_reuse) only over TLS 1.2; over 1.3 vsftpd ends the handshake with "illegal
# parameter". `--ftp-disable-tls13` is rclone's own option for such servers.
RCLONE_FTPS=(--ftp-host 127.0.0.1 --ftp-port "$FTPS_PORT" --ftp-user "$U" --ftp-pass "$(rclone obscure "$PASS")" --ftp-explicit-tls --ftp-no-check-certificate --ftp-disable-tls13)
LFTP_SFTP="set sftp:connect-program 'ssh -a -x -o UserKnownHostsFile=$B/etc/known_hosts -i $B/etc/client_key'; open -u $U, sftp://127.0.0.1:$PORT"
LFTP_FTP="set ftp:ssl-allow no; open -u $U,$PASS ftp://127.0.0.1:$FTP_PORT"
FTPURL="ftp://$U:$PASS@127.0.0.1:$FTP_PORT"
LFTP_FTPS="set ftp:ssl-force true; set ftp:ssl-protect-data true; set ssl:verify-certificate no; open -u $U,$PASS ftp://127.0.0.1:$FTPS_PORT"
FTPSURL="ftp://$U:$PASS@127.0.0.1:$FTPS_PORT"

echo "creating data sets" >&2
mkdir -p "$B/data/big" "$B/data/mid" "$B/data/small"
head -c $((BIG_MIB * 1024 * 1024)) /dev/urandom >"$B/data/big/big.bin"
python3 - "$B/data" "$MID_N" "$SMALL_N" "$LIST_N" <<'PY'
import os, sys
d, mid, small, many = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
for i in range(mid):
    with open(os.path.join(d, "mid", f"f{i:04}.bin"), "wb") as f:
        f.write(os.urandom(1 << 20))
for i in range(small):
    with open(os.path.join(d, "small", f"s{i:05}.bin"), "wb") as f:
        f.write(os.urandom(4096))
if many:
    os.makedirs(os.path.join(d, "..", "many"))
    for i in range(many):
        with open(os.path.join(d, "..", "many", f"m{i:06}.bin"), "wb") as f:
            f.write(b"x")
PY
chown -R "$U" "$B"
# Let the disk settle: measured right after the data sets were written, the first case (SFTP
# 1 GiB download) came out at half its rate while the kernel was still writing them back.
sync
sleep 5

selected() { # selected PROTO:DIR:SET TOOL
  local ok=0 p
  if [ -z "${BENCH_ONLY:-}" ]; then ok=1; else for p in $BENCH_ONLY; do [[ $1 == "$p"* ]] && ok=1; done; fi
  [ $ok = 1 ] || return 1
  [ -z "${BENCH_TOOLS:-}" ] && return 0
  for p in $BENCH_TOOLS; do [ "$p" = "$2" ] && return 0; done
  return 1
}

# measure NAME CMD... -> appends "NAME elapsed cpu maxrss_kib sync_s" to $B/results (the fastest
# of REPEAT; every run to $B/results.all). sync_s: how long a `sync` right after took, i.e. what was still to be written to
# disk when the tool said it was done (wharf fsyncs what it delivers into a local folder; the
# peers leave their copies in the page cache, and so do the servers).
measure() {
  local name=$1; shift
  local best="" i el us sy rss s0 s1
  for i in $(seq "$REPEAT"); do
    [ -n "${PREP:-}" ] && $PREP
    sync; echo 3 >/proc/sys/vm/drop_caches 2>/dev/null || true
    /usr/bin/time -f "%e %U %S %M" -o "$B/time.out" "$@" >"$B/cmd.log" 2>&1 || { echo "FAILED: $name"; tail -5 "$B/cmd.log"; return 1; }
    s0=$(date +%s.%N); sync; s1=$(date +%s.%N)
    read -r el us sy rss <"$B/time.out"
    echo "$name $el $(python3 -c "print(round($us+$sy, 2))") $rss $(python3 -c "print(round($s1-$s0, 2))")" >>"$B/results.all"
    if [ -z "$best" ] || python3 -c "import sys; sys.exit(0 if $el < ${best%% *} else 1)"; then
      best="$el $(python3 -c "print(round($us+$sy, 2))") $rss $(python3 -c "print(round($s1-$s0, 2))")"
    fi
  done
  echo "$name $best" >>"$B/results"
}

verify() { # verify SRC DST
  (cd "$1" && find . -type f -exec sha256sum {} + | sort -k2) >"$B/a.sum"
  (cd "$2" && find . -type f -exec sha256sum {} + | sort -k2) >"$B/b.sum"
  cmp -s "$B/a.sum" "$B/b.sum" && return 0
  echo "MISMATCH between $1 and $2" >&2; diff <(cut -c1-20 "$B/a.sum") <(cut -c1-20 "$B/b.sum") | head -4 >&2
  return 1
}

FTPS_EP="type: ftp, host: 127.0.0.1, port: $FTPS_PORT, user: $U, password: $PASS, tls: explicit, fingerprint: \"$FTPS_FP\", root: $B"
wharf_flow() { # wharf_flow NAME SRC_EP SRC_PATH SINK_EP SINK_PATH [EXTRA SOURCE YAML]
  cat >"$B/$1.yaml" <<YAML
name: $1
endpoints:
  sftp:
    type: sftp
    host: 127.0.0.1
    port: $PORT
    user: $U
    auth: { private_key: $B/etc/client_key }
    host_key: { known_hosts: $B/etc/known_hosts }
    root: $B
  ftp:
    type: ftp
    host: 127.0.0.1
    port: $FTP_PORT
    user: $U
    password: $PASS
    tls: none
    root: $B
  ftps: { $FTPS_EP }
  ftps12: { $FTPS_EP, tls_max_version: "1.2" }
  here: { type: local, root: $B }
source: { endpoint: $2, path: $3 ${6:-} }
sinks: [ { endpoint: $4, path: $5, if_exists: overwrite } ]
after: { success: keep }
${BENCH_FLOW_EXTRA:-}
YAML
}

# run_case PROTO DIR SET TOOL OUT CMD...: measure when selected (each time from an empty
# target and, for wharf, an empty state folder), then verify the copy
run_case() {
  local proto=$1 dir=$2 set=$3 tool=$4
  CASE_OUT=$5 CASE_STATE="$B/state-$proto-$dir-$set" CASE_MKDIR=no
  shift 5
  selected "$proto:$dir:$set" "$tool" || return 0
  [ "$dir" = dl ] && [[ $tool == @(curl|sftp|sftp-tuned) ]] && CASE_MKDIR=yes
  if ! PREP=prep_case measure "$tool:$proto:$dir:$set" "$@"; then
    # wharf failing ends the run; a peer that fails is shown as such and not ranked.
    [ "$tool" = wharf ] && exit 1
    echo "$tool:$proto:$dir:$set 1 0 0 0 FAILED" >>"$B/results"
    return 0
  fi
  if ! verify "$B/data/$set" "$CASE_OUT"; then
    # wharf delivering a wrong copy ends the run; a peer's is shown as such and not ranked.
    [ "$tool" = wharf ] && exit 1
    sed -i "s/^$tool:$proto:$dir:$set .*/& BAD/" "$B/results"
  fi
}
prep_case() {
  rm -rf "$CASE_OUT" "$CASE_STATE"
  [ "$CASE_MKDIR" = yes ] && mkdir -p "$CASE_OUT"
  chown -R "$U" "$B/srv"
}

batch() { # batch NAME LINE -> a file holding LINE, for `sftp -b` (readable again on a repeat)
  echo "$2" >"$B/$1.batch"
  echo "$B/$1.batch"
}

curl_cfg() { # curl_cfg dl|ul SET OUT [URL] -> config file for one curl process (one connection, reused)
  local f url=${4:-$FTPURL}
  for f in "$B/data/$2"/*; do
    f=${f##*/}
    if [ "$1" = dl ]; then printf 'url = "%s/data/%s/%s"\noutput = "%s/%s"\n' "$url" "$2" "$f" "$3" "$f"
    else printf 'upload-file = "%s/data/%s/%s"\nurl = "%s/srv/%s/%s"\n' "$B" "$2" "$f" "$url" "${3##*/}" "$f"; fi
  done >"$B/curl-$1-$2-${3##*/}.cfg"
  echo "$B/curl-$1-$2-${3##*/}.cfg"
}

: >"$B/results"; : >"$B/results.all"
for set in big mid small; do
  # --- SFTP ---
  wharf_flow "sftp-dl-$set" sftp "/data/$set" here "/out/wharf-sftp-dl-$set"
  run_case sftp dl "$set" wharf "$B/out/wharf-sftp-dl-$set" "$WHARF" --state-dir "$B/state-sftp-dl-$set" run "$B/sftp-dl-$set.yaml"
  run_case sftp dl "$set" sftp "$B/out/sftp-dl-$set" sftp -q "${SSHOPT[@]}" -b "$(batch sftp-dl-$set "get -r $B/data/$set/. $B/out/sftp-dl-$set/")" "$U@127.0.0.1"
  run_case sftp dl "$set" sftp-tuned "$B/out/sftpt-dl-$set" sftp -q "${SSHOPT[@]}" -B 261120 -R 64 -c aes128-gcm@openssh.com -b "$(batch sftpt-dl-$set "get -r $B/data/$set/. $B/out/sftpt-dl-$set/")" "$U@127.0.0.1"
  run_case sftp dl "$set" rclone "$B/out/rclone-sftp-dl-$set" rclone copy "${RCLONE_SFTP[@]}" ":sftp:$B/data/$set" "$B/out/rclone-sftp-dl-$set"
  run_case sftp dl "$set" lftp "$B/out/lftp-sftp-dl-$set" lftp -c "$LFTP_SFTP; mirror --parallel=4 $B/data/$set $B/out/lftp-sftp-dl-$set"
  wharf_flow "sftp-ul-$set" here "/data/$set" sftp "/srv/wharf-sftp-ul-$set"
  run_case sftp ul "$set" wharf "$B/srv/wharf-sftp-ul-$set" "$WHARF" --state-dir "$B/state-sftp-ul-$set" run "$B/sftp-ul-$set.yaml"
  run_case sftp ul "$set" sftp "$B/srv/sftp-ul-$set" sftp -q "${SSHOPT[@]}" -b "$(batch sftp-ul-$set "put -r $B/data/$set $B/srv/sftp-ul-$set")" "$U@127.0.0.1"
  run_case sftp ul "$set" sftp-tuned "$B/srv/sftpt-ul-$set" sftp -q "${SSHOPT[@]}" -B 261120 -R 64 -c aes128-gcm@openssh.com -b "$(batch sftpt-ul-$set "put -r $B/data/$set $B/srv/sftpt-ul-$set")" "$U@127.0.0.1"
  run_case sftp ul "$set" rclone "$B/srv/rclone-sftp-ul-$set" rclone copy "${RCLONE_SFTP[@]}" "$B/data/$set" ":sftp:$B/srv/rclone-sftp-ul-$set"
  run_case sftp ul "$set" lftp "$B/srv/lftp-sftp-ul-$set" lftp -c "$LFTP_SFTP; mirror -R --parallel=4 $B/data/$set $B/srv/lftp-sftp-ul-$set"
  # --- FTP (paths relative to the login folder $B) ---
  wharf_flow "ftp-dl-$set" ftp "/data/$set" here "/out/wharf-ftp-dl-$set"
  run_case ftp dl "$set" wharf "$B/out/wharf-ftp-dl-$set" "$WHARF" --state-dir "$B/state-ftp-dl-$set" run "$B/ftp-dl-$set.yaml"
  [ "$set" = big ] && run_case ftp dl "$set" curl "$B/out/curl-ftp-dl-$set" curl -sS --fail -K "$(curl_cfg dl "$set" "$B/out/curl-ftp-dl-$set")"
  run_case ftp dl "$set" rclone "$B/out/rclone-ftp-dl-$set" rclone copy "${RCLONE_FTP[@]}" ":ftp:data/$set" "$B/out/rclone-ftp-dl-$set"
  run_case ftp dl "$set" lftp "$B/out/lftp-ftp-dl-$set" lftp -c "$LFTP_FTP; mirror --parallel=4 data/$set $B/out/lftp-ftp-dl-$set"
  wharf_flow "ftp-ul-$set" here "/data/$set" ftp "/srv/wharf-ftp-ul-$set"
  run_case ftp ul "$set" wharf "$B/srv/wharf-ftp-ul-$set" "$WHARF" --state-dir "$B/state-ftp-ul-$set" run "$B/ftp-ul-$set.yaml"
  [ "$set" = big ] && run_case ftp ul "$set" curl "$B/srv/curl-ftp-ul-$set" curl -sS --fail --ftp-create-dirs -K "$(curl_cfg ul "$set" "$B/srv/curl-ftp-ul-$set")"
  run_case ftp ul "$set" rclone "$B/srv/rclone-ftp-ul-$set" rclone copy "${RCLONE_FTP[@]}" "$B/data/$set" ":ftp:srv/rclone-ftp-ul-$set"
  run_case ftp ul "$set" lftp "$B/srv/lftp-ftp-ul-$set" lftp -c "$LFTP_FTP; mirror -R --parallel=4 $B/data/$set srv/lftp-ftp-ul-$set"
  # --- FTPS (explicit TLS; curl and lftp do not check the certificate, wharf pins it) ---
  wharf_flow "ftps-dl-$set" ftps "/data/$set" here "/out/wharf-ftps-dl-$set"
  run_case ftps dl "$set" wharf "$B/out/wharf-ftps-dl-$set" "$WHARF" --state-dir "$B/state-ftps-dl-$set" run "$B/ftps-dl-$set.yaml"
  wharf_flow "ftps12-dl-$set" ftps12 "/data/$set" here "/out/wharf12-ftps-dl-$set"
  run_case ftps dl "$set" wharf-tls12 "$B/out/wharf12-ftps-dl-$set" "$WHARF" --state-dir "$B/state-ftps-dl-$set" run "$B/ftps12-dl-$set.yaml"
  [ "$set" = big ] && run_case ftps dl "$set" curl "$B/out/curl-ftps-dl-$set" curl -sS --fail --ssl-reqd -k -K "$(curl_cfg dl "$set" "$B/out/curl-ftps-dl-$set" "$FTPSURL")"
  run_case ftps dl "$set" rclone "$B/out/rclone-ftps-dl-$set" rclone copy "${RCLONE_FTPS[@]}" ":ftp:data/$set" "$B/out/rclone-ftps-dl-$set"
  run_case ftps dl "$set" lftp "$B/out/lftp-ftps-dl-$set" lftp -c "$LFTP_FTPS; mirror --parallel=4 data/$set $B/out/lftp-ftps-dl-$set"
  wharf_flow "ftps-ul-$set" here "/data/$set" ftps "/srv/wharf-ftps-ul-$set"
  run_case ftps ul "$set" wharf "$B/srv/wharf-ftps-ul-$set" "$WHARF" --state-dir "$B/state-ftps-ul-$set" run "$B/ftps-ul-$set.yaml"
  wharf_flow "ftps12-ul-$set" here "/data/$set" ftps12 "/srv/wharf12-ftps-ul-$set"
  run_case ftps ul "$set" wharf-tls12 "$B/srv/wharf12-ftps-ul-$set" "$WHARF" --state-dir "$B/state-ftps-ul-$set" run "$B/ftps12-ul-$set.yaml"
  [ "$set" = big ] && run_case ftps ul "$set" curl "$B/srv/curl-ftps-ul-$set" curl -sS --fail --ssl-reqd -k --ftp-create-dirs -K "$(curl_cfg ul "$set" "$B/srv/curl-ftps-ul-$set" "$FTPSURL")"
  run_case ftps ul "$set" rclone "$B/srv/rclone-ftps-ul-$set" rclone copy "${RCLONE_FTPS[@]}" "$B/data/$set" ":ftp:srv/rclone-ftps-ul-$set"
  run_case ftps ul "$set" lftp "$B/srv/lftp-ftps-ul-$set" lftp -c "$LFTP_FTPS; mirror -R --parallel=4 $B/data/$set srv/lftp-ftps-ul-$set"
done

# --- a large directory: list it and decide readiness and identity for every file ---
# `wharf run` with `min_age: 1d` lists, judges readiness and stores the observations (nothing is
# ready, nothing moves); `wharf plan` then decides readiness and identity for every file (the
# ledger look-ups a run makes) without writing anything. The peers only list.
: >"$B/listing"
if [ "$LIST_N" -gt 0 ]; then
  for proto in sftp ftp; do
    selected "$proto:list:many" wharf || continue
    wharf_flow "$proto-list" "$proto" /many here /out/never ", ready: { min_age: 1d }"
    wharf_flow "$proto-plan" "$proto" /many here /out/never
    sed -i "s/^name: $proto-plan/name: $proto-list/" "$B/$proto-plan.yaml"  # same flow, same ledger records
    rm -rf "$B/state-list-$proto"
    PREP= measure "wharf-run:$proto:list:many" "$WHARF" --state-dir "$B/state-list-$proto" run "$B/$proto-list.yaml"
    PREP= measure "wharf-plan:$proto:list:many" "$WHARF" --state-dir "$B/state-list-$proto" plan "$B/$proto-plan.yaml"
  done
  selected "sftp:list:many" sftp && measure "sftp-ls:sftp:list:many" sftp -q "${SSHOPT[@]}" -b "$(batch ls-many "ls -l $B/many")" "$U@127.0.0.1"
  selected "sftp:list:many" rclone && measure "rclone-lsl:sftp:list:many" rclone lsl "${RCLONE_SFTP[@]}" ":sftp:$B/many"
  selected "ftp:list:many" curl && measure "curl-list:ftp:list:many" curl -sS --fail "$FTPURL/many/"
  selected "ftp:list:many" rclone && measure "rclone-lsl:ftp:list:many" rclone lsl "${RCLONE_FTP[@]}" ":ftp:many"
fi

python3 - "$B/results" "$BIG_MIB" "$MID_N" "$SMALL_N" "$LIST_N" <<'PY'
import sys, collections
path, big, mid, small, many = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
rows = collections.OrderedDict()
listing = []
for line in open(path):
    name, el, cpu, rss, syn, *bad = line.split()
    tool, proto, direction, s = name.split(":")
    if direction == "list":
        listing.append((proto, tool, float(el), float(cpu), int(rss)))
        continue
    rows.setdefault((proto, direction, s), {})[tool] = (float(el), float(cpu), int(rss), float(syn), bad)
def rate(s, el):
    return (big / el, "MiB/s") if s == "big" else ({"mid": mid, "small": small}[s] / el, "files/s")
# "on disk": the rate counting the `sync` after the run too (the copy on disk, not only in
# the page cache); the ranking is by the rate as the tools report done.
print(f"| case | tool | rate | on disk | CPU s | peak RSS | wharf / best | on disk |")
print(f"|---|---|---|---|---|---|---|---|")
for (p, d, s), tools in rows.items():
    label = p.upper() + " " + {"dl": "download", "ul": "upload"}[d] + " " + {"big": f"{big} MiB", "mid": f"{mid} x 1 MiB", "small": f"{small} x 4 KiB"}[s]
    # wharf-tls12: wharf with `tls_max_version: 1.2`, as rclone has to run against vsftpd;
    # shown beside wharf's default (TLS 1.3), never ranked as a peer.
    ranked = [(t, v) for t, v in tools.items() if not t.startswith("wharf") and not v[4]]
    best = max((rate(s, v[0])[0] for t, v in ranked), default=0)
    best_disk = max((rate(s, v[0] + v[3])[0] for t, v in ranked), default=0)
    for t, (el, cpu, rss, syn, bad) in tools.items():
        r, unit = rate(s, el)
        rd, _ = rate(s, el + syn)
        ratio = f"**{r / best:.2f}**" if t.startswith("wharf") and best else ""
        ratio_disk = f"{rd / best_disk:.2f}" if t.startswith("wharf") and best_disk else ""
        shown = ("failed (not ranked)" if bad[0] == "FAILED" else "copy differs (not ranked)") if bad else f"{r:.1f} {unit}"
        print(f"| {label} | {t} | {shown} | {'' if bad else f'{rd:.1f}'} | {cpu:.1f} | {rss/1024:.1f} MiB | {ratio} | {ratio_disk} |")
if listing:
    print()
    print(f"| {many} files in one folder | tool | seconds | CPU s | peak RSS |")
    print(f"|---|---|---|---|---|")
    for p, t, el, cpu, rss in listing:
        print(f"| {p.upper()} | {t} | {el:.1f} | {cpu:.1f} | {rss/1024:.1f} MiB |")
PY
