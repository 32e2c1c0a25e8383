// faces_proto_test.cpp — the faces' wire formats, without the engine: the CGP tokenizer,
// request parser and reply formatter, the CGP line loop (ordering, duplicates, limits),
// checkpassword's fd 3 parser and reply environment, bounded reads, the probe target.
//
// Must never: pass by construction — every case states the exact expected bytes.
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>

#include "cgpauth_proto.hpp"
#include "cgpauth_server.hpp"
#include "checkpassword_proto.hpp"
#include "face_io.hpp"
#include "mailferry/probe_rcpt.hpp"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdlib>
#include <fcntl.h>
#include <map>
#include <sstream>
#include <string>
#include <thread>
#include <unistd.h>
#include <vector>

using namespace std::string_literals;

namespace {

std::string decode(std::string_view s, bool* ok = nullptr, std::string* err = nullptr) {
    std::size_t pos = 0;
    std::string out;
    std::string e;
    bool r = mf::cgp::next_string(s, pos, out, e);
    if (ok != nullptr) {
        *ok = r;
    }
    if (err != nullptr) {
        *err = e;
    }
    return out;
}

// A pipe whose ends close when the object dies.
struct Pipe {
    int r = -1;
    int w = -1;
    Pipe() {
        int fds[2];
        REQUIRE(::pipe(fds) == 0);
        r = fds[0];
        w = fds[1];
    }
    ~Pipe() {
        close_r();
        close_w();
    }
    void close_r() {
        if (r >= 0) {
            ::close(r);
            r = -1;
        }
    }
    void close_w() {
        if (w >= 0) {
            ::close(w);
            w = -1;
        }
    }
    Pipe(const Pipe&) = delete;
    Pipe& operator=(const Pipe&) = delete;
};

std::string read_all(int fd) {
    std::string out;
    char buf[4096];
    for (;;) {
        ssize_t n = ::read(fd, buf, sizeof buf);
        if (n <= 0) {
            break;
        }
        out.append(buf, static_cast<std::size_t>(n));
    }
    return out;
}

std::vector<std::string> lines_of(const std::string& s) {
    std::vector<std::string> out;
    std::istringstream in(s);
    std::string l;
    while (std::getline(in, l)) {
        out.push_back(l);
    }
    return out;
}

// Runs serve() over pipes with `input`, returns everything it wrote.
std::string run_server(const std::string& input, const mf::cgp::Handler& h, unsigned workers = 4,
                       std::size_t max_pending = 256) {
    Pipe in;
    Pipe out;
    std::thread feeder([&] {
        std::string_view rest = input;
        while (!rest.empty()) {
            ssize_t n = ::write(in.w, rest.data(), rest.size());
            if (n <= 0) {
                break;
            }
            rest.remove_prefix(static_cast<std::size_t>(n));
        }
        in.close_w();
    });
    std::string result;
    std::thread reader([&] { result = read_all(out.r); });
    mf::cgp::LineWriter writer(out.w);
    mf::cgp::ServerOptions opts;
    opts.workers = workers;
    opts.max_pending = max_pending;
    int rc = mf::cgp::serve(in.r, writer, h, opts);
    CHECK(rc == 0);
    out.close_w();
    feeder.join();
    reader.join();
    return result;
}

} // namespace

