// copier_cli_test.cpp — mailferry-copy as a program: usage errors (exit 2, clear text),
// password files that others can read are refused, exit status 0 / 1 / 75 for exact,
// skipped and temporary, JSON lines on a pipe, --verify with a JSON report that catches a
// changed message.
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>

#include "copier_util.hpp"

#include <nlohmann/json.hpp>

using namespace std::chrono_literals;

namespace {

struct Setup {
    Setup()
        : src(opts("cli-src", "cli@old.example", cu::source_config())),
          dst(opts("cli-dst", "cli@new.example", cu::target_config())), tmp("copier-cli") {
        mft::write_file(tmp.file("src.pw"), "src-pw\n", 0600);
        mft::write_file(tmp.file("dst.pw"), "dst-pw\n", 0600);
    }
    static mft::DovecotOptions opts(const std::string& label, const std::string& user,
                                    const std::string& extra) {
        mft::DovecotOptions o;
        o.label = label;
        o.users = {{user, user.find("old") != std::string::npos ? "src-pw" : "dst-pw"}};
        o.tls = o.imaps = o.pop3 = o.pop3s = o.submission = false;
        o.extra_config = extra;
        return o;
    }
    std::vector<std::string> argv(const std::vector<std::string>& extra = {}) const {
        std::vector<std::string> a = {
            mft::program_path("copier", "mailferry-copy"),
            "--from",
            "imap+plain://cli@old.example@127.0.0.1:" + std::to_string(src.imap_port()),
            "--from-password-file",
            tmp.file("src.pw"),
            "--to",
            "imap+plain://cli@new.example@127.0.0.1:" + std::to_string(dst.imap_port()),
            "--to-password-file",
            tmp.file("dst.pw"),
            "--state",
            tmp.file("state.db")};
        a.insert(a.end(), extra.begin(), extra.end());
        return a;
    }
    mft::DovecotServer src;
    mft::DovecotServer dst;
    mft::TempDir tmp;
};

std::vector<nlohmann::json> json_lines(const std::string& out) {
    std::vector<nlohmann::json> v;
    std::size_t start = 0;
    while (start < out.size()) {
        std::size_t nl = out.find('\n', start);
        std::string line = out.substr(start, nl - start);
        if (!line.empty()) {
            v.push_back(nlohmann::json::parse(line));
        }
        start = nl == std::string::npos ? out.size() : nl + 1;
    }
    return v;
}

} // namespace

TEST_CASE("usage and configuration errors exit 2 with a clear message, touching nothing") {
    mft::TempDir tmp("copier-cli-usage");
    const std::string bin = mft::program_path("copier", "mailferry-copy");
    mft::write_file(tmp.file("ok.pw"), "pw\n", 0600);
    mft::write_file(tmp.file("open.pw"), "pw\n", 0644);
    mft::write_file(tmp.file("map.tsv"), "# comment\nOld\tNew\nno tab here\n", 0644);
    const std::vector<std::string> base = {bin, "--from", "imaps://a@b.example@127.0.0.1:1", "--to",
                                           "imaps://c@127.0.0.1:2"};
    struct Case {
        std::vector<std::string> extra;
        const char* expect;
    };
    const std::string ok = tmp.file("ok.pw");
    const std::string st = tmp.file("state.db");
    std::vector<Case> cases = {
        {{"--from-password-file", ok, "--to-password-file", ok}, "--state"},
        {{"--from-password-file", tmp.file("open.pw"), "--to-password-file", ok, "--state", st},
         "chmod 600"},
        {{"--from-password-file", tmp.file("missing.pw"), "--to-password-file", ok, "--state", st},
         "missing.pw"},
        {{"--to-password-file", ok, "--state", st}, "--from-password-file"},
        {{"--from-password-file", ok, "--to-password-file", ok, "--state", st, "--after",
          "2024-01-01", "--before", "2023-01-01"},
         "--after must be earlier"},
        {{"--from-password-file", ok, "--to-password-file", ok, "--state", st, "--before",
          "yesterday"},
         "YYYY-MM-DD"},
        {{"--from-password-file", ok, "--to-password-file", ok, "--state", st, "--rename-map",
          tmp.file("map.tsv")},
         "map.tsv:3"},
        {{"--from-password-file", ok, "--to-password-file", ok, "--state", st, "--window", "0"},
         "--window"},
    };
    for (const auto& c : cases) {
        auto argv = base;
        argv.insert(argv.end(), c.extra.begin(), c.extra.end());
        auto r = mft::run(argv, {}, 30s);
        INFO(r.err);
        CHECK(r.exit_code == 2);
        CHECK(r.err.find(c.expect) != std::string::npos);
    }
    auto bad_url = mft::run({bin, "--from", "ftp://x@y", "--to", "imaps://c@d",
                             "--from-password-file", ok, "--to-password-file", ok, "--state", st},
                            {}, 30s);
    CHECK(bad_url.exit_code == 2);
    CHECK(bad_url.err.find("unknown scheme") != std::string::npos);
    auto no_user = mft::run({bin, "--from", "imaps://host.example", "--to", "imaps://c@d",
                             "--from-password-file", ok, "--to-password-file", ok, "--state", st},
                            {}, 30s);
    CHECK(no_user.exit_code == 2);
    CHECK(no_user.err.find("needs a user") != std::string::npos);
    CHECK_FALSE(std::filesystem::exists(st)); // nothing was created
    auto help = mft::run({bin, "--help"}, {}, 30s);
    CHECK(help.exit_code == 0);
    CHECK(help.out.find("Exit status") != std::string::npos);
    CHECK(help.out.find("--password ") == std::string::npos);
}

