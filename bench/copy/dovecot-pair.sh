#!/usr/bin/env bash
# dovecot-pair.sh — two throw-away Dovecots on loopback (source and target) for the copy
# benchmark and for trying mailferry-copy by hand.
#
#   dovecot-pair.sh start DIR   create DIR (0755), start both, write DIR/env (ports, users)
#   dovecot-pair.sh stop DIR    stop both by the PIDs in their master.pid
#
# Both run rootless as the `mfvmail` user, each with its own base_dir, state_dir and log,
# chroot off and unused listeners on port 0, so they never touch the system's Dovecot.
# The source uses '.' as hierarchy separator, the target '/', so every run also exercises
# delimiter translation.
# The source also speaks POP3 (for the POP3→IMAP rows).
# Login service in performance mode (service_count = 0) so connection set-up is not what
# we measure. Users: bench@src.example / bench@dst.example, master user master*.
# Must never: touch the system Dovecot or listen beyond 127.0.0.1.
set -euo pipefail

cmd=${1:?usage: dovecot-pair.sh start|stop DIR}
dir=${2:?usage: dovecot-pair.sh start|stop DIR}
vuser=mfvmail
uid=$(id -u $vuser)
gid=$(id -g $vuser)

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}

write_conf() { # name port separator [pop3-port]
  local name=$1 port=$2 sep=$3 pop3=${4:-0} d=$dir/$1
  mkdir -p "$d/run" "$d/state" "$d/mail" "$d/home"
  cat >"$d/dovecot.conf" <<CONF
instance_name = mf-bench-$name
base_dir = $d/run
state_dir = $d/state
log_path = $d/dovecot.log
info_log_path = $d/dovecot.log
protocols = imap$([ "$pop3" != 0 ] && echo " pop3")
listen = 127.0.0.1
default_internal_user = $vuser
default_internal_group = $vuser
default_login_user = $vuser
first_valid_uid = $uid
last_valid_uid = $uid
mail_uid = $uid
mail_gid = $gid
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain login
auth_master_user_separator = *
mail_location = maildir:$d/mail/%u
mail_max_userip_connections = 200
imap_max_line_length = 1M
passdb {
  driver = passwd-file
  args = scheme=PLAIN username_format=%u $d/masters
  master = yes
}
passdb {
  driver = passwd-file
  args = scheme=PLAIN username_format=%u $d/passwd
}
userdb {
  driver = static
  args = uid=$uid gid=$gid home=$d/home/%u
}
namespace inbox {
  inbox = yes
  separator = $sep
  mailbox Drafts {
    special_use = \\Drafts
  }
  mailbox Sent {
    special_use = \\Sent
  }
  mailbox Trash {
    special_use = \\Trash
  }
  mailbox Junk {
    special_use = \\Junk
  }
}
service imap-login {
  inet_listener imap {
    address = 127.0.0.1
    port = $port
  }
  inet_listener imaps {
    port = 0
  }
  chroot =
  service_count = 0
}
service imap {
  process_limit = 256
}
service pop3-login {
  inet_listener pop3 {
    address = 127.0.0.1
    port = $pop3
  }
  inet_listener pop3s {
    port = 0
  }
  chroot =
  service_count = 0
}
service anvil {
  chroot =
}
service auth {
  user = $vuser
}
service auth-worker {
  user = $vuser
}
service stats {
  chroot =
}
service log {
  chroot =
}
CONF
  echo "bench@$name.example:{PLAIN}bench-$name-pw" >"$d/passwd"
  echo "master:{PLAIN}master-$name-pw" >"$d/masters"
  chown -R $vuser:$vuser "$d"
}

case $cmd in
start)
  mkdir -p "$dir"
  chmod 0755 "$dir"
  sp=$(free_port)
  dp=$(free_port)
  pp=$(free_port)
  write_conf src "$sp" . "$pp"
  write_conf dst "$dp" /
  for n in src dst; do
    dovecot -c "$dir/$n/dovecot.conf"
  done
  for p in $sp $dp; do
    for _ in $(seq 100); do
      (echo >/dev/tcp/127.0.0.1/$p) 2>/dev/null && break
      sleep 0.05
    done
  done
  umask 077
  printf 'bench-src-pw\n' >"$dir/src.pw"
  printf 'bench-dst-pw\n' >"$dir/dst.pw"
  printf 'master-dst-pw\n' >"$dir/dst-master.pw"
  cat >"$dir/env" <<ENV
SRC_PORT=$sp
SRC_POP3_PORT=$pp
DST_PORT=$dp
SRC_USER=bench@src.example
DST_USER=bench@dst.example
SRC_CONF=$dir/src/dovecot.conf
DST_CONF=$dir/dst/dovecot.conf
SRC_PW_FILE=$dir/src.pw
DST_PW_FILE=$dir/dst.pw
ENV
  echo "started: source 127.0.0.1:$sp (POP3 $pp), target 127.0.0.1:$dp (env in $dir/env)"
  ;;
stop)
  for n in src dst; do
    pidf=$dir/$n/run/master.pid
    if [ -f "$pidf" ]; then
      pid=$(cat "$pidf")
      kill "$pid" 2>/dev/null || true
      for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.05; done
    fi
  done
  ;;
*)
  echo "usage: dovecot-pair.sh start|stop DIR" >&2
  exit 2
  ;;
esac
