// mailflow_postfix_test.cpp — mail arriving during the migration, end to end: a private
// Postfix (examples/postfix/*.mailflow loaded as shipped) in front of an "old" and a
// "new" Dovecot, both taking mail over LMTP, with `mailferry transport` and `mailferry
// policy` run by Postfix's spawn. Unmigrated → old server; migrated → new server; held
// → hold queue, released once after the cut-over; the policy service killed
// mid-transaction loses nothing; probe mode rejects with the old server's words and
// defers (never bounces) when the old server is down.
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>

#include "mailferry/mailflow.hpp"
#include "mailferry/store.hpp"
#include "support/dovecot_server.hpp"
#include "support/postfix_server.hpp"
#include "support/test_env.hpp"

#include <csignal>
#include <filesystem>
#include <memory>
#include <thread>
#include <unistd.h>

using namespace std::chrono_literals;
using mf::AccountState;

namespace {

const std::string kMailferry = mft::program_path("external-auth", "mailferry");

std::string replace_all(std::string s, const std::string& from, const std::string& to) {
    for (auto p = s.find(from); p != std::string::npos; p = s.find(from, p + to.size())) {
        s.replace(p, from.size(), to);
    }
    return s;
}

std::size_t messages(const std::string& maildir) {
    std::size_t n = 0;
    for (const char* sub : {"/new", "/cur"}) {
        std::error_code ec;
        for (auto it = std::filesystem::directory_iterator(maildir + sub, ec);
             !ec && it != std::filesystem::directory_iterator(); ++it) {
            ++n;
        }
    }
    return n;
}

bool wait_messages(const std::string& maildir, std::size_t want, std::chrono::milliseconds limit) {
    auto end = std::chrono::steady_clock::now() + limit;
    while (messages(maildir) < want && std::chrono::steady_clock::now() < end) {
        std::this_thread::sleep_for(100ms);
    }
    return messages(maildir) >= want;
}

mft::DovecotOptions lmtp_dovecot(const std::string& label, std::vector<mft::TestUser> users) {
    mft::DovecotOptions o;
    o.label = label;
    o.users = std::move(users);
    o.imaps = o.pop3 = o.pop3s = o.submission = o.tls = false;
    o.lmtp = true;
    return o;
}

// Two Dovecots, a store with accounts, a config, and a Postfix running the shipped
// examples. Users: anna (not migrated, old server only), mia (migrated), carl (held).
struct Flow {
    std::unique_ptr<mft::DovecotServer> old_server;
    std::unique_ptr<mft::DovecotServer> new_server;
    mft::TempDir dir{"mailferry-flow"};
    std::string config = dir.file("mailferry.toml");
    std::string db = dir.file("state/mailferry.db");
    std::string log = dir.file("state/mailflow.log");
    std::unique_ptr<mft::PostfixServer> postfix;
    std::unique_ptr<mf::Store> store;
    std::string unmigrated;

    explicit Flow(std::string mode = "relay") : unmigrated(std::move(mode)) {
        old_server = std::make_unique<mft::DovecotServer>(lmtp_dovecot(
            "flow-old",
            {{"anna@example.com", "a"}, {"mia@example.com", "m"}, {"carl@example.com", "c"}}));
        new_server = std::make_unique<mft::DovecotServer>(lmtp_dovecot(
            "flow-new",
            {{"mia@example.com", "m"}, {"carl@example.com", "c"}, {"dora@example.com", "d"}}));
        const auto as = mft::run_user();
        std::filesystem::create_directories(dir.file("state"));
        auto s = mf::open_sqlite_store(db, mf::Millis(5000));
        REQUIRE_MESSAGE(s.ok(), (s.ok() ? "" : s.error().message()));
        store = std::move(*s);
        add("mia@example.com", AccountState::synced);
        add("carl@example.com", AccountState::held);
        add("dora@example.com", AccountState::held);
        // spawn runs the services as mfvmail (never root): the store must be theirs.
        for (const auto& e : std::filesystem::recursive_directory_iterator(dir.file("state"))) {
            REQUIRE(::chown(e.path().c_str(), as.uid, as.gid) == 0);
        }
        REQUIRE(::chown(dir.file("state").c_str(), as.uid, as.gid) == 0);

        const std::string ex = std::string(MF_SOURCE_DIR) + "/examples/postfix/";
        mft::PostfixOptions po;
        po.label = "flow-postfix";
        // ASan reports of the spawned services go to files the test checks; spawn passes
        // only export_environment to them.
        po.main_cf_extra = mft::read_file(ex + "main.cf.mailflow") +
                           "\nexport_environment = TZ MAIL_CONFIG LANG "
                           "ASAN_OPTIONS=detect_leaks=0:log_path=" +
                           dir.file("asan") + "\n";
        std::string master = mft::read_file(ex + "master.cf.mailflow");
        master = replace_all(master, "user=mailferry", "user=mfvmail");
        master = replace_all(master, "/usr/local/bin/mailferry", kMailferry);
        master = replace_all(master, "/etc/mailferry/mailferry.toml", config);
        po.master_cf_extra = master;
        write_config("/nonexistent"); // the services start only with the first mail
        postfix = std::make_unique<mft::PostfixServer>(po);
        write_config(postfix->config_dir());
    }