TEST_CASE("cgp: atoms and quoted strings decode per Data.html") {
    CHECK(decode("alice@example.com rest") == "alice@example.com");
    CHECK(decode("\"two words \\\"q\\\"\"") == "two words \"q\"");
    CHECK(decode("\"a\\\\b\"") == "a\\b");
    CHECK(decode("\"tab\\there\"") == "tab\there");
    CHECK(decode("\"cr\\rlf\\n\"") == "cr\rlf\n");
    CHECK(decode("\"eol\\e\"") == "eol\n");
    CHECK(decode("\"\\065\\066\\067\"") == "ABC");
    CHECK(decode("\"\\195\\164\"") == "\xc3\xa4");                   // UTF-8 ä by decimal escapes
    CHECK(decode("\"gr\xc3\xbc\xc3\x9f\"") == "gr\xc3\xbc\xc3\x9f"); // raw UTF-8 inside
    CHECK(decode("\"\"") == "");

    bool ok = true;
    std::string err;
    decode("\"unterminated", &ok, &err);
    CHECK_FALSE(ok);
    CHECK(err == "unterminated quoted argument");
    decode("\"bad \\x escape\"", &ok, &err);
    CHECK_FALSE(ok);
    CHECK(err == "unknown escape in a quoted argument");
    decode("\"\\25\"", &ok, &err);
    CHECK_FALSE(ok);
    CHECK(err == "\\nnn escape needs three decimal digits");
    decode("\"\\256\"", &ok, &err);
    CHECK_FALSE(ok);
    CHECK(err == "\\nnn escape above 255");
    decode("\"raw\ttab\"", &ok, &err);
    CHECK_FALSE(ok);
    decode("\"x\"y", &ok, &err);
    CHECK_FALSE(ok);
    CHECK(err == "no space after a quoted argument");
    decode("ab\"c", &ok, &err);
    CHECK_FALSE(ok);
    decode("   ", &ok, &err);
    CHECK_FALSE(ok);
    CHECK(err == "missing argument");
}

TEST_CASE("cgp: VRFY with and without (mode), quoted passwords with spaces") {
    auto p = mf::cgp::parse_request("2 VRFY (x) alice@example.com secret");
    REQUIRE(p.request);
    CHECK(p.request->command == mf::cgp::Command::vrfy);
    CHECK(p.request->seq == "2");
    CHECK(p.request->mode == "x");
    CHECK(p.request->user == "alice@example.com");
    CHECK(p.request->password.view() == "secret");

    p = mf::cgp::parse_request("3 VRFY bob@example.com \"two words \\\"q\\\"\"\r");
    REQUIRE(p.request);
    CHECK(p.request->mode.empty());
    CHECK(p.request->user == "bob@example.com");
    CHECK(p.request->password.view() == "two words \"q\"");

    p = mf::cgp::parse_request("0007 vrfy (IMAP 1.2.3.4) \"c@d.e\" pw");
    REQUIRE(p.request);
    CHECK(p.request->seq == "0007");
    CHECK(p.request->word == "VRFY");
    CHECK(p.request->mode == "IMAP 1.2.3.4");
    CHECK(p.request->user == "c@d.e");
}

TEST_CASE("cgp: VRFY with the client address in brackets after the password") {
    auto p = mf::cgp::parse_request("2 VRFY (IMAP) alice@example.com secret [192.0.2.1]");
    REQUIRE(p.request);
    CHECK(p.request->password.view() == "secret");
    CHECK(p.request->client_ip == "192.0.2.1");

    p = mf::cgp::parse_request("3 VRFY bob@example.com \"two words\" [2001:db8::1]\r");
    REQUIRE(p.request);
    CHECK(p.request->password.view() == "two words");
    CHECK(p.request->client_ip == "2001:db8::1");

    p = mf::cgp::parse_request("4 VRFY c@d.e [pw]"); // a password that looks like one
    REQUIRE(p.request);
    CHECK(p.request->password.view() == "[pw]");
    CHECK(p.request->client_ip.empty());

    p = mf::cgp::parse_request("5 VRFY c@d.e pw");
    REQUIRE(p.request);
    CHECK(p.request->client_ip.empty());

    const std::string bad =
        "malformed client address after the password (expected [IPv4 or IPv6 address])";
    for (const char* line :
         {"6 VRFY a@b.c pw [192.0.2]", "6 VRFY a@b.c pw [192.0.2.1", "6 VRFY a@b.c pw []",
          "6 VRFY a@b.c pw [mail.example.com]", "6 VRFY a@b.c pw [192.0.2.1] extra",
          "6 VRFY a@b.c pw [192.0.2.1]x", "6 VRFY a@b.c pw [192.0.2.1:143]",
          "6 VRFY a@b.c pw [2001:db8::1%eth0]"}) {
        CAPTURE(line);
        p = mf::cgp::parse_request(line);
        CHECK_FALSE(p.request);
        CHECK(p.seq == "6");
        CHECK(p.error == bad);
    }
}

