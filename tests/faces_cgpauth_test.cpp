// faces_cgpauth_test.cpp — mailferry-cgpauth driven the way CommuniGate Pro drives it: a
// client speaking the server side of the helper protocol over the helper's stdin/stdout,
// with a real old Dovecot behind the engine (IMAPS for VRFY, LMTP for NEW probes).
//
// Checked: every request line answered exactly once and correctly, in parallel and out of
// order; malformed, unknown, over-long, NUL-carrying and cut-off lines answered with
// ERROR (or logged when they carry no number); nothing created for a non-OK answer.
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>

#include "faces_util.hpp"
#include "support/dovecot_server.hpp"
#include "support/test_env.hpp"

#include <condition_variable>
#include <mutex>
#include <set>
#include <thread>

using namespace std::string_literals;
using namespace std::chrono_literals;

namespace {

std::string binary() {
    return mft::program_path("external-auth", "mailferry-cgpauth");
}

constexpr int kUsers = 12;

// A helper that dies early must fail a check, not kill the test with SIGPIPE.
const bool kIgnoreSigpipe = [] {
    std::signal(SIGPIPE, SIG_IGN);
    return true;
}();

std::string user(int i) {
    return "u" + std::to_string(i) + "@old.example";
}
std::string pass(int i) {
    return "pw " + std::to_string(i) + " \"q\" \xc3\xa4";
}

// A CGP string for a password: quoted, with the escapes the server uses.
std::string cgp_quote(const std::string& s) {
    std::string q = "\"";
    for (char c : s) {
        auto b = static_cast<unsigned char>(c);
        if (c == '"' || c == '\\') {
            q += '\\';
            q += c;
        } else if (b >= 0x80) {
            char buf[8];
            std::snprintf(buf, sizeof buf, "\\%03u", b); // decimal \nnn escapes
            q += buf;
        } else {
            q += c;
        }
    }
    return q + "\"";
}

// The helper as a child process, and the CGP side of the conversation.
class Helper {
  public:
    explicit Helper(std::vector<std::string> args) {
        int in[2];
        int out[2];
        int err[2];
        REQUIRE(::pipe2(in, O_CLOEXEC) == 0);
        REQUIRE(::pipe2(out, O_CLOEXEC) == 0);
        REQUIRE(::pipe2(err, O_CLOEXEC) == 0);
        std::vector<std::string> argv = {binary()};
        argv.insert(argv.end(), args.begin(), args.end());
        std::map<std::string, std::string> env = {{"PATH", "/usr/bin:/bin"}};
        ft::add_sanitizer_env(env);
        std::vector<std::string> envs;
        for (auto& [k, v] : env) {
            envs.push_back(k + "=" + v);
        }
        std::vector<char*> av;
        for (auto& a : argv) {
            av.push_back(a.data());
        }
        av.push_back(nullptr);
        std::vector<char*> ev;
        for (auto& e : envs) {
            ev.push_back(e.data());
        }
        ev.push_back(nullptr);
        pid_ = ::fork();
        REQUIRE(pid_ >= 0);
        if (pid_ == 0) {
            ::dup2(in[0], 0);
            ::dup2(out[1], 1);
            ::dup2(err[1], 2);
            ::execve(av[0], av.data(), ev.data());
            ::_exit(127);
        }
        ::close(in[0]);
        ::close(out[1]);
        ::close(err[1]);
        in_ = in[1];
        out_ = out[0];
        err_ = err[0];
        reader_ = std::thread([this] { read_loop(); });
        err_reader_ = std::thread([this] {
            char b[4096];
            ssize_t n;
            while ((n = ::read(err_, b, sizeof b)) > 0) {
                std::lock_guard l(mu_);
                stderr_.append(b, static_cast<std::size_t>(n));
            }
        });
    }

    ~Helper() {
        ft::close_fd(in_);
        if (pid_ > 0) {
            (void)wait_exit(30s);
        }
        if (reader_.joinable()) {
            reader_.join();
        }
        if (err_reader_.joinable()) {
            err_reader_.join();
        }
        ft::close_fd(out_);
        ft::close_fd(err_);
    }
    Helper(const Helper&) = delete;
    Helper& operator=(const Helper&) = delete;

    void send(const std::string& data) {
        std::string_view d = data;
        while (!d.empty()) {
            ssize_t n = ::write(in_, d.data(), d.size());
            REQUIRE(n > 0);
            d.remove_prefix(static_cast<std::size_t>(n));
        }
    }
    void close_stdin() { ft::close_fd(in_); }

