#!/usr/bin/env bash
# Transfer benchmark: wharf against OpenSSH sftp (default and tuned: -B 261120 -R 64 -c aes128-gcm), rclone and lftp over SFTP,
# on 127.0.0.1, in one run. Prints MiB/s (1 GiB file) or files/s (many files), peak RSS and CPU
# seconds per tool, and wharf's ratio to the best peer. Every copy is checked byte for byte.
#
#   sudo bench/run.sh              # full data sets: 1 x 1 GiB, 200 x 1 MiB, 5000 x 4 KiB
#   sudo BENCH_SCALE=small bench/run.sh   # 1 x 64 MiB, 50 x 1 MiB, 500 x 4 KiB (a quick check)
#
# Needs root (sshd, a bench login). Installs openssh-server, rclone, lftp and time when missing.
# FTP rows come with the FTP endpoint (see issue "Transfer performance").
set -euo pipefail
cd "$(dirname "$0")/.."
B=/tmp/wharf-bench PORT=${BENCH_PORT:-2298} U=wharfbench
case ${BENCH_SCALE:-full} in
  full) BIG_MIB=1024 MID_N=200 SMALL_N=5000 ;;
  small) BIG_MIB=64 MID_N=50 SMALL_N=500 ;;
  *) echo "BENCH_SCALE must be full or small" >&2; exit 2 ;;
esac