TEST_CASE("cgp: malformed requests name the problem, never the arguments") {
    struct Case {
        std::string line;
        std::string seq;
        std::string error;
    };
    const std::vector<Case> cases = {
        {"4 VRFY alice@example.com", "4",
         "missing password; expected: n VRFY [(mode)] user@domain password"},
        {"5 VRFY", "5", "missing account name; expected: n VRFY [(mode)] user@domain password"},
        {"6 VRFY a@b.c pw extra", "6", "unexpected text after the password"},
        {"7 VRFY (unclosed a@b.c pw", "7", "unterminated (mode) token"},
        {"8 VRFY a@b.c \"open", "8",
         "unterminated quoted argument; expected: n VRFY [(mode)] user@domain password"},
        {"9 VRFY a@b.c pw\0xx"s, "9", "NUL byte in the request"},
        {"10 INTF seven", "10", "INTF needs a numeric interface version"},
        {"11", "11", "missing command"},
        {"12 NEW", "12", "missing account name; expected: n NEW user@domain"},
        {"13 NEW a@b.c more", "13", "unexpected text after the account name"},
        {"x VRFY a@b.c pw", "", "request without a sequence number"},
        {"12a VRFY a@b.c pw", "", "request without a sequence number"},
        {"123456789012345678901 QUIT", "", "request without a sequence number"},
        {"* log line", "", "request without a sequence number"},
    };
    for (const auto& c : cases) {
        CAPTURE(c.line);
        auto p = mf::cgp::parse_request(c.line);
        CHECK_FALSE(p.request);
        CHECK(p.seq == c.seq);
        CHECK(p.error == c.error);
        CHECK(p.error.find("pw") == std::string::npos);
    }
}

TEST_CASE("cgp: other commands") {
    auto p = mf::cgp::parse_request("1 INTF 7");
    REQUIRE(p.request);
    CHECK(p.request->command == mf::cgp::Command::intf);
    CHECK(p.request->version == "7");
    p = mf::cgp::parse_request("9 QUIT");
    REQUIRE(p.request);
    CHECK(p.request->command == mf::cgp::Command::quit);
    p = mf::cgp::parse_request("3 SASL(CRAM-MD5) (x) a@b.c abc");
    REQUIRE(p.request);
    CHECK(p.request->command == mf::cgp::Command::sasl);
    p = mf::cgp::parse_request("4 READPLAIN a@b.c");
    REQUIRE(p.request);
    CHECK(p.request->command == mf::cgp::Command::unsupported);
    CHECK(p.request->word == "READPLAIN");
    p = mf::cgp::parse_request("5 \x01\xff");
    REQUIRE(p.request);
    CHECK(p.request->word == "??");
    p = mf::cgp::parse_request("6 NEW (m) \"x@y.z\"");
    REQUIRE(p.request);
    CHECK(p.request->command == mf::cgp::Command::new_account);
    CHECK(p.request->user == "x@y.z");
}

TEST_CASE("cgp: reply lines are single, sanitized and capped") {
    CHECK(mf::cgp::reply_line("1", "OK") == "1 OK\n");
    CHECK(mf::cgp::reply_line("2", "ERROR", "bad\r\nthing") == "2 ERROR bad  thing\n");
    std::string big(10000, 'x');
    std::string l = mf::cgp::reply_line("3", "ERROR", big);
    CHECK(l.size() == mf::cgp::kMaxLine + 1);
    CHECK(l.back() == '\n');
    CHECK(l.find('\n') == l.size() - 1);
    CHECK(mf::cgp::info_line("a\nb") == "* a b\n");
    CHECK(mf::cgp::info_line("u\xff\xfe@x \xc3\xa4 \xe2\x82") == "* u??@x \xc3\xa4 ??\n");
    std::string utf(3000, 'a');
    for (int i = 0; i < 1000; ++i) {
        utf += "\xe2\x82\xac"; // € — must not be cut in half at the cap
    }
    std::string capped = mf::cgp::info_line(utf);
    CHECK(capped.size() <= mf::cgp::kMaxLine + 1);
    CHECK((capped.size() - 1 - 2 - 3000) % 3 == 0);
    CHECK(mf::cgp::leading_seq("17 VRFY") == "17");
    CHECK(mf::cgp::leading_seq("17") == "17");
    CHECK(mf::cgp::leading_seq("17x") == "");
}