    // Waits until `n` answer lines (not "* " lines) have arrived.
    bool wait_answers(std::size_t n, std::chrono::milliseconds limit = 120s) {
        std::unique_lock l(mu_);
        return cv_.wait_for(l, limit, [&] { return answers_.size() >= n; });
    }

    int wait_exit(std::chrono::milliseconds limit) {
        auto until = std::chrono::steady_clock::now() + limit;
        int status = 0;
        while (std::chrono::steady_clock::now() < until) {
            pid_t p = ::waitpid(pid_, &status, WNOHANG);
            if (p == pid_) {
                pid_ = -1;
                return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
            }
            std::this_thread::sleep_for(20ms);
        }
        ::kill(pid_, SIGKILL);
        ::waitpid(pid_, &status, 0);
        pid_ = -1;
        return -1;
    }

    std::vector<std::string> answers() {
        std::lock_guard l(mu_);
        return answers_;
    }
    std::vector<std::string> log_lines() {
        std::lock_guard l(mu_);
        return logs_;
    }
    std::string all_output() {
        std::lock_guard l(mu_);
        return raw_;
    }
    std::string err() {
        std::lock_guard l(mu_);
        return stderr_;
    }
    bool logged(const std::string& needle) {
        for (const auto& l : log_lines()) {
            if (l.find(needle) != std::string::npos) {
                return true;
            }
        }
        return false;
    }

  private:
    void read_loop() {
        std::string buf;
        char b[8192];
        ssize_t n;
        while ((n = ::read(out_, b, sizeof b)) > 0) {
            std::lock_guard l(mu_);
            raw_.append(b, static_cast<std::size_t>(n));
            buf.append(b, static_cast<std::size_t>(n));
            for (auto lf = buf.find('\n'); lf != std::string::npos; lf = buf.find('\n')) {
                std::string line = buf.substr(0, lf);
                buf.erase(0, lf + 1);
                if (line.rfind("* ", 0) == 0) {
                    logs_.push_back(line);
                } else {
                    answers_.push_back(line);
                }
            }
            cv_.notify_all();
        }
    }

    pid_t pid_ = -1;
    int in_ = -1;
    int out_ = -1;
    int err_ = -1;
    std::thread reader_;
    std::thread err_reader_;
    std::mutex mu_;
    std::condition_variable cv_;
    std::vector<std::string> answers_; // guarded by mu_
    std::vector<std::string> logs_;    // guarded by mu_
    std::string raw_;                  // guarded by mu_
    std::string stderr_;               // guarded by mu_
};

// "seq rest" lines → seq → all answers for it.
std::map<std::string, std::vector<std::string>> by_seq(const std::vector<std::string>& answers) {
    std::map<std::string, std::vector<std::string>> m;
    for (const auto& a : answers) {
        auto sp = a.find(' ');
        REQUIRE_MESSAGE(sp != std::string::npos, a);
        m[a.substr(0, sp)].push_back(a.substr(sp + 1));
    }
    return m;
}

struct World {
    mft::TempDir dir{"mf-faces-cgp"};
    std::string db = dir.file("mf.db");
    std::string config = dir.file("mailferry.toml");
    std::uint16_t lmtp_port = mft::free_port();
    std::unique_ptr<mft::DovecotServer> old;

    World() {
        mft::DovecotOptions o;
        o.label = "old";
        for (int i = 0; i < kUsers; ++i) {
            o.users.push_back({user(i), pass(i)});
        }
        o.pop3 = o.pop3s = o.submission = false;
        // LMTP on loopback TCP: the old server answers RCPT TO like a real MX would.
        o.extra_config = "auth_failure_delay = 0\nprotocols = $protocols lmtp\n"
                         "service lmtp {\n  inet_listener lmtp {\n    address = 127.0.0.1\n"
                         "    port = " +
                         std::to_string(lmtp_port) +
                         "\n  }\n}\nmail_max_userip_connections = 100\n";
        old = std::make_unique<mft::DovecotServer>(o);
        ft::EngineConfig c;
        c.db = db;
        c.imaps_port = old->imaps_port();
        c.ca_file = old->ca_file();
        ft::write_engine_config(config, c);
    }
};

} // namespace