[ "$(id -u)" = 0 ] || { echo "bench: run as root" >&2; exit 1; }
need=()
[ -x /usr/sbin/sshd ] || need+=(openssh-server)
command -v rclone >/dev/null || need+=(rclone)
command -v lftp >/dev/null || need+=(lftp)
[ -x /usr/bin/time ] || need+=(time)
if [ ${#need[@]} -gt 0 ]; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >/dev/null && apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

echo "building wharf (release)" >&2
cargo build --release --locked --quiet
WHARF=$PWD/target/release/wharf

rm -rf "$B"; mkdir -p "$B/etc" "$B/srv" "$B/out" /run/sshd
id "$U" >/dev/null 2>&1 || useradd -M -d "$B/srv" -s /bin/sh "$U"
usermod -p "*" "$U"  # no password, but not locked: sshd without PAM refuses locked accounts
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
/usr/sbin/sshd -D -f "$B/etc/sshd_config" -E "$B/etc/sshd.log" &
SSHD=$!
trap 'kill $SSHD 2>/dev/null || true' EXIT
for _ in $(seq 50); do ss -Hltn "( sport = :$PORT )" | grep -q . && break; sleep 0.1; done
printf '[127.0.0.1]:%s %s\n' "$PORT" "$(cut -d' ' -f1,2 "$B/etc/host_key.pub")" >"$B/etc/known_hosts"
SSHOPT=(-o UserKnownHostsFile="$B/etc/known_hosts" -o StrictHostKeyChecking=yes -i "$B/etc/client_key" -P "$PORT")

echo "creating data sets" >&2
mkdir -p "$B/data/big" "$B/data/mid" "$B/data/small"
head -c $((BIG_MIB * 1024 * 1024)) /dev/urandom >"$B/data/big/big.bin"
for i in $(seq -w 1 "$MID_N"); do head -c 1048576 /dev/urandom >"$B/data/mid/f$i.bin"; done
python3 - "$B/data/small" "$SMALL_N" <<'PY'
import os, sys
d, n = sys.argv[1], int(sys.argv[2])
for i in range(n):
    with open(os.path.join(d, f"s{i:05}.bin"), "wb") as f:
        f.write(os.urandom(4096))
PY
chown -R "$U" "$B/srv" "$B/data"

# measure NAME CMD... -> appends "NAME elapsed cpu maxrss_kib" to $B/results
measure() {
  local name=$1; shift
  sync; echo 3 >/proc/sys/vm/drop_caches 2>/dev/null || true
  /usr/bin/time -f "%e %U %S %M" -o "$B/time.out" "$@" >"$B/cmd.log" 2>&1 || { echo "FAILED: $name"; tail -5 "$B/cmd.log"; return 1; }
  read -r el us sy rss <"$B/time.out"
  echo "$name $el $(echo "$us + $sy" | bc -l 2>/dev/null || python3 -c "print($us+$sy)") $rss" >>"$B/results"
}

verify() { # verify SRC DST
  (cd "$1" && find . -type f -exec sha256sum {} + | sort -k2) >"$B/a.sum"
  (cd "$2" && find . -type f -exec sha256sum {} + | sort -k2) >"$B/b.sum"
  cmp -s "$B/a.sum" "$B/b.sum" || { echo "MISMATCH between $1 and $2" >&2; diff <(cut -c1-20 "$B/a.sum") <(cut -c1-20 "$B/b.sum") | head; exit 1; }
}

wharf_flow() { # wharf_flow NAME SRC_EP SRC_PATH SINK_EP SINK_PATH
  cat >"$B/$1.yaml" <<YAML
name: $1
endpoints:
  srv:
    type: sftp
    host: 127.0.0.1
    port: $PORT
    user: $U
    auth: { private_key: $B/etc/client_key }
    host_key: { known_hosts: $B/etc/known_hosts }
    root: $B
  here: { type: local, root: $B }
source: { endpoint: $2, path: $3 }
sinks: [ { endpoint: $4, path: $5, if_exists: overwrite } ]
after: { success: keep }
YAML
}

: >"$B/results"
for set in big mid small; do
  # downloads: server data/SET -> local out/TOOL-SET
  wharf_flow "dl-$set" srv "/data/$set" here "/out/wharf-dl-$set"
  measure "wharf:dl:$set" "$WHARF" --state-dir "$B/state-dl-$set" run "$B/dl-$set.yaml"; verify "$B/data/$set" "$B/out/wharf-dl-$set"
  mkdir -p "$B/out/sftp-dl-$set" "$B/out/sftpt-dl-$set"
  measure "sftp:dl:$set" sftp -q "${SSHOPT[@]}" -b <(echo "get -r $B/data/$set/. $B/out/sftp-dl-$set/") "$U@127.0.0.1"; verify "$B/data/$set" "$B/out/sftp-dl-$set"
  measure "sftp-tuned:dl:$set" sftp -q "${SSHOPT[@]}" -B 261120 -R 64 -c aes128-gcm@openssh.com -b <(echo "get -r $B/data/$set/. $B/out/sftpt-dl-$set/") "$U@127.0.0.1"; verify "$B/data/$set" "$B/out/sftpt-dl-$set"
  measure "rclone:dl:$set" rclone copy --sftp-host 127.0.0.1 --sftp-port "$PORT" --sftp-user "$U" --sftp-key-file "$B/etc/client_key" --sftp-known-hosts-file "$B/etc/known_hosts" ":sftp:$B/data/$set" "$B/out/rclone-dl-$set"; verify "$B/data/$set" "$B/out/rclone-dl-$set"
  measure "lftp:dl:$set" lftp -c "set sftp:connect-program 'ssh -a -x -o UserKnownHostsFile=$B/etc/known_hosts -i $B/etc/client_key'; open -u $U, sftp://127.0.0.1:$PORT; mirror --parallel=4 $B/data/$set $B/out/lftp-dl-$set"; verify "$B/data/$set" "$B/out/lftp-dl-$set"
  # uploads: local data/SET -> server srv/TOOL-SET
  wharf_flow "ul-$set" here "/data/$set" srv "/srv/wharf-ul-$set"
  measure "wharf:ul:$set" "$WHARF" --state-dir "$B/state-ul-$set" run "$B/ul-$set.yaml"; verify "$B/data/$set" "$B/srv/wharf-ul-$set"
  measure "sftp:ul:$set" sftp -q "${SSHOPT[@]}" -b <(echo "put -r $B/data/$set $B/srv/sftp-ul-$set") "$U@127.0.0.1"; verify "$B/data/$set" "$B/srv/sftp-ul-$set"
  measure "sftp-tuned:ul:$set" sftp -q "${SSHOPT[@]}" -B 261120 -R 64 -c aes128-gcm@openssh.com -b <(echo "put -r $B/data/$set $B/srv/sftpt-ul-$set") "$U@127.0.0.1"; verify "$B/data/$set" "$B/srv/sftpt-ul-$set"
  measure "rclone:ul:$set" rclone copy --sftp-host 127.0.0.1 --sftp-port "$PORT" --sftp-user "$U" --sftp-key-file "$B/etc/client_key" --sftp-known-hosts-file "$B/etc/known_hosts" "$B/data/$set" ":sftp:$B/srv/rclone-ul-$set"; verify "$B/data/$set" "$B/srv/rclone-ul-$set"
  measure "lftp:ul:$set" lftp -c "set sftp:connect-program 'ssh -a -x -o UserKnownHostsFile=$B/etc/known_hosts -i $B/etc/client_key'; open -u $U, sftp://127.0.0.1:$PORT; mirror -R --parallel=4 $B/data/$set $B/srv/lftp-ul-$set"; verify "$B/data/$set" "$B/srv/lftp-ul-$set"
done

python3 - "$B/results" "$BIG_MIB" "$MID_N" "$SMALL_N" <<'PY'
import sys, collections
path, big, mid, small = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
rows = collections.OrderedDict()
for line in open(path):
    name, el, cpu, rss = line.split()
    tool, direction, s = name.split(":")
    rows.setdefault((direction, s), {})[tool] = (float(el), float(cpu), int(rss))
def rate(s, el):
    return (big / el, "MiB/s") if s == "big" else ({"mid": mid, "small": small}[s] / el, "files/s")
print(f"{'case':<18} {'tool':<11} {'rate':>12} {'cpu s':>7} {'peak RSS':>10}")
for (d, s), tools in rows.items():
    label = {"dl": "SFTP download", "ul": "SFTP upload"}[d] + " " + {"big": f"{big} MiB", "mid": f"{mid}x1MiB", "small": f"{small}x4KiB"}[s]
    best = max((rate(s, v[0])[0] for t, v in tools.items() if t != "wharf"), default=0)
    for t, (el, cpu, rss) in tools.items():
        r, unit = rate(s, el)
        print(f"{label:<18} {t:<11} {r:>8.1f} {unit:<7} {cpu:>5.1f} {rss/1024:>8.1f} MiB")
    if "wharf" in tools and best:
        print(f"{'':<18} {'wharf/best':<11} {rate(s, tools['wharf'][0])[0] / best:>8.2f}")
PY
