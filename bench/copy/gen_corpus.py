#!/usr/bin/env python3
# gen_corpus.py — a realistic, reproducible mailbox for the copy benchmark.
#
# Writes Maildir++ folders ('.'-separated) straight into a Dovecot user's Maildir:
# messages with a real mailbox's size mix (mostly small text and HTML mails, some with
# attachments, a few large ones), From/To/Subject/Date/Message-ID/MIME headers, 8-bit
# and quoted-printable bodies, random (incompressible) attachments, flags (maildir info
# letters) and keywords (dovecot-keywords), received dates spread over years (file
# mtime = INTERNALDATE). Same --seed, same corpus.
#
#   gen_corpus.py --maildir DIR --messages 10000 [--big 20 --big-size 20971520] [--seed 1]
#
# Must never: write outside --maildir. Prints a one-line JSON summary (messages, bytes).
import argparse
import base64
import json
import os
import random
import time

WORDS = ("the of and to in is that for it with as was on be at by this had not are but from "
         "or have an they which one you were her all she there would their we him been has "
         "when who will more no if out so said what up its about into than them can only other "
         "new some could time these two may then do first any my now such like our over man me "
         "even most made after also did many before must through back years where much your way "
         "well down should because each just those people how too little state good very make "
         "world still own see men work long get here between both life being under never day "
         "same another know while last might us great old year off come since against go came "
         "right used take three migration server mailbox invoice meeting project report budget "
         "quarterly deadline schedule review draft release customer contract").split()

FOLDERS = [
    # (maildir dir name or "" for INBOX, share of messages)
    ("", 0.40), (".Sent", 0.15), (".Archive", 0.08), (".Archive.2019", 0.07),
    (".Archive.2020", 0.07), (".Archive.2021", 0.06), (".Lists", 0.02),
    (".Lists.dovecot", 0.04), (".Lists.isync", 0.03), (".Projects", 0.02),
    (".Projects.Migration", 0.03), (".Drafts", 0.01), (".Trash", 0.015), (".Junk", 0.015),
]
KEYWORDS = ["$Forwarded", "$MDNSent", "NonJunk", "$Label1", "project-x"]


def text(rng, n):
    out = []
    size = 0
    while size < n:
        line = " ".join(rng.choice(WORDS) for _ in range(rng.randint(6, 14)))
        out.append(line.capitalize() + ".")
        size += len(line) + 2
    return "\n".join(out)


