#!/usr/bin/env bash
# 3-node MariaDB Galera cluster on loopback, for tests.   usage: galera.sh up|down|status
# Nodes: SQL 127.0.0.1:3311-3313, gcomm 4571-4573, IST 4561-4563, SST 4441-4443.
# Needs (Debian 12): mariadb-server 10.11, galera-4, rsync (`up` installs what is missing). Run as root; mariadbd
# runs as user mysql.
# Never touches the system server (/etc/mysql, /var/lib/mysql, :3306): every program gets
# --no-defaults or --defaults-file=$GALERA_DIR/nodeN.cnf.
set -euo pipefail
B=${GALERA_DIR:-${TMPDIR:-/var/tmp}/modelbridge-galera}
PROVIDER=/usr/lib/galera/libgalera_smm.so
RUNAS=mysql      # not root: as root the joiner's rsync daemon drops to 'nobody' and SST fails
TIMEOUT=90       # seconds allowed for one node to reach Synced

sql()   { local n=$1; shift; timeout 10 mysql --no-defaults --protocol=TCP -h127.0.0.1 -P331$n -uroot --connect-timeout=2 "$@"; }
st()    { sql "$1" -Nse "SHOW GLOBAL STATUS LIKE '$2'" 2>/dev/null | cut -f2; }
pid_of() {  # PID of node $1 if the PID in its pid file is alive and is that node's mariadbd
  local p; p=$(cat "$B/run/node$1.pid" 2>/dev/null) || return 1
  tr '\0' ' ' 2>/dev/null <"/proc/$p/cmdline" | grep -q -- "--defaults-file=$B/node$1.cnf" && echo "$p"
}

write_cnf() {
  local n=$1
  cat >"$B/node$n.cnf" <<EOF
[mysqld]
user=$RUNAS
datadir=$B/data$n
port=331$n
bind-address=127.0.0.1
socket=$B/run/node$n.sock
pid-file=$B/run/node$n.pid
log-error=$B/log/node$n.err
skip-name-resolve
binlog_format=ROW
default_storage_engine=InnoDB
innodb_autoinc_lock_mode=2
innodb_buffer_pool_size=128M
innodb_flush_log_at_trx_commit=1
wsrep_on=ON
wsrep_provider=$PROVIDER
wsrep_cluster_name=loopback_galera
wsrep_cluster_address=gcomm://127.0.0.1:4571,127.0.0.1:4572,127.0.0.1:4573
wsrep_node_name=node$n
wsrep_node_address=127.0.0.1:457$n
wsrep_node_incoming_address=127.0.0.1:331$n
wsrep_provider_options="gmcast.listen_addr=tcp://127.0.0.1:457$n;ist.recv_addr=127.0.0.1:456$n"
wsrep_sst_receive_address=127.0.0.1:444$n
wsrep_sst_method=rsync
EOF
}

start_node() {  # $1 = node, rest = extra mariadbd args; waits until Synced
  local n=$1; shift
  local port
  for port in 331$n 457$n 456$n 444$n; do
    if ss -ltnH "sport = :$port" | grep -q .; then echo "port $port is already in use; not starting node$n" >&2; return 1; fi
  done
  mkdir -p "$B/data$n"; chown "$RUNAS:" "$B/data$n"
  # own session (setsid) so the node outlives this shell; $! is mariadbd itself (exec, no fork)
  (cd / && exec setsid /usr/sbin/mariadbd --defaults-file="$B/node$n.cnf" "$@") </dev/null >>"$B/log/node$n.out" 2>&1 &
  local lp=$! t=0   # a joiner writes its pid file only after SST: write it now so `down` can always find it
  echo "$lp" >"$B/run/node$n.pid"; chown "$RUNAS:" "$B/run/node$n.pid"
  until [ "$(st "$n" wsrep_local_state_comment)" = Synced ] && [ "$(st "$n" wsrep_ready)" = ON ]; do
    sleep 0.25; t=$((t + 1))
    if ! kill -0 "$lp" 2>/dev/null || [ $t -gt $((TIMEOUT * 4)) ]; then
      echo "node$n failed to reach Synced; tail of $B/log/node$n.err:" >&2; tail -20 "$B/log/node$n.err" >&2; return 1
    fi
  done
  echo "node$n Synced (pid $(pid_of "$n"), port 331$n) after $(($(date +%s) - T0))s"
}

