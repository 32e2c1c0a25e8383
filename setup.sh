#!/usr/bin/env bash
# setup.sh — one entry point for a fresh Debian 12 machine (run as root).
#
#   ./setup.sh demo    install packages, build (Release), run the demo migration
#   ./setup.sh test    install packages, fuzz smoke pass, build (Debug + ASan + UBSan), run every test
#   ./setup.sh deps    only install packages and create the system users
#   ./setup.sh build   only build (Release) into build-release/
#
# Idempotent: packages already present are not reinstalled, users already there are kept.
set -euo pipefail
cd "$(dirname "$0")"
top=$PWD
jobs=$(nproc)

packages=(
  # build
  cmake g++ make pkg-config libssl-dev libcurl4-openssl-dev libsodium-dev libsqlite3-dev
  libcrypt-dev libboost-dev libboost-filesystem-dev libtomlplusplus-dev libcli11-dev
  nlohmann-json3-dev libfmt-dev doctest-dev libpam0g-dev zlib1g-dev clang-format libidn2-dev
  liblua5.4-dev
  # fuzzing (scripts/fuzz-smoke.sh): clang and its libFuzzer/sanitizer runtimes
  clang libclang-rt-14-dev
  # real servers and peers for tests, demo and benchmarks
  dovecot-imapd dovecot-pop3d dovecot-submissiond dovecot-lmtpd isync pamtester procmail
  dovecot-auth-lua
  # the mail flow during a campaign: a private Postfix (policy service, transport lookup,
  # HOLD at cut-over) and nginx's mail proxy (auth_http) in front of both servers
  postfix nginx-light libnginx-mod-mail
  # Courier-IMAP's imapd writes the Courier Maildir fixtures and serves as an old server;
  # its package conflicts with dovecot-imapd, so only its libraries and authdaemond's
  # userdb module are installed and the programs are unpacked below.
  courier-authlib courier-authlib-userdb libcourier-unicode4 libgamin0 libgdbm6 libidn12
  # Cyrus IMAP 3.6 as an old server: cyrus-imapd conflicts with dovecot-imapd and
  # cyrus-common pulls in an MTA, so both are unpacked below; these are their libraries,
  # SASL's sasldb plugins and saslpasswd2.
  sasl2-bin libsasl2-modules libsasl2-modules-db libclamav12 libcom-err2 libical3 libicu72
  libjansson4 libkrb5-3 libldap-2.5-0 libpcre3 libpq5 libwrap0 libxapian30 libxml2 libzephyr4
  openssl whois sqlite3 python3 ca-certificates procps
)

install_deps() {
  # unpack_debs DIR CHECK PACKAGE…: apt-get download the packages and dpkg-deb -x them into
  # DIR, unless DIR/CHECK is already there.
  unpack_debs() {
    local dir=$1 check=$2 deb p
    shift 2
    [ -e "$dir/$check" ] && return 0
    deb=$(mktemp -d)
    chmod 0755 "$deb"
    chown _apt "$deb" 2>/dev/null || true # apt downloads as _apt
    (cd "$deb" && apt-get download -q "$@")
    mkdir -p "$dir"
    for p in "$@"; do
      dpkg-deb -x "$deb/${p}"_*.deb "$dir"
    done
    rm -rf "$deb"
  }
  local missing=()
  for p in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  if ((${#missing[@]})); then
    echo "setup: installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    # Keep the Debian Dovecot service from starting on the standard ports: our tests and
    # the demo run their own instances.
    if [ ! -e /usr/sbin/policy-rc.d ]; then
      printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d && chmod 755 /usr/sbin/policy-rc.d
      trap 'rm -f /usr/sbin/policy-rc.d' EXIT
    fi
    # Postfix asks which setup it should write; the tests bring their own config_directory,
    # so the system one stays unconfigured and never starts.
    echo "postfix postfix/main_mailer_type select No configuration" | debconf-set-selections
    apt-get update -q
    apt-get install -y -q --no-install-recommends "${missing[@]}"
  fi
  # Courier-IMAP (imapd, imaplogin; couriertcpd from courier-base) and Cyrus IMAP for the
  # tests, unpacked from their .debs (never installed: courier-imap and cyrus-imapd conflict
  # with dovecot-imapd; the tests start them on loopback with their own configs).
  unpack_debs /opt/mailferry-test/courier-imap usr/sbin/couriertcpd courier-imap courier-base
  unpack_debs /opt/mailferry-test/cyrus-imapd usr/lib/cyrus/bin/imapd cyrus-common cyrus-imapd
  # The security model's users: `mailferry` owns /var/lib/mailferry and runs the worker;
  # `mfvmail` is the unprivileged user the test and demo Dovecots run as.
  getent group mailferry >/dev/null || groupadd --system mailferry
  getent passwd mailferry >/dev/null ||
    useradd --system --gid mailferry --home-dir /var/lib/mailferry --shell /usr/sbin/nologin mailferry
  getent passwd mfvmail >/dev/null ||
    useradd --system --user-group --home-dir /nonexistent --shell /usr/sbin/nologin mfvmail
}

build() {  # build DIR BUILD_TYPE [cmake args...]
  local dir=$1 type=$2
  shift 2
  cmake -S "$top" -B "$top/$dir" -DCMAKE_BUILD_TYPE="$type" "$@" >/dev/null
  cmake --build "$top/$dir" -j"$jobs"
}

case "${1:-}" in
  deps) install_deps ;;
  build) install_deps; build build-release Release -DMAILFERRY_TESTS=OFF ;;
  demo)
    install_deps
    build build-release Release -DMAILFERRY_TESTS=OFF
    exec "$top/build-release/examples/mailferry-demo" "$top/build-release"
    ;;
  test)
    install_deps
    "$top/scripts/check-format.sh"
    # Fuzzing smoke pass first (docs/FUZZING.md). Its verdict is the ctest test
    # fuzz_smoke_report, so a failure shows in ctest's summary, the last thing in the log.
    FUZZ_BUILD_JOBS=$jobs "$top/scripts/fuzz-smoke.sh" || true
    build build-test Debug -DMAILFERRY_SANITIZE=ON
    cd "$top/build-test"
    exec ctest --output-on-failure -j"$jobs" --timeout 900
    ;;
  *)
    sed -n '2,10p' "$0" | sed 's/^# \{0,1\}//'
    exit 2
    ;;
esac