    void write_config(const std::string& postfix_dir) const {
        std::string c;
        c += "[store]\npath = \"" + db + "\"\nbusy_timeout = \"2s\"\n";
        c += "[[provider]]\nname = \"old\"\ndomains = [\"example.com\"]\nhost = \"127.0.0.1\"\n";
        c += "protocol = \"imap\"\ntls = \"none\"\nport = " +
             std::to_string(old_server->imap_port()) + "\n";
        c += "mail_protocol = \"lmtp\"\nmail_port = " + std::to_string(old_server->lmtp_port()) +
             "\n";
        c += "[log]\nlevel = \"debug\"\n";
        c += "[mailflow]\nlocal_transport = \"lmtp:inet:127.0.0.1:" +
             std::to_string(new_server->lmtp_port()) + "\"\n";
        c += "unmigrated = \"" + unmigrated + "\"\nprobe_timeout = \"3s\"\n";
        c += "postfix_config_dir = \"" + postfix_dir + "\"\n";
        c += "log_file = \"" + log + "\"\n";
        mft::write_file(config, c, 0644);
    }

    void add(const std::string& name, AccountState st) const {
        mf::Account a;
        a.name = name;
        a.provider = "old";
        a.state = st;
        REQUIRE(store->create_account(a, {"test", "", ""}).ok());
    }

    [[nodiscard]] mft::SmtpOutcome send(const std::string& rcpt, const std::string& subject,
                                        const std::function<void()>& before_data = {}) const {
        return mft::send_mail(postfix->smtp_port(), "sender@elsewhere.example", {rcpt},
                              "From: sender@elsewhere.example\r\nSubject: " + subject +
                                  "\r\n\r\nbody\r\n",
                              30s, before_data);
    }

    [[nodiscard]] std::string diagnostics() const {
        std::string asan;
        for (const auto& e : std::filesystem::directory_iterator(dir.path())) {
            if (e.path().filename().string().rfind("asan", 0) == 0) {
                asan += mft::read_file(e.path().string());
            }
        }
        std::string svc;
        try {
            svc = mft::read_file(log);
        } catch (const std::exception&) {
            svc = "(no service log)";
        }
        return "--- postfix\n" + postfix->log_tail(40) + "--- services\n" + svc + "--- asan\n" +
               asan;
    }

    [[nodiscard]] bool no_asan_reports() const {
        for (const auto& e : std::filesystem::directory_iterator(dir.path())) {
            if (e.path().filename().string().rfind("asan", 0) == 0) {
                return false;
            }
        }
        return true;
    }

    [[nodiscard]] std::vector<mft::QueuedMessage> held() const {
        return postfix->wait_queue(
            [](const auto& q) {
                return !q.empty() && std::all_of(q.begin(), q.end(), [](const auto& m) {
                    return m.queue_name == "hold";
                });
            },
            10s);
    }
};

// PIDs of running `mailferry … policy` processes started for this config (not spawn,
// whose argv names them too: killing it would throttle the service).
std::vector<pid_t> policy_pids(const std::string& config) {
    std::vector<pid_t> out;
    for (const auto& e : std::filesystem::directory_iterator("/proc")) {
        const std::string name = e.path().filename().string();
        if (name.find_first_not_of("0123456789") != std::string::npos) {
            continue;
        }
        std::string cmd;
        try {
            cmd = mft::read_file(e.path().string() + "/cmdline");
        } catch (const std::exception&) {
            continue;
        }
        std::replace(cmd.begin(), cmd.end(), '\0', ' ');
        if (cmd.rfind(kMailferry + " ", 0) == 0 && cmd.find(config) != std::string::npos &&
            cmd.find(" policy") != std::string::npos) {
            out.push_back(static_cast<pid_t>(std::stol(name)));
        }
    }
    return out;
}

} // namespace

