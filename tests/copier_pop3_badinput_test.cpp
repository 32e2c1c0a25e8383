// copier_pop3_badinput_test.cpp — POP3 faults a real Dovecot will not produce on demand,
// from a scripted POP3 server: two messages with the same UIDL, a connection that dies in
// the middle of a RETR (first session only), and a LIST size that does not match RETR.
//
// Checked: both duplicates are copied (no loss) and a re-run copies neither again; the
// message cut off mid-RETR spoils its APPEND group, which is sent again message by
// message over a new session, so it arrives in the same run, once; the one with the
// wrong size is listed as skipped with a reason, and nothing half-written is on the target.
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>

#include "copier_util.hpp"

namespace {

const std::string kDstUser = "carl@new.example";
const std::string kDstPw = "pw-new";

std::string body(int n) {
    return "Subject: scripted " + std::to_string(n) + "\r\n\r\n.dot line\r\n" +
           std::string(2000, static_cast<char>('a' + n)) + "\r\n";
}

class BadPop3 {
  public:
    BadPop3() : server_([this](int c, int n) { session(c, n == 1); }) {}
    [[nodiscard]] std::uint16_t port() const { return server_.port(); }

  private:
    static bool send_all(int c, const std::string& s) { return cu::ScriptedServer::send_all(c, s); }
    static std::string stuffed(const std::string& b) {
        std::string out;
        std::size_t pos = 0;
        while (pos < b.size()) {
            std::size_t nl = b.find("\r\n", pos);
            std::string line = b.substr(pos, nl - pos);
            out += (line.rfind('.', 0) == 0 ? "." : "") + line + "\r\n";
            pos = nl + 2;
        }
        return out;
    }
    void session(int c, bool first) {
        // 1 "u1", 2 and 3 share "dup", 4 "drop" (cut off in the first session), 5 "u5",
        // 6 "liar" (LIST says 10 bytes more than RETR sends).
        const std::vector<std::string> uidl = {"", "u1", "dup", "dup", "drop", "u5", "liar"};
        send_all(c, "+OK scripted\r\n");
        std::string buf;
        std::string cmd;
        while (cu::ScriptedServer::read_line(c, buf, cmd)) {
            if (cmd.rfind("AUTH PLAIN ", 0) == 0) {
                send_all(c, "+OK in\r\n");
            } else if (cmd == "UIDL") {
                std::string out = "+OK\r\n";
                for (int i = 1; i <= 6; ++i) {
                    out += std::to_string(i) + " " + uidl[static_cast<std::size_t>(i)] + "\r\n";
                }
                send_all(c, out + ".\r\n");
            } else if (cmd == "LIST") {
                std::string out = "+OK\r\n";
                for (int i = 1; i <= 6; ++i) {
                    out += std::to_string(i) + " " +
                           std::to_string(body(i).size() + (i == 6 ? 10 : 0)) + "\r\n";
                }
                send_all(c, out + ".\r\n");
            } else if (cmd.rfind("RETR ", 0) == 0) {
                int n = std::stoi(cmd.substr(5));
                std::string b = stuffed(body(n));
                if (n == 4 && first) {
                    send_all(c, "+OK\r\n" + b.substr(0, b.size() / 2));
                    return;
                }
                send_all(c, "+OK\r\n" + b + ".\r\n");
            } else if (cmd == "QUIT") {
                send_all(c, "+OK bye\r\n");
                return;
            } else {
                send_all(c, "-ERR unknown\r\n");
            }
        }
    }

    cu::ScriptedServer server_;
};

} // namespace

TEST_CASE("UIDL duplicates, a dropped RETR and a lying LIST") {
    BadPop3 pop;
    mft::DovecotOptions o;
    o.label = "pop3bad-dst";
    o.users = {{kDstUser, kDstPw}};
    o.pop3 = o.pop3s = o.submission = false;
    o.tls = o.imaps = false;
    o.extra_config = cu::target_config();
    mft::DovecotServer dst(o);
    mft::TempDir tmp("pop3bad");
    mf::copy::Options opts;
    opts.state_path = tmp.path() + "/state.db";
    auto from = cu::endpoint(pop.port(), "carl", "pw");
    from.pop3 = true;
    from.timeout = std::chrono::seconds(5);
    auto to = cu::endpoint(dst.imap_port(), kDstUser, kDstPw);

    auto sum = mf::copy::copy_account(from, to, opts);
    REQUIRE_MESSAGE(sum, (sum ? "" : sum.error().message()));
    for (const auto& s : sum->skipped) {
        MESSAGE(s.reason);
    }
    // The RETR cut off in the first session spoils its APPEND group; sent again alone
    // it comes over a new session, so only the liar is left out.
    CHECK(sum->messages_copied == 5);
    REQUIRE(sum->skipped.size() == 1);
    CHECK(sum->skipped[0].reason.find("LIST") != std::string::npos);
    auto got = cu::snapshot(dst.imap_port(), kDstUser, kDstPw);
    std::multiset<std::string> bodies;
    for (const auto& m : got.folders["INBOX"]) {
        bodies.insert(m.body);
    }
    CHECK(bodies == std::multiset<std::string>{body(1), body(2), body(3), body(4), body(5)});

    auto again = mf::copy::copy_account(from, to, opts);
    REQUIRE(again);
    CHECK(again->messages_copied == 0);
    CHECK(again->skipped.size() == 1); // the liar, again
    got = cu::snapshot(dst.imap_port(), kDstUser, kDstPw);
    CHECK(cu::total(got) == 5);
}