# galera-4 and rsync come from Debian's packages when missing (as root with apt-get; otherwise the check below says
# what is needed).
install_missing() {
  local need=()
  [ -f $PROVIDER ] || need+=(galera-4)
  command -v rsync >/dev/null || need+=(rsync)
  [ -x /usr/sbin/mariadbd ] || need+=(mariadb-server)
  [ "${#need[@]}" -gt 0 ] && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null || return 0
  echo "installing: ${need[*]}" >&2
  { apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${need[@]}"; } >&2
}

up() {
  T0=$(date +%s)
  install_missing
  [ -x /usr/sbin/mariadbd ] && [ -f $PROVIDER ] && command -v rsync >/dev/null && id "$RUNAS" >/dev/null ||
    { echo "need mariadb-server, galera-4, rsync and user $RUNAS" >&2; exit 1; }
  mkdir -p "$B/run" "$B/log"; chown "$RUNAS:" "$B/run" "$B/log"
  local n running=""
  for n in 1 2 3; do write_cnf "$n"; pid_of "$n" >/dev/null && running="$running $n"; done
  if [ -z "$running" ]; then        # nothing runs: build a fresh cluster from empty data dirs (old data is discarded)
    rm -rf "$B"/data1 "$B"/data2 "$B"/data3 "$B"/run/node* "$B"/log/node*
    mariadb-install-db --no-defaults --datadir="$B/data1" --user="$RUNAS" --skip-test-db \
      --auth-root-authentication-method=normal >"$B/log/install.log" 2>&1 || { cat "$B/log/install.log" >&2; exit 1; }
    start_node 1 --wsrep-new-cluster
    # test setup: root@127.0.0.1 (and root@localhost) with an empty password; replicated to the joiners by SST
    mysql --no-defaults -S "$B/run/node1.sock" -uroot -e "CREATE USER IF NOT EXISTS 'root'@'127.0.0.1' IDENTIFIED BY '';
      GRANT ALL PRIVILEGES ON *.* TO 'root'@'127.0.0.1' WITH GRANT OPTION;"
    running=" 1"
  fi
  for n in 1 2 3; do                 # (re)join missing nodes; never bootstrap while others run
    case "$running " in *" $n "*) continue ;; esac
    if [ -s "$B/data$n/grastate.dat" ] && [ -d "$B/data$n/mysql" ]; then
      # old data: recover the last committed seqno first, so the node rejoins by IST instead of a full SST
      /usr/sbin/mariadbd --defaults-file="$B/node$n.cnf" --wsrep-recover --log-error="$B/log/node$n.recover.err" >/dev/null 2>&1 || true
      local pos; pos=$(grep -o 'WSREP: Recovered position: [^ ]*' "$B/log/node$n.recover.err" | tail -1 | awk '{print $4}')
      start_node "$n" ${pos:+--wsrep-start-position=$pos}
    else
      start_node "$n"
    fi
  done
  for n in 1 2 3; do [ "$(st "$n" wsrep_cluster_size)" = 3 ] || { echo "node$n: wsrep_cluster_size is not 3" >&2; exit 1; }; done
  echo "cluster up: 3 nodes, wsrep_cluster_size=3, in $(($(date +%s) - T0))s"
}

down() {
  local n p t
  for n in 3 2 1; do
    p=$(pid_of "$n") || continue
    kill -TERM "$p"; t=0
    while kill -0 "$p" 2>/dev/null; do   # a node TERMed while still joining can hang forever: KILL after 20s
      sleep 0.2; t=$((t + 1))
      if [ $t -eq 100 ]; then echo "node$n: no exit 20s after SIGTERM, sending SIGKILL" >&2; kill -KILL "$p" 2>/dev/null || true; fi
    done
    echo "node$n (pid $p) stopped"
  done
  rm -rf "$B"/data1 "$B"/data2 "$B"/data3 "$B"/run/node*
  echo "cluster down, data dirs removed"
}

status() {
  local n p ok=0
  printf '%-6s %-8s %-6s %-10s %-5s %-8s %-6s %s\n' node pid port state size status ready last_committed
  for n in 1 2 3; do
    p=$(pid_of "$n") || p=-
    printf '%-6s %-8s %-6s %-10s %-5s %-8s %-6s %s\n' "node$n" "$p" "331$n" "$(st "$n" wsrep_local_state_comment)" \
      "$(st "$n" wsrep_cluster_size)" "$(st "$n" wsrep_cluster_status)" "$(st "$n" wsrep_ready)" "$(st "$n" wsrep_last_committed)"
    [ "$(st "$n" wsrep_local_state_comment)" = Synced ] && [ "$(st "$n" wsrep_cluster_size)" = 3 ] && ok=$((ok + 1))
  done
  [ $ok -eq 3 ]
}

case "${1:-}" in
  up) up ;; down) down ;; status) status ;;
  *) echo "usage: $0 up|down|status" >&2; exit 2 ;;
esac