TEST_CASE("200 mixed requests in parallel: each answered exactly once, correctly") {
    World w;
    Helper h({"--config", w.config, "--workers", "8"});

    // What we send and what each line must get back.
    struct Expect {
        std::string seq;
        std::string answer; // exact answer after the seq
        int copies = 1;     // lines sent with this seq
    };
    std::vector<Expect> expect;
    std::set<int> verified; // users who gave the right password at least once
    std::string batch = "1 INTF 7\n";
    expect.push_back({"1", "INTF 3"});
    int seq = 2;
    for (int i = 0; seq < 200; ++i) {
        std::string s = std::to_string(seq++);
        switch (i % 8) {
        case 0: // right password, with a (mode) token
        case 1: {
            int u = i % kUsers;
            verified.insert(u);
            batch += s + " VRFY (IMAP) " + user(u) + " " + cgp_quote(pass(u)) + "\n";
            expect.push_back({s, "OK"});
            break;
        }
        case 2: // wrong password
            batch += s + " VRFY " + user(i % kUsers) + " \"not the password\"\n";
            expect.push_back({s, "ERROR incorrect user name or password"});
            break;
        case 3: // unknown account
            batch += s + " VRFY nobody" + std::to_string(i) + "@old.example secret\n";
            expect.push_back({s, "ERROR incorrect user name or password"});
            break;
        case 4: // malformed
            batch += s + " VRFY " + user(1) + "\n";
            expect.push_back(
                {s, "ERROR missing password; expected: n VRFY [(mode)] user@domain password"});
            break;
        case 5: // unknown command, SASL
            batch += s + (i % 16 == 5 ? " CRYPT x\n" : " SASL(CRAM-MD5) (x) a@b.c abc\n");
            expect.push_back({s, i % 16 == 5 ? "ERROR unsupported command CRYPT"
                                             : "ERROR SASL methods are not supported: use "
                                               "clear-text VRFY"});
            break;
        case 6: { // a duplicate line sent right after the first (CGP re-send)
            int u = (i + 3) % kUsers;
            verified.insert(u);
            std::string line = s + " VRFY " + user(u) + " " + cgp_quote(pass(u)) + "\n";
            batch += line + line;
            expect.push_back({s, "OK", 2});
            break;
        }
        case 7: // NUL inside the line
            batch += s + " VRFY " + user(2) + " pw\0x\n"s;
            expect.push_back({s, "ERROR NUL byte in the request"});
            break;
        }
    }
    batch += "no number here\n"; // logged, not answered
    std::size_t lines_expected = 0;
    for (const auto& e : expect) {
        lines_expected += static_cast<std::size_t>(e.copies);
    }
    // Send in small pieces, as a pipe would deliver them, splitting lines anywhere.
    for (std::size_t off = 0; off < batch.size(); off += 997) {
        h.send(batch.substr(off, 997));
    }
    REQUIRE(h.wait_answers(lines_expected));

    // Resend after the fact (as after a helper restart): answered from the store.
    h.send("900 VRFY " + user(0) + " " + cgp_quote(pass(0)) + "\n");
    REQUIRE(h.wait_answers(lines_expected + 1));
    h.send("901 QUIT\n");
    CHECK(h.wait_exit(60s) == 0);

    auto got = by_seq(h.answers());
    INFO("stderr: ", h.err());
    for (const auto& e : expect) {
        CAPTURE(e.seq);
        REQUIRE(got.count(e.seq) == 1);
        CHECK(got[e.seq].size() == static_cast<std::size_t>(e.copies));
        for (const auto& a : got[e.seq]) {
            CHECK(a == e.answer);
        }
    }
    CHECK(got["900"] == std::vector<std::string>{"OK"});
    CHECK(got["901"] == std::vector<std::string>{"OK"});
    CHECK(got.size() == expect.size() + 2);
    CHECK(h.answers().back() == "901 OK"); // QUIT is answered last
    CHECK(h.logged("ignored a request line: request without a sequence number"));
    CHECK(h.logged("received again while running"));

    // The store: every user who gave the right password, nobody else (some users only
    // ever sent wrong passwords).
    std::string out = h.all_output();
    CHECK(verified.size() > 3);
    CHECK(verified.size() < static_cast<std::size_t>(kUsers));
    for (int i = 0; i < kUsers; ++i) {
        CAPTURE(i);
        CHECK(out.find(pass(i)) == std::string::npos);
        CHECK(ft::account_in(w.db, "u" + std::to_string(i) + "@new.example").has_value() ==
              (verified.count(i) == 1));
    }
    CHECK(ft::account_count(w.db) == verified.size());
    CHECK(out.find("not the password") == std::string::npos);
}

