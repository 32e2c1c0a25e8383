// first_login_mailbox_bench.cpp — first-login latency does not grow with the mailbox.
//
// One run, one machine, interleaved so drift hits every row alike. An OLD Dovecot holds
// accounts with a 10 MB and with a 1 GB mailbox (one corpus of each, written straight
// into Maildir once and hard-linked into every account, so making 1 GB per account costs
// nothing). Two NEW Dovecots authenticate through mailferry-checkpassword:
//   plain  — a config without [target]: first login = verify + provision (no copy)
//   copy   — with [target]: the same plus seal into the spool, enqueue, wake the worker
// and a `mailferry worker` (as the mailferry user) copies in the background while we
// measure, so a 1 GB copy is loading the machine during the logins. Each row is the IMAP
// LOGIN (connect, greeting, LOGIN, tagged OK) of a distinct user logging in for the first
// time. Prints a table and writes bench/results/first-login-mailbox-<date>.{json,txt}.
//
// Usage (root; needs the users mfvmail and mailferry, and this build's mailferry and
// mailferry-checkpassword): first_login_mailbox_bench [--rounds N] [--out DIR]
// Not a test: nothing here passes or fails; the numbers are for the reader.
#include "latency_stats.hpp"
#include "mailferry/store.hpp"
#include "support/migration_world.hpp"

#include <algorithm>
#include <ctime>
#include <fmt/core.h>
#include <fstream>
#include <nlohmann/json.hpp>

using mfbench::Clock;
using mfbench::ms_since;
using mfbench::stats;
using mfbench::Stats;

namespace {

constexpr int kSmallMessages = 200; // × 50 KB = 10 MB
constexpr std::size_t kSmallSize = 50 * 1000;
constexpr int kBigMessages = 256; // × 4 MB ≈ 1 GB
constexpr std::size_t kBigSize = 4 * 1000 * 1000;

// `count` messages of `size` bytes into `user`'s INBOX: one random-words body made once,
// each message with its own headers and a rotated body, written straight into Maildir.
void write_corpus(const mft::DovecotServer& srv, const std::string& user, int count,
                  std::size_t size, unsigned seed) {
    const std::string dir = srv.mail_dir(user);
    for (const char* sub : {"/cur", "/new", "/tmp"}) {
        wt::mkdir_vmail(dir + sub);
    }
    std::mt19937 rng(seed);
    const char* words[] = {"copy",  "mail",   "ferry",  "login", "server", "quota", "spool",
                           "lease", "budget", "sealed", "inbox", "folder", "resync"};
    std::string body;
    body.reserve(size + 100);
    while (body.size() < size) {
        std::string line;
        while (line.size() < 70) {
            line += words[rng() % (sizeof words / sizeof *words)];
            line += ' ';
        }
        line.resize(70); // every line 72 bytes with CRLF, so a rotation keeps lines whole
        body += line + "\r\n";
    }
    wt::Ids v = wt::ids_of("mfvmail");
    for (int i = 0; i < count; ++i) {
        std::string head = "From: sender" + std::to_string(i % 7) + "@example.org\r\nTo: " + user +
                           "\r\nSubject: big message " + std::to_string(i) + "\r\nMessage-ID: <" +
                           std::to_string(seed) + "." + std::to_string(i) + ".bench>\r\n\r\n";
        std::size_t cut = (static_cast<std::size_t>(i) * 7919 * 72) % (body.size() - 72);
        cut -= cut % 72; // on a line boundary (every line is 72 bytes with CRLF)
        std::string name = dir + "/cur/" + std::to_string(1700000000 + i) + ".M" +
                           std::to_string(seed) + "_" + std::to_string(i) + ".bench:2,S";
        std::ofstream f(name, std::ios::binary);
        f << head;
        f.write(body.data() + cut, static_cast<std::streamsize>(body.size() - cut));
        f.write(body.data(), static_cast<std::streamsize>(cut));
        f.close();
        wt::chown_path(name, v.uid, v.gid);
    }
}

// Hard-links every message of `from`'s INBOX into `to`'s (same file system).
void link_mailbox(const mft::DovecotServer& srv, const std::string& from, const std::string& to) {
    std::string src = srv.mail_dir(from) + "/cur";
    std::string dst = srv.mail_dir(to);
    for (const char* sub : {"/cur", "/new", "/tmp"}) {
        wt::mkdir_vmail(dst + sub);
    }
    for (const auto& e : std::filesystem::directory_iterator(src)) {
        std::filesystem::create_hard_link(e.path(), dst + "/cur/" + e.path().filename().string());
    }
}

std::uint64_t dir_bytes(const std::string& dir) {
    std::uint64_t n = 0;
    for (const auto& e : std::filesystem::recursive_directory_iterator(dir)) {
        if (e.is_regular_file()) {
            n += e.file_size();
        }
    }
    return n;
}

// A NEW Dovecot asking mailferry-checkpassword with `config` (no copies: no [target]).
std::unique_ptr<mft::DovecotServer> plain_new_server(const wt::World& w, std::string& config) {
    std::string state = w.dir.file("plain-state");
    for (const std::string& d : {state, state + "/locks"}) {
        ::mkdir(d.c_str(), 02770);
        wt::chown_path(d, 0, w.mf_group);
        ::chmod(d.c_str(), 02770);
    }
    std::string text = mft::read_file(w.config);
    // Same provider, hash, provisioner; own store; no [spool], [target], [worker].
    text = wt::replace_all(text, w.db(), state + "/mailferry.db");
    auto cut = text.find("\n[spool]");
    auto log = text.find("\n[log]");
    text = text.substr(0, cut) + text.substr(log);
    config = w.dir.file("plain.toml");
    mft::write_file(config, text, 0640);
    wt::chown_path(config, 0, w.mf_group);
    std::string auth = mft::read_file(std::string(MF_SOURCE_DIR) +
                                      "/examples/dovecot/auth-mailferry-checkpassword.conf.ext");
    auth = wt::replace_all(auth, "/usr/local/bin/mailferry-checkpassword", wt::kCheckpassword);
    auth = wt::replace_all(auth, "/etc/mailferry/mailferry.toml", config);
    mft::DovecotOptions n;
    n.label = "bplain";
    n.tls = false;
    n.imaps = n.pop3 = n.pop3s = n.submission = false;
    n.auth_config = auth;
    n.extra_config = "service auth {\n  extra_groups = mailferry\n  vsz_limit = 0\n}\n"
                     "service auth-worker {\n  extra_groups = mailferry\n}\n";
    return std::make_unique<mft::DovecotServer>(n);
}

} // namespace

