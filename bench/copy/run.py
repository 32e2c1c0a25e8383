#!/usr/bin/env python3
# run.py — the copy benchmark: mailferry-copy against mbsync, `doveadm backup` (imapc) and
# a raw pipelined FETCH→APPEND ceiling, on one corpus, in one run, between two loopback
# Dovecots; and mailferry-copy writing the target's Maildir directly (--to maildir:), against
# doveadm backup, which does the same. Not a test: it measures, prints a table with ratios and writes
# bench/results/copy-<stamp>.{txt,json}.
#
#   bench/copy/run.py --build build-release [--messages 10000] [--big 20] [--work DIR]
#                     [--sets corpus,big] [--no-sources]
#
# For every data set ("corpus": --messages realistic mails in 14 folders; "big": --big
# messages of 20 MB plus a few small ones) and every tool, into a fresh target account:
#   full copy   wall seconds → msgs/s and MB/s, peak RSS (/usr/bin/time %M)
#   no-op       the same command again (nothing changed) → seconds
#   verify      an independent reader (imaplib here, not our client) compares every
#               folder's multiset of (SHA-256 of the bytes, flags, INTERNALDATE) with the
#               source: "exact" or what differs.
# Other sources (the "corpus" set, unless --no-sources): the source account's Maildir tree
# read directly (mailferry-copy --from maildir: against `doveadm backup` from maildir:), and
# the source's INBOX over POP3 (mailferry-copy --from pop3+plain:// against `doveadm
# backup` from pop3c:). POP3 has no flags, dates or folders, so those rows are verified on
# the INBOX's message bytes only ("inbox bytes").
# Facts about the peers: mbsync needs CopyArrivalDate yes and adds an
# X-TUID header to every message, so it never verifies as exact; doveadm backup writes the
# target's storage directly (no IMAP on that side).
# Must never: touch anything outside --work and bench/results, or the system Dovecot.
import argparse
import collections
import datetime
import hashlib
import imaplib
import json
import os
import re
import shutil
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
TOP = os.path.dirname(os.path.dirname(HERE))


def sh(cmd, **kw):
    return subprocess.run(cmd, check=True, text=True, capture_output=True, **kw)


def timed(cmd, env=None):
    """Runs cmd under /usr/bin/time; returns (seconds, peak RSS KB, stdout, stderr, rc)."""
    tf = "/tmp/mf-bench-time.%d" % os.getpid()
    t0 = time.monotonic()
    p = subprocess.run(["/usr/bin/time", "-o", tf, "-f", "%M"] + cmd, text=True,
                       capture_output=True, env=env)
    secs = time.monotonic() - t0
    try:
        rss = int(open(tf).read().strip().splitlines()[-1])
    except (OSError, ValueError, IndexError):
        rss = 0
    return secs, rss, p.stdout, p.stderr, p.returncode


def read_env(path):
    env = {}
    for line in open(path):
        k, _, v = line.strip().partition("=")
        env[k] = v
    return env


def add_user(conf_dir, user, pw):
    with open(os.path.join(conf_dir, "passwd"), "a") as f:
        f.write(f"{user}:{{PLAIN}}{pw}\n")


# ---- independent verification ------------------------------------------------------------

DATE_RE = re.compile(rb'INTERNALDATE "([^"]+)"')
FLAGS_RE = re.compile(rb"FLAGS \(([^)]*)\)")
UID_RE = re.compile(rb"UID (\d+)")


