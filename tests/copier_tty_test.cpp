// copier_tty_test.cpp — mailferry-copy on a terminal: a progress bar redrawn in place
// (folders, messages, bytes, rate, ETA) ending with a newline, no JSON lines, and nothing
// of it with --quiet. Runs the program on a real pseudo-terminal (forkpty) between two
// real Dovecots.
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>

#include "copier_util.hpp"
#include "support/tty.hpp"

#include <unistd.h>

using namespace std::chrono_literals;

namespace {

using mft::run_on_tty;
using mft::TtyRun;

bool has(const std::string& text, const std::string& part) {
    return text.find(part) != std::string::npos;
}

struct Pair {
    Pair()
        : src(opts("tty-src", "tty@old.example", "src-pw", cu::source_config())),
          dst(opts("tty-dst", "tty@new.example", "dst-pw", cu::target_config())),
          tmp("copier-tty") {
        mft::write_file(tmp.file("src.pw"), "src-pw\n", 0600);
        mft::write_file(tmp.file("dst.pw"), "dst-pw\n", 0600);
    }
    static mft::DovecotOptions opts(const std::string& label, const std::string& user,
                                    const std::string& pw, const std::string& extra) {
        mft::DovecotOptions o;
        o.label = label;
        o.users = {{user, pw}};
        o.tls = o.imaps = o.pop3 = o.pop3s = o.submission = false;
        o.extra_config = extra;
        return o;
    }
    [[nodiscard]] std::vector<std::string> argv(const std::string& state,
                                                const std::vector<std::string>& extra) const {
        std::vector<std::string> a = {
            mft::program_path("copier", "mailferry-copy"),
            "--from",
            "imap+plain://tty@old.example@127.0.0.1:" + std::to_string(src.imap_port()),
            "--from-password-file",
            tmp.file("src.pw"),
            "--to",
            "imap+plain://tty@new.example@127.0.0.1:" + std::to_string(dst.imap_port()),
            "--to-password-file",
            tmp.file("dst.pw"),
            "--state",
            tmp.file(state)};
        a.insert(a.end(), extra.begin(), extra.end());
        return a;
    }
    mft::DovecotServer src;
    mft::DovecotServer dst;
    mft::TempDir tmp;
};

} // namespace

TEST_CASE("on a terminal: a progress bar redrawn in place, then the summary; --quiet: none") {
    Pair p;
    auto put_messages = [&](int from, int to) {
        for (int i = from; i < to; ++i) {
            cu::put(p.src, "tty@old.example", i % 2 == 0 ? "" : "Archive",
                    cu::mail("message " + std::to_string(i), 20000), "S");
        }
    };
    // --quiet first: no bar at all on a terminal.
    put_messages(0, 30);
    TtyRun q = run_on_tty(p.argv("state.db", {"--quiet"}), 120s);
    INFO(q.screen);
    REQUIRE(q.exit_code == 0);
    CHECK_FALSE(has(q.screen, "\033[K"));
    CHECK_FALSE(has(q.screen, "ETA"));

    // Then new mail, copied with the bar.
    put_messages(30, 60);
    TtyRun r = run_on_tty(p.argv("state.db", {}), 120s);
    INFO(r.screen);
    REQUIRE(r.exit_code == 0);
    // Drawn in place: carriage return and erase-line before each frame.
    CHECK(has(r.screen, "\r\033[K["));
    CHECK(has(r.screen, "folders]"));
    CHECK(has(r.screen, "msgs"));
    CHECK(has(r.screen, "/s"));
    CHECK(has(r.screen, "ETA"));
    CHECK_FALSE(has(r.screen, "\"event\"")); // JSON lines are for pipes
    CHECK_FALSE(has(r.screen, "src-pw"));
    CHECK_FALSE(has(r.screen, "dst-pw"));
    // The last frame is ended by a newline before anything else is printed.
    auto last_frame = r.screen.rfind("\r\033[K[");
    REQUIRE(last_frame != std::string::npos);
    CHECK(r.screen.find('\n', last_frame) != std::string::npos);
    CHECK(cu::total(cu::snapshot(p.dst.imap_port(), "tty@new.example", "dst-pw")) == 60);
}