TEST_CASE("unmigrated to the old server, migrated to the new, held until released once") {
    Flow f;
    INFO("diagnostics are printed on failure");

    auto a = f.send("anna@example.com", "to the old server");
    auto m = f.send("mia@example.com", "to the new server");
    auto c = f.send("carl@example.com", "held during the final round");
    INFO(f.diagnostics());
    REQUIRE(a.accepted);
    REQUIRE(m.accepted);
    REQUIRE(c.accepted);

    CHECK(wait_messages(f.old_server->mail_dir("anna@example.com"), 1, 20s));
    CHECK(wait_messages(f.new_server->mail_dir("mia@example.com"), 1, 20s));
    CHECK(messages(f.new_server->mail_dir("anna@example.com")) == 0);
    CHECK(messages(f.old_server->mail_dir("mia@example.com")) == 0);

    auto q = f.held();
    REQUIRE(q.size() == 1);
    CHECK(q[0].queue_name == "hold");
    CHECK(q[0].recipients == std::vector<std::string>{"carl@example.com"});
    auto rows = f.store->list_held_mail("carl@example.com");
    REQUIRE(rows.ok());
    REQUIRE(rows->size() == 1);
    CHECK((*rows)[0].queue_id == q[0].queue_id);

    // Still held: the release refuses and the message stays.
    auto early =
        mf::mailflow::release_held_mail(*mf::load_config(f.config), *f.store, "carl@example.com");
    REQUIRE(early.ok());
    CHECK(early->still_held);
    CHECK(f.postfix->queue().size() == 1);

    REQUIRE(f.store->set_state("carl@example.com", AccountState::cutover, {"test", "", ""}).ok());
    auto r = mft::run(
        {kMailferry, "--config", f.config, "--json", "mailflow-release", "carl@example.com"});
    INFO(r.out, r.err);
    CHECK(r.exit_code == 0);
    CHECK(r.out.find("\"released\"") != std::string::npos);
    CHECK(wait_messages(f.new_server->mail_dir("carl@example.com"), 1, 20s));
    f.postfix->wait_queue([](const auto& list) { return list.empty(); }, 10s);
    CHECK(f.postfix->queue().empty());
    CHECK(f.store->list_held_mail("carl@example.com")->empty());

    // A second release finds nothing, and delivers nothing twice.
    auto again = mft::run({kMailferry, "--config", f.config, "mailflow-release", "--all"});
    CHECK(again.exit_code == 0);
    std::this_thread::sleep_for(1500ms);
    CHECK(messages(f.new_server->mail_dir("carl@example.com")) == 1);
    CHECK(messages(f.old_server->mail_dir("carl@example.com")) == 0);
    CHECK(f.no_asan_reports());
}

TEST_CASE("cutover --batch releases each account's held mail as it cuts it over") {
    Flow f;
    auto c = f.send("carl@example.com", "held for carl");
    auto d = f.send("dora@example.com", "held for dora");
    INFO(f.diagnostics());
    REQUIRE(c.accepted);
    REQUIRE(d.accepted);
    REQUIRE(f.held().size() == 2);

    // No final round (no worker here): each batch is cut over at once, then released.
    auto r = mft::run({kMailferry, "--config", f.config, "cutover", "carl@example.com",
                       "dora@example.com", "--batch", "1", "--no-final-sync"});
    INFO(r.out, r.err);
    CHECK(r.exit_code == 0);
    CHECK(r.out.find("carl@example.com  cutover  no final round; 1 held messages released") !=
          std::string::npos);
    CHECK(r.out.find("dora@example.com  cutover  no final round; 1 held messages released") !=
          std::string::npos);
    CHECK(wait_messages(f.new_server->mail_dir("carl@example.com"), 1, 20s));
    CHECK(wait_messages(f.new_server->mail_dir("dora@example.com"), 1, 20s));
    f.postfix->wait_queue([](const auto& list) { return list.empty(); }, 10s);
    CHECK(f.postfix->queue().empty());
    CHECK(f.store->list_held_mail("")->empty());
    CHECK(f.no_asan_reports());
}