def account_digest(port, user, pw):
    """{folder ('/' separated): Counter((sha256, flags, epoch))} read with imaplib."""
    m = imaplib.IMAP4("127.0.0.1", port)
    m.login(user, pw)
    typ, lines = m.list('""', '"*"')
    out = {}
    for raw in lines:
        mm = re.match(rb'\((.*?)\) (NIL|"(.)") (.*)', raw)
        attrs, delim, name = mm.group(1), mm.group(3), mm.group(4)
        if b"\\Noselect" in attrs or b"\\NonExistent" in attrs:
            continue
        name = name.strip(b'"')
        norm = name.decode()
        if delim:
            norm = norm.replace(delim.decode(), "/")
        typ, data = m.select(b'"' + name + b'"', readonly=True)
        n = int(data[0])
        c = collections.Counter()
        if n:
            for start in range(1, n + 1, 20):
                end = min(n, start + 19)
                typ, resp = m.fetch(f"{start}:{end}", "(FLAGS INTERNALDATE BODY.PEEK[])")
                for item in resp:
                    if not isinstance(item, tuple):
                        continue
                    meta, body = item
                    flags = FLAGS_RE.search(meta).group(1).split()
                    flags = b" ".join(sorted(f for f in flags if f != b"\\Recent"))
                    d = DATE_RE.search(meta).group(1).decode().strip()
                    when = datetime.datetime.strptime(d, "%d-%b-%Y %H:%M:%S %z").timestamp()
                    c[(hashlib.sha256(body).hexdigest(), flags, int(when))] += 1
        out[norm] = c
    m.logout()
    return out


def compare(src, dst):
    missing = extra = 0
    folders_missing = []
    for name, c in src.items():
        d = dst.get(name)
        if d is None:
            folders_missing.append(name)
            missing += sum(c.values())
            continue
        missing += sum((c - d).values())
        extra += sum((d - c).values())
    for name, d in dst.items():
        if name not in src:
            extra += sum(d.values())
    if not missing and not extra and not folders_missing:
        return "exact", {"missing": 0, "extra": 0}
    text = f"{missing} differ/missing, {extra} extra"
    if folders_missing:
        text += f", folders missing: {len(folders_missing)}"
    return text, {"missing": missing, "extra": extra, "folders_missing": folders_missing}


# ---- tools -------------------------------------------------------------------------------


def tools(a, env, work, ds):
    sp, dp = env["SRC_PORT"], env["DST_PORT"]
    src_user = f"{ds}@src.example"
    mf = os.path.join(a.build, "copier", "mailferry-copy")
    raw = os.path.join(a.build, "bench", "mf-bench-raw-copy")
    t = {}
    t["raw"] = {"user": f"raw-{ds}@dst.example",
                "cmd": [raw, f"127.0.0.1:{sp}", src_user, env["SRC_PW_FILE"], f"127.0.0.1:{dp}",
                        f"raw-{ds}@dst.example", env["DST_PW_FILE"]],
                "rerun": False}
    t["mailferry-copy"] = {"user": f"mf-{ds}@dst.example",
                           "cmd": [mf, "--from", f"imap+plain://{src_user}@127.0.0.1:{sp}",
                                   "--from-password-file", env["SRC_PW_FILE"],
                                   "--to", f"imap+plain://mf-{ds}@dst.example@127.0.0.1:{dp}",
                                   "--to-password-file", env["DST_PW_FILE"],
                                   "--state", os.path.join(work, f"mf-{ds}.db"), "--quiet"],
                           "rerun": True}
    # The same program on one pair of connections: the like-for-like comparison with the
    # single-connection raw ceiling.
    one = list(t["mailferry-copy"]["cmd"])
    one[one.index(f"imap+plain://mf-{ds}@dst.example@127.0.0.1:{dp}")] = \
        f"imap+plain://mf1-{ds}@dst.example@127.0.0.1:{dp}"
    one[one.index(os.path.join(work, f"mf-{ds}.db"))] = os.path.join(work, f"mf1-{ds}.db")
    t["mailferry-copy -c1"] = {"user": f"mf1-{ds}@dst.example", "cmd": one + ["--connections", "1"],
                               "rerun": True}
    # Into the target's Maildir directly, like doveadm backup below (which writes the
    # target's storage, not IMAP): the like-for-like peer of this row.
    t["mailferry-copy →maildir"] = {
        "user": f"mfmt-{ds}@dst.example",
        "cmd": [mf, "--from", f"imap+plain://{src_user}@127.0.0.1:{sp}",
                "--from-password-file", env["SRC_PW_FILE"],
                "--to", "maildir:" + os.path.join(work, "dst", "mail", f"mfmt-{ds}@dst.example"),
                "--state", os.path.join(work, f"mfmt-{ds}.db"), "--quiet"],
        "rerun": True}
    rc = os.path.join(work, f"mbsync-{ds}.rc")
    state = os.path.join(work, f"mbsync-{ds}-state") + "/"
    os.makedirs(state, exist_ok=True)
    with open(rc, "w") as f:
        f.write(f"""IMAPAccount src
Host 127.0.0.1
Port {sp}
User {src_user}
PassCmd "cat {env['SRC_PW_FILE']}"
SSLType None
AuthMechs LOGIN

IMAPStore src
Account src

IMAPAccount dst
Host 127.0.0.1
Port {dp}
User mbsync-{ds}@dst.example
PassCmd "cat {env['DST_PW_FILE']}"
SSLType None
AuthMechs LOGIN

IMAPStore dst
Account dst

Channel c
Far :src:
Near :dst:
Patterns *
Create Near
Sync Pull
Expunge None
CopyArrivalDate yes
SyncState {state}
""")
    t["mbsync"] = {"user": f"mbsync-{ds}@dst.example", "cmd": ["mbsync", "-c", rc, "-q", "c"],
                   "rerun": True}
    src_pw = open(env["SRC_PW_FILE"]).read().strip()
    t["doveadm backup"] = {"user": f"dsync-{ds}@dst.example",
                           "cmd": ["doveadm", "-c", env["DST_CONF"],
                                   "-o", "imapc_host=127.0.0.1", "-o", f"imapc_port={sp}",
                                   "-o", f"imapc_user={src_user}",
                                   "-o", f"imapc_password={src_pw}",
                                   "-o", "imapc_features=rfc822.size fetch-headers modseq",
                                   "-o", "imapc_ssl=no", "-o", "mail_prefetch_count=20",
                                   "backup", "-R", "-u", f"dsync-{ds}@dst.example", "imapc:"],
                           "rerun": True}
    return t