TEST_CASE("exit 75 when a server is unreachable, 1 when the login is refused") {
    Setup s;
    mft::TempDir t("copier-cli-75");
    std::uint16_t closed = mft::free_port();
    auto argv = s.argv({"--timeout", "5"});
    argv[2] = "imap+plain://cli@old.example@127.0.0.1:" + std::to_string(closed);
    auto r = mft::run(argv, {}, 60s);
    CHECK(r.exit_code == 75);
    CHECK(r.err.find("connect to 127.0.0.1:" + std::to_string(closed)) != std::string::npos);

    mft::write_file(s.tmp.file("wrong.pw"), "wrong\n", 0600);
    auto a2 = s.argv();
    a2[4] = s.tmp.file("wrong.pw");
    auto r2 = mft::run(a2, {}, 60s);
    CHECK(r2.exit_code == 1);
    CHECK(r2.err.find("AUTHENTICATIONFAILED") != std::string::npos);
}

TEST_CASE("exact copy exits 0 with JSON lines; a skipped message exits 1 and is listed") {
    Setup s;
    cu::put(s.src, "cli@old.example", "", cu::mail("one"), "S");
    cu::put(s.src, "cli@old.example", "Sent", cu::mail("two"), "");
    auto r = mft::run(s.argv({"--verify", "--report", s.tmp.file("report.json")}), {}, 120s);
    INFO(r.err);
    REQUIRE(r.exit_code == 0);
    auto lines = json_lines(r.out);
    REQUIRE(!lines.empty());
    const auto& sum = lines.back();
    CHECK(sum["event"] == "summary");
    CHECK(sum["exact"] == true);
    CHECK(sum["messages_copied"] == 2);
    auto report = nlohmann::json::parse(mft::read_file(s.tmp.file("report.json")));
    CHECK(report["ok"] == true);
    CHECK(report["messages_compared"] == 2);

    // A changed message on the target is found by --verify-only.
    REQUIRE(s.dst.doveadm({"flags", "add", "-u", "cli@new.example", "\\Flagged", "mailbox", "INBOX",
                           "all"}) == 0);
    auto v = mft::run(s.argv({"--verify-only", "--report", s.tmp.file("report2.json")}), {}, 60s);
    CHECK(v.exit_code == 1);
    auto rep2 = nlohmann::json::parse(mft::read_file(s.tmp.file("report2.json")));
    CHECK(rep2["ok"] == false);
    REQUIRE(rep2["mismatches"].size() == 1);
    CHECK(rep2["mismatches"][0]["what"] == "flags");
    CHECK(rep2["mismatches"][0]["folder"] == "INBOX");

    // A message the target refuses (zero bytes): exit 1, listed with its reason.
    cu::put(s.src, "cli@old.example", "", "", "");
    auto k = mft::run(s.argv({"--quiet"}), {}, 60s);
    CHECK(k.exit_code == 1);
    CHECK(k.err.find("skipped: INBOX UID 2 (0 bytes): target refused APPEND") != std::string::npos);
    auto kl = json_lines(k.out);
    REQUIRE(!kl.empty());
    CHECK(kl.back()["exact"] == false);
    CHECK(kl.back()["skipped"].size() == 1);
}