def message(rng, i, body_size, date):
    mid = f"<{i}.{rng.getrandbits(48):012x}@src.example>"
    subj = " ".join(rng.choice(WORDS) for _ in range(rng.randint(3, 8)))
    hdr = (f"Return-Path: <sender{i % 97}@example.org>\n"
           f"Received: from mx{i % 5}.example.org (mx{i % 5}.example.org [192.0.2.{i % 250}])\n"
           f"\tby mail.src.example with ESMTPS id {rng.getrandbits(40):010x}\n"
           f"\tfor <bench@src.example>; {time.strftime('%a, %d %b %Y %H:%M:%S +0000', time.gmtime(date))}\n"
           f"From: Sender {i % 97} <sender{i % 97}@example.org>\n"
           f"To: Bench <bench@src.example>\n"
           f"Subject: {subj}\n"
           f"Date: {time.strftime('%a, %d %b %Y %H:%M:%S +0000', time.gmtime(date))}\n"
           f"Message-ID: {mid}\n"
           f"MIME-Version: 1.0\n")
    kind = rng.random()
    boundary = f"=_b{rng.getrandbits(64):016x}"
    if body_size < 20000 and kind < 0.6:
        if rng.random() < 0.15:
            body = text(rng, body_size).replace("the", "thé").replace("and", "ünd")
            return (hdr + "Content-Type: text/plain; charset=utf-8\n"
                    "Content-Transfer-Encoding: 8bit\n\n" + body + "\n").encode()
        return (hdr + "Content-Type: text/plain; charset=us-ascii\n\n" +
                text(rng, body_size) + "\n").encode()
    parts = []
    t = text(rng, min(body_size, rng.randint(1500, 12000)))
    parts.append("Content-Type: text/plain; charset=us-ascii\n\n" + t + "\n")
    remaining = body_size - len(t)
    if remaining > 0 and (kind < 0.85 or remaining < 30000):
        html = "<html><body><p>" + text(rng, remaining).replace("\n", "</p>\n<p>") + "</p></body></html>"
        parts.append("Content-Type: text/html; charset=us-ascii\n\n" + html + "\n")
    elif remaining > 0:
        raw = rng.randbytes(remaining * 3 // 4)
        b64 = base64.encodebytes(raw).decode()
        parts.append(f"Content-Type: application/pdf; name=\"doc{i}.pdf\"\n"
                     f"Content-Disposition: attachment; filename=\"doc{i}.pdf\"\n"
                     "Content-Transfer-Encoding: base64\n\n" + b64)
    body = "".join(f"--{boundary}\n{p}" for p in parts) + f"--{boundary}--\n"
    return (hdr + f"Content-Type: multipart/mixed; boundary=\"{boundary}\"\n\n"
            "This is a multi-part message in MIME format.\n\n" + body).encode()


def size_of(rng):
    r = rng.random()
    if r < 0.55:
        return int(rng.lognormvariate(8.3, 0.6))        # ~4 KB text mails
    if r < 0.85:
        return int(rng.lognormvariate(10.0, 0.5))       # ~22 KB HTML mails
    if r < 0.975:
        return int(rng.lognormvariate(12.0, 0.8))       # ~160 KB attachments
    return int(min(rng.lognormvariate(14.3, 0.5), 12e6))  # ~1.6 MB, a few up to 12 MB


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--maildir", required=True)
    ap.add_argument("--messages", type=int, default=10000)
    ap.add_argument("--big", type=int, default=0, help="extra messages of --big-size bytes")
    ap.add_argument("--big-size", type=int, default=20 * 1024 * 1024)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--uid", type=int, default=-1)
    ap.add_argument("--gid", type=int, default=-1)
    a = ap.parse_args()
    rng = random.Random(a.seed)
    root = os.path.abspath(a.maildir)
    now = int(time.time())
    total = 0
    count = 0
    dirs = []
    for name, _ in FOLDERS:
        d = os.path.join(root, name) if name else root
        for sub in ("cur", "new", "tmp"):
            os.makedirs(os.path.join(d, sub), exist_ok=True)
        with open(os.path.join(d, "dovecot-keywords"), "w") as f:
            for k, kw in enumerate(KEYWORDS):
                f.write(f"{k} {kw}\n")
        dirs.append(d)
    weights = [w for _, w in FOLDERS]
    jobs = [(i, rng.choices(range(len(FOLDERS)), weights)[0], size_of(rng)) for i in range(a.messages)]
    jobs += [(a.messages + j, 0 if j % 2 == 0 else 2, a.big_size) for j in range(a.big)]
    for i, fi, size in jobs:
        date = now - rng.randint(3600, 9 * 365 * 86400)
        data = message(rng, i, max(size - 900, 200), date)
        if size == a.big_size:
            data = data[:a.big_size] if len(data) > a.big_size else data
        flags = ""
        r = rng.random()
        if FOLDERS[fi][0] == ".Drafts":
            flags += "D"
        if r < 0.08:
            flags += "F"
        if r < 0.05:
            flags += "P"
        if rng.random() < 0.2:
            flags += "R"
        if rng.random() < 0.85:
            flags += "S"
        if FOLDERS[fi][0] == ".Trash" and rng.random() < 0.3:
            flags += "T"
        kw = ""
        for k in range(len(KEYWORDS)):
            if rng.random() < (0.1 if k < 2 else 0.04):
                kw += chr(ord("a") + k)
        info = "".join(sorted(flags)) + kw
        fn = f"{date}.M{i}P{os.getpid()}.gen:2,{info}"
        path = os.path.join(dirs[fi], "cur", fn)
        with open(path, "wb") as f:
            f.write(data)
        os.utime(path, (date, date))
        total += len(data.replace(b"\n", b"\r\n"))
        count += 1
    if a.uid >= 0:
        for dp, dn, fn in os.walk(root):
            os.chown(dp, a.uid, a.gid)
            for f in fn:
                os.chown(os.path.join(dp, f), a.uid, a.gid)
    print(json.dumps({"messages": count, "bytes": total, "folders": len(FOLDERS)}))


if __name__ == "__main__":
    main()