def source_tools(a, env, work, ds):
    """Maildir→IMAP and POP3→IMAP, each against doveadm from the same source."""
    pp = env["SRC_POP3_PORT"]
    dp = env["DST_PORT"]
    src_user = f"{ds}@src.example"
    md = os.path.join(work, "src", "mail", src_user)
    mf = os.path.join(a.build, "copier", "mailferry-copy")
    src_pw = open(env["SRC_PW_FILE"]).read().strip()

    def ours(prefix, frm, extra):
        return {"user": f"{prefix}-{ds}@dst.example",
                "cmd": [mf, "--from", frm] + extra +
                       ["--to", f"imap+plain://{prefix}-{ds}@dst.example@127.0.0.1:{dp}",
                        "--to-password-file", env["DST_PW_FILE"],
                        "--state", os.path.join(work, f"{prefix}-{ds}.db"), "--quiet"],
                "rerun": True}

    def dsync(prefix, location, opts):
        cmd = ["doveadm", "-c", env["DST_CONF"]]
        for o in opts:
            cmd += ["-o", o]
        return {"user": f"{prefix}-{ds}@dst.example",
                "cmd": cmd + ["backup", "-R", "-u", f"{prefix}-{ds}@dst.example", location],
                "rerun": True}

    t = {}
    t["mailferry-copy maildir"] = ours("mfmd", f"maildir:{md}", [])
    t["doveadm backup maildir"] = dsync("dsmd", f"maildir:{md}", [])
    pop = ours("mfpop", f"pop3+plain://{src_user}@127.0.0.1:{pp}",
               ["--from-password-file", env["SRC_PW_FILE"]])
    pop["verify"] = "inbox bytes"
    t["mailferry-copy pop3"] = pop
    dpop = dsync("dspop", "pop3c:", ["pop3c_host=127.0.0.1", f"pop3c_port={pp}",
                                     f"pop3c_user={src_user}", f"pop3c_password={src_pw}",
                                     "pop3c_ssl=no"])
    dpop["verify"] = "inbox bytes"
    t["doveadm backup pop3c"] = dpop
    return t