TEST_CASE("cgp loop: every line answered exactly once, in any order, limits kept") {
    std::atomic<int> runs{0};
    mf::cgp::Handler h = [&runs](const mf::cgp::Request& r) -> mf::cgp::Answer {
        ++runs;
        // Later requests finish first: answers come back out of order.
        std::this_thread::sleep_for(std::chrono::milliseconds(r.seq == "2" ? 400 : 5));
        if (r.command == mf::cgp::Command::new_account) {
            return {"ERROR", "no"};
        }
        return r.password.view() == "right" ? mf::cgp::Answer{"OK", ""}
                                            : mf::cgp::Answer{"ERROR", "wrong"};
    };
    std::string input = "1 INTF 7\n"
                        "2 VRFY a@b.c right\n"
                        "3 VRFY a@b.c wrong\n"
                        "\n"
                        "4 FROB x\n"
                        "5 VRFY a@b.c pw\0x\n"s +
                        "no seq at all\n"
                        "6 " +
                        std::string(5000, 'z') + "\n" +
                        "7 NEW a@b.c\n"
                        "8 VRFY a@b.c right\r\n";
    std::string out = run_server(input, h);
    auto lines = lines_of(out);
    std::map<std::string, std::string> by_seq;
    int log_lines = 0;
    for (const auto& l : lines) {
        if (l.rfind("* ", 0) == 0) {
            ++log_lines;
            continue;
        }
        auto sp = l.find(' ');
        REQUIRE(sp != std::string::npos);
        CHECK(by_seq.count(l.substr(0, sp)) == 0); // once per seq
        by_seq[l.substr(0, sp)] = l.substr(sp + 1);
        CHECK(l.size() <= mf::cgp::kMaxLine);
    }
    CHECK(by_seq.size() == 8);
    CHECK(by_seq["1"] == "INTF 3");
    CHECK(by_seq["2"] == "OK");
    CHECK(by_seq["3"] == "ERROR wrong");
    CHECK(by_seq["4"] == "ERROR unsupported command FROB");
    CHECK(by_seq["5"] == "ERROR NUL byte in the request");
    CHECK(by_seq["6"] == "ERROR request line longer than 4096 bytes");
    CHECK(by_seq["7"] == "ERROR no");
    CHECK(by_seq["8"] == "OK");
    CHECK(runs == 4);
    CHECK(log_lines == 0); // no log sink set here: warnings went to stderr
    // "2" took longest: it is not the first answer although it was the first request run.
    auto pos2 = out.find("2 OK\n");
    auto pos3 = out.find("3 ERROR wrong\n");
    CHECK(pos3 < pos2);
    CHECK(out.find("right") == std::string::npos);
    CHECK(out.find("zzzz") == std::string::npos);
}

TEST_CASE("cgp loop: a re-sent running request is answered per line and run once") {
    std::atomic<int> runs{0};
    mf::cgp::Handler h = [&runs](const mf::cgp::Request&) -> mf::cgp::Answer {
        ++runs;
        std::this_thread::sleep_for(std::chrono::milliseconds(200));
        return {"OK", ""};
    };
    std::string input = "5 VRFY a@b.c pw\n5 VRFY a@b.c pw\n5 VRFY a@b.c pw\n"
                        "6 VRFY a@b.c pw\n"     // same bytes, other seq: its own run
                        "5 VRFY a@b.c other\n"; // same seq, other bytes: its own run
    std::string out = run_server(input, h);
    auto lines = lines_of(out);
    int fives = 0;
    int sixes = 0;
    for (const auto& l : lines) {
        fives += l == "5 OK";
        sixes += l == "6 OK";
    }
    CHECK(fives == 4);
    CHECK(sixes == 1);
    CHECK(runs == 3);
}

