// password_verify_test.cpp — verify_hash / hash_supported against vectors made by real
// tools (doveadm pw, mkpasswd, openssl, python3 hashlib; see
// fixtures/hashes/make-fixtures.sh), and against malformed values.
//
// Every fixture line must match its own password and no other; every real value we do
// not verify must say "unsupported" with a reason; nothing malformed may crash (ASan) or
// match. Reasons must never carry the password.
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>

#include "mailferry/password.hpp"

#include <fstream>
#include <random>
#include <set>
#include <string>
#include <vector>

namespace {

struct Vector {
    std::string label;
    std::string password;
    std::string stored;
    std::string where; // file:line
};

std::string unhex(const std::string& hex) {
    std::string out;
    REQUIRE(hex.size() % 2 == 0);
    for (std::size_t i = 0; i < hex.size(); i += 2) {
        out.push_back(static_cast<char>(std::stoi(hex.substr(i, 2), nullptr, 16)));
    }
    return out;
}

std::vector<Vector> load(const std::string& name) {
    const std::string path = std::string(MF_FIXTURES_DIR) + "/hashes/" + name;
    std::ifstream in(path);
    REQUIRE_MESSAGE(in.good(), "cannot open " << path);
    std::vector<Vector> out;
    std::string line;
    for (int n = 1; std::getline(in, line); ++n) {
        const auto t1 = line.find('\t');
        const auto t2 = line.find('\t', t1 + 1);
        REQUIRE_MESSAGE((t1 != std::string::npos && t2 != std::string::npos),
                        path << ":" << n << ": not 3 TAB-separated fields");
        out.push_back({line.substr(0, t1), unhex(line.substr(t1 + 1, t2 - t1 - 1)),
                       line.substr(t2 + 1), name + ":" + std::to_string(n)});
    }
    return out;
}

const char* name_of(mf::HashMatch m) {
    switch (m) {
    case mf::HashMatch::match:
        return "match";
    case mf::HashMatch::mismatch:
        return "mismatch";
    case mf::HashMatch::unsupported:
        return "unsupported";
    }
    return "?";
}

void check_vectors(const std::string& file, std::size_t min_lines) {
    const auto vectors = load(file);
    REQUIRE(vectors.size() >= min_lines);
    for (const auto& v : vectors) {
        CAPTURE(v.where);
        CAPTURE(v.label);
        const auto right = mf::verify_hash(v.stored, mf::Secret(v.password));
        INFO("right password: " << name_of(right.result) << " " << right.reason);
        CHECK(right.result == mf::HashMatch::match);
        // A changed first byte: wrong for every scheme, even those that look at only the
        // first 8 (DES) or 72 (bcrypt) bytes or a PLAIN-TRUNC prefix.
        const auto wrong = mf::verify_hash(v.stored, mf::Secret("x" + v.password));
        CHECK(wrong.result == mf::HashMatch::mismatch);
        CHECK(mf::verify_hash(v.stored, mf::Secret()).result == mf::HashMatch::mismatch);
        std::string reason;
        CHECK(mf::hash_supported(v.stored, &reason));
        CHECK(reason.empty());
    }
}

// Every scheme the brief names appears among the vectors: a fixture regenerated without
// one would otherwise pass silently.
TEST_CASE("fixtures cover every scheme we claim") {
    std::set<std::string> labels;
    for (const char* f : {"verify-dovecot.tsv", "verify-crypt.tsv", "verify-computed.tsv"}) {
        for (const auto& v : load(f)) {
            labels.insert(v.label);
        }
    }
    for (const char* want : {"doveadm:PLAIN",
                             "doveadm:CLEARTEXT",
                             "doveadm:CRYPT",
                             "doveadm:MD5",
                             "doveadm:MD5-CRYPT",
                             "doveadm:SHA256-CRYPT",
                             "doveadm:SHA512-CRYPT",
                             "doveadm:BLF-CRYPT",
                             "doveadm:DES-CRYPT",
                             "doveadm:SHA",
                             "doveadm:SHA1",
                             "doveadm:SSHA",
                             "doveadm:SHA256",
                             "doveadm:SSHA256",
                             "doveadm:SHA512",
                             "doveadm:SSHA512",
                             "doveadm:SMD5",
                             "doveadm:PLAIN-MD5",
                             "doveadm:LDAP-MD5",
                             "doveadm:ARGON2I",
                             "doveadm:ARGON2ID",
                             "doveadm:PLAIN-MD4",
                             "doveadm:SHA.HEX",
                             "doveadm:PLAIN.B64",
                             "doveadm:CLEARTEXT.BASE64",
                             "doveadm:SSHA.Hex",
                             "doveadm:SCRAM-SHA-1",
                             "doveadm:SCRAM-SHA-256",
                             "doveadm:PBKDF2",
                             "doveadm:CRAM-MD5",
                             "doveadm-checked:PLAIN-TRUNC",
                             "mkpasswd:yescrypt",
                             "mkpasswd:sha512crypt",
                             "mkpasswd:md5crypt",
                             "mkpasswd:bcrypt",
                             "mkpasswd:descrypt",
                             "mkpasswd:gost-yescrypt",
                             "mkpasswd:scrypt",
                             "mkpasswd:nt",
                             "openssl-passwd:-1",
                             "openssl-passwd:-5",
                             "openssl-passwd:-6",
                             "openssl-dgst:NTLM",
                             "openssl-dgst:LDAP-MD5-as-MD5",
                             "python3-hashlib:NS-MTA-MD5",
                             "python3+openssl-dgst:NTLM-bytewise"}) {
        CAPTURE(want);
        CHECK(labels.count(want) == 1);
    }
}

TEST_CASE("doveadm pw vectors (Dovecot 2.3.19, with .HEX/.B64 suffixes)") {
    check_vectors("verify-dovecot.tsv", 300);
}

TEST_CASE("crypt(3) vectors from mkpasswd and openssl passwd, bare") {
    check_vectors("verify-crypt.tsv", 100);
}

TEST_CASE("NTLM, NS-MTA-MD5 and LDAP forms from openssl dgst / python3 hashlib") {
    check_vectors("verify-computed.tsv", 60);
}

TEST_CASE("real values we do not verify answer unsupported, with a reason") {
    const auto vectors = load("unsupported.tsv");
    REQUIRE(vectors.size() >= 5);
    for (const auto& v : vectors) {
        CAPTURE(v.where);
        CAPTURE(v.label);
        for (const std::string& pw : {v.password, "x" + v.password}) {
            const auto r = mf::verify_hash(v.stored, mf::Secret(pw));
            CHECK(r.result == mf::HashMatch::unsupported);
            CHECK_FALSE(r.reason.empty());
            CHECK(r.reason.find(pw) == std::string::npos);
        }
        std::string reason;
        CHECK_FALSE(mf::hash_supported(v.stored, &reason));
        CHECK_FALSE(reason.empty());
    }
}

struct Bad {
    std::string stored;
    std::string in_reason; // a word the reason must contain
};

TEST_CASE("malformed values: unsupported with a reason, never a crash") {
    const std::string nul_inside("$6$saltsalt$abc\0def", 19);
    const std::vector<Bad> cases = {
        {"", "empty"},
        {"{SHA}U5lVQVt3jUxILaL251beisJ5kR", "base64"},       // truncated
        {"{SHA}U5lVQVt3jUxILaL251beisJ5kRY", "base64"},      // padding cut off
        {"{SSHA}q/Za+/eF6S3f4w62441PCkSN1ZOUW72", "base64"}, // truncated
        {"{SSHA}U5lVQVt3jUxILaL251beisJ5kRY=", "too short"}, // digest, no salt
        {"{SHA}U5lVQVt3jUxILaL251beisJ5kRY=\n", "base64"},   // trailing newline
        {"{SHA} U5lVQVt3jUxILaL251beisJ5kRY=", "base64"},    // leading space
        {"{SHA}AAECAwQFBgcICQoLDA0ODxAREg==", "19 bytes"},   // wrong length
        {"{SHA.HEX}zz9955415b778d4c482da2f6e756de8ac2799116", "hex"},
        {"{SHA.XYZ}539955415b778d4c482da2f6e756de8ac2799116", "suffix"},
        {"{SHA.}539955415b778d4c482da2f6e756de8ac2799116", "suffix"},
        {"{NOSUCH}abc", "NOSUCH"},
        {"{}abc", "unknown"},
        {"{SHA", "'}'"},
        {"{PLAIN}", "empty"},
        {"{CRYPT}", "empty"},
        {"{PLAIN.B64}cGEgc3M", "base64"},
        {"$argon2d$v=19$m=65536,t=3,p=1$lBwPnVTpjjN6bRCU5RUEEw$"
         "mhDpLSixDi3M0uuftxAj4YIgKauPcu9JAUW70As4cX0",
         "argon2d"},
        {"{ARGON2ID}$argon2id$v=16$m=65536,t=3,p=1$SJL3CzNbw/"
         "q2lhhue36tgw$BlmngWaGi1aGVRFuHsnrkMKggZaVXYC2yLgQGps91AA",
         "version"},
        {"{ARGON2ID}$argon2id$m=65536,t=3,p=1$SJL3CzNbw/"
         "q2lhhue36tgw$BlmngWaGi1aGVRFuHsnrkMKggZaVXYC2yLgQGps91AA",
         "version"},
        {"{ARGON2ID}$argon2id$v=19$m=65536,t=3$SJL3CzNbw/"
         "q2lhhue36tgw$BlmngWaGi1aGVRFuHsnrkMKggZaVXYC2yLgQGps91AA",
         "parameters"},
        {"{ARGON2ID}$argon2id$v=19$m=65536,t=0,p=1$SJL3CzNbw/"
         "q2lhhue36tgw$BlmngWaGi1aGVRFuHsnrkMKggZaVXYC2yLgQGps91AA",
         "range"},
        {"{ARGON2ID}$argon2id$v=19$m=65536,t=3,p=1$SJL3CzNbw/q2lhhue36tgw", "hash"},
        {"{ARGON2ID}$argon2id$v=19$m=65536,t=3,p=1$SJL3CzNbw/q2lhhue36tgw$Blmng", "base64"},
        {"{ARGON2ID}$6$saltsalt$x", "argon2"},
        {"$6$UBj7YUACSblBwffs$EVSqf5Eb958Wf2v9iphANZRwsT0CRiBTWEXAkgoH."
         "S9aWBjaDAoiCXgm0D77N7jeiF0bh7JuPkwS",
         "malformed"}, // checksum cut short
        {"$6$UBj7YUACSblBwffs$", "malformed"},
        {"$9$abc$def", "libxcrypt"},
        {"$apr1$SqTJOr8X$WuySsd/woQFImFvJE5Pll/", "libxcrypt"},
        {"!$6$UBj7YUACSblBwffs$EVSqf5Eb958Wf2v9iphANZRwsT0CRiBTWEXAkgoH."
         "S9aWBjaDAoiCXgm0D77N7jeiF0bh7JuPkwSvrg8zLqPX.",
         "locked"},
        {"{CRYPT}*", "locked"},
        {"*", "locked"},
        {"plain text password", "prefix"},
        {nul_inside, "NUL"},
        {"{NS-MTA-MD5}abc", "64"},
        {"{NS-MTA-MD5}" + std::string(32, 'z') + std::string(32, 'a'), "hex"},
        {"{SCRAM-SHA-1}100,YlWYdQaCzww0VjMcUc/1tQ==,xt+U28ZekUi9sy6+2Kby93XKupc=,WAS//"
         "PUTPDlAea6sRgOhZYIPUQw=",
         "iteration"},
        {"{SCRAM-SHA-1}4096,YlWYdQaCzww0VjMcUc/1tQ==,xt+U28ZekUi9sy6+2Kby93XKupc=", "4 fields"},
        {"{SCRAM-SHA-1}4096,YlWYdQaCzww0VjMcUc/1tQ==,xt+U28ZekUi9sy6+2Kby93XKupc=,WAS//"
         "PUTPDlAea6sRgOhZYIPUQw=,x",
         "4 fields"},
        {"{SCRAM-SHA-256}4096,oMjp5tBnb9qdZs3sUhy/dw==,xt+U28ZekUi9sy6+2Kby93XKupc=,WAS//"
         "PUTPDlAea6sRgOhZYIPUQw=",
         "length"}, // SHA-1 sized keys under SHA-256
        {"{PBKDF2}$2$dOMnoXCs9LpMFpZH$5000$f7c60f296de58fcc015ed2f3620d19d24a00ff3d", "$1$"},
        {"{PBKDF2}$1$dOMnoXCs9LpMFpZH$0$f7c60f296de58fcc015ed2f3620d19d24a00ff3d", "rounds"},
        {"{PBKDF2}$1$dOMnoXCs9LpMFpZH$5000$f7c60f296de58fcc015ed2f3620d19d24a00ff", "40 hex"},
        {"{PLAIN-TRUNC}x-abc", "length"},
        {"{PLAIN-TRUNC}3-", "empty"},
        {"{CRAM-MD5}abcd", "bytes"},
        {"{DIGEST-MD5}3a6a5c829c16b3547a7026e1861fb6dd", "user name"},
        {"{OTP}sha1 1024 f734a0857c4c7e28 339afe05a744940f", "one-time"},
        {"{MD5}notbase64!!", "neither"},
        {"{NTLM}878d8014606cda29677a44efa1353fc", "hex nor"},
        {"{PLAIN-MD4.B64}eE1HKPGl4NeB/TDVg/mNcw", "base64"},
    };
    const std::string password = "hunter2-Secret";
    for (const auto& c : cases) {
        CAPTURE(c.stored);
        const auto r = mf::verify_hash(c.stored, mf::Secret(password));
        CHECK(r.result == mf::HashMatch::unsupported);
        CHECK_MESSAGE(r.reason.find(c.in_reason) != std::string::npos, "reason: " << r.reason);
        CHECK(r.reason.find(password) == std::string::npos);
        std::string reason;
        CHECK_FALSE(mf::hash_supported(c.stored, &reason));
        CHECK(reason == r.reason);
    }
}

TEST_CASE("scheme names and suffixes are case-insensitive, like Dovecot") {
    const mf::Secret pw("pa ss");
    // doveadm pw -s SHA1 -p 'pa ss' and its hex form.
    for (const char* stored :
         {"{SHA1}U5lVQVt3jUxILaL251beisJ5kRY=", "{sha1}U5lVQVt3jUxILaL251beisJ5kRY=",
          "{Sha1.B64}U5lVQVt3jUxILaL251beisJ5kRY=",
          "{sha.hex}539955415b778d4c482da2f6e756de8ac2799116",
          "{SHA.HEX}539955415B778D4C482DA2F6E756DE8AC2799116",
          // no suffix: a fixed-size digest is read as hex when it has twice the size
          "{SHA}539955415b778d4c482da2f6e756de8ac2799116"}) {
        CAPTURE(stored);
        CHECK(mf::verify_hash(stored, pw).result == mf::HashMatch::match);
    }
}

TEST_CASE("a reason never repeats the password, even when the stored value holds it") {
    const auto r = mf::verify_hash("{HUNTER2}whatever", mf::Secret("HUNTER2"));
    CHECK(r.result == mf::HashMatch::unsupported);
    CHECK(r.reason.find("HUNTER2") == std::string::npos);
    CHECK_FALSE(r.reason.empty());
    // Names not shaped like a scheme are not echoed at all.
    const auto r2 = mf::verify_hash("{my secret}x", mf::Secret("other"));
    CHECK(r2.reason.find("my secret") == std::string::npos);
}

// Every prefix of a good value is either unreadable or a mismatch — never a match — and
// nothing crashes on the way (cheap schemes only: each step may run a hash).
TEST_CASE("truncations of real values never match") {
    std::vector<Vector> picks;
    for (const char* f : {"verify-dovecot.tsv", "verify-crypt.tsv", "verify-computed.tsv"}) {
        std::set<std::string> seen;
        for (const auto& v : load(f)) {
            const bool cheap = v.label.find("ARGON2") == std::string::npos &&
                               v.label.find("yescrypt") == std::string::npos &&
                               v.label.find("scrypt") == std::string::npos &&
                               v.label.find("sunmd5") == std::string::npos &&
                               v.label.find("bcrypt") == std::string::npos &&
                               v.label.find("BLF") == std::string::npos &&
                               v.label.find("CRYPT") == std::string::npos &&
                               v.label.find("-R") == std::string::npos &&
                               v.label.find("PBKDF2") == std::string::npos &&
                               v.label.find("SCRAM") == std::string::npos;
            if (cheap && seen.insert(v.label).second) {
                picks.push_back(v);
            }
        }
    }
    REQUIRE(picks.size() >= 30);
    for (const auto& v : picks) {
        CAPTURE(v.where);
        const mf::Secret pw(v.password);
        for (std::size_t n = 0; n < v.stored.size(); ++n) {
            const std::string cut = v.stored.substr(0, n);
            CAPTURE(cut);
            const auto r = mf::verify_hash(cut, pw);
            // {PLAIN-TRUNC} is the one format where a shorter value may still be right
            // (a shorter stored prefix is a different, valid value).
            if (v.label.find("PLAIN-TRUNC") == std::string::npos) {
                CHECK(r.result != mf::HashMatch::match);
            }
            if (r.result == mf::HashMatch::unsupported) {
                CHECK_FALSE(r.reason.empty());
            }
        }
    }
}

TEST_CASE("random bytes and random edits of real values: no crash, no false match") {
    std::mt19937 rng(20240611); // fixed seed: a failure can be replayed
    const auto vectors = load("verify-computed.tsv");
    REQUIRE_FALSE(vectors.empty());
    std::uniform_int_distribution<int> byte(0, 255);
    for (int i = 0; i < 2000; ++i) {
        const auto& v = vectors[static_cast<std::size_t>(i) % vectors.size()];
        std::string s = v.stored;
        if (i % 2 == 0) {
            // Flip one byte of the value part (after the scheme).
            const auto start = s.find('}') + 1;
            std::uniform_int_distribution<std::size_t> at(start, s.size() - 1);
            const auto pos = at(rng);
            const char old = s[pos];
            do {
                s[pos] = static_cast<char>(byte(rng));
            } while (s[pos] == old);
        } else {
            s.assign(static_cast<std::size_t>(i % 97), '\0');
            for (auto& c : s) {
                c = static_cast<char>(byte(rng));
            }
            if (i % 3 == 0) {
                s.insert(0, "{SSHA}");
            }
        }
        CAPTURE(v.where);
        const auto r = mf::verify_hash(s, mf::Secret(v.password));
        if (r.result == mf::HashMatch::match) {
            // Only possible if the edit did not change meaning (hex digit case).
            CHECK(s.size() == v.stored.size());
            std::string a = s, b = v.stored;
            for (auto* t : {&a, &b}) {
                for (auto& c : *t) {
                    c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
                }
            }
            CHECK(a == b);
        }
        (void)mf::hash_supported(s);
    }
}

} // namespace