TEST_CASE("the policy service killed mid-transaction: the hold is kept and released") {
    Flow f;
    std::size_t killed = 0;
    auto c = f.send("carl@example.com", "held while the service dies", [&] {
        for (pid_t p : policy_pids(f.config)) {
            killed += ::kill(p, SIGKILL) == 0 ? 1 : 0;
        }
    });
    INFO(f.diagnostics());
    REQUIRE(c.accepted);
    CHECK(killed >= 1);
    auto q = f.held();
    REQUIRE(q.size() == 1);
    CHECK(q[0].queue_name == "hold");
    // The END-OF-MESSAGE request went to a fresh process, which bound the queue ID to the
    // row the dead one wrote at RCPT.
    auto rows = f.store->list_held_mail("carl@example.com");
    REQUIRE(rows.ok());
    REQUIRE(rows->size() == 1);
    CHECK((*rows)[0].queue_id == q[0].queue_id);

    // Even with the store's row gone, the hold queue names the message.
    REQUIRE(f.store->forget_held_mail("", q[0].queue_id).ok());
    REQUIRE(f.store->set_state("carl@example.com", AccountState::cutover, {"test", "", ""}).ok());
    auto rep =
        mf::mailflow::release_held_mail(*mf::load_config(f.config), *f.store, "carl@example.com");
    REQUIRE(rep.ok());
    REQUIRE(rep->messages.size() == 1);
    CHECK(rep->messages[0].result == "released");
    CHECK(wait_messages(f.new_server->mail_dir("carl@example.com"), 1, 20s));
}

TEST_CASE("a message for two held accounts stays on hold until both are cut over") {
    Flow f;
    auto both =
        mft::send_mail(f.postfix->smtp_port(), "s@elsewhere.example",
                       {"carl@example.com", "dora@example.com"}, "Subject: for both\r\n\r\nhi\r\n");
    INFO(f.diagnostics());
    REQUIRE(both.accepted);
    auto q = f.held();
    REQUIRE(q.size() == 1);
    REQUIRE(f.store->list_held_mail("carl@example.com")->size() == 1);
    REQUIRE(f.store->list_held_mail("dora@example.com")->size() == 1);
    const auto cfg = mf::load_config(f.config);
    REQUIRE(cfg.ok());

    REQUIRE(f.store->set_state("carl@example.com", AccountState::cutover, {"test", "", ""}).ok());
    auto first = mf::mailflow::release_held_mail(*cfg, *f.store, "carl@example.com");
    REQUIRE(first.ok());
    REQUIRE(first->messages.size() == 1);
    CHECK(first->messages[0].result == "kept");
    CHECK(first->messages[0].detail.find("dora@example.com") != std::string::npos);
    CHECK(f.postfix->queue().size() == 1);

    REQUIRE(f.store->set_state("dora@example.com", AccountState::cutover, {"test", "", ""}).ok());
    auto second = mf::mailflow::release_held_mail(*cfg, *f.store, "dora@example.com");
    REQUIRE(second.ok());
    REQUIRE(second->messages.size() == 1);
    CHECK(second->messages[0].result == "released");
    CHECK(wait_messages(f.new_server->mail_dir("carl@example.com"), 1, 20s));
    CHECK(wait_messages(f.new_server->mail_dir("dora@example.com"), 1, 20s));
    // The message's rows went with it, carl's too: nothing is released twice.
    CHECK(f.store->list_held_mail("")->empty());
    auto late = mf::mailflow::release_held_mail(*cfg, *f.store, "carl@example.com");
    REQUIRE(late.ok());
    CHECK(late->messages.empty());
}

TEST_CASE("probe mode: the old server's own refusal, and a deferral when it is down") {
    Flow f("probe");
    auto known = f.send("anna@example.com", "known at the old server");
    auto unknown = f.send("nobody@example.com", "unknown everywhere");
    INFO(f.diagnostics());
    CHECK(known.accepted);
    CHECK_FALSE(unknown.accepted);
    CHECK(unknown.stage == "RCPT");
    CHECK(unknown.code == 550);
    // Dovecot's LMTP words, passed on.
    CHECK(unknown.reply.find("nobody@example.com") != std::string::npos);
    CHECK(wait_messages(f.old_server->mail_dir("anna@example.com"), 1, 20s));

    f.old_server->stop();
    auto down = f.send("bob@example.com", "old server down");
    CHECK_FALSE(down.accepted);
    CHECK(down.stage == "RCPT");
    CHECK(down.code / 100 == 4);
    // Migrated recipients do not need the old server.
    auto mia = f.send("mia@example.com", "still fine");
    CHECK(mia.accepted);
    CHECK(wait_messages(f.new_server->mail_dir("mia@example.com"), 1, 20s));
    CHECK(f.postfix->log().find("bounced") == std::string::npos);
    CHECK(f.no_asan_reports());
}
