// demo.cpp — mailferry-demo: the migration story on loopback, told step by step.
//
// Starts an "old" Dovecot with a few users and their mail, configures mailferry on its
// built-in defaults (SQLite store, built-in provisioner), starts a "new" Dovecot whose
// passdb is mailferry-checkpassword (examples/dovecot/auth-mailferry-checkpassword.conf.ext),
// then logs in at the new server with a real IMAP client (libcurl) and shows what
// mailferry did. Everything runs on 127.0.0.1 in a temp dir removed at the end, following
// the security model: the login helper runs as Dovecot's auth user (mfvmail) and reaches
// the store through the `mailferry` group.
// Usage: mailferry-demo BUILD_DIR   (run as root; ./setup.sh demo does this)
#include "mailferry/store.hpp"
#include "support/dovecot_server.hpp"
#include "support/test_env.hpp"

#include <cstdio>
#include <cstdlib>
#include <curl/curl.h>
#include <filesystem>
#include <grp.h>
#include <iostream>
#include <stdexcept>
#include <string>
#include <sys/stat.h>
#include <unistd.h>
#include <vector>

namespace {

const char* kSource = MF_SOURCE_DIR;

void say(const std::string& s) {
    std::cout << s << std::endl;
}
void step(const std::string& s) {
    std::cout << "\n==> " << s << std::endl;
}

std::string replace_all(std::string text, const std::string& from, const std::string& to) {
    for (auto p = text.find(from); p != std::string::npos; p = text.find(from, p + to.size())) {
        text.replace(p, from.size(), to);
    }
    return text;
}

int on_debug(CURL*, curl_infotype type, char* data, size_t size, void* user) {
    if (type == CURLINFO_HEADER_IN) {
        static_cast<std::string*>(user)->assign(data, size);
    }
    return 0;
}

// A real IMAP client logs in and selects INBOX; returns the server's last reply line.
std::string imap_login(std::uint16_t port, const std::string& user, const std::string& pw) {
    CURL* c = curl_easy_init();
    std::string last;
    std::string url = "imap://127.0.0.1:" + std::to_string(port) + "/INBOX";
    curl_easy_setopt(c, CURLOPT_URL, url.c_str());
    curl_easy_setopt(c, CURLOPT_USERNAME, user.c_str());
    curl_easy_setopt(c, CURLOPT_PASSWORD, pw.c_str());
    curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, "EXAMINE INBOX");
    curl_easy_setopt(
        c, CURLOPT_WRITEFUNCTION, +[](char*, size_t size, size_t n, void*) {
            return size * n; // the untagged EXAMINE replies: not shown
        });
    curl_easy_setopt(c, CURLOPT_TIMEOUT, 60L);
    curl_easy_setopt(c, CURLOPT_VERBOSE, 1L);
    curl_easy_setopt(c, CURLOPT_DEBUGFUNCTION, on_debug);
    curl_easy_setopt(c, CURLOPT_DEBUGDATA, &last);
    CURLcode rc = curl_easy_perform(c);
    curl_easy_cleanup(c);
    while (!last.empty() && (last.back() == '\n' || last.back() == '\r')) {
        last.pop_back();
    }
    return std::string(rc == CURLE_OK ? "login OK" : "login refused") + "  (server: " + last + ")";
}

void show_accounts(const std::string& db) {
    auto store = mf::open_sqlite_store(db, mf::Millis(5000));
    if (!store) {
        throw std::runtime_error(store.error().message());
    }
    auto accounts = (*store)->list_accounts();
    if (accounts->empty()) {
        say("    (no accounts in mailferry's store)");
    }
    for (const auto& a : *accounts) {
        say("    " + a.name + "  state=" + mf::to_string(a.state) + "  from=" + a.provider +
            "  hash=" + a.hash.substr(0, a.hash.find('$', 12)) + "...");
    }
}

void run_cli(const std::string& build, const std::vector<std::string>& args) {
    std::vector<std::string> argv = {build + "/external-auth/mailferry"};
    argv.insert(argv.end(), args.begin(), args.end());
    auto r = mft::run(argv);
    std::cout << r.out << r.err;
}

} // namespace

