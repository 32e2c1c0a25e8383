// demo.cpp — mailferry-demo: the migration story on loopback, told step by step.
//
// Starts an "old" Dovecot with users and their mail, configures mailferry (SQLite store,
// built-in provisioner, a [target] for the background copy), starts a "new" Dovecot whose
// passdb is mailferry-checkpassword (examples/dovecot/auth-mailferry-checkpassword.conf.ext)
// and a `mailferry worker`, then logs in at the new server with a real IMAP client and
// shows what mailferry did: the account provisioned, the mail copied folder by folder (the
// worker logging in at the new server as a master user, as examples/dovecot/auth-mailferry-
// master.conf.ext, so its connections cost no password hash),
// the state `synced` as `mailferry status` reports it. Everything runs on 127.0.0.1 in a temp dir
// removed at the end, following the security model (tests/support/migration_world.hpp): the login
// helper runs as Dovecot's auth user, the worker as `mailferry`, the only holder of the spool's
// secret key. Usage: mailferry-demo BUILD_DIR   (run as root; ./setup.sh demo does this)
#include "mailferry/store.hpp"
#include "support/migration_world.hpp"

#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <stdexcept>
#include <string>

using namespace std::chrono_literals;

namespace {

void say(const std::string& s) {
    std::cout << s << std::endl;
}
void step(const std::string& s) {
    std::cout << "\n==> " << s << std::endl;
}

void show_accounts(const wt::World& w) {
    auto store = mf::open_sqlite_store(w.db(), mf::Millis(5000));
    if (!store) {
        throw std::runtime_error(store.error().message());
    }
    auto accounts = (*store)->list_accounts();
    if (!accounts) {
        throw std::runtime_error(accounts.error().message());
    }
    if (accounts->empty()) {
        say("    (no accounts in mailferry's store)");
    }
    for (const auto& a : *accounts) {
        say("    " + a.name + "  state=" + mf::to_string(a.state) + "  from=" + a.provider +
            "  hash=" + a.hash.substr(0, a.hash.find('$', 12)) + "...");
    }
}

void show_folders(const char* label, const std::map<std::string, long>& counts) {
    std::string line = std::string("    ") + label;
    for (const auto& [folder, n] : counts) {
        line += "  " + folder + "=" + std::to_string(n);
    }
    say(line);
}

void run_cli(const std::vector<std::string>& args) {
    std::vector<std::string> argv = {wt::kMailferry};
    argv.insert(argv.end(), args.begin(), args.end());
    auto r = mft::run(argv);
    std::cout << r.out << r.err;
}

std::string login(const wt::World& w, const std::string& user, const std::string& pw) {
    std::string reply = wt::imap_login(w.fresh->imap_port(), user, pw);
    // The capability list in a LOGIN OK says nothing to a reader of the demo.
    if (auto b = reply.find("[CAPABILITY "); b != std::string::npos) {
        reply.erase(b, reply.find("] ", b) + 2 - b);
    }
    return (reply.rfind("a1 OK", 0) == 0 ? "login OK" : "login refused") +
           std::string("  (server: ") + reply + ")";
}

} // namespace

int main(int argc, char** argv) try {
    if (argc != 2) {
        std::fprintf(stderr, "usage: mailferry-demo BUILD_DIR\n");
        return 2;
    }
    // The programs come from the build this demo belongs to (MF_BINARY_DIR); the argument
    // stays for compatibility with ./setup.sh and is checked against it.
    if (!std::filesystem::exists(wt::kMailferry)) {
        throw std::runtime_error(wt::kMailferry + " missing: build " + argv[1] + " first");
    }

    step("Starting the OLD mail server (Dovecot on 127.0.0.1), the NEW one, and mailferry");
    wt::WorldOptions o;
    o.users = {{"anna@example.com", "anna's secret"},
               {"bob@example.com", "bob-pw-2026"},
               {"carl@example.com", "carl pass"}};
    wt::World w(o);
    wt::fill_mailbox(w.old, "anna@example.com", "", 300, 6000, 1);
    wt::fill_mailbox(w.old, "anna@example.com", "Sent", 80, 3000, 2);
    wt::fill_mailbox(w.old, "anna@example.com", "Archive.2025", 120, 20000, 3);
    say("    old server: IMAPS on port " + std::to_string(w.old.imaps_port()));
    show_folders("anna's mail at the old server:", wt::counts(w.old, "anna@example.com"));
    say("    new server: IMAP on port " + std::to_string(w.fresh->imap_port()) +
        ", passdb = mailferry-checkpassword");
    say("    the worker logs in there as the master user " + wt::kMasterUser +
        " (AUTHENTICATE PLAIN with the account as authzid, checked by a master passdb):"
        " its connections cost no password hash each");
    say("    mailferry's config (" + w.config + "):");
    run_cli({"check-config", "--config", w.config});
    auto worker = w.start_worker();
    say("    `mailferry worker` runs as user mailferry (pid " + std::to_string(worker.pid) + ")");

    step("anna logs in at the NEW server with her OLD password (first login)");
    auto t0 = std::chrono::steady_clock::now();
    say("    " + login(w, "anna", "anna's secret"));
    auto answered = std::chrono::steady_clock::now() - t0;
    say("    answered in " +
        std::to_string(std::chrono::duration_cast<std::chrono::milliseconds>(answered).count()) +
        " ms; the copy runs in the background");
    show_accounts(w);

    step("The worker copies her mail");
    bool synced = w.wait_state({"anna@example.com"}, mf::AccountState::synced, 120s);
    auto took = std::chrono::steady_clock::now() - t0;
    if (!synced) {
        say(mft::read_file(worker.log));
        throw std::runtime_error("anna's copy did not finish within 2 minutes");
    }
    say("    synced " +
        std::to_string(std::chrono::duration_cast<std::chrono::milliseconds>(took).count()) +
        " ms after her login");
    show_folders("anna's mail at the new server:", wt::counts(*w.fresh, "anna@example.com"));
    say("    $ mailferry status");
    run_cli({"status", "--config", w.config});
    say("    $ mailferry status anna@example.com");
    run_cli({"status", "--config", w.config, "anna@example.com"});

    step("bob mistypes his password: the old server says no, nothing is created");
    say("    " + login(w, "bob@example.com", "bob-pw-2025"));
    show_accounts(w);

    step("The old server goes down");
    w.old.stop();
    say("    anna logs in again (answered from mailferry's store): " +
        login(w, "anna@example.com", "anna's secret"));
    say("    carl, not migrated yet, tries now: " + login(w, "carl", "carl pass"));
    say("    (a temporary failure: his client will retry; nothing was created)");
    show_accounts(w);

    step("Stopping the worker (SIGTERM: running copies stop at a safe point)");
    worker.signal(SIGTERM);
    say("    worker exit status " + std::to_string(worker.wait(30s)));

    step("Done. Both servers are stopped and the demo directory removed.");
    return 0;
} catch (const std::exception& e) {
    std::fprintf(stderr, "mailferry-demo: %s\n", e.what());
    return 1;
}