TEST_CASE("VRFY with [address]: the guard's per-address limit applies to CommuniGate logins") {
    World w;
    std::string text = mft::read_file(w.config);
    auto at = text.find("max_failures_per_account_ip = 1000");
    REQUIRE(at != std::string::npos);
    text.replace(at, 34, "max_failures_per_account_ip = 2");
    mft::write_file(w.config, text, 0644);
    Helper h({"--config", w.config});
    // One request at a time: each answer decides the next one's.
    std::size_t n = 0;
    auto ask = [&](const std::string& line) {
        h.send(line + "\n");
        REQUIRE(h.wait_answers(++n));
        return h.answers().back();
    };
    const std::string u = user(4);
    CHECK(ask("1 VRFY (IMAP) " + u + " wrong-1 [198.51.100.5]") ==
          "1 ERROR incorrect user name or password");
    CHECK(ask("2 VRFY (IMAP) " + u + " wrong-2 [198.51.100.5]") ==
          "2 ERROR incorrect user name or password");
    // That address has used its guesses at this account: TEMPFAIL, even for the right one.
    CHECK(ask("3 VRFY (IMAP) " + u + " " + cgp_quote(pass(4)) + " [198.51.100.5]") ==
          "3 ERROR temporary failure, try again later");
    CHECK(h.logged("too many failed logins for this account from 198.51.100.5"));
    // Another address, or none, is not held back by that guesser.
    CHECK(ask("4 VRFY (IMAP) " + u + " " + cgp_quote(pass(4)) + " [2001:db8::7]") == "4 OK");
    CHECK(ask("5 VRFY " + u + " " + cgp_quote(pass(4))) == "5 OK");
    CHECK(ask("6 VRFY " + u + " " + cgp_quote(pass(4)) + " [not-an-address]") ==
          "6 ERROR malformed client address after the password (expected [IPv4 or IPv6 "
          "address])");
    h.send("7 QUIT\n");
    CHECK(h.wait_exit(60s) == 0);
    CHECK(h.all_output().find(pass(4)) == std::string::npos);
}

TEST_CASE("bad lines: over-long, cut off by EOF, unknown; stdin closed mid-request") {
    World w;
    Helper h({"--config", w.config});
    std::string input = "1 INTF 3\n"
                        "2 " +
                        std::string(5000, 'x') + " " + cgp_quote(pass(0)) + "\n" +
                        "3 FROB\n"
                        "4 VRFY \"unterminated\n"
                        "5 VRFY u0@old.example \"pw \\x\"\n"
                        "6 VRFY " +
                        user(0) + " " + cgp_quote(pass(0)) + " extra\n" +
                        "7 NEW\n"
                        "8 INTF\n"
                        "9 VRFY \xff\xfe@old.example pw\n"
                        "10 VRFY " +
                        std::string(400, 'a') + "@old.example pw\n" + "11 VRFY " + user(1) + " " +
                        cgp_quote(pass(1)).substr(0, 5); // no LF
    h.send(input);
    h.close_stdin();
    CHECK(h.wait_exit(60s) == 0);
    auto got = by_seq(h.answers());
    CHECK(got["1"] == std::vector<std::string>{"INTF 3"});
    CHECK(got["2"] == std::vector<std::string>{"ERROR request line longer than 4096 bytes"});
    CHECK(got["3"] == std::vector<std::string>{"ERROR unsupported command FROB"});
    CHECK(got["4"] ==
          std::vector<std::string>{"ERROR unterminated quoted argument; expected: n VRFY [(mode)] "
                                   "user@domain password"});
    CHECK(got["5"] ==
          std::vector<std::string>{"ERROR unknown escape in a quoted argument; expected: n VRFY "
                                   "[(mode)] user@domain password"});
    CHECK(got["6"] == std::vector<std::string>{"ERROR unexpected text after the password"});
    CHECK(got["7"] ==
          std::vector<std::string>{"ERROR missing account name; expected: n NEW user@domain"});
    CHECK(got["8"] == std::vector<std::string>{"ERROR INTF needs a numeric interface version"});
    CHECK(got["9"] == std::vector<std::string>{"ERROR incorrect user name or password"});
    CHECK(got["10"] == std::vector<std::string>{"ERROR incorrect user name or password"});
    CHECK(got["11"] == std::vector<std::string>{
                           "ERROR incomplete request: input closed before its end of line"});
    CHECK(got.size() == 11);
    CHECK(h.logged("request 2: request line longer than 4096 bytes"));
    CHECK(h.logged("request 11: incomplete request"));
    CHECK(h.logged("login refused"));
    CHECK(h.all_output().find(pass(0)) == std::string::npos);
    CHECK(h.all_output().find("xxxxxxxxxx") == std::string::npos);
    CHECK(ft::account_count(w.db) == 0);
}