int main(int argc, char** argv) try {
    if (argc != 2) {
        std::fprintf(stderr, "usage: mailferry-demo BUILD_DIR\n");
        return 2;
    }
    const std::string build = std::filesystem::absolute(argv[1]).lexically_normal().string();
    curl_global_init(CURL_GLOBAL_DEFAULT);
    group* g = ::getgrnam("mailferry"); // NOLINT(concurrency-mt-unsafe): single-threaded
    if (g == nullptr) {
        throw std::runtime_error("group mailferry missing: run ./setup.sh deps");
    }
    const gid_t mailferry_gid = g->gr_gid;

    step("Starting the OLD mail server (Dovecot on 127.0.0.1) with three users and their mail");
    mft::DovecotOptions o;
    o.label = "demo-old";
    o.users = {{"anna@example.com", "anna's secret"},
               {"bob@example.com", "bob-pw-2026"},
               {"carl@example.com", "carl pass"}};
    mft::DovecotServer old(o);
    for (int i = 1; i <= 3; ++i) {
        old.save_message("anna@example.com", "INBOX",
                         "From: bob@example.com\r\nTo: anna@example.com\r\nSubject: note " +
                             std::to_string(i) + "\r\n\r\nHello Anna, number " + std::to_string(i) +
                             ".\r\n");
    }
    old.save_message("anna@example.com", "Sent",
                     "From: anna@example.com\r\nTo: carl@example.com\r\nSubject: lunch?\r\n\r\nAt "
                     "noon.\r\n");
    say("    old server: IMAPS on port " + std::to_string(old.imaps_port()) +
        "; anna has 3 messages in INBOX and 1 in Sent");

    step("Configuring mailferry on its defaults: SQLite store, built-in provisioner");
    mft::TempDir dir("mailferry-demo");
    const std::string state = dir.file("state");
    ::mkdir(state.c_str(), 02770);
    ::chown(state.c_str(), 0, mailferry_gid);
    ::chmod(state.c_str(), 02770);
    const std::string config = dir.file("mailferry.toml");
    mft::write_file(config,
                    "[store]\npath = \"" + state +
                        "/mailferry.db\"\n\n"
                        "[identity]\ndefault_domain = \"example.com\"\n\n"
                        "[[provider]]\nname = \"old-dovecot\"\ndomains = [\"example.com\"]\n"
                        "protocol = \"imap\"\nhost = \"localhost\"\nport = " +
                        std::to_string(old.imaps_port()) + "\ntls = \"implicit\"\nca_file = \"" +
                        old.ca_file() +
                        "\"\n\n[provisioner]\ntype = \"builtin\"\n\n"
                        "[result.extra_fields]\nuserdb_home = \"" +
                        dir.path() +
                        "/new-mail/{domain}/{local}\"\nuserdb_uid = \"mfvmail\"\n"
                        "userdb_gid = \"mfvmail\"\n",
                    0640);
    ::chown(config.c_str(), 0, mailferry_gid);
    // The new server's mail store, owned by the user its Dovecot delivers as.
    ::mkdir(dir.file("new-mail").c_str(), 0755);
    mft::run({"/bin/chown", "mfvmail:mfvmail", dir.file("new-mail")});
    say("    " + config + ":");
    run_cli(build, {"check-config", "--config", config});

    step("Starting the NEW mail server: its passdb is mailferry-checkpassword");
    std::string auth = mft::read_file(std::string(kSource) +
                                      "/examples/dovecot/auth-mailferry-checkpassword.conf.ext");
    auth = replace_all(auth, "/usr/local/bin/mailferry-checkpassword",
                       build + "/external-auth/mailferry-checkpassword");
    auth = replace_all(auth, "/etc/mailferry/mailferry.toml", config);
    mft::DovecotOptions n;
    n.label = "demo-new";
    n.tls = false;
    n.imaps = n.pop3 = n.pop3s = n.submission = false;
    n.auth_config = auth;
    // The login helper runs as Dovecot's auth user; the mailferry group gives it the store.
    n.extra_config = "service auth {\n  extra_groups = mailferry\n  vsz_limit = 0\n}\n"
                     "service auth-worker {\n  extra_groups = mailferry\n}\n";
    mft::DovecotServer fresh(n);
    say("    new server: IMAP on port " + std::to_string(fresh.imap_port()));

    step("anna logs in at the NEW server with her OLD password (first login)");
    say("    " + imap_login(fresh.imap_port(), "anna", "anna's secret"));
    show_accounts(state + "/mailferry.db");

    if (std::getenv("MAILFERRY_DEMO_DEBUG") != nullptr) {
        say(fresh.log_tail(30));
    }

    step("bob mistypes his password: the old server says no, nothing is created");
    say("    " + imap_login(fresh.imap_port(), "bob@example.com", "bob-pw-2025"));
    show_accounts(state + "/mailferry.db");

    step("The old server goes down");
    old.stop();
    say("    anna logs in again (answered from mailferry's store): " +
        imap_login(fresh.imap_port(), "anna@example.com", "anna's secret"));
    say("    carl, not migrated yet, tries now: " +
        imap_login(fresh.imap_port(), "carl", "carl pass"));
    say("    (a temporary failure: his client will retry; nothing was created)");
    show_accounts(state + "/mailferry.db");

    step("Done. Both servers are stopped and the demo directory removed.");
    return 0;
} catch (const std::exception& e) {
    std::fprintf(stderr, "mailferry-demo: %s\n", e.what());
    return 1;
}