int main(int argc, char** argv) try {
    int rounds = 10;
    std::string out_dir = std::string(MF_SOURCE_DIR) + "/bench/results";
    for (int i = 1; i < argc; ++i) {
        std::string a = argv[i];
        if (a == "--rounds" && i + 1 < argc) {
            rounds = std::max(1, std::atoi(argv[++i]));
        } else if (a == "--out" && i + 1 < argc) {
            out_dir = argv[++i];
        } else {
            std::fprintf(stderr, "usage: first_login_mailbox_bench [--rounds N] [--out DIR]\n");
            return 2;
        }
    }
    const char* kinds[] = {"plain-10MB", "copy-10MB", "plain-1GB", "copy-1GB"};
    auto user_of = [](const std::string& kind, int i) {
        std::string k = kind;
        k.erase(std::remove(k.begin(), k.end(), '-'), k.end());
        for (char& c : k) {
            c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
        }
        return k + std::to_string(i) + "@example.com";
    };
    wt::WorldOptions o;
    o.users = {{"corpus-small@example.com", "corpus-pw"},
               {"corpus-big@example.com", "corpus-pw"},
               {"warm1@example.com", "warm-pw-1"},
               {"warm2@example.com", "warm-pw-2"}};
    for (const char* k : kinds) {
        for (int i = 0; i < rounds; ++i) {
            o.users.push_back({user_of(k, i), "pw-" + user_of(k, i)});
        }
    }
    o.copies = 1;
    o.budget = 1;
    o.lease = "30s";
    std::printf("starting the old server, two new servers ...\n");
    wt::World w(o);
    std::string plain_config;
    auto plain = plain_new_server(w, plain_config);

    auto t0 = Clock::now();
    write_corpus(w.old, "corpus-small@example.com", kSmallMessages, kSmallSize, 1);
    double small_ms = ms_since(t0);
    t0 = Clock::now();
    write_corpus(w.old, "corpus-big@example.com", kBigMessages, kBigSize, 2);
    double big_ms = ms_since(t0);
    std::uint64_t small_bytes = dir_bytes(w.old.mail_dir("corpus-small@example.com"));
    std::uint64_t big_bytes = dir_bytes(w.old.mail_dir("corpus-big@example.com"));
    std::printf("corpus: 10 MB (%.1f MB, %d messages) in %.0f ms, 1 GB (%.1f MB, %d messages) "
                "in %.0f ms\n",
                static_cast<double>(small_bytes) / 1e6, kSmallMessages, small_ms,
                static_cast<double>(big_bytes) / 1e6, kBigMessages, big_ms);
    for (const char* k : kinds) {
        bool big = std::string(k).find("1GB") != std::string::npos;
        for (int i = 0; i < rounds; ++i) {
            link_mailbox(w.old, big ? "corpus-big@example.com" : "corpus-small@example.com",
                         user_of(k, i));
        }
    }

    auto worker = w.start_worker();
    // Warm both new servers (first process starts), not measured.
    wt::imap_login(plain->imap_port(), "warm1@example.com", "warm-pw-1");
    wt::imap_login(w.fresh->imap_port(), "warm2@example.com", "warm-pw-2");

    std::map<std::string, std::vector<double>> ms;
    int failures = 0;
    for (int i = 0; i < rounds; ++i) {
        // Rotate the order each round so no kind always goes first.
        for (int j = 0; j < 4; ++j) {
            const std::string kind = kinds[(i + j) % 4];
            std::uint16_t port =
                kind.rfind("plain", 0) == 0 ? plain->imap_port() : w.fresh->imap_port();
            std::string user = user_of(kind, i);
            auto start = Clock::now();
            std::string reply = wt::imap_login(port, user, "pw-" + user);
            double took = ms_since(start);
            if (reply.rfind("a1 OK", 0) != 0) {
                ++failures;
                std::fprintf(stderr, "login %s failed: %s\n", user.c_str(), reply.c_str());
                continue;
            }
            ms[kind].push_back(took);
        }
    }
    // What the worker did meanwhile: the copies really ran during the logins.
    std::uint64_t copied_bytes = 0;
    int synced = 0;
    std::string running;
    for (const auto& j : w.jobs()) {
        if (j.state == mf::JobState::running) {
            running = j.account;
        }
        auto pos = j.last_result.find(" messages (");
        if (pos != std::string::npos) {
            copied_bytes += std::stoull(j.last_result.substr(pos + 11));
            ++synced;
        }
    }
    worker.signal(SIGTERM);
    worker.wait(std::chrono::seconds(120));

    char date[32];
    std::time_t now = std::time(nullptr);
    std::strftime(date, sizeof date, "%Y%m%d-%H%M%S", std::localtime(&now));
    std::string table = fmt::format("first-login latency, IMAP LOGIN at the new server through "
                                    "mailferry-checkpassword ({} rounds, interleaved)\n",
                                    rounds);
    table += fmt::format("{:<44} {:>4} {:>9} {:>9} {:>9} {:>9}\n", "case", "n", "p50 ms", "p90 ms",
                         "max ms", "mean ms");
    nlohmann::json rows = nlohmann::json::array();
    const std::map<std::string, std::string> label = {
        {"plain-10MB", "no copy configured, 10 MB mailbox"},
        {"plain-1GB", "no copy configured, 1 GB mailbox"},
        {"copy-10MB", "seal + enqueue + wake, 10 MB mailbox"},
        {"copy-1GB", "seal + enqueue + wake, 1 GB mailbox"}};
    for (const char* k : {"plain-10MB", "plain-1GB", "copy-10MB", "copy-1GB"}) {
        Stats s = stats(ms[k]);
        table += fmt::format("{:<44} {:>4} {:>9.1f} {:>9.1f} {:>9.1f} {:>9.1f}\n", label.at(k), s.n,
                             s.p50, s.p90, s.max, s.mean);
        rows.push_back({{"case", k},
                        {"label", label.at(k)},
                        {"n", s.n},
                        {"p50_ms", s.p50},
                        {"p90_ms", s.p90},
                        {"max_ms", s.max},
                        {"mean_ms", s.mean}});
    }
    table += fmt::format("login failures: {}\n", failures);
    table += fmt::format("meanwhile the worker finished {} copies ({:.1f} MB) and was copying "
                         "{} when the logins ended\n",
                         synced, static_cast<double>(copied_bytes) / 1e6,
                         running.empty() ? std::string("nothing") : running);
    table += fmt::format("corpus generation: 10 MB in {:.0f} ms, 1 GB in {:.0f} ms "
                         "(Maildir files, hard-linked into {} accounts each)\n",
                         small_ms, big_ms, 2 * rounds);
    std::fputs(table.c_str(), stdout);

    nlohmann::json doc = {{"bench", "first-login-mailbox"},
                          {"date", date},
                          {"rounds", rounds},
                          {"rows", rows},
                          {"login_failures", failures},
                          {"worker_copies_finished", synced},
                          {"worker_bytes_copied", copied_bytes},
                          {"worker_copying_at_end", running},
                          {"corpus_10mb_bytes", small_bytes},
                          {"corpus_1gb_bytes", big_bytes},
                          {"corpus_10mb_ms", small_ms},
                          {"corpus_1gb_ms", big_ms}};
    std::filesystem::create_directories(out_dir);
    std::string base = out_dir + "/first-login-mailbox-" + date;
    std::ofstream(base + ".json") << doc.dump(2) << "\n";
    std::ofstream(base + ".txt") << table;
    std::printf("wrote %s.json and .txt\n", base.c_str());
    return failures == 0 ? 0 : 1;
} catch (const std::exception& e) {
    std::fprintf(stderr, "first_login_mailbox_bench: %s\n", e.what());
    return 1;
}