def inbox_bytes(digest):
    """Only what POP3 carries: the INBOX's multiset of message digests."""
    c = collections.Counter()
    for (sha, _, _), n in digest.get("INBOX", collections.Counter()).items():
        c[(sha, b"", 0)] += n
    return {"INBOX": c}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", required=True, help="a Release build dir with mailferry-copy")
    ap.add_argument("--messages", type=int, default=10000)
    ap.add_argument("--big", type=int, default=20, help="20 MB messages in the big data set")
    ap.add_argument("--work", default="/tmp/mf-bench-copy")
    ap.add_argument("--keep", action="store_true", help="leave the Dovecots running")
    ap.add_argument("--results", default=os.path.join(TOP, "bench", "results"))
    ap.add_argument("--sets", default="corpus,big", help="data sets to run, comma-separated")
    ap.add_argument("--no-sources", action="store_true",
                    help="skip the Maildir→IMAP and POP3→IMAP rows")
    a = ap.parse_args()
    a.build = os.path.abspath(a.build)

    if os.path.exists(a.work):
        subprocess.run([os.path.join(HERE, "dovecot-pair.sh"), "stop", a.work])
        shutil.rmtree(a.work)
    # Not captured: the daemons would inherit the pipe and it would never reach EOF.
    subprocess.run([os.path.join(HERE, "dovecot-pair.sh"), "start", a.work], check=True,
                   stdout=subprocess.DEVNULL, stdin=subprocess.DEVNULL)
    env = read_env(os.path.join(a.work, "env"))
    import pwd
    vm = pwd.getpwnam("mfvmail")
    datasets = [d for d in [("corpus", a.messages, 0), ("big", 30, a.big)]
                if d[0] in a.sets.split(",")]
    src_pw = open(env["SRC_PW_FILE"]).read().strip()
    dst_pw = open(env["DST_PW_FILE"]).read().strip()
    rows = []
    meta = {"date": time.strftime("%Y-%m-%d %H:%M:%S %z"), "host_cpus": os.cpu_count(),
            "loadavg_start": os.getloadavg()[0], "dovecot": sh(["dovecot", "--version"]).stdout.strip(),
            "mbsync": sh(["mbsync", "--version"]).stdout.strip(), "datasets": {}}
    try:
        for ds, n, big in datasets:
            add_user(os.path.join(a.work, "src"), f"{ds}@src.example", src_pw)
            for p in ("raw", "mf", "mf1", "mfmt", "mbsync", "dsync", "mfmd", "dsmd", "mfpop",
                      "dspop"):
                add_user(os.path.join(a.work, "dst"), f"{p}-{ds}@dst.example", dst_pw)
            md = os.path.join(a.work, "src", "mail", f"{ds}@src.example")
            g = sh([sys.executable, os.path.join(HERE, "gen_corpus.py"), "--maildir", md,
                    "--messages", str(n), "--big", str(big), "--seed", "7",
                    "--uid", str(vm.pw_uid), "--gid", str(vm.pw_gid)])
            info = json.loads(g.stdout)
            meta["datasets"][ds] = info
            # Warm the source's indexes once, so every tool reads the same warm source.
            sh(["doveadm", "-c", env["SRC_CONF"], "mailbox", "status", "-u", f"{ds}@src.example",
                "messages vsize", "*"])
            sh(["doveadm", "-c", env["SRC_CONF"], "fetch", "-u", f"{ds}@src.example",
                "size.virtual date.received flags", "all"])
            print(f"[{ds}] {info['messages']} messages, {info['bytes'] / 1e6:.1f} MB", flush=True)
            src_digest = account_digest(int(env["SRC_PORT"]), f"{ds}@src.example", src_pw)
            runs = tools(a, env, a.work, ds)
            if ds == "corpus" and not a.no_sources:
                runs.update(source_tools(a, env, a.work, ds))
            for name, t in runs.items():
                secs, rss, out, err, rc = timed(t["cmd"])
                if rc != 0:
                    print(f"  {name}: exit {rc}: {err.strip()[:300]}", flush=True)
                noop = None
                if t["rerun"]:
                    noop, _, _, _, rc2 = timed(t["cmd"])
                got = account_digest(int(env["DST_PORT"]), t["user"], dst_pw)
                if t.get("verify") == "inbox bytes":
                    verdict, detail = compare(inbox_bytes(src_digest), inbox_bytes(got))
                    verdict = "inbox bytes " + verdict
                else:
                    verdict, detail = compare(src_digest, got)
                row = {"dataset": ds, "tool": name, "seconds": secs, "rss_kb": rss,
                       "msgs_per_s": info["messages"] / secs, "mb_per_s": info["bytes"] / 1e6 / secs,
                       "noop_seconds": noop, "verify": verdict, "verify_detail": detail,
                       "exit": rc}
                rows.append(row)
                print(f"  {name:25s} {secs:7.2f} s  {row['msgs_per_s']:8.0f} msg/s "
                      f"{row['mb_per_s']:7.1f} MB/s  RSS {rss / 1024:6.1f} MB  "
                      f"no-op {('%.3f s' % noop) if noop is not None else 'n/a':>9s}  {verdict}",
                      flush=True)
    finally:
        if not a.keep:
            subprocess.run([os.path.join(HERE, "dovecot-pair.sh"), "stop", a.work])
    meta["loadavg_end"] = os.getloadavg()[0]

    lines = [f"mailferry copy benchmark — {meta['date']}",
             f"{meta['dovecot']} (two loopback instances), {meta['mbsync']}, {meta['host_cpus']} CPUs,"
             f" load average {meta['loadavg_start']:.1f} → {meta['loadavg_end']:.1f}",
             "command: bench/copy/run.py " + " ".join(sys.argv[1:]), ""]
    for ds, _, _ in datasets:
        info = meta["datasets"][ds]
        lines.append(f"{ds}: {info['messages']} messages, {info['bytes'] / 1e6:.1f} MB, "
                     f"{info['folders']} folders")
        lines.append(f"  {'tool':25s}{'seconds':>9s}{'msgs/s':>9s}{'MB/s':>8s}{'peak RSS':>10s}"
                     f"{'no-op s':>9s}  verify")
        by = {r["tool"]: r for r in rows if r["dataset"] == ds}
        for r in by.values():
            noop = f"{r['noop_seconds']:.3f}" if r["noop_seconds"] is not None else "n/a"
            lines.append(f"  {r['tool']:25s}{r['seconds']:9.2f}{r['msgs_per_s']:9.0f}"
                         f"{r['mb_per_s']:8.1f}{r['rss_kb'] / 1024:9.1f}M{noop:>9s}  {r['verify']}")
        mf = by.get("mailferry-copy")
        if mf:
            for other in ("mbsync", "raw", "doveadm backup"):
                if other in by:
                    lines.append(f"  mailferry-copy / {other}: "
                                 f"{by[other]['seconds'] / mf['seconds']:.2f}x speed")
        for ours, peer in (("mailferry-copy →maildir", "doveadm backup"),
                           ("mailferry-copy maildir", "doveadm backup maildir"),
                           ("mailferry-copy pop3", "doveadm backup pop3c")):
            if ours in by and peer in by:
                lines.append(f"  {ours} / {peer}: "
                             f"{by[peer]['seconds'] / by[ours]['seconds']:.2f}x speed")
        mf1 = by.get("mailferry-copy -c1")
        if mf1 and "raw" in by:
            lines.append(f"  mailferry-copy -c1 / raw (both one connection): "
                         f"{by['raw']['seconds'] / mf1['seconds']:.2f}x speed")
        lines.append("")
    text = "\n".join(lines)
    print("\n" + text)
    os.makedirs(a.results, exist_ok=True)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    with open(os.path.join(a.results, f"copy-{stamp}.txt"), "w") as f:
        f.write(text + "\n")
    with open(os.path.join(a.results, f"copy-{stamp}.json"), "w") as f:
        json.dump({"meta": meta, "rows": rows}, f, indent=2)


if __name__ == "__main__":
    main()