TEST_CASE("cgp loop: QUIT waits for requests in flight and answers last") {
    mf::cgp::Handler h = [](const mf::cgp::Request&) -> mf::cgp::Answer {
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
        return {"OK", ""};
    };
    std::string out = run_server("1 VRFY a@b.c pw\n2 QUIT\n3 VRFY a@b.c pw\n", h);
    CHECK(out == "1 OK\n2 OK\n");
}

TEST_CASE("cgp loop: input closed in the middle of a request line") {
    std::atomic<int> runs{0};
    mf::cgp::Handler h = [&runs](const mf::cgp::Request&) -> mf::cgp::Answer {
        ++runs;
        return {"OK", ""};
    };
    auto lines = lines_of(run_server("1 VRFY a@b.c right\n2 VRFY a@b.c rig", h));
    std::sort(lines.begin(), lines.end()); // answers come in any order
    CHECK(lines == std::vector<std::string>{
                       "1 OK", "2 ERROR incomplete request: input closed before its end of line"});
    CHECK(runs == 1);
    std::string out = run_server("garbage without end", h);
    CHECK(out.empty());
}

TEST_CASE("cgp loop: backpressure keeps at most max_pending requests, answers all") {
    std::atomic<int> running{0};
    std::atomic<int> peak{0};
    mf::cgp::Handler h = [&](const mf::cgp::Request&) -> mf::cgp::Answer {
        int now = ++running;
        int p = peak.load();
        while (now > p && !peak.compare_exchange_weak(p, now)) {
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(2));
        --running;
        return {"OK", ""};
    };
    std::string input;
    for (int i = 0; i < 300; ++i) {
        input += std::to_string(i) + " VRFY u" + std::to_string(i) + "@b.c pw\n";
    }
    std::string out = run_server(input, h, 3, 5);
    CHECK(lines_of(out).size() == 300);
    CHECK(peak <= 3);
}

TEST_CASE("checkpassword: fd 3 payload") {
    auto c = mf::checkpassword::parse_input("anna@old.example\0s3cret\0\0"s);
    REQUIRE(c);
    CHECK(c->login == "anna@old.example");
    CHECK(c->password.view() == "s3cret");

    c = mf::checkpassword::parse_input("u\0p\0"s); // no timestamp terminator: accepted
    REQUIRE(c);
    CHECK(c->password.view() == "p");

    c = mf::checkpassword::parse_input("u\0p w\x01\xff\0"
                                       "12345\0more data"s);
    REQUIRE(c);
    CHECK(c->password.view() == "p w\x01\xff");

    c = mf::checkpassword::parse_input("user\0\0\0"s); // lookup mode: empty password
    REQUIRE(c);
    CHECK(c->password.empty());

    auto bad = mf::checkpassword::parse_input("");
    REQUIRE_FALSE(bad);
    CHECK(bad.error().message() == "read credentials from fd 3: no data before end of file");
    bad = mf::checkpassword::parse_input("anna");
    REQUIRE_FALSE(bad);
    CHECK(bad.error().message().find("no NUL after the login name") != std::string::npos);
    bad = mf::checkpassword::parse_input("anna\0secr"s);
    REQUIRE_FALSE(bad);
    CHECK(bad.error().message().find("no NUL after the password") != std::string::npos);
    CHECK(bad.error().message().find("secr") == std::string::npos);
}

