// verifier_refusal_engine_test.cpp — a refusal that is not a wrong password, end to end:
// a real Dovecot refuses the RIGHT password (its password database fails: IMAP NO
// [UNAVAILABLE]; the user's old client holds the POP3 lock: -ERR [IN-USE]), and the engine
// answers TEMPFAIL, counts no guard failure and caches nothing — the same right password
// succeeds at once when the old server can decide again. Cyrus, which sends no codes,
// refuses the right password with "NO generic failure" while its saslauthd is down: the
// same TEMPFAIL (before the refusal judge this was FAIL and locked the user out). And the
// old servers without codes (Courier, Cyrus) still reject a wrong password by its words.
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>

#include "engine_util.hpp"
#include "mailferry/engine.hpp"
#include "support/courier_server.hpp"
#include "support/cyrus_server.hpp"
#include "verifier_util.hpp"

#include <arpa/inet.h>
#include <filesystem>
#include <netinet/in.h>
#include <sys/socket.h>
#include <thread>
#include <unistd.h>

using namespace std::chrono_literals;
using mf::AuthStatus;
using mf::VerifyStatus;
using mft::open_engine;

namespace {

const char* kPw = "right pw";

// A guard that would lock the account after two failures and cache a refusal for 5 min:
// if a TEMPFAIL counted, the third login below could not succeed.
std::string write_config(const mft::TempDir& dir, const std::string& provider) {
    std::string text = "[store]\npath = \"" + dir.file("mf.db") +
                       "\"\n\n[identity]\ndefault_domain = \"old.example\"\n\n"
                       "[[provider]]\nname = \"old\"\ndomains = [\"old.example\"]\n" +
                       provider +
                       "\n[hash]\nscheme = \"argon2id\"\nargon2_ops = 1\nargon2_memory_kib = "
                       "8192\n\n[provisioner]\ntype = \"builtin\"\n\n[guard]\n"
                       "max_failures_per_account = 2\nmax_failures_per_ip = 50\nwindow = "
                       "\"15m\"\nnegative_cache_ttl = \"5m\"\n";
    auto path = dir.file("mailferry.toml");
    mft::write_file(path, text, 0644);
    return path;
}

// Dovecot's POP3 waits 10 s for the session lock (src/pop3/pop3-client.c,
// session_dotlock_set.timeout) before it answers -ERR [IN-USE]: the timeout is above that.
// Cyrus' processes serve many connections on one reading of imapd.conf: `from` → `to` in
// it, then a restart on the same port and data.
void edit_cyrus_conf(mft::CyrusServer& cyrus, const std::string& from, const std::string& to) {
    const std::string conf = cyrus.dir() + "/imapd.conf";
    std::string text = mft::read_file(conf);
    auto at = text.find(from);
    REQUIRE(at != std::string::npos);
    text.replace(at, from.size(), to);
    cyrus.stop();
    mft::write_file(conf, text, 0644);
    cyrus.start();
}

std::string provider(const char* protocol, std::uint16_t port, const std::string& ca) {
    return std::string("protocol = \"") + protocol +
           "\"\nhost = \"127.0.0.1\"\nport = " + std::to_string(port) +
           "\ntls = \"implicit\"\nca_file = \"" + ca + "\"\ntimeout = \"20s\"\n";
}

mf::AuthResult login(mf::Engine& e, const char* pw) {
    return e.authenticate(mf::AuthRequest{"anna@old.example", pw, "imap", "192.0.2.7", "test"});
}

// A POP3 client that logs in and stays, as a user's old mail program between two polls.
class Pop3Holder {
  public:
    Pop3Holder(std::uint16_t port, const std::string& user, const std::string& pw) {
        fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
        sockaddr_in a{};
        a.sin_family = AF_INET;
        a.sin_port = htons(port);
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        REQUIRE(::connect(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0);
        REQUIRE(line().rfind("+OK", 0) == 0);
        send("USER " + user);
        REQUIRE(line().rfind("+OK", 0) == 0);
        send("PASS " + pw);
        auto reply = line();
        REQUIRE_MESSAGE(reply.rfind("+OK", 0) == 0, reply);
    }
    ~Pop3Holder() { ::close(fd_); }
    Pop3Holder(const Pop3Holder&) = delete;
    Pop3Holder& operator=(const Pop3Holder&) = delete;

    void quit() {
        send("QUIT");
        line();
    }

  private:
    void send(const std::string& s) {
        auto l = s + "\r\n";
        REQUIRE(::write(fd_, l.data(), l.size()) == static_cast<ssize_t>(l.size()));
    }
    std::string line() {
        std::string l;
        char c = 0;
        while (::read(fd_, &c, 1) == 1 && c != '\n') {
            l += c;
        }
        return l;
    }
    int fd_ = -1;
};

} // namespace

TEST_CASE("imap NO [UNAVAILABLE] to the right password: TEMPFAIL, not cached, then ok at once") {
    mft::TempDir dir;
    // Unreadable for Dovecot's auth (it runs as mfvmail): every lookup is an internal error.
    const std::string users = dir.file("users");
    mft::write_file(users, "anna@old.example:{PLAIN}" + std::string(kPw) + "::::::\n", 0);
    mft::DovecotOptions o;
    o.label = "vref-unavail";
    o.pop3 = o.pop3s = o.submission = false;
    o.auth_config = "passdb {\n  driver = passwd-file\n  args = " + users +
                    "\n}\nuserdb {\n  driver = static\n  args = uid=mfvmail gid=mfvmail "
                    "home=" +
                    dir.path() + "/home/%u\n}\n";
    mft::DovecotServer old(o);
    auto engine = open_engine(write_config(dir, provider("imap", old.imaps_port(), old.ca_file())));

    // What the verifier hears, and what the engine makes of it, three times over (more
    // than max_failures_per_account): a guard failure or a cached "no" would show.
    auto v = vt::verify(
        vt::provider(mf::Protocol::imap, old.imaps_port(), mf::TlsMode::implicit, old.ca_file()),
        "anna@old.example", kPw);
    CHECK_MESSAGE(v.status == VerifyStatus::unavailable, v.detail);
    CHECK_MESSAGE(v.detail.find("[UNAVAILABLE]") != std::string::npos, v.detail);
    for (int i = 0; i < 3; ++i) {
        auto r = login(*engine, kPw);
        CHECK_MESSAGE(r.status == AuthStatus::tempfail, r.message);
    }
    CHECK_FALSE(engine->store().find_account("anna@old.example")->has_value());

    // The old server can decide again: the same right password is ok at once.
    // A readable file put in its place (new inode, size and mtime, so Dovecot reopens it).
    mft::write_file(users + ".new",
                    "# readable now\nanna@old.example:{PLAIN}" + std::string(kPw) + "::::::\n",
                    0644);
    std::filesystem::rename(users + ".new", users);
    // Dovecot stats a passwd-file at most once a second (src/auth/db-passwd-file.c,
    // passwd_file_sync): the lookups above were within this second.
    std::this_thread::sleep_for(1100ms);
    auto r = login(*engine, kPw);
    CHECK_MESSAGE(r.status == AuthStatus::ok, r.message);
    CHECK(r.first_login);
}

TEST_CASE("pop3 -ERR [IN-USE] while the old client holds the lock: TEMPFAIL, then ok at once") {
    mft::TempDir dir;
    mft::DovecotOptions o;
    o.label = "vref-inuse";
    o.imap = o.imaps = o.submission = false;
    o.users = {{"anna@old.example", kPw}};
    o.extra_config = "pop3_lock_session = yes\n";
    mft::DovecotServer old(o);
    auto engine = open_engine(write_config(dir, provider("pop3", old.pop3s_port(), old.ca_file())));

    Pop3Holder old_client(old.pop3_port(), "anna@old.example", kPw);
    auto p =
        vt::provider(mf::Protocol::pop3, old.pop3s_port(), mf::TlsMode::implicit, old.ca_file());
    p.timeout = 20s;
    auto v = vt::verify(p, "anna@old.example", kPw);
    CHECK_MESSAGE(v.status == VerifyStatus::unavailable, v.detail);
    CHECK_MESSAGE(v.detail.find("[IN-USE]") != std::string::npos, v.detail);
    for (int i = 0; i < 3; ++i) {
        auto r = login(*engine, kPw);
        CHECK_MESSAGE(r.status == AuthStatus::tempfail, r.message);
    }

    old_client.quit(); // the old client's poll is over
    auto r = login(*engine, kPw);
    CHECK_MESSAGE(r.status == AuthStatus::ok, r.message);
    // A wrong password is still FAIL: [AUTH] is a verdict.
    CHECK(login(*engine, "not it").status == AuthStatus::fail);
}

TEST_CASE("courier and cyrus send no codes: their wrong-password words are a rejection") {
    {
        mft::CourierOptions co;
        co.label = "vref-courier";
        co.users = {{"anna@old.example", kPw}};
        mft::CourierServer courier(co);
        auto p = vt::provider(mf::Protocol::imap, courier.imap_port(), mf::TlsMode::none, "");
        auto r = vt::verify(p, "anna@old.example", "wrong");
        CHECK_MESSAGE(r.status == VerifyStatus::rejected, r.detail);
        CHECK(r.detail.find("NO Login failed.") != std::string::npos); // Courier's words
        r = vt::verify(p, "nobody@old.example", "wrong");
        CHECK_MESSAGE(r.status == VerifyStatus::rejected, r.detail);
        r = vt::verify(p, "anna@old.example", kPw);
        CHECK_MESSAGE(r.status == VerifyStatus::ok, r.detail);
    }
    {
        mft::CyrusOptions co;
        co.label = "vref-cyrus";
        co.users = {{"anna", kPw}};
        mft::CyrusServer cyrus(co);
        auto p = vt::provider(mf::Protocol::imap, cyrus.imap_port(), mf::TlsMode::none, "");
        auto r = vt::verify(p, "anna", "wrong");
        CHECK_MESSAGE(r.status == VerifyStatus::rejected, r.detail);
        CHECK(r.detail.find("NO authentication failure") != std::string::npos); // SASL's words
        r = vt::verify(p, "nobody", "wrong");
        CHECK_MESSAGE(r.status == VerifyStatus::rejected, r.detail);
        r = vt::verify(p, "anna", kPw);
        CHECK_MESSAGE(r.status == VerifyStatus::ok, r.detail);
    }
}

TEST_CASE("cyrus refuses the right password without a code while saslauthd is down: TEMPFAIL") {
    // Cyrus answers AUTHENTICATE with SASL's own words and no code. With its password
    // check pointed at a saslauthd that is not there, the RIGHT password gets a codeless
    // NO: before the refusal judge this was a rejection (guard failure, negative cache).
    mft::TempDir dir;
    mft::CyrusOptions co;
    co.label = "vref-cyrus-down";
    co.users = {{"anna", kPw}};
    mft::CyrusServer cyrus(co);
    auto engine = open_engine(write_config(
        dir,
        "protocol = \"imap\"\nhost = \"127.0.0.1\"\nport = " + std::to_string(cyrus.imap_port()) +
            "\ntls = \"none\"\nlogin_form = \"local_part\"\ntimeout = \"5s\"\n"));
    const std::string auxprop = "sasl_pwcheck_method: auxprop\n";
    const std::string down =
        "sasl_pwcheck_method: saslauthd\nsasl_saslauthd_path: " + dir.file("no-saslauthd/mux") +
        "\n";
    edit_cyrus_conf(cyrus, auxprop, down);

    auto p = vt::provider(mf::Protocol::imap, cyrus.imap_port(), mf::TlsMode::none, "");
    auto v = vt::verify(p, "anna", kPw);
    CHECK_MESSAGE(v.status == VerifyStatus::unavailable, v.detail);
    CHECK_MESSAGE(v.detail.find("NO ") != std::string::npos, v.detail);
    CHECK(v.detail.find("server said: A002 NO [") == std::string::npos); // no code
    for (int i = 0; i < 3; ++i) {
        auto r = login(*engine, kPw);
        CHECK_MESSAGE(r.status == AuthStatus::tempfail, r.message);
    }

    edit_cyrus_conf(cyrus, down, auxprop); // saslauthd is back, so to speak
    auto r = login(*engine, kPw);
    CHECK_MESSAGE(r.status == AuthStatus::ok, r.message);
    CHECK(r.first_login);
}