TEST_CASE("temporary failure: ERROR that says so, nothing created; EOF answers in-flight work") {
    World w;
    w.old->stop();
    Helper h({"--config", w.config});
    h.send("1 VRFY " + user(3) + " " + cgp_quote(pass(3)) + "\n");
    h.close_stdin(); // EOF right behind the request: it must still be answered
    CHECK(h.wait_exit(60s) == 0);
    auto got = by_seq(h.answers());
    CHECK(got["1"] == std::vector<std::string>{"ERROR temporary failure, try again later"});
    CHECK(h.logged("TEMPFAIL"));
    CHECK(ft::account_count(w.db) == 0);
}

TEST_CASE("NEW: migrated, known or unknown at the old server (LMTP probe), no probe, probe down") {
    World w;
    std::string probe = "lmtp://127.0.0.1:" + std::to_string(w.lmtp_port);
    {
        Helper h({"--config", w.config, "--probe", probe, "--probe-helo", "mf.test"});
        h.send("1 VRFY " + user(4) + " " + cgp_quote(pass(4)) + "\n");
        REQUIRE(h.wait_answers(1));
        h.send("2 NEW " + user(4) +
               "\n" // migrated now
               "3 NEW " +
               user(5) +
               "\n"                        // exists at the old server
               "4 NEW ghost@old.example\n" // unknown there
               "5 NEW \"bad name\"@old.example\n"
               "6 QUIT\n");
        CHECK(h.wait_exit(60s) == 0);
        auto got = by_seq(h.answers());
        CHECK(got["1"] == std::vector<std::string>{"OK"});
        CHECK(got["2"] == std::vector<std::string>{"OK"});
        CHECK(got["3"] == std::vector<std::string>{"OK"});
        CHECK(got["4"] == std::vector<std::string>{"ERROR unknown account"});
        CHECK(got["5"].size() == 1);
        CHECK(got["5"][0].rfind("ERROR", 0) == 0);
        CHECK(h.logged("u5@old.example exists at the old server"));
        CHECK(h.logged("ghost@old.example unknown at the old server"));
        // NEW never creates: only the VRFY'd user is in the store.
        CHECK(ft::account_count(w.db) == 1);
        CHECK_FALSE(ft::account_in(w.db, "u5@new.example"));
    }
    {
        Helper h({"--config", w.config});
        h.send("1 NEW " + user(6) + "\n2 QUIT\n");
        CHECK(h.wait_exit(60s) == 0);
        CHECK(by_seq(h.answers())["1"] ==
              std::vector<std::string>{
                  "ERROR unknown account (no SMTP probe configured to ask the old server)"});
    }
    {
        mft::SilentServer silent; // accepts, never greets
        Helper h({"--config", w.config, "--probe",
                  "smtp://127.0.0.1:" + std::to_string(silent.port()), "--probe-timeout", "1"});
        h.send("1 NEW " + user(7) + "\n2 QUIT\n");
        CHECK(h.wait_exit(60s) == 0);
        CHECK(by_seq(h.answers())["1"] ==
              std::vector<std::string>{"ERROR temporary failure, try again later"});
        CHECK(h.logged("probe for u7@old.example failed"));
    }
    CHECK(ft::account_count(w.db) == 1);
}

TEST_CASE("start-up problems: bad option, bad config — a clear message, exit 2") {
    mft::TempDir dir{"mf-faces-cgp"};
    {
        Helper h({"--workers", "0"});
        CHECK(h.wait_exit(30s) == 2);
        CHECK(h.err().find("option --workers") != std::string::npos);
        CHECK(h.logged("cannot start"));
    }
    {
        mft::write_file(dir.file("bad.toml"), "[store]\nnonsense = 1\n");
        Helper h({"--config", dir.file("bad.toml")});
        CHECK(h.wait_exit(30s) == 2);
        CHECK(h.err().find("bad.toml") != std::string::npos);
    }
    {
        Helper h({"--probe", "http://x"});
        CHECK(h.wait_exit(30s) == 2);
        CHECK(h.err().find("scheme must be smtp:// or lmtp://") != std::string::npos);
    }
}