TEST_CASE("checkpassword: reply environment") {
    auto env = mf::checkpassword::reply_env("anna@new.example",
                                            {{"userdb_home", "/var/vmail/new.example/anna"},
                                             {"userdb_uid", "5000"},
                                             {"nodelay", "1"},
                                             {"ld_preload", "/evil.so"},
                                             {"path", "/tmp"},
                                             {"Bad-Name", "x"},
                                             {"userdb_mail", "maildir:~/Maildir\tx"}});
    REQUIRE(env);
    std::map<std::string, std::pair<std::string, bool>> m;
    for (const auto& c : env->changes) {
        m[c.name] = {c.value, c.unset};
    }
    CHECK(m["USER"].first == "anna@new.example");
    CHECK(m["HOME"].first == "/var/vmail/new.example/anna");
    CHECK(m["USERDB_UID"].first == "5000");
    CHECK(m["NODELAY"].first == "1");
    CHECK(m["EXTRA"].first == "USERDB_UID NODELAY");
    CHECK(m.count("LD_PRELOAD") == 0);
    CHECK(m.count("PATH") == 0);
    CHECK(env->skipped.size() == 4);

    env = mf::checkpassword::reply_env("u@x.y", {});
    REQUIRE(env);
    m.clear();
    for (const auto& c : env->changes) {
        m[c.name] = {c.value, c.unset};
    }
    CHECK(m["HOME"].second); // unset: an inherited HOME must not become userdb_home
    CHECK(m["EXTRA"].second);

    CHECK_FALSE(mf::checkpassword::reply_env("a\tb", {}));
    CHECK_FALSE(mf::checkpassword::reply_env("", {}));
}

TEST_CASE("face_io: bounded reads stop at the limit, the deadline, or EOF") {
    {
        Pipe p;
        REQUIRE(mf::face::write_all(p.w, "abc") == 0);
        p.close_w();
        auto r = mf::face::read_all_bounded(p.r, 512, mf::Millis(1000));
        CHECK(r.end == mf::face::ReadEnd::eof);
        CHECK(r.data.view() == "abc");
    }
    {
        Pipe p;
        REQUIRE(mf::face::write_all(p.w, std::string(513, 'x')) == 0);
        p.close_w();
        auto r = mf::face::read_all_bounded(p.r, 512, mf::Millis(1000));
        CHECK(r.end == mf::face::ReadEnd::over_limit);
        CHECK(r.data.size() == 512);
    }
    {
        Pipe p;
        REQUIRE(mf::face::write_all(p.w, std::string(512, 'x')) == 0);
        p.close_w();
        auto r = mf::face::read_all_bounded(p.r, 512, mf::Millis(1000));
        CHECK(r.end == mf::face::ReadEnd::eof);
        CHECK(r.data.size() == 512);
    }
    {
        Pipe p; // writer never closes
        REQUIRE(mf::face::write_all(p.w, "ab") == 0);
        auto t0 = std::chrono::steady_clock::now();
        auto r = mf::face::read_all_bounded(p.r, 512, mf::Millis(200));
        auto took = std::chrono::steady_clock::now() - t0;
        CHECK(r.end == mf::face::ReadEnd::timeout);
        CHECK(took >= std::chrono::milliseconds(190));
        CHECK(took < std::chrono::seconds(5));
    }
    {
        auto r = mf::face::read_all_bounded(987, 512, mf::Millis(200)); // not open
        CHECK(r.end == mf::face::ReadEnd::error);
    }
    CHECK_FALSE(mf::face::fd_is_open(987));
}

TEST_CASE("probe target syntax") {
    auto t = mf::rcpt::parse_probe_target("smtp://mx.old.example");
    REQUIRE(t);
    CHECK(t->host == "mx.old.example");
    CHECK(t->port == 25);
    CHECK_FALSE(t->lmtp);
    t = mf::rcpt::parse_probe_target("lmtp://127.0.0.1:2424");
    REQUIRE(t);
    CHECK(t->lmtp);
    CHECK(t->port == 2424);
    t = mf::rcpt::parse_probe_target("[::1]:587");
    REQUIRE(t);
    CHECK(t->host == "::1");
    CHECK(t->port == 587);
    CHECK_FALSE(mf::rcpt::parse_probe_target("lmtp://host"));
    CHECK_FALSE(mf::rcpt::parse_probe_target("http://host"));
    CHECK_FALSE(mf::rcpt::parse_probe_target("host:0"));
    CHECK_FALSE(mf::rcpt::parse_probe_target("host:99999"));
    CHECK_FALSE(mf::rcpt::parse_probe_target(""));
    CHECK_FALSE(mf::rcpt::parse_probe_target("[::1"));
}
